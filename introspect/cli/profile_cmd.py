"""`introspect profile TARGET --duration S`: sample a local process with py-spy and show its
hottest functions, or write a speedscope / flamegraph file."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from introspect.errors import UserError
from introspect.textsafe import escape

FORMATS = ("top", "speedscope", "flamegraph")
SPEEDSCOPE_URL = "https://www.speedscope.app/"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile", help="sample a process's CPU use with py-spy (top table, speedscope, SVG)",
        description="Sample the stacks of a Python process on this host with py-spy. Without -o "
        "print the hottest functions (own and total share of samples); with -o write a "
        "speedscope JSON (open at speedscope.app) or a flamegraph SVG (open in a browser). "
        "Needs ptrace rights over the target (root, or the same user without Yama "
        "restrictions).")
    p.add_argument("target", metavar="TARGET",
                   help="PID, or the agent's local socket (agent-PID.sock)")
    p.add_argument("--duration", "-d", type=float, required=True, metavar="S",
                   help="seconds to sample (whole seconds; rounded up)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the profile here (default name: profile-PID-TIME.<ext>)")
    p.add_argument("--format", "-f", choices=FORMATS, default=None,
                   help="top (default without -o), speedscope (default with -o), or flamegraph "
                        "(default for -o *.svg)")
    p.add_argument("--rate", "-r", type=int, default=100, metavar="HZ",
                   help="samples per second (default 100)")
    p.add_argument("--top", type=int, default=20, metavar="N",
                   help="rows of the top table (default 20)")
    p.add_argument("--subprocesses", "-s", action="store_true",
                   help="also sample the target's child processes")
    p.add_argument("--nonblocking", action="store_true",
                   help="don't pause the target while sampling (lower impact, less accurate)")
    p.add_argument("--native", action="store_true",
                   help="include native (C/C++/Cython) frames")
    p.set_defaults(func=run)


def choose_format(fmt: str | None, output: str | None) -> str:
    if fmt:
        return fmt
    if output is None:
        return "top"
    return "flamegraph" if output.lower().endswith((".svg", ".html")) else "speedscope"


def default_output(pid: int, fmt: str, now: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    ext = {"speedscope": "speedscope.json", "flamegraph": "svg", "top": "txt"}[fmt]
    return Path(f"profile-{pid}-{stamp}.{ext}")


class ProgressBar:
    """`\\r[#####     ] 3.1/10.0s` on a terminal, redrawn at most 10 times a second."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self._last = -1.0
        self.drawn = False

    def __call__(self, elapsed: float, duration: float) -> None:
        if elapsed - self._last < 0.1 and elapsed < duration:
            return
        self._last = elapsed
        frac = 0.0 if duration <= 0 else min(1.0, max(0.0, elapsed / duration))
        filled = round(frac * self.width)
        bar = "#" * filled + " " * (self.width - filled)
        self.stream.write(f"\r[{bar}] {elapsed:.1f}/{duration:.1f}s")
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def run(args: argparse.Namespace) -> int:
    from introspect.profiling import pyspy
    from introspect.profiling.report import load_speedscope, render_top
    from introspect.profiling.target import resolve_pid

    if not args.duration > 0:
        raise UserError("--duration must be more than 0 seconds")
    if args.rate <= 0:
        raise UserError("--rate must be at least 1 sample per second")
    if args.top <= 0:
        raise UserError("--top must be at least 1")
    pid = resolve_pid(args.target)
    fmt = choose_format(args.format, args.output)
    pyspy.find_pyspy()  # fail before anything else if py-spy is missing

    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    started = time.monotonic()
    options = dict(rate=args.rate, progress=bar, subprocesses=args.subprocesses,
                   nonblocking=args.nonblocking, native=args.native)
    try:
        if fmt == "top":
            with tempfile.TemporaryDirectory(prefix="introspect-profile-") as tmp:
                path = pyspy.record(pid, args.duration, "speedscope",
                                    Path(tmp) / "profile.speedscope.json", by_function=True,
                                    **options)
                report = load_speedscope(path)
        else:
            output = Path(args.output) if args.output else default_output(pid, fmt)
            path = pyspy.record(pid, args.duration, fmt, output, **options)
            report = load_speedscope(path) if fmt == "speedscope" else None
    finally:
        if bar is not None:
            bar.finish()
    took = time.monotonic() - started
    samples = f", {report.samples} samples" if report is not None else ""
    print(f"introspect: profiled PID {pid} for {took:.1f} s at {args.rate} Hz with py-spy"
          f"{samples}", file=sys.stderr)

    if fmt == "top":
        assert report is not None
        width = shutil.get_terminal_size((100, 24)).columns
        text = render_top(report, args.top, width=max(60, width))
        if args.output:
            try:
                Path(args.output).write_text(text, encoding="utf-8")
            except OSError as exc:
                raise UserError(f"cannot write {escape(args.output)}: "
                                f"{exc.strerror or exc}") from None
            print(f"wrote the top table to {escape(args.output)}")
        else:
            sys.stdout.write(text)
        return 0
    shown = escape(str(path), 400)
    if fmt == "speedscope":
        print(f"wrote speedscope profile to {shown}")
        print(f"open it at {SPEEDSCOPE_URL} (drag the file in), or run `speedscope {shown}`")
    else:
        print(f"wrote flamegraph to {shown}")
        print(f"open it in a browser: {escape(path.resolve().as_uri(), 400)}")
    return 0

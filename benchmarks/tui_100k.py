"""The TUI against a target with many live tasks (default 100k), 1 s updates.

    .venv/bin/python benchmarks/tui_100k.py [--tasks 100000] [--rounds 3]

Measures, in one run:
1. loop time the agent costs the target per update: a probe task in the target sleeps 5 ms in
   a loop and reports how late it wakes; windows with no subscriber and with one subscriber
   (1 s updates, 100 tasks per update, like `introspect top`) alternate, the difference is
   the cost; plus the agent's own `collect_seconds` per snapshot;
2. bytes per update (first = full, then changed-only) at 1k, 10k and the full task count;
3. key-to-screen in the TUI via the Textual pilot: time from a key press to the screen
   showing the answer (tasks tab with a page from the agent, a re-sort, a filter, a local view).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from introspect.protocol import messages as m
from tests.support.procs import AgentProcess

TARGET = textwrap.dedent("""
    import asyncio, sys, time

    async def idle(event):
        await event.wait()

    async def probe():
        while True:
            late = []
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                t = time.perf_counter()
                await asyncio.sleep(0.005)
                late.append(time.perf_counter() - t - 0.005)
            late.sort()
            print(f"late {late[len(late) // 2]:.6f} {late[int(len(late) * 0.99)]:.6f} "
                  f"{late[-1]:.6f}", flush=True)

    async def main(n):
        event = asyncio.Event()
        tasks = [asyncio.create_task(idle(event), name=f"idle-{i}") for i in range(n)]
        asyncio.create_task(probe(), name="probe")
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main(int(sys.argv[1])))
""")


def start_target(tasks: int) -> AgentProcess:
    proc = AgentProcess.script(TARGET.replace("int(sys.argv[1])", str(tasks)))
    proc.wait_for_line("ready", timeout=120)
    proc.wait_for_agent()
    return proc


def probe_lines(proc: AgentProcess, count: int) -> list[tuple[float, float, float]]:
    """The next `count` probe reports (p50, p99, max lateness in seconds)."""
    seen = len([ln for ln in proc.stdout if ln.startswith("late")])
    deadline = time.monotonic() + count * 5 + 10
    while time.monotonic() < deadline:
        lines = [ln for ln in proc.stdout if ln.startswith("late")]
        if len(lines) >= seen + count:
            return [tuple(float(x) for x in ln.split()[1:]) for ln in lines[seen:seen + count]]
        time.sleep(0.05)
    raise RuntimeError("the probe stopped reporting")


class Subscriber(threading.Thread):
    def __init__(self, proc: AgentProcess) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.sizes: list[int] = []
        self.collect: list[float] = []
        self.stop_flag = threading.Event()

    def run(self) -> None:
        with self.proc.client() as client:
            for update in client.subscribe(interval=1.0, top_tasks=100):
                self.sizes.append(len(m.encode(update)))
                agent = (update.snapshot.agent if update.snapshot is not None
                         else (update.changed or {}).get("agent"))
                if agent is not None:
                    cs = agent.collect_seconds if hasattr(agent, "collect_seconds") else \
                        agent.get("collect_seconds", 0.0)
                    self.collect.append(cs)
                if self.stop_flag.is_set():
                    return


def loop_cost(proc: AgentProcess, rounds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"idle_p99": [], "sub_p99": [], "idle_max": [],
                                   "sub_max": [], "collect": [], "sizes": []}
    for _ in range(rounds):
        for _p50, p99, mx in probe_lines(proc, 3):
            out["idle_p99"].append(p99)
            out["idle_max"].append(mx)
        sub = Subscriber(proc)
        sub.start()
        for _p50, p99, mx in probe_lines(proc, 3):
            out["sub_p99"].append(p99)
            out["sub_max"].append(mx)
        sub.stop_flag.set()
        sub.join(10)
        out["collect"] += sub.collect
        out["sizes"] += sub.sizes
    return out


def update_sizes(tasks: int) -> tuple[int, float]:
    proc = start_target(tasks)
    try:
        sizes: list[int] = []
        with proc.client() as client:
            for update in client.subscribe(interval=0.5, top_tasks=100):
                sizes.append(len(m.encode(update)))
                if len(sizes) >= 5:
                    break
        return sizes[0], statistics.mean(sizes[1:])
    finally:
        proc.stop()
        proc.__exit__(None, None, None)


def post_keys(app: Any, *keys: str) -> None:
    """Queue key events the way the terminal driver does. `Pilot.press` also waits for the
    app to go idle and for animations, which adds ~0.4 s of its own to every press; the time
    a user waits is from the key event to the screen holding the answer."""
    from textual import events

    for key in keys:
        char = key if len(key) == 1 else {"slash": "/", "enter": "\r"}.get(key)
        app.post_message(events.Key(key, char))


async def key_to_screen(pid: int) -> dict[str, list[float]]:
    from introspect.tui.app import IntrospectApp
    from introspect.tui.views.tasks import TasksView

    results: dict[str, list[float]] = {"tasks tab (agent page)": [], "re-sort (agent page)": [],
                                       "filter (agent page)": [], "load tab (local)": []}
    app = IntrospectApp(target=str(pid), interval=1.0)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.model.snapshot is None:
            await pilot.pause(0.05)
        view = app.query_one(TasksView)

        async def until(predicate, limit: float = 30.0) -> float:
            start = time.perf_counter()
            while not predicate():
                if time.perf_counter() - start > limit:
                    raise RuntimeError("no answer on screen")
                await pilot.pause(0.001)
            return time.perf_counter() - start

        for i in range(5):
            await pilot.press("1")
            await pilot.pause(0.2)
            old = view.page
            start = time.perf_counter()
            post_keys(app, "3")
            await until(lambda old=old: view.page is not old)
            results["tasks tab (agent page)"].append(time.perf_counter() - start)
            old = view.page
            start = time.perf_counter()
            post_keys(app, "r")
            await until(lambda old=old, i=i: view.page is not old and view.page.tasks and
                        view.descending == (i % 2 == 1))
            results["re-sort (agent page)"].append(time.perf_counter() - start)
            old = view.page
            needle = f"idle-{i}9"
            view.text = None
            await pilot.press("slash", *needle)  # typing is local; time the Enter
            start = time.perf_counter()
            post_keys(app, "enter")
            await until(lambda old=old, needle=needle: view.page is not old and
                        view.text == needle)
            results["filter (agent page)"].append(time.perf_counter() - start)
            await pilot.press("slash")
            await pilot.press("ctrl+a", "ctrl+k", "enter")  # clear the filter
            start = time.perf_counter()
            post_keys(app, "2")
            await until(lambda: app.query_one("#views").active == "load")
            await pilot.pause(0)
            results["load tab (local)"].append(time.perf_counter() - start)
        await pilot.press("q")
    return results


def fmt_ms(values: list[float]) -> str:
    return (f"median {statistics.median(values) * 1000:.1f} ms, "
            f"max {max(values) * 1000:.1f} ms (n={len(values)})")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    print(f"# TUI with {args.tasks} live tasks, 1 s updates")
    proc = start_target(args.tasks)
    try:
        cost = loop_cost(proc, args.rounds)
        print("\n## Loop time of the target (probe: 5 ms sleeps, lateness per 1 s window)")
        print(f"- no subscriber:  p99 {statistics.median(cost['idle_p99']) * 1000:.2f} ms, "
              f"max {max(cost['idle_max']) * 1000:.2f} ms")
        print(f"- one subscriber: p99 {statistics.median(cost['sub_p99']) * 1000:.2f} ms, "
              f"max {max(cost['sub_max']) * 1000:.2f} ms")
        if cost["collect"]:
            print(f"- agent collect_seconds per snapshot: median "
                  f"{statistics.median(cost['collect']) * 1000:.2f} ms, max "
                  f"{max(cost['collect']) * 1000:.2f} ms")
        keys = asyncio.run(key_to_screen(proc.pid))
        print("\n## Key to screen (Textual pilot, 120x40)")
        for name, values in keys.items():
            print(f"- {name}: {fmt_ms(values)}")
    finally:
        proc.__exit__(None, None, None)

    print("\n## Bytes per update (top 100 tasks; first = full snapshot, then changed-only)")
    for n in sorted({1_000, 10_000, args.tasks}):
        first, later = update_sizes(n)
        print(f"- {n:>7} tasks: first {first / 1024:.1f} KiB, later {later / 1024:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

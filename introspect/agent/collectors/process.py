"""The process: CPU, RSS, open file descriptors, threads, children (psutil).

psutil is imported when a snapshot first asks (`proc`), not at start: the once-a-second history
sample reads /proc on Linux (`basics`), and psutil's ~2.5k objects would otherwise sit in the
host's heap for every full GC to walk.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any

from introspect.agent.late_imports import late_import

CHILDREN_CACHE_SECONDS = 5.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_SIZE = resource.getpagesize()

try:
    from introspect.agent import _watchdog_accel as _accel
except ImportError:
    _accel = None  # type: ignore[assignment]


def _read_proc(path: str) -> bytes:
    """The watchdog thread calls `basics`: Python's open/read/close let go of the GIL three or
    four times, and each re-take makes a busy loop drop it; the C read keeps it (~10 µs)."""
    if _accel is not None:
        return _accel.read_proc(path)
    with open(path, "rb") as fh:
        return fh.read()


class ProcessCollector:
    def __init__(self, pid: int | None = None) -> None:
        self.pid = pid or os.getpid()
        self._proc: Any = None
        self._started: float | None = None
        self._last_cpu: tuple[float, float] | None = None
        self._children_cache: tuple[float, list[int]] | None = None

    @property
    def proc(self) -> Any:
        """The `psutil.Process`, made (and psutil imported) at first use."""
        if self._proc is None:
            psutil = late_import("psutil")  # see late_imports: a fork meanwhile
            self._proc = psutil.Process(self.pid)
        return self._proc

    @property
    def started(self) -> float:
        if self._started is None:
            self._started = self.proc.create_time()
        return self._started

    def basics(self) -> tuple[float, int, int]:
        """(CPU seconds, RSS bytes, threads): one read of /proc/<pid>/stat on Linux (the
        numbers psutil reads there too), psutil elsewhere."""
        try:
            data = _read_proc(f"/proc/{self.pid}/stat")
            fields = data[data.rindex(b")") + 2:].split()  # fields[0] is field 3, "state"
            cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime
            return cpu, int(fields[21]) * _PAGE_SIZE, int(fields[17])  # rss, num_threads
        except (OSError, ValueError, IndexError):
            pass
        proc = self.proc
        with proc.oneshot():
            times = proc.cpu_times()
            return times.user + times.system, proc.memory_info().rss, proc.num_threads()

    def stats(self, with_children: bool = True) -> dict:
        psutil = late_import("psutil")
        proc = self.proc
        with proc.oneshot():
            cpu = proc.cpu_times()
            cpu_seconds = cpu.user + cpu.system
            mem = proc.memory_info()
            try:
                fds = proc.num_fds()
            except (AttributeError, psutil.Error):
                fds = 0
            threads = proc.num_threads()
        children = self.children() if with_children else []
        now = time.monotonic()
        percent = 0.0
        if self._last_cpu is not None and now > self._last_cpu[0]:
            percent = 100.0 * (cpu_seconds - self._last_cpu[1]) / (now - self._last_cpu[0])
        self._last_cpu = (now, cpu_seconds)
        try:
            max_fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        except (ValueError, OSError):
            max_fds = 0
        return {
            "uptime_seconds": max(0.0, time.time() - self.started),
            "cpu_seconds": cpu_seconds,
            "rss_bytes": mem.rss,
            "open_fds": fds,
            "threads": threads,
            "children": children,
            "max_fds": max_fds if max_fds != resource.RLIM_INFINITY else 0,
            "cpu_percent": round(percent, 1),
        }

    def children(self) -> list[int]:
        """Child PIDs. Linux lists them per thread in /proc (a few small reads); elsewhere
        psutil scans every process, so that answer is cached for a few seconds. (Each file
        read releases the GIL, and every re-acquisition can force the app's loop thread to
        hand it over: keep the snapshot's syscalls few.)"""
        task_dir = f"/proc/{self.pid}/task"
        try:
            pids: list[int] = []
            for tid in os.listdir(task_dir):
                with open(f"{task_dir}/{tid}/children") as fh:
                    pids.extend(int(p) for p in fh.read().split())
            return sorted(set(pids))
        except (OSError, ValueError):
            pass
        psutil = late_import("psutil")
        now = time.monotonic()
        cached = self._children_cache
        if cached is not None and now - cached[0] < CHILDREN_CACHE_SECONDS:
            return cached[1]
        try:
            pids = [c.pid for c in self.proc.children()]
        except psutil.Error:
            pids = []
        self._children_cache = (now, pids)
        return pids

    def thread_cpu(self) -> dict[int, float]:
        """CPU seconds per native thread id."""
        psutil = late_import("psutil")
        try:
            return {t.id: t.user_time + t.system_time for t in self.proc.threads()}
        except psutil.Error:
            return {}

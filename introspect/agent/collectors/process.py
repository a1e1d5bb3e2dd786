"""The process: CPU, RSS, open file descriptors, threads, children (psutil)."""

from __future__ import annotations

import os
import resource
import time

import psutil

CHILDREN_CACHE_SECONDS = 5.0


class ProcessCollector:
    def __init__(self, pid: int | None = None) -> None:
        self.pid = pid or os.getpid()
        self.proc = psutil.Process(self.pid)
        self.started = self.proc.create_time()
        self._last_cpu: tuple[float, float] | None = None
        self._children_cache: tuple[float, list[int]] | None = None

    def stats(self, with_children: bool = True) -> dict:
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
        try:
            return {t.id: t.user_time + t.system_time for t in self.proc.threads()}
        except psutil.Error:
            return {}

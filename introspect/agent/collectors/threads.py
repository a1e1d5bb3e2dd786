"""Threads: name, ids, daemon flag, CPU seconds, where each one is right now."""

from __future__ import annotations

import os
import sys
import threading

from introspect.agent.collectors import frames as fr


def thread_rows(thread_cpu: dict[int, float], loop_thread: int | None,
                agent_threads: set[int]) -> list[dict]:
    frames = sys._current_frames()
    try:
        return _rows(frames, thread_cpu, loop_thread, agent_threads)
    finally:
        frames.clear()  # it holds this thread's frames: a cycle keeping our callers' locals


def _rows(frames: dict, thread_cpu: dict[int, float], loop_thread: int | None,
          agent_threads: set[int]) -> list[dict]:
    rows = []
    main = threading.main_thread()
    for thread in threading.enumerate():
        ident = thread.ident or 0
        native_id = thread.native_id
        if thread is main and sys.platform == "linux":
            # Linux: the main thread's id is the pid. CPython keeps the parent's value in
            # `main_thread().native_id` after a bare os.fork (gunicorn workers).
            native_id = os.getpid()
        stack = fr.stack_of_frame(frames.get(ident), limit=64)
        user = fr.first_user_frame(stack)
        rows.append({
            "name": thread.name,
            "ident": ident,
            "native_id": native_id,
            "daemon": thread.daemon,
            "cpu_seconds": round(thread_cpu.get(native_id or -1, 0.0), 3),
            "location": f"{user[1]}:{user[2]} {user[0]}" if user else "",
            "is_loop": ident == loop_thread,
            "is_agent": ident in agent_threads,
        })
    return rows


def thread_stacks(limit: int = 128) -> dict[int, list[tuple[str, str, int]]]:
    # sys._current_frames() holds this very frame; left in a local it is a reference cycle
    # that keeps every caller's locals (a whole dump) alive until the collector runs
    frames = sys._current_frames()
    try:
        return {ident: fr.stack_of_frame(frame, limit) for ident, frame in frames.items()}
    finally:
        frames.clear()

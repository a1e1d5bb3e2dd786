"""The TUI against a target with many live tasks (default 100k), 1 s updates.

    .venv/bin/python benchmarks/tui_100k.py [--tasks 100000] [--rounds 3] [--presses 5]
        [--keys-only] [--profile FILE]

Measures, in one run:
1. loop time the agent costs the target per update: a probe task in the target sleeps 5 ms in
   a loop and reports how late it wakes; windows with no subscriber and with one subscriber
   (1 s updates, 100 tasks per update, like `introspect top`) alternate, the difference is
   the cost; plus the agent's own `collect_seconds` per snapshot;
2. bytes per update (first = full, then changed-only) at 1k, 10k and the full task count;
3. key-to-screen in the TUI via the Textual pilot: time from a key event to the first frame
   painted with the answer (tasks tab with a page from the agent, a re-sort, a filter, a
   local view, the Tree view with its page and await edges from the agent, Enter on a queue),
   and the agent round trip inside each window (see `PaintWatch`). Wall clocks are noisy on
   a shared machine: compare the rows of one run with each other (the tasks tab is the
   reference), not with another run's.
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

    async def consumer(inbox):
        while True:
            await inbox.get()

    async def producer(inbox):  # items to take: at 100k tasks owners are seen at get/put only
        while True:
            inbox.put_nowait(1)
            await asyncio.sleep(0.05)

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
        inbox = asyncio.Queue()
        asyncio.create_task(consumer(inbox), name="consumer")
        asyncio.create_task(producer(inbox), name="producer")
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
                         else m.changed_sections(update).get("agent"))
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


class PaintWatch:
    """Ends a measurement at the first screen update made while the answer holds.

    Every screen update ends in `App._display` (headless, it returns without writing), right
    after the compositor rendered the frame; rendering and display run in one go, so a
    predicate true at display time was true when the frame was rendered. The app runs at its
    own pace meanwhile (its update timer, 60 fps): the pilot is not polled inside the window
    (`Pilot.pause` forces a repaint and waits for every widget, which would add its own work).
    """

    def __init__(self, app: Any) -> None:
        self.predicate: Any = None
        self.painted_at: float | None = None
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is not None and self.predicate is not None and \
                    self.painted_at is None and self.predicate():
                self.painted_at = time.perf_counter()

        app._display = display


class RoundTrips:
    """Wraps the live source's `tasks()` to time the agent round trips (request to reply,
    including time the reply waits for the TUI's loop)."""

    def __init__(self, source: Any) -> None:
        self.calls: list[tuple[float, float]] = []
        original = source.tasks

        async def tasks(req: Any) -> Any:
            start = time.perf_counter()
            try:
                return await original(req)
            finally:
                self.calls.append((start, time.perf_counter()))

        source.tasks = tasks

    def within(self, start: float, end: float) -> float:
        """Longest round trip that ended inside the window (the one the answer waited for)."""
        return max((b - a for a, b in self.calls if start <= b <= end), default=0.0)


async def key_to_screen(pid: int, presses: int = 5,
                        profiler: Any = None) -> dict[str, list[float]]:
    """Key-to-screen times, `presses` of each; `profiler` (a cProfile.Profile) if given runs
    only inside the timed windows. Keys `name`, and `name (agent round trip)` for the part
    spent waiting for the agent's reply."""
    from introspect.tui.app import IntrospectApp
    from introspect.tui.views.queue_detail import QueueDetailScreen
    from introspect.tui.views.tasks import TasksView
    from introspect.tui.views.tree import TreeView

    results: dict[str, list[float]] = {}
    app = IntrospectApp(target=str(pid), interval=1.0)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.model.snapshot is None:
            await pilot.pause(0.05)
        view = app.query_one(TasksView)
        tree = app.query_one(TreeView)
        tabs = app.query_one("#views")
        chart = app.query_one("#load-chart-0")
        watch = PaintWatch(app)
        trips = RoundTrips(app.source)

        async def measure(name: str, key: str, predicate: Any, limit: float = 30.0) -> None:
            watch.predicate, watch.painted_at = predicate, None
            start = begin(profiler)
            post_keys(app, key)
            while watch.painted_at is None:
                if time.perf_counter() - start > limit:
                    raise RuntimeError(f"{name}: no answer on screen after {limit}s")
                await asyncio.sleep(0.002)
            end(profiler, start)
            watch.predicate = None
            results.setdefault(name, []).append(watch.painted_at - start)
            if "agent" in name:
                results.setdefault(f"{name} (agent round trip)", []).append(
                    trips.within(start, watch.painted_at))

        async def until(predicate: Any, what: str, limit: float = 30.0) -> None:
            deadline = time.perf_counter() + limit
            while not predicate():
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"timed out waiting for {what}")
                await pilot.pause(0.01)

        def ordered(page: Any, descending: bool) -> bool:
            ages = [t.age_seconds for t in page.tasks]
            return bool(ages) and ages == sorted(ages, reverse=descending)

        for i in range(presses):
            await pilot.press("1")
            await pilot.pause(0.2)
            old = view.page
            await measure("tasks tab (agent page)", "3",
                          lambda old=old: tabs.active == "tasks" and view.page is not old)
            want = not view.descending
            old = view.page
            await measure("re-sort (agent page)", "r",
                          lambda old=old, want=want: view.page is not old and
                          view.descending == want and ordered(view.page, want))
            needle = f"idle-{i % 9 + 1}9"  # idle-19, idle-190..199, …: 1111 tasks
            await pilot.press("slash", *needle)  # typing is local; time the Enter
            old = view.page
            await measure("filter (agent page)", "enter",
                          lambda old=old, needle=needle: view.page is not old and
                          view.text == needle and bool(view.page.tasks) and
                          all(needle in t.name for t in view.page.tasks))
            await pilot.press("slash")
            await pilot.press("ctrl+a", "ctrl+k", "enter")  # clear the filter
            await until(lambda: view.text is None and view.page is not None and
                        view.page.matched == view.page.total, "the unfiltered page")

            def load_shown() -> bool:  # the Load tab, its charts up to the latest sample
                history = app.model.history
                return (tabs.active == "load" and len(chart.data or ()) == len(history)
                        and chart.data[-1] == history[-1].lag_p99)

            await measure("load tab (local)", "2", load_shown)

            old = tree.placement
            await measure("tree tab (agent page + await edges)", "4",
                          lambda old=old: tabs.active == "tree" and tree.placement is not old
                          and tree.placement is not None)
            await pilot.press("5")
            await until(lambda: tabs.active == "queues" and app.model.snapshot is not None
                        and any(q.consumers for q in app.model.snapshot.queues),
                        "the queue and its consumer")
            await measure("enter on a queue (local)", "enter",
                          lambda: isinstance(app.screen, QueueDetailScreen) and
                          "__main__.consumer" in str(
                              app.screen.query_one("#queue-detail-body").content))
            await pilot.press("escape")
            await until(lambda: not isinstance(app.screen, QueueDetailScreen), "queue closed")
        await pilot.press("q")
    return results


def begin(profiler: Any) -> float:
    if profiler is not None:
        profiler.enable()
    return time.perf_counter()


def end(profiler: Any, start: float) -> float:
    elapsed = time.perf_counter() - start
    if profiler is not None:
        profiler.disable()
    return elapsed


def fmt_ms(values: list[float]) -> str:
    return (f"median {statistics.median(values) * 1000:.1f} ms, "
            f"max {max(values) * 1000:.1f} ms (n={len(values)})")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--presses", type=int, default=5,
                        help="key presses of each kind in the key-to-screen part")
    parser.add_argument("--keys-only", action="store_true",
                        help="only the key-to-screen part (skip loop cost and bytes)")
    parser.add_argument("--profile", metavar="FILE",
                        help="write a cProfile of the key-to-screen part to FILE")
    args = parser.parse_args()

    print(f"# TUI with {args.tasks} live tasks, 1 s updates")
    proc = start_target(args.tasks)
    try:
        if not args.keys_only:
            loop_report(proc, args.rounds)
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            keys = asyncio.run(key_to_screen(proc.pid, args.presses, profiler))
            profiler.dump_stats(args.profile)
        else:
            keys = asyncio.run(key_to_screen(proc.pid, args.presses))
        import introspect

        print(f"\n## Key to screen (Textual pilot, 120x40; TUI code from "
              f"{Path(introspect.__file__).parents[1]})")
        for name, values in keys.items():
            print(f"- {name}: {fmt_ms(values)}")
    finally:
        proc.__exit__(None, None, None)
    if args.keys_only:
        return 0

    print("\n## Bytes per update (top 100 tasks; first = full snapshot, then changed-only)")
    for n in sorted({1_000, 10_000, args.tasks}):
        first, later = update_sizes(n)
        print(f"- {n:>7} tasks: first {first / 1024:.1f} KiB, later {later / 1024:.1f} KiB")
    return 0


def loop_report(proc: AgentProcess, rounds: int) -> None:
    cost = loop_cost(proc, rounds)
    print("\n## Loop time of the target (probe: 5 ms sleeps, lateness per 1 s window)")
    print(f"- no subscriber:  p99 {statistics.median(cost['idle_p99']) * 1000:.2f} ms, "
          f"max {max(cost['idle_max']) * 1000:.2f} ms")
    print(f"- one subscriber: p99 {statistics.median(cost['sub_p99']) * 1000:.2f} ms, "
          f"max {max(cost['sub_max']) * 1000:.2f} ms")
    if cost["collect"]:
        print(f"- agent collect_seconds per snapshot: median "
              f"{statistics.median(cost['collect']) * 1000:.2f} ms, max "
              f"{max(cost['collect']) * 1000:.2f} ms")


if __name__ == "__main__":
    sys.exit(main())

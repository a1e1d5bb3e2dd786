"""The await graph of a program that knows what awaits what, read from another thread while
the loop is parked (as the agent reads it), on every supported CPython; on 3.14 it must also
agree with asyncio's own `capture_call_graph`."""

from __future__ import annotations

import asyncio
import threading

from introspect.agent import await_graph as ag
from tests.support.procs import wait_until


class Program:
    """main -> gather(gatherer_a, grouper) ; gatherer_a -> await leaf_c ;
    grouper -> TaskGroup(leaf_d, leaf_e) ; nested -> gather(gather(leaf_f, leaf_g))."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task] = {}
        self.parked = threading.Event()
        self.release: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def spawn(self, name: str, coro: object) -> asyncio.Task:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        task.set_name(name)
        self.tasks[name] = task
        return task

    async def leaf(self) -> None:
        assert self.release is not None
        await self.release.wait()

    async def gatherer_a(self) -> None:
        await self.spawn("leaf_c", self.leaf())

    async def grouper(self) -> None:
        async with asyncio.TaskGroup() as group:
            for name in ("leaf_d", "leaf_e"):
                self.tasks[name] = group.create_task(self.leaf(), name=name)

    async def nested(self) -> None:
        inner = asyncio.gather(self.spawn("leaf_f", self.leaf()),
                               self.spawn("leaf_g", self.leaf()))
        await asyncio.gather(inner)

    async def main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.release = asyncio.Event()
        self.tasks["main"] = asyncio.current_task()  # type: ignore[assignment]
        nested = self.spawn("nested", self.nested())
        a = self.spawn("gatherer_a", self.gatherer_a())
        b = self.spawn("grouper", self.grouper())
        self.loop.call_later(0.05, self.parked.set)
        await asyncio.gather(a, b)
        await nested


EXPECTED = {
    ("main", "gather", "gatherer_a"), ("main", "gather", "grouper"),
    ("gatherer_a", "task", "leaf_c"),
    ("grouper", "taskgroup", "leaf_d"), ("grouper", "taskgroup", "leaf_e"),
    ("nested", "gather", "leaf_f"), ("nested", "gather", "leaf_g"),
}


def test_the_await_graph_of_a_program_that_knows_what_awaits_what() -> None:
    program = Program()
    thread = threading.Thread(target=asyncio.run, args=(program.main(),), daemon=True)
    thread.start()
    try:
        assert program.parked.wait(30)
        loop = program.loop
        assert loop is not None
        wait_until(lambda: len(program.tasks) == 9, message="every task of the program created")
        names = {task: name for name, task in program.tasks.items()}
        edges = ag.await_edges(asyncio.all_tasks(loop))  # from this (another) thread
        got = {(names[e.waiter], e.via, names[e.awaited]) for e in edges}
        assert got == EXPECTED

        rows = ag.graph_rows(edges, lambda t: names[t])
        assert {r["task"] for r in rows} == {"main", "gatherer_a", "grouper", "nested"}
        by = ag.awaited_by(edges)
        assert [names[e.waiter] for e in by[program.tasks["leaf_d"]]] == ["grouper"]

        capture = getattr(asyncio, "capture_call_graph", None)  # 3.14+
        if capture is not None:
            def asyncio_says() -> set[tuple[str, str]]:
                found = set()
                for task, name in names.items():
                    graph = capture(task)
                    for waiter in graph.awaited_by:
                        found.add((names[waiter.future], name))
                return found
            future = asyncio.run_coroutine_threadsafe(_call(asyncio_says), loop)
            assert future.result(10) == {(w, a) for w, _via, a in EXPECTED}
    finally:
        if program.loop is not None and program.release is not None:
            program.loop.call_soon_threadsafe(program.release.set)
        thread.join(30)
    assert not thread.is_alive()


async def _call(fn):  # capture_call_graph wants the loop running in the calling thread
    return fn()

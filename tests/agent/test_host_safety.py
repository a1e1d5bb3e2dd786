"""The agent never hurts its host: contained failures, unchanged behaviour, fork-safety."""

from __future__ import annotations

import asyncio
import contextvars
import os
import signal
import sys

import introspect
from introspect.client.connection import Client
from tests.support.procs import AgentProcess, wait_until


class ExplodingQueue:
    def qsize(self) -> int:
        raise RuntimeError("collector must contain me")


def test_collector_exception_is_contained_and_counted():
    async def main():
        agent = introspect.start()
        try:
            bad = introspect.watch(ExplodingQueue(), name="bad")  # watched weakly: keep it
            q = asyncio.Queue()
            q.put_nowait(1)
            introspect.watch(q, name="good")
            snap = agent.snapshot()
            assert [r.name for r in snap.queues if r.name == "good"] == ["good"]
            assert agent.collector_errors.counts.get("queues", 0) >= 1
            assert snap.agent.collector_errors.get("queues", 0) >= 1
            del bad
        finally:
            introspect.stop()

    asyncio.run(main())


def test_app_task_factory_exception_handler_and_contextvars_are_kept():
    calls: list[str] = []
    handled: list[str] = []
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    def app_factory(loop, coro, **kwargs):
        calls.append("factory")
        return asyncio.Task(coro, loop=loop, **kwargs)

    def app_handler(loop, context):
        handled.append(context["message"])

    async def reads_var() -> str:
        return var.get()

    async def main():
        loop = asyncio.get_running_loop()
        loop.set_task_factory(app_factory)
        loop.set_exception_handler(app_handler)
        agent = introspect.start()
        try:
            assert loop.get_task_factory() is app_factory
            assert loop.get_exception_handler() is app_handler
            ctx = contextvars.copy_context()
            ctx.run(var.set, "from-context")
            assert await loop.create_task(reads_var(), context=ctx) == "from-context"
            assert calls, "the app's factory still runs"

            def later_factory(loop, coro, **kwargs):
                calls.append("later")
                return asyncio.Task(coro, loop=loop, **kwargs)

            loop.set_task_factory(later_factory)  # the app changes its mind: still counted
            assert loop.get_task_factory() is later_factory
            await asyncio.create_task(reads_var())
            assert calls[-1] == "later"
            kinds = [k for k in agent.snapshot().tasks.by_kind if k.kind.endswith(".reads_var")]
            assert [k.finished_ok for k in kinds] == [2]

            loop.call_soon(lambda: 1 / 0)
            deadline = loop.time() + 10
            while not handled:  # poll until the callback has run and failed
                assert loop.time() < deadline, "the callback's error never reached the handler"
                await asyncio.sleep(0.01)
            assert len(handled) == 1 and handled[0].startswith("Exception in callback")
            errors = agent.snapshot().errors
            assert any(e.source == "callback" and e.type == "ZeroDivisionError"
                       for e in errors.recent)
        finally:
            introspect.stop()
        assert loop.get_task_factory() is later_factory
        assert loop.get_exception_handler() is app_handler

    asyncio.run(main())


def test_start_is_idempotent_and_stop_restores_hooks():
    import queue
    import threading

    original_hook = threading.excepthook
    original_simple = queue.SimpleQueue
    original_lazy_init = asyncio.Runner._lazy_init
    a = introspect.start()
    try:
        assert introspect.start() is a
        assert queue.SimpleQueue is not original_simple
        assert asyncio.Runner._lazy_init is not original_lazy_init  # uvloop.run() & co
    finally:
        introspect.stop()
    assert threading.excepthook is original_hook
    assert queue.SimpleQueue is original_simple
    assert asyncio.Runner._lazy_init is original_lazy_init
    assert asyncio.Queue.__init__.__qualname__ == "Queue.__init__"


FORKER = r'''
import asyncio, os, sys, time
import introspect
async def main():
    pid = os.fork()
    if pid == 0:
        print(f"child {os.getpid()}", flush=True)
        time.sleep(60)
        os._exit(0)
    print(f"parent {os.getpid()} child-pid {pid}", flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
'''


def test_forked_child_gets_its_own_working_agent():
    with AgentProcess.script(FORKER) as proc:
        line = proc.wait_for_line("child-pid")
        child = int(line.split()[-1])
        from introspect.protocol import discovery

        wait_until(lambda: discovery.socket_path(child).exists(), message="child's socket")
        with Client(str(child)).connect() as c:
            assert c.snapshot().node.pid == child
        with Client(str(proc.pid)).connect() as c:
            assert c.snapshot().node.pid == proc.pid
        import os
        import signal

        os.kill(child, signal.SIGKILL)


FORKED_WORKER = r'''
import asyncio, os, time
# The master under `introspect run` has no loop (gunicorn's arbiter); the worker, a bare
# os.fork() child, runs its own loop that blocks (time.sleep) and burns CPU between yields.
pid = os.fork()
if pid == 0:
    async def worker():
        print(f"worker {os.getpid()} ready", flush=True)
        while True:
            await asyncio.sleep(0.2)
            time.sleep(0.3)
            end = time.thread_time() + 0.05
            while time.thread_time() < end:
                pass
    asyncio.run(worker())
    os._exit(0)
print(f"master child-pid {pid}", flush=True)
time.sleep(120)
'''


def test_a_forked_worker_with_its_own_loop_has_a_watchdog_and_a_sampler():
    """Threads and interval timers do not survive fork(2): without a restart the worker's
    blocks went unreported and its busy time stayed 0 (gunicorn workers, multiprocessing)."""
    from introspect.protocol import discovery
    from introspect.protocol.snapshot import BlockingEvent

    with AgentProcess.script(FORKED_WORKER) as proc:
        child = int(proc.wait_for_line("child-pid").split()[-1])
        proc.wait_for_line("ready")
        wait_until(lambda: discovery.socket_path(child).exists(), message="worker's socket")

        def busy_and_blocked() -> object:
            with Client(str(child)).connect() as c:
                snap = c.snapshot(top_tasks=20)
            blocks = [e for e in snap.events if isinstance(e, BlockingEvent)]
            row = next((t for t in snap.tasks.top if t.kind == "__main__.worker"), None)
            # busy_seconds comes only from the SIGPROF sampler's ticks (CPU, sampled)
            return blocks if blocks and row is not None and row.busy_seconds > 0 else None

        blocks = wait_until(busy_and_blocked, timeout=30, interval=0.3,
                            message="the worker's blocks and busy time")
        assert blocks[0].culprit == "time.sleep" and blocks[0].duration >= 0.25, blocks[0]
        os.kill(child, signal.SIGKILL)


POLICY_SWAP = r'''
import asyncio
class AppPolicy(asyncio.DefaultEventLoopPolicy):
    """What uvloop.install() does: the app brings its own policy after the agent started."""
asyncio.set_event_loop_policy(AppPolicy())
async def observed_worker():
    await asyncio.sleep(60)
async def main():
    asyncio.create_task(observed_worker())
    print("ready", flush=True)
    await asyncio.sleep(60)
asyncio.run(main())
'''


def test_a_policy_installed_by_the_app_later_is_still_observed():
    with AgentProcess.script(POLICY_SWAP) as proc:
        proc.wait_for_line("ready")
        snap = wait_until(lambda: (lambda s: s if s.loop.running else None)(proc.snapshot()),
                          message="the loop observed")
        kinds = {k.kind: k.count for k in snap.tasks.by_kind}
        assert kinds.get("__main__.observed_worker") == 1


TICK_DURING_STOP = r'''
import asyncio, signal, sys, time
import introspect

async def main():
    agent = introspect.start()
    deadline = time.monotonic() + 30
    while not agent.sampler.active:  # armed at the loop's first beats
        assert time.monotonic() < deadline, agent.sampler.reason
        await asyncio.sleep(0.01)
    real = signal.setitimer

    def tick_lands_while_cancelling(which, seconds, interval=0.0):
        result = real(which, seconds, interval)
        if seconds == 0:  # the worst moment: a tick right after the timer is disarmed
            signal.raise_signal(signal.SIGPROF)
        return result

    signal.setitimer = tick_lands_while_cancelling
    introspect.stop()
    signal.setitimer = real
    spent = time.process_time() + 0.3  # ~30 ticks' worth of CPU if a timer were still armed
    while time.process_time() < spent:
        pass
    default = int(signal.getsignal(signal.SIGPROF)) == signal.SIG_DFL
    print("timer", signal.getitimer(signal.ITIMER_PROF), "handler", default, flush=True)

asyncio.run(main())
'''


def test_a_tick_during_stop_neither_rearms_the_timer_nor_kills_the_host(tmp_path):
    # The sampler's handler re-arms its timer at each tick; Python may run a pending tick
    # between any two bytecodes of stop(). Re-armed with the default action restored, the next
    # tick killed the host ("Profiling timer expired", exit -SIGPROF).
    script = tmp_path / "tick_during_stop.py"
    script.write_text(TICK_DURING_STOP)
    with AgentProcess([sys.executable, str(script)]) as proc:
        line = proc.wait_for_line("timer ")
        assert proc.proc.wait(30) == 0, "".join(proc.stderr)
    assert "timer (0.0, 0.0) handler True" in line

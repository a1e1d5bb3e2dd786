"""Each lint fires on a program made to trigger it, and stays silent on healthy programs.
Windows that are minutes in production are shortened through INTROSPECT_LINTS."""

from __future__ import annotations

import sys

import pytest

from tests.support.procs import AgentProcess, wait_until

SHORT_WINDOWS = ("task_kind_leak.window=2,task_kind_leak.min_growth=20,"
                 "unbounded_queue_growing.window=2,unbounded_queue_growing.min_growth=20,"
                 "executor_saturated.sustain=2,self_waking_busy_loop.window=2")

PROLOGUE = "import asyncio, gc, time, concurrent.futures\n"
TRIGGERS = {
    "loop_blocked": """
        def on_timer():
            time.sleep(0.3)
        async def main():
            asyncio.get_running_loop().call_later(0.2, on_timer)
            await asyncio.sleep(3600)
    """,
    "task_never_yields": """
        async def crunch():
            time.sleep(0.3)
        async def main():
            await asyncio.sleep(0.2)
            await asyncio.create_task(crunch())
            await asyncio.sleep(3600)
    """,
    "self_waking_busy_loop": """
        ready = False
        async def poll_until_ready():
            while not ready:
                await asyncio.sleep(0)
        async def main():
            await poll_until_ready()
    """,
    "exception_never_retrieved": """
        async def audit():
            raise ValueError("nobody listens")
        async def main():
            asyncio.create_task(audit())
            await asyncio.sleep(0.2)
            gc.collect()
            await asyncio.sleep(3600)
    """,
    "coroutine_never_awaited": """
        async def send_email():
            pass
        async def main():
            send_email()
            gc.collect()
            await asyncio.sleep(3600)
    """,
    "task_kind_leak": """
        async def session_watcher(never):
            await never.wait()
        async def main():
            never = asyncio.Event()
            while True:
                for _ in range(5):
                    asyncio.create_task(session_watcher(never))
                await asyncio.sleep(0.1)
    """,
    "unbounded_queue_growing": """
        async def main():
            backlog = asyncio.Queue()
            while True:
                for _ in range(5):
                    backlog.put_nowait(1)
                await asyncio.sleep(0.1)
    """,
    "executor_saturated": """
        async def main():
            pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="thumbs")
            loop = asyncio.get_running_loop()
            while True:
                loop.run_in_executor(pool, time.sleep, 0.5)
                await asyncio.sleep(0.1)
    """,
}
EPILOGUE = "\nasyncio.run(main())\n"


def lint_events(proc: AgentProcess) -> list[dict]:
    return [e for e in proc.snapshot().to_dict()["events"] if e["kind"] == "lint"]


@pytest.mark.parametrize("lint", sorted(TRIGGERS))
def test_each_lint_fires_on_its_trigger(lint: str) -> None:
    import textwrap

    source = PROLOGUE + textwrap.dedent(TRIGGERS[lint]) + EPILOGUE
    with AgentProcess.script(source, env={"INTROSPECT_LINTS": SHORT_WINDOWS}) as proc:
        proc.wait_for_agent()
        events = wait_until(lambda: [e for e in lint_events(proc) if e["lint"] == lint],
                            timeout=20, interval=0.2, message=f"a {lint} finding")
        assert events[0]["message"]
        if lint == "coroutine_never_awaited":
            assert "send_email" in events[0]["message"]
            assert "RuntimeWarning" in "".join(proc.stderr)  # the app still sees its warning


def test_lints_stay_silent_on_the_demos_healthy_start() -> None:
    """The demo's first 5 s are healthy (its first failure, the lock pile-up, starts at 5 s)."""
    env = {"INTROSPECT_LINTS": SHORT_WINDOWS}
    argv = [sys.executable, "-m", "introspect", "run", "--", sys.executable, "-m",
            "introspect.demo", "--duration", "4.5"]
    with AgentProcess(argv, env=env) as proc:
        proc.wait_for_agent()
        last: list[dict] = []

        def finished() -> bool:
            if proc.proc.poll() is not None:
                return True
            last[:] = [e for e in proc.snapshot().to_dict()["events"]
                       if e["kind"] in ("lint", "blocking")]
            return False

        wait_until(finished, timeout=30, interval=0.3, message="the demo's end")
        assert proc.proc.returncode == 0, "".join(proc.stderr)[-2000:]
        assert last == [], last

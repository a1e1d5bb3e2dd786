"""`introspect dump` against processes that know what they run (ground truth): a loop blocked
in Python code (the agent answers), a process without an agent and one whose GIL is held by C
code (py-spy answers, and the output says so)."""

from __future__ import annotations

import time

import pytest

from tests.cli.support import dump_json, introspect_cli
from tests.support.procs import AgentProcess, wait_until

BLOCKED_LOOP = """
import asyncio, threading, introspect

def background_worker_wait(stop):
    stop.wait()

async def parked_waiter(event):
    await event.wait()

async def spin_forever_in_python():
    x = 0
    while True:  # holds the loop; the GIL is released to other threads every 5 ms
        x += 1

async def main():
    introspect.start()
    threading.Thread(target=background_worker_wait, args=(threading.Event(),),
                     name="background-worker", daemon=True).start()
    event = asyncio.Event()
    parked = [asyncio.create_task(parked_waiter(event), name=f"parked-{i}") for i in range(3)]
    await asyncio.sleep(0.2)
    print("spinning", flush=True)
    await spin_forever_in_python()

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def blocked():
    with AgentProcess.script(BLOCKED_LOOP, under_run=False) as proc:
        proc.wait_for_agent()
        proc.wait_for_line("spinning")
        wait_until(lambda: dump_json(str(proc.pid))["loop_blocked_for_seconds"] > 0.2,
                   message="the agent seeing the blocked loop")
        yield proc


def test_a_loop_blocked_in_python_is_dumped_by_the_agent_within_2_s(blocked):
    started = time.monotonic()
    done = introspect_cli("dump", str(blocked.pid), "--deadline", "2")
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "(from the agent)" in out.splitlines()[0]
    assert "the event loop has been blocked for" in out
    main = out.split("Thread MainThread", 1)[1].split("\nThread ", 1)[0]
    assert "[event loop]" in main.splitlines()[0]
    assert "spin_forever_in_python" in main
    assert "background_worker_wait" in out.split("Thread background-worker", 1)[1]
    # the three parked tasks share one await chain: printed once, with their count
    assert "3 tasks [__main__.parked_waiter] waiting, same await chain" in out
    assert "Event.wait" in out
    assert took < 2 + 10, "the agent was asked with a 2 s deadline; this bounds the CLI"


def test_json_from_the_agent(blocked):
    data = dump_json(str(blocked.pid))
    assert data["source"] == "agent" and data["pid"] == blocked.pid
    assert data["loop_blocked_for_seconds"] > 0
    names = {t["thread"]["name"]: t for t in data["threads"]}
    assert {"MainThread", "background-worker", "introspect-agent"} <= set(names)
    functions = [f["function"] for f in names["MainThread"]["frames"]]
    assert "spin_forever_in_python" in functions
    parked = [t for t in data["tasks"] if t["task"]["name"].startswith("parked-")]
    assert len(parked) == 3 and all(t["await_chain"] for t in parked)
    assert data["tasks_total"] == len(data["tasks"])


PLAIN = """
import time

def plain_program_sleeping_here():
    print("ready", flush=True)
    time.sleep(3600)

plain_program_sleeping_here()
"""


def test_a_process_without_an_agent_is_dumped_by_py_spy():
    with AgentProcess.script(PLAIN, under_run=False) as proc:
        proc.wait_for_line("ready")
        done = introspect_cli("dump", str(proc.pid))
        data = dump_json(str(proc.pid))
    assert done.returncode == 0, done.stderr
    head = done.stdout.splitlines()[0]
    assert "(via py-spy: the agent did not answer: " in head and "no introspect agent" in head
    assert "plain_program_sleeping_here" in done.stdout
    assert data["source"] == "py-spy" and data["pid"] == proc.pid
    frames = [f["name"] for t in data["threads"] for f in t["frames"]]
    assert "plain_program_sleeping_here" in frames


HOLDS_GIL = """
import introspect

def hold_the_gil_in_c():
    print("holding", flush=True)
    return sum(range(10 ** 13))  # a C loop: never gives the GIL to the agent's thread

introspect.start()
hold_the_gil_in_c()
"""


def test_when_the_gil_is_held_the_agent_cannot_answer_and_py_spy_does():
    with AgentProcess.script(HOLDS_GIL, under_run=False) as proc:
        proc.wait_for_agent()
        proc.wait_for_line("holding")
        done = introspect_cli("dump", str(proc.pid), "--deadline", "1")
    assert done.returncode == 0, done.stderr
    head = done.stdout.splitlines()[0]
    assert "(via py-spy: the agent did not answer: " in head and "within 1s" in head
    assert "hold_the_gil_in_c" in done.stdout
    assert "+gil" in done.stdout  # py-spy saw who holds it


def test_a_dead_pid_is_a_one_line_error():
    done = introspect_cli("dump", "999999999")
    assert done.returncode != 0
    assert done.stderr.startswith("introspect: error: ") and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_observed_text_is_escaped():
    hostile = """
        import asyncio, introspect
        async def main():
            introspect.start()
            keep = asyncio.create_task(asyncio.Event().wait(),
                                       name="evil\\x1b[2J\\x1b]0;pwned\\x07")
            print("ready", flush=True)
            await asyncio.sleep(3600)
        asyncio.run(main())
    """
    with AgentProcess.script(hostile, under_run=False) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()
        done = introspect_cli("dump", str(proc.pid))
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert "evil\\x1b[2J" in done.stdout

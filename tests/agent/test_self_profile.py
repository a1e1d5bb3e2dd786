"""`ProfileRequest`: the agent profiles its own process with py-spy (control role) and names
the hottest function of a CPU-spinning target; a missing ptrace right is a clear error reply."""

from __future__ import annotations

import pytest

from introspect.client.connection import AgentError
from introspect.protocol import messages as m
from tests.support.procs import AgentProcess

SPINNING = """
import asyncio, introspect

def burn_cpu_in_this_function(n):
    total = 0
    for i in range(n):
        total += i * i
    return total

async def spinner():
    while True:
        burn_cpu_in_this_function(100_000)
        await asyncio.sleep(0)

async def main():
    introspect.start()
    task = asyncio.create_task(spinner())
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_the_agent_profiles_itself_and_finds_the_hot_function():
    with AgentProcess.script(SPINNING, under_run=False) as proc:
        proc.wait_for_line("ready")
        with proc.client() as client:
            reply = client.request(m.ProfileRequest(duration=1.5, top=10), m.ProfileReply,
                                   timeout=60)
    assert reply.samples > 50
    hottest = reply.functions[0]
    assert hottest.function == "burn_cpu_in_this_function", reply.functions
    assert hottest.location.endswith("app.py:6 burn_cpu_in_this_function") or \
        "app.py:" in hottest.location
    assert hottest.own > 0.5 and hottest.total >= hottest.own


NO_PTRACE = """
import asyncio, ctypes, introspect

libc = ctypes.CDLL(None, use_errno=True)
# Take away what py-spy needs: the children of this process lose CAP_SYS_PTRACE, and a
# non-dumpable process can only be traced with it.
assert libc.prctl(24, 19, 0, 0, 0) == 0, "PR_CAPBSET_DROP CAP_SYS_PTRACE"
assert libc.prctl(4, 0, 0, 0, 0) == 0, "PR_SET_DUMPABLE 0"

async def main():
    introspect.start()
    print("ready", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_without_ptrace_rights_the_reply_says_why():
    with AgentProcess.script(NO_PTRACE, under_run=False) as proc:
        proc.wait_for_line("ready")
        with proc.client() as client, pytest.raises(AgentError) as caught:
            client.request(m.ProfileRequest(duration=0.5), m.ProfileReply, timeout=60)
            assert client.snapshot().tasks.total >= 1  # not reached: the request failed
        with proc.client() as client:
            assert client.snapshot().node.pid == proc.pid  # the host carries on
    message = str(caught.value)
    assert caught.value.code == "unavailable"
    assert "permission denied" in message and "ptrace" in message
    assert "Traceback" not in message

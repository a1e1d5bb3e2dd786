"""An application that installs its own SIGPROF handler after the busy sampler armed takes the
signal over: the sampler sees it at the loop's next beats, stops counting and says why, and
never puts its own handler back. While the handler is still the sampler's, beats leave it be.
Crossversion (the check reads the handler as `_signal` returns it)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.crossversion  # (tests/conftest.py registers the marker)

PROGRAM = textwrap.dedent("""
    import asyncio, signal, time
    import introspect

    async def until(predicate):
        deadline = time.monotonic() + 30  # polled, never a fixed wait
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.01)

    async def main():
        agent = introspect.start()
        sampler = agent.sampler
        await until(lambda: sampler.active)
        beats = agent.loop_probe.beats
        await until(lambda: agent.loop_probe.beats >= beats + 5)
        assert sampler.active, sampler.reason  # its own handler: left armed

        ticks = []
        def app_handler(signum, frame):
            ticks.append(signum)
        signal.signal(signal.SIGPROF, app_handler)
        await until(lambda: not sampler.active)
        print("reason:", sampler.reason)
        beats = agent.loop_probe.beats
        await until(lambda: agent.loop_probe.beats >= beats + 5)
        assert signal.getsignal(signal.SIGPROF) is app_handler
        assert not sampler.active
        signal.setitimer(signal.ITIMER_PROF, 0, 0)  # the app's now: it ends it
        introspect.stop()
        print("OK")

    asyncio.run(main())
""")


def test_the_app_taking_sigprof_over_stops_the_sampler() -> None:
    out = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "reason: SIGPROF handler replaced by the application" in out.stdout, out.stdout
    assert out.stdout.rstrip().endswith("OK"), out.stdout

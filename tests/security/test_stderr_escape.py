"""What the agent logs on the host's stderr about the observed program (an exception its code
raised, whose repr it chose) is escaped: no terminal escape (OSC 52 writes the clipboard), no
BEL, no right-to-left override reaches the operator's terminal or log viewer."""

from __future__ import annotations

from tests.console.support import run_piped
from tests.support.procs import AgentProcess, wait_until

HOSTILE = "\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\u202egnp.exe"
APP = f"""
import asyncio, introspect

class Hostile(Exception):
    def __repr__(self):
        return {HOSTILE!r}
    __str__ = __repr__

def console_locals():
    raise Hostile()

async def main():
    print("ready", flush=True)
    await asyncio.sleep(3600)

introspect.start(console=True, console_locals=console_locals)
asyncio.run(main())
"""


def test_an_exception_from_the_program_is_escaped_on_its_stderr():
    with AgentProcess.script(APP, under_run=False) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()
        out = run_piped(str(proc.pid), "6 * 7\n")
        assert "42" in out.stdout, out.stderr
        line = wait_until(lambda: next((ln for ln in proc.stderr if "console" in ln
                                        and "failed" in ln), None),
                          message="the agent's line about the failing console_locals")
    for raw in ("\x1b", "\x07", "\u202e"):
        assert raw not in "".join(proc.stderr), repr(line)
    assert "\\x1b]52;c;" in line and "\\u202e" in line  # shown, not obeyed

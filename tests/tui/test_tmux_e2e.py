"""`introspect top PID` in a real terminal: tmux runs it against the demo, keys go in with
send-keys, capture-pane shows what a user sees."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from tests.support.procs import AgentProcess, wait_until

WIDTH, HEIGHT = 100, 30


class Tmux:
    def __init__(self) -> None:
        if shutil.which("tmux") is None:  # CI has it: a missing tmux is a failure, not a skip
            raise AssertionError("tmux is not installed")
        self.socket = f"introspect-test-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, check=True, timeout=10).stdout

    def start(self, command: str) -> None:
        self.run("new-session", "-d", "-x", str(WIDTH), "-y", str(HEIGHT), command)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", *keys)

    def screen(self) -> str:
        return self.run("capture-pane", "-p")

    def wait_for(self, *needles: str, timeout: float = 20.0) -> str:
        try:
            return wait_until(lambda: all(n in (s := self.screen()) for n in needles) and s,
                              timeout, message=f"{needles} in the terminal")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- terminal ---\n{self.screen()}") from None

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=10)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    session = Tmux()
    yield session
    session.kill()


def test_top_in_a_real_terminal(demo: AgentProcess, tmux: Tmux) -> None:
    env = f"INTROSPECT_RUNTIME_DIR={shlex.quote(os.environ['INTROSPECT_RUNTIME_DIR'])}"
    # COLUMNS/LINES (set by pytest) would override the pane size for Textual.
    # `; sleep` keeps the pane (and any error message) visible if top exits early.
    tmux.start(f"env -u COLUMNS -u LINES {env} {shlex.quote(sys.executable)} -m introspect "
               f"top {demo.pid}; sleep 30")
    # The footer's key list is painted a moment after the rest: wait for it too.
    screen = tmux.wait_for(f"pid {demo.pid}", "● live", "1 System", "Quit")
    assert "Quit" in screen
    tmux.keys("3")
    # at 100 columns KIND and AWAITING give way so LOCATION keeps file:line (docs/tui.md)
    tmux.wait_for("media-gateway-consumer", "LOCATION")
    tmux.keys("5")
    tmux.wait_for("bottleneck.py", "TREND")
    tmux.keys("6")
    tmux.wait_for("MainThread", "EXECUTORS")
    tmux.keys("7")
    tmux.wait_for("GARBAGE COLLECTOR")
    tmux.keys("?")
    tmux.wait_for("introspect top: keys")
    tmux.keys("Escape")
    tmux.keys("q")
    wait_until(lambda: "● live" not in tmux.screen(), message="top to quit")


def test_an_event_card_read_off_a_real_terminal(demo: AgentProcess, tmux: Tmux) -> None:
    """8, pause, Tab to the events, down to a blocking one, Enter: its card in words."""
    env = f"INTROSPECT_RUNTIME_DIR={shlex.quote(os.environ['INTROSPECT_RUNTIME_DIR'])}"
    tmux.start(f"env -u COLUMNS -u LINES {env} {shlex.quote(sys.executable)} -m introspect "
               f"top {demo.pid}; sleep 30")
    tmux.wait_for(f"pid {demo.pid}", "● live", "Quit")
    tmux.keys("8")
    tmux.wait_for("EVENTS", " BLOCKED ", timeout=40)
    tmux.keys("p")  # the display holds still while we count rows
    screen = tmux.wait_for("display paused")
    lines = screen.splitlines()
    header = next(i for i, line in enumerate(lines) if "AGO" in line and "WHAT" in line)
    row = next(i for i, line in enumerate(lines[header + 1:]) if " BLOCKED " in line)
    tmux.keys("Tab", *(["Down"] * row), "Enter")
    card = tmux.wait_for("stack, innermost last", "→ time.sleep")
    assert "loop blocked" in card and "by " in card and "blocking_calls.py" in card
    assert "{'" not in card and "[{" not in card  # words, not reprs
    tmux.keys("Escape")
    tmux.keys("q")
    wait_until(lambda: "● live" not in tmux.screen(), message="top to quit")

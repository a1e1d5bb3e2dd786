"""`introspect top PID` in a real terminal: tmux runs it against the demo or a program that
knows its own incident, keys go in with send-keys, capture-pane shows what a user sees."""

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


# A named queue (the module global `inbox`) drained by one known kind, filled by another, and
# a known task that blocks the loop in a known function: the facts the screen must show.
INCIDENT = """
    import asyncio, time

    inbox = None

    async def signal_gateway():
        while True:
            await inbox.get()
            await asyncio.sleep(0.05)  # slower than the sensor: the inbox backs up

    async def sensor():
        while True:
            inbox.put_nowait("reading")
            await asyncio.sleep(0.02)

    def sync_db_query():
        time.sleep(0.4)  # on the loop's thread: a blocking event

    async def reporter():
        while True:
            await asyncio.sleep(1.0)
            sync_db_query()

    async def main():
        global inbox
        inbox = asyncio.Queue()
        tasks = [asyncio.create_task(signal_gateway()), asyncio.create_task(sensor()),
                 asyncio.create_task(reporter())]  # named Task-N: the card adds the kind
        print("running", flush=True)
        await asyncio.gather(*tasks)

    asyncio.run(main())
"""


def test_an_event_card_and_a_queues_consumer_read_off_a_real_terminal(tmux: Tmux) -> None:
    """8, pause, Tab to the events, down to the blocking one, Enter: its card in words; then
    5, Enter on the queue: its consumer's kind."""
    with AgentProcess.script(INCIDENT) as target:
        target.wait_for_line("running")
        target.wait_for_agent()
        env = f"INTROSPECT_RUNTIME_DIR={shlex.quote(os.environ['INTROSPECT_RUNTIME_DIR'])}"
        tmux.start(f"env -u COLUMNS -u LINES {env} {shlex.quote(sys.executable)} -m "
                   f"introspect top {target.pid}; sleep 30")
        tmux.wait_for(f"pid {target.pid}", "● live", "Quit")
        tmux.keys("8")
        tmux.wait_for("EVENTS", " BLOCKED ", timeout=40)
        tmux.keys("p")  # the display holds still while we count rows
        screen = tmux.wait_for("display paused")
        lines = screen.splitlines()
        header = next(i for i, line in enumerate(lines) if "AGO" in line and "WHAT" in line)
        row = next(i for i, line in enumerate(lines[header + 1:]) if " BLOCKED " in line)
        tmux.keys("Tab", *(["Down"] * row), "Enter")
        card = tmux.wait_for("stack, innermost last", "→ time.sleep")
        # "loop blocked 0.40s by reporter (Task-4) in sync_db_query app.py:19 → time.sleep"
        # (the sentence may wrap in the card: its parts are checked)
        for part in ("loop blocked", "by reporter", "(Task-", "sync_db_query", "app.py:"):
            assert part in card, (part, card)
        assert "{'" not in card and "[{" not in card  # words, not reprs
        tmux.keys("Escape")
        # (a key right after Escape would read as Alt+key: wait for the card to close)
        wait_until(lambda: "stack, innermost last" not in tmux.screen(), message="card closed")
        tmux.keys("p")  # live again
        tmux.wait_for("● live")
        tmux.keys("5")
        # the queue's row by the name the code binds it to (looked up once, then kept)
        tmux.wait_for("__main__.inbox", "largest backlog first")
        tmux.keys("Enter")  # the only queue: the cursor is on it
        # owners fill in as the agent samples get/put: the page follows the live updates
        page = tmux.wait_for("queue __main__.inbox", "CONSUMERS (get)", "PRODUCERS (put)",
                             "__main__.signal_gateway", "__main__.sensor")
        consumers, producers = page.split("CONSUMERS (get)", 1)[1].split("PRODUCERS (put)", 1)
        assert "__main__.signal_gateway" in consumers and "__main__.sensor" not in consumers, \
            page
        assert "__main__.sensor" in producers and "__main__.signal_gateway" not in producers
        tmux.keys("Escape")
        wait_until(lambda: "CONSUMERS (get)" not in tmux.screen(), message="queue page closed")
        tmux.keys("q")
        wait_until(lambda: "● live" not in tmux.screen(), message="top to quit")

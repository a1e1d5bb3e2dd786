"""Hostile task names render escaped and truncated with the layout intact; a target that exits
says so; the reconnect backoff grows and resets; a dead socket or a refusal ends the stream
with its reason instead of retrying forever."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from textual.widgets import Tree

from introspect.tui.app import IntrospectApp
from introspect.tui.state.connection import (
    Connected,
    Disconnected,
    Refused,
    TargetExited,
    tui_backoff,
)
from introspect.tui.views.task_detail import TaskDetailScreen
from introspect.tui.views.tasks import TasksView
from tests.attach.support import CONTROL_TOKEN, start_host, tcp_target
from tests.tui.support import fixture_process, poll, poll_text, run, screen_text

WIDTH, HEIGHT = 100, 30


def _assert_layout(text: str) -> None:
    lines = text.splitlines()
    assert len(lines) == HEIGHT, "a name must not add lines"
    assert all(len(line) <= WIDTH for line in lines)
    assert "\x1b" not in text and "\x07" not in text
    assert "xxxxxxxxxx" * 10 not in text, "10 kB of name must be truncated"


def test_hostile_task_name_is_escaped_and_truncated() -> None:
    with fixture_process() as proc:
        proc.wait_for_line("ready")

        async def scenario() -> None:
            app = IntrospectApp(target=str(proc.pid), interval=0.5, initial_view="tasks")
            async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
                view = app.query_one(TasksView)
                await pilot.press("slash", *"RED", "enter")
                await poll(pilot, lambda: view.page and view.page.matched == 1, "hostile row")
                text = await poll_text(pilot, "\\x1b[31mRED")
                _assert_layout(text)
                assert text.splitlines()[0].startswith(" vm") or "pid" in text.splitlines()[0]
                await pilot.press("enter")
                await poll(pilot, lambda: isinstance(app.screen, TaskDetailScreen), "page")
                text = await poll_text(pilot, "AWAIT CHAIN")
                _assert_layout(text)
                assert "\\x1b[31mRED" in text and "\\x0anl" in text, text
                assert "[bold]markup[/bold]" in text  # Rich markup shown, not interpreted
                await pilot.press("escape")
                await pilot.press("4")
                await poll_text(pilot, "__main__.idle ×2")  # siblings of one kind: one row
                tree = app.query_one("#task-tree", Tree)
                main = tree.root.children[0]
                group = next(n for n in main.children if isinstance(n.data, tuple))
                group.expand()  # the idle group opens on demand
                text = await poll_text(pilot, "\\x1b[31mRED")
                _assert_layout(text)

        run(scenario())


def test_target_exit_is_reported() -> None:
    with fixture_process(seconds=2) as proc:
        proc.wait_for_line("ready")

        async def scenario() -> None:
            app = IntrospectApp(target=str(proc.pid), interval=0.3)
            async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
                await poll_text(pilot, "● live")
                await poll(pilot, lambda: isinstance(app.connection, TargetExited), "exit")
                text = await poll_text(pilot, "target exited")
                assert "has exited" in text  # the banner
                assert f"pid {proc.pid}" in screen_text(app)  # the last data stays

        run(scenario())


def test_backoff_grows_to_a_cap_and_resets() -> None:
    backoff = tui_backoff()
    assert [backoff.next() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    backoff.reset()
    assert backoff.next() == 0.5


def _last_line(stderr: str) -> str:
    """The last line the user reads (Textual leaves its terminal resets before it)."""
    return re.sub(r"\x1b(\[[0-9;?<>=$]*[A-Za-z~]|\][^\x07\x1b]*(\x07|\x1b\\\\)|[>=<])", "",
                  stderr).strip().splitlines()[-1]


def test_top_on_a_dead_socket_exits_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "dead.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()
    done = subprocess.run([sys.executable, "-m", "introspect", "top", f"unix:{path}"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert _last_line(done.stderr) == (f"introspect: error: cannot connect to unix:{path}: "
                                       "connection refused (is the agent still running?)")


def test_a_refused_target_gets_a_final_banner_and_no_retry(tmp_path: Path) -> None:
    token_file = tmp_path / "control.token"
    token_file.write_text(CONTROL_TOKEN + "\n")
    with start_host(["--listen", "tcp://127.0.0.1:0", "--token-file", str(token_file)]) as proc:
        target = tcp_target(proc)

        async def scenario() -> None:
            app = IntrospectApp(token="not-the-token", interval=0.3)
            async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
                app.switch_target(target)  # as the nodes view does: the app stays up
                await poll(pilot, lambda: isinstance(app.connection, Refused), "refusal")
                text = await poll_text(pilot, "Not retrying")
                assert "wrong token" in text
                assert "✖ refused" in text.splitlines()[0]  # the header too, not only the banner
                # No retry: the stream's worker has ended (a retrying one stays running),
                # and the state is still the final refusal.
                await poll(pilot, lambda: not [w for w in app.workers
                                               if w.group == "live" and w.is_running],
                           "the stream to end")
                assert isinstance(app.connection, Refused) and app.failure is None

        run(scenario())


def test_a_restarted_target_is_picked_up_again(tmp_path: Path) -> None:
    address = f"unix:{tmp_path / 'service.sock'}"
    first = start_host(["--listen", address])
    second = None
    try:
        async def scenario() -> None:
            nonlocal second
            app = IntrospectApp(target=address, interval=0.2)
            async with app.run_test(size=(WIDTH, HEIGHT)) as pilot:
                await poll(pilot, lambda: app.model.snapshot is not None
                           and app.model.snapshot.node.pid == first.pid, "the first process")
                first.proc.send_signal(signal.SIGKILL)
                await poll(pilot, lambda: isinstance(app.connection, Disconnected), "the loss")
                await poll_text(pilot, "disconnected, retry")  # the header says so
                second = await asyncio.to_thread(start_host, ["--listen", address])
                await poll(pilot, lambda: app.model.snapshot.node.pid == second.pid,
                           "the restarted process", timeout=30)
                assert isinstance(app.connection, Connected)

        run(scenario())
    finally:
        first.__exit__(None, None, None)
        if second is not None:
            second.__exit__(None, None, None)

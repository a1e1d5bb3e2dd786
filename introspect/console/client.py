"""The client side of `introspect console`: a prompt with line editing and history (stdlib
readline), continuation prompts from the agent, Ctrl-C to cancel, Ctrl-D to leave.

The agent decides what is complete (it compiles), so the client only shows prompts and
output; everything the program sends is escaped before it reaches the terminal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from introspect.client.connection import Client, _raise_for
from introspect.errors import ConnectError
from introspect.protocol import framing
from introspect.protocol import messages as m
from introspect.textsafe import escape

INTERRUPT = "\x03"
END = "\x04"
HISTORY_LENGTH = 1000


def history_path() -> Path:
    override = os.environ.get("INTROSPECT_CONSOLE_HISTORY")
    if override:
        return Path(override)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "introspect" / "console_history"


def escape_output(text: str) -> str:
    """Keep line breaks; show every other control character instead of obeying it."""
    return "\n".join(escape(part, limit=None) for part in text.split("\n"))


class ConsoleClient:
    """Drives one console session over a connected `Client`."""

    def __init__(self, client: Client, out: TextIO | None = None) -> None:
        self.client = client
        self.out = out or sys.stdout
        self._ids = iter(range(1, 1 << 62))
        self._receiving = False
        self._interrupt_pending = False
        self._interrupts_sent = 0

    # --- wire ----------------------------------------------------------------------------
    def _send(self, message: m.Request) -> int:
        message.id = next(self._ids)
        self.client._send(message)
        return message.id

    def _recv(self) -> m.Message:
        sock = self.client.sock
        assert sock is not None
        sock.settimeout(None)  # an evaluation may await for as long as the user wants
        try:
            data = framing.recv_frame_blocking(sock, framing.MAX_FRAME_TO_CLIENT)
        except (EOFError, framing.FrameError):
            raise ConnectError(f"{self.client.target}: the agent closed the console "
                               "(the program exited or the agent stopped)") from None
        except OSError as exc:
            raise ConnectError(f"{self.client.target}: connection lost "
                               f"({exc.strerror or exc})") from None
        return m.decode_agent_message(data)

    def wait_for_prompt(self, request_id: int) -> str | None:
        """Show output until the Ack of `request_id`; its prompt, or None once closed."""
        while True:
            if self._interrupt_pending:
                self._interrupt_pending = False
                request_id = self._send(m.ConsoleInput(data=INTERRUPT))
            self._receiving = True
            try:
                reply = self._recv()
            finally:
                self._receiving = False
            if isinstance(reply, m.ConsoleOutput):
                if reply.data:
                    self.out.write(escape_output(reply.data))
                    self.out.flush()
                if reply.closed:
                    return None
            elif isinstance(reply, m.Ack):
                if reply.id == request_id:
                    return escape(reply.detail, 20)
            else:
                _raise_for(reply, self.client.target)

    def open(self, width: int = 80, height: int = 24) -> str | None:
        return self.wait_for_prompt(self._send(m.ConsoleOpen(width=width, height=height)))

    def execute(self, line: str) -> str | None:
        return self.wait_for_prompt(self._send(m.ConsoleInput(data=line)))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._send(m.ConsoleInput(data=END))

    # --- Ctrl-C while code runs ----------------------------------------------------------
    def _on_sigint(self, _signum: int, _frame: Any) -> None:
        """First Ctrl-C: ask the agent to cancel. Second: leave the console."""
        self._interrupts_sent += 1
        if self._interrupts_sent > 1:
            raise KeyboardInterrupt
        if self._receiving:  # blocked in recv: no frame of ours is half-sent
            self._send(m.ConsoleInput(data=INTERRUPT))
        else:
            self._interrupt_pending = True

    def run_line(self, line: str) -> str | None:
        self._interrupts_sent = 0
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            return self.execute(line)
        finally:
            signal.signal(signal.SIGINT, previous)

    # --- the interactive loop ------------------------------------------------------------
    def interact(self) -> int:
        size = os.get_terminal_size() if self.out.isatty() else os.terminal_size((80, 24))
        prompt = self.open(size.columns, size.lines)
        readline = _setup_readline()
        try:
            while prompt is not None:
                try:
                    line = input(prompt)
                except EOFError:  # Ctrl-D
                    self.out.write("\n")
                    self.close()
                    return 0
                except KeyboardInterrupt:  # Ctrl-C at the prompt: drop the pending block
                    self.out.write("\n")
                    prompt = self.execute(INTERRUPT)
                    continue
                try:
                    prompt = self.run_line(line)
                except KeyboardInterrupt:
                    self.out.write("\nleft the console; code still running in the program "
                                   "was asked to cancel\n")
                    return 130
            return 0
        finally:
            _save_history(readline)


def _setup_readline() -> Any:
    try:
        import readline
    except ImportError:  # no line editing on this platform: input() still works
        return None
    readline.parse_and_bind("tab: tab-insert")  # indent blocks; names live in the program
    readline.set_history_length(HISTORY_LENGTH)
    with contextlib.suppress(OSError):
        readline.read_history_file(history_path())
    return readline


def _save_history(readline: Any) -> None:
    if readline is None:
        return
    path = history_path()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        readline.write_history_file(path)
        path.chmod(0o600)  # lines typed in production consoles may hold secrets

"""One console session on an agent connection (runs on the agent's server loop).

Protocol, after `ConsoleOpen` (see introspect.protocol.messages):
    agent  → ConsoleOutput(data)*, Ack(id=open.id, detail=PROMPT)
    client → ConsoleInput(id=N, data=LINE)          one line (or several, like a paste)
    agent  → ConsoleOutput(data)*, Ack(id=N, detail=PROMPT)   PROMPT is ">>> " or "... "
    client → ConsoleInput(data="\\x03")              Ctrl-C: cancel the evaluation / the block
    client → ConsoleInput(data="\\x04")              Ctrl-D: leave (agent → ConsoleOutput(closed))
Output arrives while code runs; the Ack says the input is done and gives the next prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import traceback
from collections import deque
from typing import TYPE_CHECKING, Any

import msgspec

from introspect.agent.console import evaluate
from introspect.agent.console.output import OutputSink
from introspect.protocol import framing
from introspect.protocol import messages as m

if TYPE_CHECKING:
    from introspect.agent.console.bridge import ConsoleExtension
    from introspect.agent.server import AgentServer
    from introspect.agent.server.handshake import Session

INTERRUPT = "\x03"
END = "\x04"
PS1 = ">>> "
PS2 = "... "
MAX_QUEUED_INPUTS = 64
CANCEL_GRACE = 0.5  # seconds for cancelled code to finish before the prompt comes back
BLOCKED_NOTE_AFTER = 1.0  # seconds of a blocked loop before we warn that code will wait


class ConsoleSession:
    def __init__(self, extension: ConsoleExtension, server: AgentServer, session: Session,
                 request: m.ConsoleOpen, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.extension = extension
        self.server = server
        self.session = session
        self.request = request
        self.reader = reader
        self.writer = writer
        self.buffer = evaluate.SourceBuffer()
        self.namespace = extension.namespace()
        self.generation = 0  # bumped by each Ctrl-C: inputs received before it are dropped
        self.current: evaluate.Evaluation | None = None
        self._interrupted_evaluation = False
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._interrupt = asyncio.Event()
        # A deque, not an asyncio.Queue: the agent's queue discovery would list ours.
        self._inputs: deque[tuple[int, m.ConsoleInput]] = deque()
        self._input_ready = asyncio.Event()
        self.sink = OutputSink(lambda: _call_soon(loop, self._wake.set))
        pump = asyncio.ensure_future(self._pump())
        worker = asyncio.ensure_future(self._work())
        try:
            await self._send(m.ConsoleOutput(data=self.extension.banner(self.namespace)))
            await self._send(m.Ack(id=self.request.id, detail=PS1))
            await self._read()
        finally:
            self.sink.closed = True
            if self.current is not None:  # the client left: don't leave its code running
                self.current.interrupt()
            for task in (worker, pump):
                task.cancel()
            for task in (worker, pump):
                with contextlib.suppress(BaseException):
                    await task
            self._audit("console_close", "ok")

    # --- reading -------------------------------------------------------------------------
    async def _read(self) -> None:
        while True:
            try:
                data = await framing.read_frame(self.reader, framing.MAX_FRAME_TO_AGENT)
            except (EOFError, ConnectionError, framing.FrameError):
                return
            try:
                msg = m.decode_client_message(data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                await self._send(m.ErrorReply(code="bad_request", message=str(exc)[:300]))
                continue
            if not isinstance(msg, m.ConsoleInput):
                await self._send(m.ErrorReply(id=getattr(msg, "id", 0), code="bad_request",
                                              message="a console session accepts only "
                                                      "console input"))
                continue
            if msg.data == END:
                await self._send(m.ConsoleOutput(id=msg.id, data="", closed=True))
                return
            if msg.data == INTERRUPT:
                self.generation += 1
                self._interrupt.set()
            elif len(self._inputs) >= MAX_QUEUED_INPUTS:
                await self._send(m.ErrorReply(id=msg.id, code="unavailable",
                                              message="too many inputs waiting"))
                continue
            else:
                for line in msg.data.split("\n"):  # whole: what runs is what is logged
                    self.server.audit.record_text("console_input", "ok", self.session.peer,
                                                  self.session.role, "line", line)
            self._inputs.append((self.generation, msg))
            self._input_ready.set()

    # --- evaluating ----------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            while not self._inputs:
                self._input_ready.clear()
                await self._input_ready.wait()
            generation, msg = self._inputs.popleft()
            if msg.data == INTERRUPT:
                if not self._interrupted_evaluation:  # at the prompt: say what happened
                    self.sink.write("KeyboardInterrupt\n")
                self._interrupted_evaluation = False
                self.buffer.reset()
            else:
                for line in msg.data.split("\n"):
                    if generation != self.generation:
                        break  # Ctrl-C arrived after this input: drop the rest of it
                    await self._push(line, generation)
            await self._flush()
            await self._send(m.Ack(id=msg.id, detail=PS2 if self.buffer.continuing else PS1))

    async def _push(self, line: str, generation: int) -> None:
        try:
            compiled = self.buffer.push(line)
        except (SyntaxError, ValueError, OverflowError) as exc:
            self.sink.write("".join(traceback.format_exception_only(type(exc), exc)))
            return
        if compiled is not None:
            await self._evaluate(compiled, generation)

    async def _evaluate(self, compiled: evaluate.Compiled, generation: int) -> None:
        if generation != self.generation:
            return
        self._interrupt.clear()  # no await since the check: a Ctrl-C can't slip in between
        loop = self.extension.target_loop()
        blocked = self.extension.agent.loop_probe.blocked_for() \
            if loop is self.extension.agent.loop else 0.0
        if blocked >= BLOCKED_NOTE_AFTER:
            self.sink.write(f"[introspect: the program's event loop has been blocked for "
                            f"{blocked:.1f} s; this runs when it frees up (Ctrl-C gives up)]\n")
        evaluation = evaluate.submit(loop, compiled, self.namespace, self.sink)
        self.current = evaluation
        finished = asyncio.wrap_future(evaluation.finished)
        interrupted = asyncio.ensure_future(self._interrupt.wait())
        try:
            await asyncio.wait([finished, interrupted], return_when=asyncio.FIRST_COMPLETED,
                               timeout=self.extension.agent.config.console_time_limit or None)
            if not finished.done():
                self._interrupted_evaluation = True  # the evaluation reports it itself
                evaluation.interrupt(evaluate.ConsoleInterrupt if interrupted.done()
                                     else evaluate.ConsoleTimeLimit)
                await asyncio.wait([finished], timeout=CANCEL_GRACE)
                if not finished.done():
                    self.sink.write(
                        "KeyboardInterrupt: asked to stop, but the code is inside a call that "
                        "can't be interrupted (a blocking C call such as time.sleep): it keeps "
                        "running in the program and its output will still arrive here\n")
        finally:
            interrupted.cancel()
            self.current = None

    # --- writing -------------------------------------------------------------------------
    async def _pump(self) -> None:
        """Send output while code runs (prints of a long evaluation show as they happen)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        async with self._send_lock:
            text = self.sink.take()
            if text:
                await self._send_unlocked(m.ConsoleOutput(data=text))

    async def _send(self, message: m.Message) -> None:
        async with self._send_lock:
            await self._send_unlocked(message)

    async def _send_unlocked(self, message: m.Message) -> None:
        self.writer.write(framing.pack(m.encode(message)))
        await self.writer.drain()

    def _audit(self, action: str, outcome: str, **detail: Any) -> None:
        self.server.audit.record(action, outcome, self.session.peer, self.session.role,
                                 **detail)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the agent's loop is closing
        loop.call_soon_threadsafe(callback)

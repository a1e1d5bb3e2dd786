"""Compile what the user typed (top-level `await` allowed) and run it on the app's loop.

The code runs in a task of the app's loop, so it sees the app's objects from the thread that
owns them. Nothing the user's code raises — not even SystemExit or KeyboardInterrupt — leaves
that task: it is printed to the console as a traceback, and the host carries on.

Code that never awaits (`while True: pass`) holds the app's loop, so cancelling its task can't
work: `Evaluation.interrupt()` then raises `ConsoleInterrupt` asynchronously in the loop's
thread — only while a step of this evaluation's own task is running there (`_StepGuard`), so it
can never land in the app's code.
"""

from __future__ import annotations

import ast
import asyncio
import codeop
import collections.abc
import concurrent.futures
import ctypes
import inspect
import itertools
import linecache
import threading
import traceback
from collections import deque
from dataclasses import dataclass
from types import CodeType
from typing import Any

from introspect.agent.console import output
from introspect.agent.console.output import EvaluationOutput, OutputSink, current_output

COMPILE_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
MAX_SOURCE_CHARS = 256 * 1024
MAX_REPR_CHARS = 100_000
_KEEP_SOURCES = 200  # console sources kept in linecache for tracebacks

_counter = itertools.count(1)
_sources: deque[str] = deque()


class ConsoleInterrupt(BaseException):
    """Raised inside running console code by Ctrl-C or by the client leaving (a
    BaseException, so `except Exception` in the user's code does not swallow it)."""

    message = "KeyboardInterrupt: Ctrl-C stopped the running code"


class ConsoleTimeLimit(ConsoleInterrupt):
    """Raised inside console code that ran past the agent's console time limit."""

    message = "TimeoutError: the evaluation ran past the console time limit " \
        "(INTROSPECT_CONSOLE_TIME_LIMIT) and was stopped"


@dataclass
class Compiled:
    filename: str
    body: CodeType | None  # every statement but a final expression
    expr: CodeType | None  # a final expression, whose value is shown


class SourceBuffer:
    """Lines of one statement being typed; tells complete from incomplete like the REPL."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._compiler = codeop.CommandCompiler()
        self._compiler.compiler.flags |= COMPILE_FLAGS

    @property
    def continuing(self) -> bool:
        return bool(self.lines)

    def reset(self) -> None:
        self.lines = []

    def push(self, line: str) -> Compiled | None:
        """None while the statement is incomplete; raises SyntaxError (buffer reset) for
        invalid input; the compiled statement (buffer reset) once complete."""
        self.lines.append(line)
        source = "\n".join(self.lines)
        if len(source) > MAX_SOURCE_CHARS:
            self.reset()
            raise SyntaxError(f"input longer than {MAX_SOURCE_CHARS} characters")
        try:
            complete = self._compiler(source, "<console>", "single")
        except (SyntaxError, ValueError, OverflowError):
            self.reset()
            raise
        if complete is None:
            return None
        self.reset()
        return compile_source(source)


def compile_source(source: str) -> Compiled:
    """Split off a final expression so its value can be shown (and awaited if needed)."""
    filename = f"<console#{next(_counter)}>"
    _remember(filename, source)
    tree = compile(source, filename, "exec", ast.PyCF_ONLY_AST | COMPILE_FLAGS)
    expr = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body.pop()
        expr = compile(ast.Expression(last.value), filename, "eval", COMPILE_FLAGS)
    body = compile(tree, filename, "exec", COMPILE_FLAGS) if tree.body else None
    return Compiled(filename, body, expr)


def _remember(filename: str, source: str) -> None:
    """Tracebacks show the console's own lines (bounded: old sources are forgotten)."""
    lines = [line + "\n" for line in source.splitlines()]
    linecache.cache[filename] = (len(source), None, lines, filename)
    _sources.append(filename)
    while len(_sources) > _KEEP_SOURCES:
        linecache.cache.pop(_sources.popleft(), None)


async def _run(code: CodeType, namespace: dict[str, Any]) -> Any:
    result = eval(code, namespace)  # a coroutine when the code has a top-level await
    if code.co_flags & inspect.CO_COROUTINE:
        result = await result
    return result


async def run_compiled(compiled: Compiled, namespace: dict[str, Any], sink: OutputSink) -> None:
    """The task that runs on the app's loop; it never raises."""
    out = EvaluationOutput(sink)
    current_output.set(out)  # this task's context (and its children's) only
    try:
        if compiled.body is not None:
            await _run(compiled.body, namespace)
        if compiled.expr is not None:
            value = await _run(compiled.expr, namespace)
            if value is not None:
                namespace["_"] = value
                out.write(_safe_repr(value) + "\n")
    except asyncio.CancelledError as exc:
        limited = exc.args == (ConsoleTimeLimit.message,)
        out.write((ConsoleTimeLimit.message if limited
                   else "KeyboardInterrupt: the evaluation was cancelled") + "\n")
    except ConsoleInterrupt as exc:
        out.write("".join(format_exception(exc).splitlines(keepends=True)[:-1])
                  + exc.message + "\n")
    except SystemExit as exc:
        out.write(f"SystemExit({exc.code!r}) ignored: the console never stops the program\n")
    except BaseException as exc:  # the host must never see the user's exception
        out.write(format_exception(exc))
    finally:
        out.active = False


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:
        return format_exception(exc).rstrip("\n")
    if len(text) > MAX_REPR_CHARS:
        text = text[:MAX_REPR_CHARS] + f"... [{len(text) - MAX_REPR_CHARS} more characters]"
    return text


def format_exception(exc: BaseException) -> str:
    """A traceback starting at the user's code (our own frames are dropped)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


class _StepGuard:
    """Whether a step of one evaluation's task is running on its loop's thread right now. The
    flag and the raising share a lock, and leaving a step clears any exception still pending,
    so an interrupt asked for at the very end of a step can't reach the code that runs next."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = False
        self._fired = False
        self._thread_id = 0

    def enter(self) -> None:
        self._thread_id = threading.get_ident()
        self._running = True

    def leave(self) -> None:
        with self._lock:
            self._running = False
            if self._fired:
                self._fired = False
                _set_async_exc(self._thread_id, None)

    def interrupt(self, exc_type: type[ConsoleInterrupt]) -> bool:
        with self._lock:
            if not self._running:
                return False
            self._fired = True
            _set_async_exc(self._thread_id, exc_type)
            return True


def _set_async_exc(thread_id: int, exc_type: type[BaseException] | None) -> None:
    """Raise `exc_type` in that thread at its next bytecode boundary (None: clear it)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type) if exc_type else None)


class _GuardedCoroutine(collections.abc.Coroutine):
    """The evaluation's coroutine, with each step marked in the guard while it runs."""

    def __init__(self, coro: collections.abc.Coroutine, guard: _StepGuard) -> None:
        self._coro = coro
        self._guard = guard

    def send(self, value: Any) -> Any:
        return self._step(self._coro.send, value)

    def throw(self, *args: Any) -> Any:
        return self._step(self._coro.throw, *args)

    def __next__(self) -> Any:  # how some Python versions' tasks resume a non-native coroutine
        return self.send(None)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Any:
        return self

    # what the agent's task views read (kind, location, await chain): the inner coroutine's
    cr_code = property(lambda self: self._coro.cr_code)
    cr_frame = property(lambda self: self._coro.cr_frame)
    cr_await = property(lambda self: self._coro.cr_await)
    cr_running = property(lambda self: self._coro.cr_running)

    def _step(self, method: Any, *args: Any) -> Any:
        guard = self._guard
        try:
            guard.enter()
            try:
                return method(*args)
            finally:
                guard.leave()
        except ConsoleInterrupt:  # landed in this bookkeeping, not in the user's code
            guard.leave()
            self._coro.close()
            raise StopIteration(None) from None


class Evaluation:
    """One evaluation scheduled on a loop; `finished` completes when its task has ended."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.finished: concurrent.futures.Future = concurrent.futures.Future()
        self._task: asyncio.Task | None = None
        self._cancelled = False
        self._guard = _StepGuard()

    def _start(self, compiled: Compiled, namespace: dict[str, Any], sink: OutputSink) -> None:
        if self._cancelled:  # interrupted before the loop got to it
            sink.write("KeyboardInterrupt: the evaluation was cancelled\n")
            self.finished.set_result(None)
            return
        coro = _GuardedCoroutine(run_compiled(compiled, namespace, sink), self._guard)
        try:
            self._task = self.loop.create_task(coro, name="introspect-console-eval")
        except Exception as exc:  # a closing loop, a failing custom task factory
            coro.close()
            sink.write(format_exception(exc))
            self.finished.set_result(None)
            return
        self._task.add_done_callback(lambda _task: self.finished.set_result(None))

    def cancel(self, message: str | None = None) -> None:
        """Ask for cancellation (from any thread): works where the code awaits."""
        try:
            self.loop.call_soon_threadsafe(self._cancel, message)
        except RuntimeError:  # the loop is closed: nothing runs any more
            if not self.finished.done():
                self.finished.set_result(None)

    def interrupt(self, exc_type: type[ConsoleInterrupt] = ConsoleInterrupt) -> None:
        """Stop it (from any thread): cancel it where it awaits; raise `exc_type` in it if
        it is running right now (code that never awaits). A blocking C call (time.sleep)
        still finishes first."""
        self.cancel(exc_type.message if exc_type is ConsoleTimeLimit else None)
        self._guard.interrupt(exc_type)

    def _cancel(self, message: str | None = None) -> None:
        self._cancelled = True
        if self._task is not None:
            self._task.cancel(message)


def submit(loop: asyncio.AbstractEventLoop, compiled: Compiled, namespace: dict[str, Any],
           sink: OutputSink) -> Evaluation:
    """Schedule the evaluation on `loop` (from any thread)."""
    evaluation = Evaluation(loop)
    output.acquire()  # until it ends, even if its session closes first
    evaluation.finished.add_done_callback(lambda _future: output.release())
    try:
        loop.call_soon_threadsafe(evaluation._start, compiled, namespace, sink)
    except RuntimeError:  # the loop closed under us
        evaluation.finished.set_result(None)
        raise
    return evaluation

"""Frame and coroutine helpers shared by the collectors: locations, await chains, stacks."""

from __future__ import annotations

import os
import types
from typing import Any

# The directory of os.py is sysconfig's "stdlib" path (in a venv too: the base install's),
# without importing sysconfig into the host at start.
_STDLIB = os.path.normcase(os.path.dirname(os.__file__)) + os.sep
_AGENT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def is_stdlib(filename: str) -> bool:
    return os.path.normcase(filename).startswith(_STDLIB) and "site-packages" not in filename


def is_agent(filename: str) -> bool:
    return filename.startswith(_AGENT_DIR)


_STDLIB_CODE: dict[types.CodeType, bool] = {}  # is_stdlib per code object (bounded below)
_CORO, _GEN = types.CoroutineType, types.GeneratorType


def user_location(coro: Any, limit: int = 64) -> str:
    """The innermost non-stdlib frame of a coroutine's await chain, as `file:line function`
    (the outermost frame if every frame is stdlib): `where()`'s location without the rest,
    for filters and sorts over 100k tasks. Plain coroutines/generators are read directly;
    anything else ends the walk."""
    found = first = None
    current = coro
    for _ in range(limit):
        kind = type(current)
        if kind is _CORO:
            frame, nxt = current.cr_frame, current.cr_await
        elif kind is _GEN:
            frame, nxt = current.gi_frame, current.gi_yieldfrom
        else:
            break
        if frame is None:
            break
        if first is None:
            first = frame
        code = frame.f_code
        std = _STDLIB_CODE.get(code)
        if std is None:
            if len(_STDLIB_CODE) > 50_000:
                _STDLIB_CODE.clear()
            std = _STDLIB_CODE[code] = is_stdlib(code.co_filename)
        if not std:
            found = frame
        current = nxt
    return frame_location(found or first)


def frame_location(frame: types.FrameType | None) -> str:
    if frame is None:
        return ""
    code = frame.f_code
    return f"{code.co_filename}:{frame.f_lineno} {code.co_name}"


def code_location(code: types.CodeType, line: int | None) -> str:
    return f"{code.co_filename}:{line if line is not None else code.co_firstlineno} {code.co_name}"


def coroutine_frame(obj: Any) -> types.FrameType | None:
    return getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None) \
        or getattr(obj, "ag_frame", None)


def coroutine_awaiting(obj: Any) -> Any:
    for attr in ("cr_await", "gi_yieldfrom", "ag_await"):
        inner = getattr(obj, attr, None)
        if inner is not None:
            return inner
    return None


def coroutine_chain(coro: Any, limit: int = 64) -> list[Any]:
    """The coroutine and everything it awaits, outermost first (coroutines/generators only)."""
    chain = []
    current = coro
    while current is not None and len(chain) < limit:
        chain.append(current)
        current = coroutine_awaiting(current)
        if current is not None and coroutine_frame(current) is None and not hasattr(
            current, "cr_await"
        ):
            chain.append(current)  # the non-coroutine awaitable at the bottom
            break
    return chain


def qualname_of(obj: Any) -> str:
    code = getattr(obj, "cr_code", None) or getattr(obj, "gi_code", None) \
        or getattr(obj, "ag_code", None)
    if code is not None:
        return code.co_qualname
    return type(obj).__qualname__


def describe_awaitable(obj: Any) -> str:
    """A short, safe description of what sits at the bottom of an await chain."""
    name = type(obj).__name__
    try:
        if hasattr(obj, "done") and hasattr(obj, "_state"):
            state = getattr(obj, "_state", "")
            return f"{name} {str(state).lower()}"
    except Exception:
        pass
    return name


def stack_of_frame(frame: types.FrameType | None, limit: int = 128) -> list[tuple[str, str, int]]:
    """(function, file, line) from outermost to innermost."""
    out = []
    while frame is not None and len(out) < limit:
        out.append((frame.f_code.co_name, frame.f_code.co_filename, frame.f_lineno))
        frame = frame.f_back
    out.reverse()
    return out


def first_user_frame(frames: list[tuple[str, str, int]]) -> tuple[str, str, int] | None:
    """The innermost frame that is neither stdlib nor the agent."""
    for item in reversed(frames):
        if not is_stdlib(item[1]) and not is_agent(item[1]):
            return item
    return frames[-1] if frames else None

"""Runtime lints: pluggable checks with `check` / `describe`, each can be disabled, every
finding counted (`counts()`) and shown as a `lint` event. See docs/blocking.md."""

from __future__ import annotations

from introspect.agent.lints.base import Finding, Lint, LintRegistry
from introspect.agent.lints.event_lints import (
    CoroutineNeverAwaited,
    ExceptionNeverRetrieved,
    LoopBlocked,
    TaskNeverYields,
)
from introspect.agent.lints.growth_lints import (
    ExecutorSaturated,
    SelfWakingBusyLoop,
    TaskKindLeak,
    UnboundedQueueGrowing,
)

__all__ = ["Finding", "Lint", "LintRegistry", "default_lints"]


def default_lints() -> list[Lint]:
    return [LoopBlocked(), TaskNeverYields(), SelfWakingBusyLoop(), ExceptionNeverRetrieved(),
            CoroutineNeverAwaited(), TaskKindLeak(), UnboundedQueueGrowing(),
            ExecutorSaturated()]

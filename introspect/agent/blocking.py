"""Blocking calls caught red-handed: a watchdog thread sees the loop thread's stack *while* a
step holds the loop, names the task or callback that holds it, and reports the block while it
is still going on (the event is updated in place until the loop comes back).

How a block is measured: the loop's selector is wrapped on the loop instance so each return
from `select()` is time-stamped; the loop is "busy" from that moment until it enters `select()`
again. Busy longer than the threshold = blocked, with an exact duration. Under uvloop (no
Python selector) the lag probe's "overdue" time is used instead: events still fire, a block is
timed from the probe's due time to its next run, short by up to the probe's interval.
Why a thread works at all (FINDINGS.md): while the loop thread runs Python code or sleeps in
C, the watchdog gets the GIL within ~5 ms; a C call that holds the GIL (a long regex, a huge
`sorted`) can't be seen from inside until it returns — use `introspect dump` (py-spy) for
those.

The periodic duties (lints, samples of waits, history and queue waiters, queue-call windows)
are the loop thread's, on the lag probe's beat: a thread that asks a saturated loop for the
GIL waits for it for up to seconds (the loop lets it go only in `select(0)`, ~1 µs, and
takes it back first), and every release meanwhile wakes that thread in vain, ~1,400 times a
second on workload A: measured, a thread wanting the GIL costs such a loop ~5 % of its CPU.
The watchdog does the duties itself only when the loop is LOOP_DUTY_GRACE late with them
(blocked, not running; then on time, the loop's beat winning them back as soon as it runs
again) or when no loop is attached.
"""

from __future__ import annotations

import asyncio
import linecache
import logging
import math
import os
import random
import sys
import threading
import time
import types
from typing import TYPE_CHECKING, Any

from introspect.agent import host_log
from introspect.agent.asyncio_facts import running_task
from introspect.agent.block_types import BlockingEvent, Frame, TaskRef, msgspec
from introspect.agent.busy import HeldTime
from introspect.agent.collectors import frames as fr
from introspect.agent.collectors.tasks import meta_of
from introspect.agent.history import History
from introspect.agent.lints import LintRegistry, default_lints
from introspect.agent.waits import WaitTracker
from introspect.agent.watch import (
    DEADLINE_MARGIN,
    MODE_EVERY,
    MODE_HELD,
    MODE_IDLE,
    NONE,
    ClockHandoff,
    SelectorClock,
    new_stamp,
    new_watch,
)

if TYPE_CHECKING:
    from introspect.agent.core import Agent

log = logging.getLogger("introspect.agent")
MAX_STACK = 64  # frames kept per event (innermost ones)
LINT_PERIOD = 1.0  # seconds between periodic lint checks
# The watchdog samples at random gaps of half to all of min(threshold, MAX_SAMPLE_GAP): under
# the threshold, so some wake-up falls inside every busy stretch before it becomes a block,
# and that wake-up schedules the next one for the moment it would cross the threshold.
MAX_SAMPLE_GAP = 0.1
MIN_SAMPLE_GAP = 0.005
LOOP_DUTY_GRACE = 1.0  # seconds the loop may be late with the duties before the watchdog
_EVENTS_PY = os.path.join("asyncio", "events.py")


def _callee_name(frame: types.FrameType) -> str | None:
    """The callable the frame is calling right now (`time.sleep`), from the call's source
    span; resolved through modules only, so no user code runs."""
    try:
        positions = list(frame.f_code.co_positions())[frame.f_lasti // 2]
        lineno, end_lineno, col, end_col = positions
        if lineno is None or col is None or lineno != end_lineno:
            return None
        text = linecache.getline(frame.f_code.co_filename, lineno)[col:end_col]
    except Exception:
        return None
    head = text.split("(", 1)[0].strip()
    if not head or "(" not in text or not all(p.isidentifier() for p in head.split(".")):
        return None
    parts = head.split(".")
    obj: Any = frame.f_globals.get(parts[0], frame.f_builtins.get(parts[0]))
    for part in parts[1:]:
        if not isinstance(obj, types.ModuleType | type):
            return head
        obj = obj.__dict__.get(part)
    if isinstance(obj, types.BuiltinFunctionType | types.BuiltinMethodType):
        module = getattr(obj, "__module__", None) or (parts[0] if len(parts) > 1 else "")
        return f"{module}.{obj.__qualname__}" if module else obj.__qualname__
    return head


def capture_stack(frame: types.FrameType | None, in_call: bool = True
                  ) -> tuple[list[Frame], str, str, str]:
    """(frames outermost first, culprit, location, callback) of the loop thread right now.
    `in_call`: the thread is waiting inside the call its innermost frame is making (it burns
    no CPU), so that callee — `time.sleep`, a socket read — is the culprit. Otherwise the
    thread runs Python code and was merely caught just after a call."""
    while frame is not None and frame.f_code.co_name == "_on_sigprof" and \
            fr.is_agent(frame.f_code.co_filename):
        frame = frame.f_back  # our busy-time sampler happened to be running: not the culprit
    stack = fr.stack_of_frame(frame, limit=256)
    frames = [Frame(function=f, file=file, line=line) for f, file, line in stack]
    culprit = ""
    if frame is not None:
        native = _callee_name(frame) if in_call else None
        if native is not None:
            culprit = native
            frames.append(Frame(function=native, file="<call>", line=0))
        else:
            culprit = frame.f_code.co_name
    user = fr.first_user_frame(stack)
    location = f"{user[1]}:{user[2]} {user[0]}" if user else ""
    callback = ""
    for i, (function, file, _line) in enumerate(stack):
        if function == "_run" and file.endswith(_EVENTS_PY) and i + 1 < len(stack):
            f2, file2, line2 = stack[i + 1]
            callback = f"{file2}:{line2} {f2}"
    return frames[-MAX_STACK:], culprit, location, callback


class _Block:
    __slots__ = ("event", "last_log", "since", "task")

    def __init__(self, since: float, task: Any, event: BlockingEvent) -> None:
        self.since = since
        self.task = task
        self.event = event
        self.last_log = time.monotonic()


class BlockingDetector:
    """`agent.blocking`: `blocks_total`, `blocked_seconds_total`, `lints`, `waits`, `held`,
    `history`."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.threshold = float(agent.config.block_threshold)
        # Mean wake-up period of the watchdog: each wake-up takes the GIL from a busy loop
        # (two context switches on the loop's critical path), so it wakes as little as
        # detection allows; gaps stay shorter than the threshold (see `sample_gap`).
        self.poll = max(MIN_SAMPLE_GAP, min(MAX_SAMPLE_GAP, self.threshold))
        # While a block goes on, the watchdog looks more often: its end is taken from the
        # loop's next entry into select(), which a later look could only see overwritten.
        self.block_poll = max(MIN_SAMPLE_GAP, min(0.025, self.threshold / 4))
        self.blocks_total = 0
        self._finished_seconds = 0.0
        self._clock: SelectorClock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clocks = ClockHandoff()  # clocks installed by the thread that attached a loop
        self._current: _Block | None = None
        # Loop attached by `start()` from one of its callbacks: when the app's part of that
        # busy stretch began (the first look after start() returned), None before.
        self._app_since: float | None = None
        # Sleeps between looks and makes those that need no Python (`_watchdog_accel`). It
        # holds the state looks share: the last sample's wall time and loop-thread CPU
        # (`last_tick`, `held_cpu`), and the last busy look's (`seen_wall`, `seen_cpu`).
        self._watch = new_watch(self.poll, self.threshold)
        self._stopped = False
        self._next_lints = 0.0
        # The duties (`_duties`): next due at `_duties_due`, done by the loop thread on the
        # lag probe's beat; `_watchdog_due` (read by the C wait at each wake-up) is when the
        # watchdog does them instead. One thread at a time: `_duty_lock`, never waited for.
        self._duties_due = 0.0
        self._watchdog_due = new_stamp()
        self._duty_lock = threading.Lock()
        self._last_pass_on_loop = True  # who made the last pass: the loop first, when attached
        self.duties_on_loop = 0  # passes made by each thread (tests, benchmarks)
        self.duties_by_watchdog = 0
        self._cpu_clock: int | None = None
        self.lints = LintRegistry(agent, default_lints())
        self.lints.configure(agent.config.lints)  # INTROSPECT_LINTS is read by config.from_env
        self.waits = WaitTracker()  # first-seen times of waiting tasks (see waits.py)
        self.history = History()  # the recent past for clients that attach later
        self.held = HeldTime(lambda: agent.tasks.registry, lambda: agent.sampler)  # see busy.py
        self._thread = threading.Thread(target=self._run, name="introspect-watchdog",
                                        daemon=True)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> BlockingDetector:
        self.lints.install()
        self.agent.loop_probe.on_attach.append(self._prepare)
        self.agent.loop_probe.on_beat.append(self._duties_on_beat)
        self._prepare(self.agent.loop)  # attached before we existed: `start()` in the loop
        self._schedule_duties()
        self.start_thread()
        return self

    def _prepare(self, loop: asyncio.AbstractEventLoop | None) -> None:
        try:
            if loop is not None and not self._stopped and loop is not self._loop:
                self._clocks.prepare(loop)
            self._last_pass_on_loop = True
            self._schedule_duties()  # a loop now: its beat does them
        except Exception as exc:
            self.agent.collector_errors.record("blocking", exc)

    def after_fork_in_child(self) -> None:
        """Threads do not survive fork(2): a forked worker (gunicorn) gets a watchdog of its
        own. A block the parent was in is not the child's."""
        if self._stopped or self._thread.ident is None:
            return  # stopped, or never started
        # A new wait: the parent's may have been inside it, its lock held, at the fork.
        self._watch = new_watch(self.poll, self.threshold)
        self._duty_lock = threading.Lock()  # likewise: the parent's watchdog may have held it
        self._clocks.after_fork_in_child()
        self._current = None
        self._cpu_clock = None  # the parent's main thread clock id is not this process's
        self._thread = threading.Thread(target=self._run, name="introspect-watchdog",
                                        daemon=True)
        self.start_thread()

    def start_thread(self) -> None:
        self._thread.start()
        if self._thread.ident is not None:
            self.agent.agent_thread_ids.add(self._thread.ident)

    def stop(self) -> None:
        self._stopped = True
        for hooks, hook in ((self.agent.loop_probe.on_attach, self._prepare),
                            (self.agent.loop_probe.on_beat, self._duties_on_beat)):
            try:
                hooks.remove(hook)
            except ValueError:
                pass
        self._watch.stop()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        self._clocks.discard()
        if self._clock is not None:
            self._clock.uninstall()
            self._clock = None
        self.lints.uninstall()

    def limitations(self, loop: asyncio.AbstractEventLoop) -> list[str]:
        """What blocking detection can't do for `loop`, in words a user reads."""
        no_selector = getattr(loop, "_selector", None) is None  # uvloop & co: nothing to wrap
        if no_selector or (self._loop is loop and self._clock is None):
            name = f"{type(loop).__module__}.{type(loop).__qualname__}"
            interval = self.agent.loop_probe.interval
            return [f"blocking: durations are lower bounds, short by up to the lag probe's "
                    f"interval ({interval:g}s): {name} has no Python selector to time-stamp, "
                    "so a block is timed from when the probe was due, not from when it began; "
                    "the culprit's stack is still captured"]
        return []

    @property
    def blocked_seconds_total(self) -> float:
        """Finished blocks plus the one going on now: the counter rises during a long block."""
        block = self._current
        ongoing = block.event.duration if block is not None else 0.0
        return self._finished_seconds + ongoing

    # --- the watchdog ------------------------------------------------------------------------
    def sample_gap(self) -> float:
        """Seconds to the next sampling wake-up: random (held time is sampled there, and a
        fixed period would alias with periodic work in the app), under the threshold."""
        return self.poll * (0.5 + 0.5 * random.random())

    def _run(self) -> None:
        watch = self._watch
        next_sample = time.monotonic() + self.sample_gap()
        deadline: float | None = None  # a look the loop's state asks for (see `_tick`)
        while True:
            stopped, now, sample, next_sample = watch.wait(
                self._stamps(), next_sample, deadline, self._watchdog_due, self._wait_mode())
            if stopped:
                return
            try:
                deadline = self._tick(now, sample)
            except Exception as exc:
                deadline = None
                self.agent.collector_errors.record("blocking", exc)
            if now >= self._watchdog_due.value:  # the loop is late with them, or there is none
                self._run_duties(now, on_loop=False)

    def _stamps(self) -> Any:
        """What the C wait reads `busy_since` from: the selector clock's stamps, else the lag
        probe's due time (as `busy_since` does)."""
        clock = self._clock
        if clock is not None:
            return clock.native
        return self.agent.loop_probe.due

    def _wait_mode(self) -> int:
        """Which looks the C wait may make without Python: none while a block goes on (each
        look updates the event) or start() runs on the loop; idle ones only when held time
        needs every busy sample (no busy sampler counting the CPU part)."""
        if self._current is not None or self.agent.loop_probe.due_at_attach:
            return MODE_EVERY  # (the latter: see `busy_since`, a short while at start-up)
        sampler = self.agent.sampler
        return MODE_HELD if sampler is not None and sampler.active else MODE_IDLE

    def _duties_on_beat(self) -> None:
        """The lag probe's beat (loop thread, 10 a second): the duties when they are due."""
        now = time.monotonic()
        if now >= self._duties_due:
            self._run_duties(now, on_loop=True)

    def _run_duties(self, now: float, on_loop: bool) -> None:
        if not self._duty_lock.acquire(blocking=False):
            return  # the other thread is doing them right now
        try:
            if on_loop:
                self.duties_on_loop += 1
            else:
                self.duties_by_watchdog += 1
            self._last_pass_on_loop = on_loop
            self._duties(now)
        finally:
            self._duty_lock.release()
            self._schedule_duties()

    def _schedule_duties(self) -> None:
        """When the duties are next due: the once-a-second ones, and the opening of a
        queue-call window (one past its time closes at its next sampled call or here). The
        watchdog's turn comes LOOP_DUTY_GRACE later when a loop is attached and made the last
        pass; two beats later when the watchdog made it (the loop was blocked: the pass
        after the block is the loop's again); at once when no loop is attached."""
        calls = self.agent.queues.queue_calls
        due = self._next_lints
        if calls is not None:
            due = min(due, calls.next_due())
        self._duties_due = due
        probe = self.agent.loop_probe
        grace = 0.0 if probe.loop is None else \
            LOOP_DUTY_GRACE if self._last_pass_on_loop else 2.0 * probe.interval
        self._watchdog_due.set(max(due, 1e-9) + grace)  # 0.0 would mean "not armed"

    def _duties(self, now: float) -> None:
        calls = self.agent.queues.queue_calls
        if calls is not None:  # open or close a window of queue get/put sampling
            try:
                calls.tick(now)
            except Exception as exc:
                self.agent.collector_errors.record("queues", exc)
        if now < self._next_lints:
            return
        self._next_lints = now + LINT_PERIOD
        self.lints.run_periodic(now)
        try:
            self.waits.maybe_sample(self.agent, now)
        except Exception as exc:
            self.agent.collector_errors.record("stuck", exc)
        try:
            self.history.maybe_sample(self.agent, now)
        except Exception as exc:
            self.agent.collector_errors.record("history", exc)
        owners = self.agent.queues.owners
        try:
            if owners is not None:
                owners.sample_waiters(self.agent, now)
        except Exception as exc:
            self.agent.collector_errors.record("queues", exc)

    def _follow_loop(self) -> asyncio.AbstractEventLoop | None:
        loop = self.agent.loop
        if loop is not self._loop:
            if self._clock is not None:
                self._clock.uninstall()
            self._loop, self._clock, self._current, self._app_since = loop, None, None, None
            self._cpu_clock = None
            self._watch.set_cpu_clock(None)
            self._watch.seen_wall = self._watch.seen_cpu = NONE
            if loop is not None:
                self._clock = self._clocks.adopt(loop)
        return loop

    def busy_since(self, now: float) -> float | None:
        """Since when the loop has been running callbacks without polling I/O; None = idle."""
        clock = self._clock
        if clock is not None:
            entered, returned, in_select = clock.stamps()
            if returned or entered:  # entered, never returned: in its first select()
                return None if in_select else returned
        # uvloop & co, or a loop not yet back in select() since the clock was installed (it
        # blocked right after `start()`): a lower bound
        probe = self.agent.loop_probe
        since = probe.overdue_since()
        if since is not None and probe.due_at_attach:
            # busy since `start()` attached it from one of its callbacks: start() itself is the
            # agent's time, not a block of the app's
            if self._app_since is None:
                self._app_since = self.agent.start_returned_at  # None while start() runs
            return self._app_since
        return since

    def _tick(self, now: float, sample: bool = True) -> float | None:
        """One look at the loop; `sample`: a random wake-up, where held time is sampled (a
        wake-up timed by the loop's state would bias it). Returns when to look again besides
        the next sample, if at all: when the loop's current busy stretch would cross the
        threshold, or soon while a block goes on."""
        watch = self._watch
        loop = self._follow_loop()
        if loop is None or not loop.is_running():
            watch.last_tick = watch.held_cpu = NONE
            return None
        since = self.busy_since(now)
        cpu = self._loop_cpu(now)
        if sample:
            last, watch.last_tick = watch.last_tick, now
            cpu_before = _pair(last, watch.held_cpu)
            watch.held_cpu = NONE if cpu is None else cpu[1]
            if since is not None and not math.isnan(last):
                # A wall-clock sample: the time since the previous one goes to the task
                # holding the loop now. When the CPU sampler runs, it already counts the CPU
                # part (and without the bias a thread has here: a spinning loop thread holds
                # the GIL, so our wake-ups land late, after the step): only the off-CPU part
                # is added here.
                held = now - last
                sampler = self.agent.sampler
                if sampler is not None and sampler.active and cpu_before is not None and \
                        cpu is not None:
                    held = max(0.0, held - (cpu[1] - cpu_before[1]))
                self.held.add(running_task(loop), held, now)
        previous_cpu = _pair(watch.seen_wall, watch.seen_cpu)
        watch.seen_wall, watch.seen_cpu = cpu if since is not None and cpu is not None \
            else (NONE, NONE)
        block = self._current
        if block is not None:
            if since is not None and since == block.since:
                self._update(block, loop, now)
                return now + self.block_poll * (0.5 + random.random())
            self._finish(block, now)
        if since is None:  # idle; or in start(), which we see end from soon after
            return now + self.block_poll if self.agent.loop_probe.due_at_attach else None
        if now - since >= self.threshold:
            self._begin(loop, since, now, _cpu_share(previous_cpu, cpu))
            return now + self.block_poll * (0.5 + random.random())
        return since + self.threshold + DEADLINE_MARGIN

    def _loop_cpu(self, now: float) -> tuple[float, float] | None:
        """(now, CPU seconds of the loop thread): a thread inside a blocking call burns none."""
        if self._cpu_clock is None:
            thread_id = self.agent.loop_probe.thread_id
            try:
                self._cpu_clock = time.pthread_getcpuclockid(thread_id)  # type: ignore[arg-type]
            except (AttributeError, OSError, TypeError, OverflowError):
                return None
            self._watch.set_cpu_clock(self._cpu_clock)
        try:
            return now, time.clock_gettime(self._cpu_clock)
        except OSError:
            self._cpu_clock = None
            self._watch.set_cpu_clock(None)
            return None

    def _begin(self, loop: asyncio.AbstractEventLoop, since: float, now: float,
               cpu_share: float | None) -> None:
        thread_id = self.agent.loop_probe.thread_id
        frame = sys._current_frames().get(thread_id) if thread_id is not None else None
        in_call = cpu_share is None or cpu_share < 0.05  # ~0 in a sleep or read
        stack, culprit, location, callback = capture_stack(frame, in_call)
        task = running_task(loop)
        clock = self._clock  # exact: `since` is a return from select() it stamped
        event = BlockingEvent(
            time=time.time(), duration=round(now - since, 6), ongoing=True,
            task=_task_info(task, self.agent.tasks.kind_of),
            callback=None if task is not None else (callback or location),
            stack=stack, location=location, culprit=culprit, single_step=task is not None,
            threshold=self.threshold, exact=clock is not None and clock.stamps()[1] == since,
            loop_thread_cpu_share=None if cpu_share is None else round(cpu_share, 2))
        self.agent.events.add(event)
        self._current = _Block(since, task, event)
        self.blocks_total += 1
        who = _describe(event)
        host_log.report(self.agent, log, ("loop blocked", location or culprit),
                        "introspect: event loop blocked for %.3fs (still blocked) by %s in %s",
                        now - since, who, culprit or location, event=event)

    def _replace(self, block: _Block, **changes: Any) -> None:
        """A new event in the old one's place: a snapshot may be encoding the old one now."""
        event = msgspec.structs.replace(block.event, **changes)
        self.agent.events.replace(block.event, event)
        block.event = event

    def _update(self, block: _Block, loop: asyncio.AbstractEventLoop, now: float) -> None:
        single_step = block.event.single_step and \
            running_task(loop) is block.task
        self._replace(block, duration=round(now - block.since, 6), single_step=single_step)
        if now - block.last_log >= 10.0:
            block.last_log = now
            event = block.event
            host_log.report(self.agent, log, ("loop still blocked",
                                              event.location or event.culprit),
                            "introspect: event loop still blocked after %.1fs by %s",
                            now - block.since, _describe(event), event=event)

    def _finish(self, block: _Block, now: float) -> None:
        entered = self._clock.stamps()[0] if self._clock is not None else 0.0
        if entered >= block.since:
            end = entered  # the loop's next select()
        else:  # no selector clock: the lag probe's first run after the block, else this look
            due, ran = self.agent.loop_probe.last_run
            end = ran if due <= block.since <= ran <= now else now
        duration = round(max(end - block.since, 0.0), 6)
        self._replace(block, duration=duration, ongoing=False)
        event = block.event
        self._current = None
        self._finished_seconds += duration
        host_log.report(self.agent, log, ("loop was blocked", event.location or event.culprit),
                        "introspect: event loop was blocked for %.3fs by %s in %s", duration,
                        _describe(event), event.culprit or event.location, event=event)
        self.lints.observe("loop_blocked", event=event)
        self.lints.observe("task_never_yields", event=event)


def _pair(wall: float, cpu: float) -> tuple[float, float] | None:
    return None if math.isnan(wall) or math.isnan(cpu) else (wall, cpu)


def _cpu_share(before: tuple[float, float] | None, after: tuple[float, float] | None
               ) -> float | None:
    if before is None or after is None or after[0] - before[0] < 0.002:
        return None
    return (after[1] - before[1]) / (after[0] - before[0])


def _task_info(task: Any, kind_of: Any) -> TaskRef | None:
    if task is None:
        return None
    meta = meta_of(task)
    try:
        name = str(task.get_name())
    except Exception:
        name = "?"
    if meta is None:  # not adopted yet (the loop blocked right after start()): same kind
        return TaskRef(id=-id(task), name=name, kind=kind_of(task.get_coro()))
    return TaskRef(id=meta.seq, name=name, kind=meta.kind)


def _describe(event: BlockingEvent) -> str:
    task = event.task
    if task is not None:
        return f"task {task.name} #{task.id} ({task.kind})"
    return f"callback {event.callback or '?'}"

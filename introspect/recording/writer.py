"""Write an update stream to a recording file (see `format`)."""

from __future__ import annotations

import contextlib
import gzip
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import msgspec

from introspect.errors import UserError
from introspect.protocol import framing
from introspect.protocol import messages as m
from introspect.recording.format import (
    MAX_HISTORY_SAMPLES,
    RecordedHistory,
    RecordingEnd,
    RecordingHeader,
)

_encoder = msgspec.msgpack.Encoder()
MAX_PENDING_HISTORIES = 8  # history replies kept while waiting for the first full update


class RecordingWriter:
    """Appends frames to a gzip stream, flushed per frame so a killed recorder loses at most
    the frame it was writing."""

    def __init__(self, path: str | Path, header: RecordingHeader) -> None:
        self.path = Path(path)
        self._raw: BinaryIO = open(self.path, "wb")
        # mtime=0 keeps identical streams byte-identical (reproducible fixtures).
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=6, mtime=0)
        self.updates = 0
        self.raw_bytes = 0
        self.closed = False
        self._final_size = 0
        self._write_frame(_encoder.encode(header))

    def _write_frame(self, payload: bytes) -> None:
        self._gz.write(framing.pack(payload))
        self._gz.flush()  # Z_SYNC_FLUSH: everything so far is decodable from the file
        self.raw_bytes += framing.HEADER.size + len(payload)

    def write_update(self, update: m.Update) -> None:
        self._write_frame(m.encode(update))
        self.updates += 1

    def write_history(self, samples: list[m.HistorySample], arrived: float) -> None:
        """The agent's recent past, here in the stream (the newest `MAX_HISTORY_SAMPLES`)."""
        history = RecordedHistory(time=arrived, samples=samples[-MAX_HISTORY_SAMPLES:])
        self._write_frame(_encoder.encode(history))

    @property
    def bytes_written(self) -> int:
        """Compressed bytes on disk so far."""
        return self._final_size if self.closed else self._raw.tell()

    def close(self, reason: str = "closed") -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._write_frame(_encoder.encode(RecordingEnd(time=time.time(), reason=reason,
                                                           updates=self.updates)))
        finally:
            self._gz.close()
            self._final_size = self._raw.tell()
            self._raw.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Recorder:
    """Recording set-up, written once for `introspect top --record` and `introspect record`:
    the file and its header are created from the first full update (which names the node).
    History that arrives before it is written right after the header, before that update."""

    def __init__(self, path: str | Path, *, target: str, interval: float, top_tasks: int,
                 recorder: str) -> None:
        self.path = Path(path)
        self.target = target
        self.interval = interval
        self.top_tasks = top_tasks
        self.recorder = recorder
        self.writer: RecordingWriter | None = None
        # History replies received before the first full update (more than one only if the
        # connection dropped before its first update).
        self._pending: list[tuple[list[m.HistorySample], float]] = []

    def write(self, update: m.Update) -> RecordingWriter | None:
        """Record `update`; None while still waiting for the first full one."""
        if self.writer is None:
            if not update.full or update.snapshot is None:
                return None
            header = RecordingHeader(created=time.time(), target=self.target,
                                     interval=self.interval, top_tasks=self.top_tasks,
                                     node=update.snapshot.node, recorder=self.recorder)
            try:
                self.writer = RecordingWriter(self.path, header)
            except OSError as exc:
                raise UserError(f"cannot write {self.path}: {exc.strerror or exc}") from None
            pending, self._pending = self._pending, []
            for samples, arrived in pending:
                self._guarded(self.writer.write_history, samples, arrived)
        self._guarded(self.writer.write_update, update)
        return self.writer

    def write_history(self, samples: list[m.HistorySample]) -> None:
        """Record the agent's recent past where it arrived in the stream (none: nothing)."""
        if not samples:
            return
        arrived = time.time()
        if self.writer is None:
            if len(self._pending) < MAX_PENDING_HISTORIES:  # the first ones seeded the most
                self._pending.append((samples, arrived))
            return
        self._guarded(self.writer.write_history, samples, arrived)

    def _guarded(self, write: Callable[..., None], *args: object) -> None:
        try:
            write(*args)
        except OSError as exc:  # disk full, file system gone: one line, not a traceback
            raise UserError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def close(self, reason: str = "closed") -> None:
        if self.writer is not None:
            # A full disk can't take the end frame: the frames before it stay readable.
            with contextlib.suppress(OSError):
                self.writer.close(reason)

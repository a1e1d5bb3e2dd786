"""Write an update stream to a recording file (see `format`)."""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import BinaryIO

import msgspec

from introspect.errors import UserError
from introspect.protocol import framing
from introspect.protocol import messages as m
from introspect.recording.format import RecordingEnd, RecordingHeader

_encoder = msgspec.msgpack.Encoder()


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
    the file and its header are created from the first full update (which names the node)."""

    def __init__(self, path: str | Path, *, target: str, interval: float, top_tasks: int,
                 recorder: str) -> None:
        self.path = Path(path)
        self.target = target
        self.interval = interval
        self.top_tasks = top_tasks
        self.recorder = recorder
        self.writer: RecordingWriter | None = None

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
        self.writer.write_update(update)
        return self.writer

    def close(self, reason: str = "closed") -> None:
        if self.writer is not None:
            self.writer.close(reason)

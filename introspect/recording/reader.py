"""Read a recording back: the header, every update, and the merged snapshot at any point."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from introspect.errors import UserError
from introspect.protocol import framing
from introspect.protocol import messages as m
from introspect.recording.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MAX_FRAME,
    RecordingEnd,
    RecordingHeader,
)

_header_decoder = msgspec.msgpack.Decoder(RecordingHeader)
_frame_decoder = msgspec.msgpack.Decoder(m.Update | RecordingEnd)


@dataclass
class Recording:
    path: Path
    header: RecordingHeader
    updates: list[m.Update]
    # The snapshot as builtins after each update. Updates replace whole top-level sections,
    # so each entry is a shallow dict sharing unchanged sections with its neighbours.
    sections: list[dict[str, Any]] = field(default_factory=list)
    end: RecordingEnd | None = None
    truncated: bool = False

    @property
    def duration(self) -> float:
        return self.updates[-1].time - self.updates[0].time if self.updates else 0.0


def _read_all(path: Path) -> tuple[bytes, bool]:
    """The decompressed bytes, and whether the stream was cut short (a killed recorder)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read recording {path}: {exc.strerror or exc}") from None
    if raw[:2] != b"\x1f\x8b":
        raise UserError(f"{path} is not an introspect recording (not gzip)")
    decompressor = zlib.decompressobj(wbits=31)
    try:
        data = decompressor.decompress(raw)
    except zlib.error:
        # Corrupt tail: keep what decompressed cleanly up to the error.
        return _salvage(raw), True
    return data, not decompressor.eof


def _salvage(raw: bytes) -> bytes:
    out = bytearray()
    decompressor = zlib.decompressobj(wbits=31)
    for start in range(0, len(raw), 4096):
        try:
            out += decompressor.decompress(raw[start:start + 4096])
        except zlib.error:
            break
    return bytes(out)


def read_recording(path: str | Path) -> Recording:
    """Load a recording; a one-line `UserError` for anything that is not a valid one."""
    path = Path(path)
    data, truncated = _read_all(path)
    offset = 0
    frames: list[bytes] = []
    while offset + framing.HEADER.size <= len(data):
        (size,) = framing.HEADER.unpack_from(data, offset)
        if size > MAX_FRAME or offset + framing.HEADER.size + size > len(data):
            truncated = True
            break
        offset += framing.HEADER.size
        frames.append(data[offset:offset + size])
        offset += size
    if offset != len(data):
        truncated = True
    if not frames:
        raise UserError(f"{path} is empty or not an introspect recording")
    try:
        header = _header_decoder.decode(frames[0])
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise UserError(f"{path} is not an introspect recording (bad header)") from None
    if header.format != FORMAT_NAME:
        raise UserError(f"{path} is not an introspect recording ({header.format!r})")
    if header.version > FORMAT_VERSION:
        raise UserError(f"{path} is a version {header.version} recording; this introspect "
                        f"reads up to version {FORMAT_VERSION}")
    recording = Recording(path=path, header=header, updates=[], truncated=truncated)
    current: dict[str, Any] | None = None
    for payload in frames[1:]:
        try:
            frame = _frame_decoder.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            recording.truncated = True
            break
        if isinstance(frame, RecordingEnd):
            recording.end = frame
            break
        if frame.full and frame.snapshot is not None:
            current = msgspec.to_builtins(frame.snapshot)
        elif current is not None and frame.changed is not None:
            current = {**current, **m.changed_sections(frame)}
        else:
            continue  # a changed-only update before any full one cannot be applied
        recording.updates.append(frame)
        recording.sections.append(current)
    if not recording.updates:
        raise UserError(f"{path} holds no updates")
    return recording

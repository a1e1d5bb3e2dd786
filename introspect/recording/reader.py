"""Read a recording back: the header, every update, the merged snapshot at any point, and the
agent history the recorder received (with the update it followed).

A recording may come from anywhere (an incident ticket, a colleague), so the reader is built
for hostile files: it streams the gzip stream in small pieces, never holds more than one frame
decompressed, bounds each frame and the whole, checks every update's types once (a section
of the wrong type or nested too deeply is a one-line `UserError`, not a traceback in the TUI),
and keeps updates re-compressed; snapshots are decoded again when asked for.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import msgspec

from introspect.errors import UserError
from introspect.protocol import framing
from introspect.protocol import messages as m
from introspect.protocol.snapshot import Snapshot
from introspect.recording.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MAX_HISTORY_SAMPLES,
    RecordedHistory,
    RecordingEnd,
    RecordingHeader,
)

_header_decoder = msgspec.msgpack.Decoder(RecordingHeader)
_frame_decoder = msgspec.msgpack.Decoder(m.Update | RecordedHistory | RecordingEnd)
_update_decoder = msgspec.msgpack.Decoder(m.Update)
_history_decoder = msgspec.msgpack.Decoder(RecordedHistory)

READ_CHUNK = 64 * 1024  # compressed bytes read at a time
MAX_UPDATE_FRAME = 8 * 1024 * 1024  # decompressed; a full snapshot is ~10-500 KiB
MAX_DECOMPRESSED = 1024 * 1024 * 1024  # the whole file, decompressed
MAX_UPDATES = 500_000
CHECKPOINT_EVERY = 256  # merged snapshots kept, so a seek decodes at most this many frames
# A recorder writes one history frame per connection (`introspect top` only those that drew
# something): more are not from introspect, and are not loaded.
MAX_HISTORY_FRAMES = 1024
MAX_SAMPLE_KEYS = 100  # task kinds or queues per history sample (the agent keeps 20)
_SECTION_TYPES = {f.encode_name: f.type for f in msgspec.structs.fields(Snapshot)}


class _Frames:
    """Frames of the decompressed stream, one at a time, with bounded memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.truncated = False  # cut short or corrupt tail: what came before is kept
        self.total = 0

    def __iter__(self) -> Iterator[bytes]:
        pending = bytearray()
        for chunk in self._decompressed():
            pending += chunk
            while len(pending) >= framing.HEADER.size:
                (size,) = framing.HEADER.unpack_from(pending, 0)
                if size > MAX_UPDATE_FRAME:
                    raise UserError(f"{self.path}: a frame of {size} bytes (the limit is "
                                    f"{MAX_UPDATE_FRAME}): not a recording introspect wrote")
                end = framing.HEADER.size + size
                if len(pending) < end:
                    break
                frame = bytes(pending[framing.HEADER.size:end])
                del pending[:end]
                yield frame
        if pending:
            self.truncated = True

    def _decompressed(self) -> Iterator[bytes]:
        try:
            fh = self.path.open("rb")
        except OSError as exc:
            raise UserError(f"cannot read recording {self.path}: {exc.strerror or exc}") \
                from None
        with fh:
            if fh.read(2) != b"\x1f\x8b":
                raise UserError(f"{self.path} is not an introspect recording (not gzip)")
            fh.seek(0)
            decompressor = zlib.decompressobj(wbits=31)
            while not decompressor.eof:
                data = decompressor.unconsumed_tail or fh.read(READ_CHUNK)
                if not data:
                    self.truncated = True  # a killed recorder: no gzip trailer
                    return
                try:
                    out = decompressor.decompress(data, READ_CHUNK * 4)
                except zlib.error:
                    self.truncated = True  # corrupt tail: keep what came before
                    return
                self.total += len(out)
                if self.total > MAX_DECOMPRESSED:
                    raise UserError(f"{self.path} decompresses to more than "
                                    f"{MAX_DECOMPRESSED >> 20} MiB: refusing it")
                if out:
                    yield out


class Updates(Sequence[m.Update]):
    """The updates, kept compressed and decoded when asked for (they were checked on load)."""

    def __init__(self) -> None:
        self._frames: list[bytes] = []
        self.times: list[float] = []  # what playback needs without decoding a frame
        self.seqs: list[int] = []
        self.dropped: list[int] = []

    def append(self, frame: bytes, update: m.Update) -> None:
        self._frames.append(zlib.compress(frame, 1))
        self.times.append(update.time)
        self.seqs.append(update.seq)
        self.dropped.append(update.dropped)

    def __len__(self) -> int:
        return len(self._frames)

    @overload
    def __getitem__(self, index: int) -> m.Update: ...
    @overload
    def __getitem__(self, index: slice) -> list[m.Update]: ...

    def __getitem__(self, index: int | slice) -> m.Update | list[m.Update]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return _update_decoder.decode(zlib.decompress(self._frames[index]))


class Histories:
    """The history frames, kept compressed, by the index of the update each one followed
    (-1: it came before the first update)."""

    def __init__(self) -> None:
        self._frames: dict[int, list[bytes]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, after: int, frame: bytes) -> None:
        self._frames.setdefault(after, []).append(zlib.compress(frame, 1))
        self._count += 1

    def after(self, index: int) -> list[list[m.HistorySample]]:
        """The samples of each history frame that followed update `index`, in file order."""
        return [_history_decoder.decode(zlib.decompress(frame)).samples
                for frame in self._frames.get(index, ())]


class Sections(Sequence[dict[str, Any]]):
    """The snapshot as builtins after each update: merged from the last checkpoint on demand.
    Updates replace whole top-level sections, so merged dicts share unchanged sections."""

    def __init__(self, updates: Updates) -> None:
        self._updates = updates
        self._checkpoints: dict[int, dict[str, Any]] = {}
        self._last: tuple[int, dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self._updates)

    def _keep(self, index: int, merged: dict[str, Any]) -> None:
        if index % CHECKPOINT_EVERY == 0:
            self._checkpoints[index] = merged
        self._last = (index, merged)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("update index out of range")
        if self._last is not None and self._last[0] <= index \
                and self._last[0] // CHECKPOINT_EVERY == index // CHECKPOINT_EVERY:
            start, merged = self._last
        else:
            start = index - index % CHECKPOINT_EVERY
            merged = self._checkpoints[start]
        for i in range(start + 1, index + 1):
            merged = _merge(merged, self._updates[i])
        self._last = (index, merged)
        return merged


def _merge(current: dict[str, Any] | None, update: m.Update) -> dict[str, Any]:
    if update.full and update.snapshot is not None:
        return msgspec.to_builtins(update.snapshot)
    assert current is not None and update.changed is not None
    return {**current, **m.changed_sections(update)}


@dataclass
class Recording:
    path: Path
    header: RecordingHeader
    updates: Updates
    sections: Sections = field(init=False)
    history: Histories = field(default_factory=Histories)
    end: RecordingEnd | None = None
    truncated: bool = False

    def __post_init__(self) -> None:
        self.sections = Sections(self.updates)

    @property
    def duration(self) -> float:
        times = self.updates.times
        return times[-1] - times[0] if times else 0.0


def _check_sections(path: Path, number: int, update: m.Update) -> None:
    """Every changed section must have its snapshot type (unknown sections are ignored)."""
    for name, value in (update.changed or {}).items():
        section_type = _SECTION_TYPES.get(name)
        if section_type is None:
            continue
        try:
            msgspec.msgpack.decode(value, type=section_type)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise UserError(f"{path}: update {number}: section {name!r} has the wrong type "
                            f"({exc})") from None


def _check_history(path: Path, number: int, history: RecordedHistory) -> None:
    """As the agent bounds its ring: a frame beyond those bounds is not one we wrote."""
    if len(history.samples) > MAX_HISTORY_SAMPLES or any(
            len(s.tasks_by_kind) > MAX_SAMPLE_KEYS or len(s.queue_lengths) > MAX_SAMPLE_KEYS
            for s in history.samples):
        raise UserError(f"{path}: frame {number} holds more history than an agent keeps: "
                        "not a recording introspect wrote")


def read_recording(path: str | Path) -> Recording:
    """Load a recording; a one-line `UserError` for anything that is not a valid one."""
    path = Path(path)
    frames = _Frames(path)
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise UserError(f"{path} is empty or not an introspect recording")
    try:
        header = _header_decoder.decode(first)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        raise UserError(f"{path} is not an introspect recording (bad header)") from None
    if header.format != FORMAT_NAME:
        raise UserError(f"{path} is not an introspect recording ({header.format!r})")
    if header.version > FORMAT_VERSION:
        raise UserError(f"{path} is a version {header.version} recording; this introspect "
                        f"reads up to version {FORMAT_VERSION}")
    recording = Recording(path=path, header=header, updates=Updates())
    current: dict[str, Any] | None = None
    for number, payload in enumerate(iterator, 1):
        try:
            frame = _frame_decoder.decode(payload)
            if isinstance(frame, m.Update):
                _check_sections(path, number, frame)
            elif isinstance(frame, RecordedHistory):
                _check_history(path, number, frame)
        except RecursionError:
            raise UserError(f"{path}: frame {number} is nested too deeply: not a recording "
                            "introspect wrote") from None
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UserError(f"{path}: frame {number} is not a valid frame ({exc})") from None
        if isinstance(frame, RecordingEnd):
            recording.end = frame
            break
        if isinstance(frame, RecordedHistory):
            if len(recording.history) < MAX_HISTORY_FRAMES:
                recording.history.add(len(recording.updates) - 1, payload)
            continue
        if not (frame.full and frame.snapshot is not None) and \
                (current is None or frame.changed is None):
            continue  # a changed-only update before any full one cannot be applied
        if len(recording.updates) >= MAX_UPDATES:
            recording.truncated = True  # the rest is not loaded
            break
        current = _merge(current, frame)
        recording.updates.append(payload, frame)
        recording.sections._keep(len(recording.updates) - 1, current)
    recording.truncated = recording.truncated or frames.truncated
    if not recording.updates:
        raise UserError(f"{path} holds no updates")
    return recording

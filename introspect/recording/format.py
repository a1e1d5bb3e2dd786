"""The recording format, version 1.

A recording is one gzip stream (RFC 1952). Decompressed, it is a sequence of frames, each a
4-byte big-endian length followed by that many bytes of MessagePack:

1. a `RecordingHeader` map (`"type": "recording_header"`);
2. `Update` messages exactly as the agent sent them on the wire (`"type": "update"`); the
   first is `full` (a whole snapshot), later ones carry only the changed top-level sections;
3. optionally a `RecordingEnd` map (`"type": "end"`) when the recorder stopped cleanly.

The writer flushes the gzip stream after every frame, so a recorder killed mid-way leaves a
file that is readable up to its last complete frame.
"""

from __future__ import annotations

import msgspec

from introspect.protocol.snapshot import Node

FORMAT_NAME = "introspect-recording"
FORMAT_VERSION = 1
# A frame bigger than this is corrupt: the agent never sends frames over 32 MiB.
MAX_FRAME = 32 * 1024 * 1024


class RecordingHeader(msgspec.Struct, tag_field="type", tag="recording_header", kw_only=True):
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION
    created: float  # wall-clock time the recording started (Unix seconds)
    target: str  # what the recorder was pointed at
    interval: float  # requested seconds between updates
    top_tasks: int  # how many tasks each snapshot carries in `tasks.top`
    node: Node | None = None
    recorder: str = ""


class RecordingEnd(msgspec.Struct, tag_field="type", tag="end", kw_only=True):
    time: float
    reason: str  # duration | max-bytes | target-exited | interrupted | closed
    updates: int

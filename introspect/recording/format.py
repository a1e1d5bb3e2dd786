"""The recording format, version 2 (version 1 files are read too).

A recording is one gzip stream (RFC 1952). Decompressed, it is a sequence of frames, each a
4-byte big-endian length followed by that many bytes of MessagePack:

1. a `RecordingHeader` map (`"type": "recording_header"`);
2. `Update` messages exactly as the agent sent them on the wire (`"type": "update"`); the
   first is `full` (a whole snapshot), later ones carry only the changed top-level sections;
   between them (version 2), `RecordedHistory` maps (`"type": "history"`): the agent's recent
   past as the recorder received it, at the point in the stream where it arrived, so a replay
   seeds its charts where live did;
3. optionally a `RecordingEnd` map (`"type": "end"`) when the recorder stopped cleanly.

Version 1 had no history frames: a version 1 reader refuses a version 2 file in one line
(the header's version), and this reader reads both.

The writer flushes the gzip stream after every frame, so a recorder killed mid-way leaves a
file that is readable up to its last complete frame.
"""

from __future__ import annotations

import msgspec

from introspect.protocol.messages import HistorySample
from introspect.protocol.snapshot import Node

FORMAT_NAME = "introspect-recording"
FORMAT_VERSION = 2
# A frame bigger than this is corrupt: the agent never sends frames over 32 MiB.
MAX_FRAME = 32 * 1024 * 1024
# The agent's history ring (agent/history.py: 10 minutes at 1 s): a history frame holds at
# most this many samples, the newest.
MAX_HISTORY_SAMPLES = 600


class RecordingHeader(msgspec.Struct, tag_field="type", tag="recording_header", kw_only=True):
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION
    created: float  # wall-clock time the recording started (Unix seconds)
    target: str  # what the recorder was pointed at
    interval: float  # requested seconds between updates
    top_tasks: int  # how many tasks each snapshot carries in `tasks.top`
    node: Node | None = None
    recorder: str = ""


class RecordedHistory(msgspec.Struct, tag_field="type", tag="history", kw_only=True):
    """The agent's recent past (`history_reply` samples, oldest first), received after the
    updates before this frame and before the ones after it."""

    time: float  # wall-clock time it arrived (Unix seconds)
    samples: list[HistorySample]


class RecordingEnd(msgspec.Struct, tag_field="type", tag="end", kw_only=True):
    time: float
    reason: str  # duration | max-bytes | target-exited | interrupted | closed
    updates: int

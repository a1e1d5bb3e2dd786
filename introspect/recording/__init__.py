"""Recordings of an agent's update stream, for `introspect record` and `introspect top --replay`.

The format is documented in docs/recording-format.md so other tools can read it.
"""

from introspect.recording.format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    RecordedHistory,
    RecordingEnd,
    RecordingHeader,
)
from introspect.recording.reader import Recording, read_recording
from introspect.recording.writer import RecordingWriter

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "RecordedHistory", "Recording", "RecordingEnd",
           "RecordingHeader", "RecordingWriter", "read_recording"]

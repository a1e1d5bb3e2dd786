"""Sending and reading framed messages on one connection, written once for the handshake, the
request loop and the update stream."""

from __future__ import annotations

import asyncio
import contextlib

import msgspec

from introspect.protocol import framing
from introspect.protocol import messages as m

QUIET_SEND_TIMEOUT = 1.0  # a last word (busy, refused) is not worth waiting longer for


async def send(writer: asyncio.StreamWriter, message: m.Message) -> None:
    writer.write(framing.pack(m.encode(message)))
    await writer.drain()


async def send_quietly(writer: asyncio.StreamWriter, message: m.Message) -> None:
    """A last message before closing: best effort, bounded, never raises."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(send(writer, message), QUIET_SEND_TIMEOUT)


async def read_handshake_message(reader: asyncio.StreamReader) -> m.Message | None:
    """One handshake message; None for anything undecodable (the caller answers and closes)."""
    data = await framing.read_frame(reader, framing.MAX_HANDSHAKE_FRAME)
    try:
        return m.decode_client_message(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


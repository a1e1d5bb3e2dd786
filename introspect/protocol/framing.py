"""Length-prefixed frames: a 4-byte big-endian length, then that many bytes of MessagePack.

A frame larger than the limit is refused before its body is read, so a hostile length prefix
can't make either side allocate without bound.
"""

from __future__ import annotations

import asyncio
import socket
import struct

HEADER = struct.Struct(">I")
# Agent → client frames can carry a big snapshot; client → agent requests are small.
MAX_FRAME_TO_CLIENT = 32 * 1024 * 1024
MAX_FRAME_TO_AGENT = 64 * 1024
# Before authentication a peer is a stranger: the hello/authenticate frames are tiny.
MAX_HANDSHAKE_FRAME = 4 * 1024


class FrameError(Exception):
    """The peer sent something that is not a valid frame (too large, truncated)."""


def pack(payload: bytes) -> bytes:
    return HEADER.pack(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader, max_size: int) -> bytes:
    """Read one frame; raises FrameError on an oversized prefix, EOFError on a closed stream."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise FrameError("truncated frame header") from None
        raise EOFError from None
    (size,) = HEADER.unpack(header)
    if size > max_size:
        raise FrameError(f"frame of {size} bytes exceeds the limit of {max_size}")
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        raise FrameError("truncated frame body") from None


def recv_frame_blocking(sock: socket.socket, max_size: int) -> bytes:
    """Blocking variant for the synchronous client."""
    header = _recv_exactly(sock, HEADER.size, allow_eof=True)
    (size,) = HEADER.unpack(header)
    if size > max_size:
        raise FrameError(f"frame of {size} bytes exceeds the limit of {max_size}")
    return _recv_exactly(sock, size, allow_eof=False)


def _recv_exactly(sock: socket.socket, size: int, allow_eof: bool) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            if not chunks and allow_eof:
                raise EOFError
            raise FrameError("connection closed in the middle of a frame")
        chunks += chunk
    return bytes(chunks)

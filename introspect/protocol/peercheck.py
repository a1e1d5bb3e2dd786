"""Who is at the other end of a Unix socket, checked before we answer its challenge.

Our proof of a token is only worth something to the agent that issued the challenge; an
impostor listening where we looked (a runtime dir another user created first) could relay it to
the real agent and log in as us. The kernel tells us the uid of the process that listens
(`SO_PEERCRED`): it must be ours, or root's.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Any

from introspect.errors import ConnectError

_UCRED = struct.Struct("3i")  # pid, uid, gid


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the peer process, or None where the platform cannot say."""
    if hasattr(socket, "SO_PEERCRED"):
        data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        return _UCRED.unpack(data)[1]
    getpeereid = getattr(socket.socket, "getpeereid", None)  # not in the stdlib today
    return getpeereid(sock)[0] if getpeereid else None


def verify_unix_peer(sock: socket.socket | Any, target: object) -> None:
    """Raise ConnectError (one line) unless the listening process runs as us or as root.
    `sock` is a socket, or an asyncio transport's `get_extra_info("socket")`."""
    uid = peer_uid(sock)
    if uid is None or uid in (os.getuid(), 0):
        return
    raise ConnectError(f"refusing {target}: the socket is served by uid {uid}, not by you "
                       f"(uid {os.getuid()}) or root; someone else may be impersonating the "
                       "agent")

"""The client's one error vocabulary: every way a connection or a request can fail, as the
one-line `UserError` both fronts (`Client`, `AsyncClient`) raise with the same wording."""

from __future__ import annotations

import asyncio
import os
import ssl
from typing import TypeVar

from introspect.client.target import Target
from introspect.errors import AuthError, ConnectError, UserError
from introspect.protocol import framing
from introspect.protocol import messages as m

R = TypeVar("R")

# ErrorReply codes that retrying cannot fix: a stream that gets one ends instead of retrying.
FINAL_CODES = frozenset({"auth_failed", "incompatible", "forbidden", "bad_request"})


class AgentError(UserError):
    """The agent answered a request with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, exit_code=4 if code in ("forbidden", "auth_failed") else 1)
        self.code = code


class IncompatibleAgent(UserError):
    """The agent and this client share no protocol version."""


def is_final(exc: BaseException) -> bool:
    """True for refusals retrying can't fix (token, protocol, role); False for lost links."""
    if isinstance(exc, AuthError | IncompatibleAgent):
        return True
    return isinstance(exc, AgentError) and exc.code in FINAL_CODES


def tls_failure(target: Target, exc: ssl.SSLError) -> ConnectError:
    """One line that says what went wrong with TLS and what to set."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or exc.reason or "certificate verify failed"
        return ConnectError(f"TLS handshake with {target} failed: the agent's certificate was "
                            f"not accepted ({why}); set INTROSPECT_TLS_CA to the CA that "
                            "signed it")
    reason = exc.reason or str(exc)
    hint = ""
    if "CERTIFICATE" in str(reason).upper() or "ALERT" in str(reason).upper():
        hint = " (the agent probably requires a client certificate: set " \
            "INTROSPECT_TLS_CLIENT_CERT)"
    return ConnectError(f"TLS handshake with {target} failed: {reason}{hint}")


def connect_failure(target: Target, exc: BaseException, timeout: float) -> UserError:
    """Opening the socket failed."""
    if isinstance(exc, ssl.SSLError):
        return tls_failure(target, exc)
    if isinstance(exc, FileNotFoundError):
        why = "no such socket (the agent is gone?)"
    elif isinstance(exc, ConnectionRefusedError):
        why = "connection refused (is the agent still running?)"
    elif isinstance(exc, PermissionError):
        why = "permission denied (the socket belongs to another user)"
    elif isinstance(exc, TimeoutError):
        why = f"timed out after {timeout:g}s"
    elif isinstance(exc, OSError):
        why = str(exc.strerror or exc)
    else:
        why = str(exc)
    return ConnectError(f"cannot connect to {target}: {why}")


def send_failure(target: Target, exc: BaseException) -> ConnectError:
    if isinstance(exc, TimeoutError):
        return ConnectError(f"{target}: timed out sending")
    strerror = getattr(exc, "strerror", None)
    return ConnectError(f"{target}: connection lost ({strerror or exc})")


def receive_failure(target: Target, exc: BaseException, timeout: float) -> ConnectError:
    """Reading a reply failed."""
    if isinstance(exc, TimeoutError):
        return ConnectError(f"{target}: the agent did not answer within {timeout:g}s")
    if isinstance(exc, ssl.SSLError):  # TLS 1.3: a refused client certificate shows up here
        return tls_failure(target, exc)
    if isinstance(exc, EOFError | framing.FrameError | asyncio.IncompleteReadError):
        return ConnectError(f"{target}: the agent closed the connection")
    strerror = getattr(exc, "strerror", None)
    return ConnectError(f"{target}: connection lost ({strerror or exc})")


def unreadable(target: Target, exc: BaseException) -> ConnectError:
    return ConnectError(f"{target}: unreadable reply ({exc})")


def closed_in_handshake(target: Target, exc: ConnectError) -> ConnectError:
    """A TLS agent that wants a client certificate just closes the connection (TLS 1.3 lets
    the client finish its side first): say the likely cause."""
    if target.tls and not os.environ.get("INTROSPECT_TLS_CLIENT_CERT") \
            and "TLS" not in str(exc):
        # One wording whether the close surfaced on our send (asyncio) or on the read.
        return ConnectError(f"{target}: the agent closed the connection: the agent probably "
                            "requires a client certificate (set INTROSPECT_TLS_CLIENT_CERT "
                            "and INTROSPECT_TLS_CLIENT_KEY)")
    return exc


def raise_for(reply: m.Message, target: Target) -> None:
    """An ErrorReply as the error it stands for."""
    if isinstance(reply, m.ErrorReply):
        if reply.code == "auth_failed":
            raise AuthError(f"{target}: {reply.message} (set INTROSPECT_TOKEN or "
                            "INTROSPECT_TOKEN_FILE)")
        if reply.code == "incompatible":
            raise IncompatibleAgent(f"{target}: incompatible agent: {reply.message}")
        raise AgentError(reply.code, f"{target}: {reply.message}")


def expect(reply: m.Message, cls: type[R], target: Target) -> R:
    raise_for(reply, target)
    if not isinstance(reply, cls):
        raise ConnectError(f"{target}: unexpected reply {type(reply).__name__}")
    return reply

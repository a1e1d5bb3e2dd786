"""Challenge–response: the token never crosses the wire; comparison is constant-time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

NONCE_BYTES = 32
_CONTEXT = b"introspect-auth-v1"


def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def proof(token: str, agent_nonce: bytes, client_nonce: bytes) -> bytes:
    message = _CONTEXT + agent_nonce + client_nonce
    return hmac.new(token.encode(), message, hashlib.sha256).digest()


def verify(token: str, agent_nonce: bytes, client_nonce: bytes, candidate: bytes) -> bool:
    return hmac.compare_digest(proof(token, agent_nonce, client_nonce), candidate)

"""The handshake, and the credentials it uses. Its steps need no I/O:

    hs = Handshake(target, token, name)
    send(hs.hello())                       # offer our protocol versions and a nonce
    send(hs.answer(recv()))                # Challenge -> Authenticate (an HMAC proof, never
                                           #   the token); hs.lost(error) if recv() failed
    role, pid = hs.welcome(recv())         # Welcome -> role and agent pid

and `run` / `run_blocking` take them in that order over the async or the blocking front's
`exchange` (send one message, return the agent's reply), so the order lives here alone.
Every refusal is a one-line error from `introspect.client.errors`; the fronts only move bytes.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Awaitable, Callable

from introspect.client import errors
from introspect.client.target import Target
from introspect.errors import AuthError, ConnectError
from introspect.protocol import auth
from introspect.protocol import messages as m
from introspect.protocol.version import SUPPORTED_VERSIONS

DEFAULT_TIMEOUT = 5.0  # seconds to connect and to wait for a reply


def client_token(explicit: str | None = None) -> str | None:
    if explicit:
        return explicit
    if os.environ.get("INTROSPECT_TOKEN"):
        return os.environ["INTROSPECT_TOKEN"]
    path = os.environ.get("INTROSPECT_TOKEN_FILE")
    if path:
        from introspect.config import read_token_file

        return read_token_file(path, "INTROSPECT_TOKEN_FILE")
    return None


def client_ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=os.environ.get("INTROSPECT_TLS_CA") or None)
    cert = os.environ.get("INTROSPECT_TLS_CLIENT_CERT")
    if cert:
        context.load_cert_chain(cert, os.environ.get("INTROSPECT_TLS_CLIENT_KEY") or None)
    return context


class Handshake:
    """Hello -> Challenge -> Authenticate -> Welcome, one step per call."""

    def __init__(self, target: Target, token: str | None, name: str) -> None:
        self.target = target
        self.token = token
        self.name = name
        self.nonce = auth.new_nonce()

    def hello(self) -> m.Hello:
        return m.Hello(versions=list(SUPPORTED_VERSIONS), client=self.name,
                       client_nonce=self.nonce)

    def lost(self, exc: ConnectError) -> ConnectError:
        """The link failed while waiting for the Challenge: the error, with its likely cause."""
        return errors.closed_in_handshake(self.target, exc)

    def answer(self, reply: m.Message) -> m.Authenticate:
        """The agent's Challenge (or refusal) -> what we send back."""
        try:
            challenge = errors.expect(reply, m.Challenge, self.target)
        except ConnectError as exc:
            raise self.lost(exc) from None
        if challenge.version not in SUPPORTED_VERSIONS:
            raise errors.IncompatibleAgent(
                f"{self.target}: incompatible agent: it chose protocol {challenge.version}, "
                f"this client speaks {list(SUPPORTED_VERSIONS)}")
        proof = None
        if challenge.auth == "token":
            if not self.token:
                raise AuthError(f"{self.target} requires a token: set INTROSPECT_TOKEN or "
                                "INTROSPECT_TOKEN_FILE")
            proof = auth.proof(self.token, challenge.agent_nonce, self.nonce)
        return m.Authenticate(proof=proof)

    def welcome(self, reply: m.Message) -> tuple[str, int]:
        """The agent's Welcome (or refusal) -> (role, agent pid)."""
        welcome = errors.expect(reply, m.Welcome, self.target)
        return welcome.role, welcome.pid

    async def run(self, exchange: Callable[[m.Message], Awaitable[m.Message]]
                  ) -> tuple[str, int]:
        """Hello -> Challenge, Authenticate -> Welcome over `exchange`; (role, agent pid)."""
        try:  # a TLS agent refusing our certificate may close before the Challenge
            challenge = await exchange(self.hello())
        except ConnectError as exc:
            raise self.lost(exc) from None
        return self.welcome(await exchange(self.answer(challenge)))

    def run_blocking(self, exchange: Callable[[m.Message], m.Message]) -> tuple[str, int]:
        """`run` over blocking I/O, without an event loop: nothing in it ever suspends."""
        async def exchange_now(message: m.Message) -> m.Message:
            return exchange(message)

        steps = self.run(exchange_now)
        try:
            steps.send(None)
        except StopIteration as done:
            return done.value
        steps.close()
        raise RuntimeError("the blocking handshake suspended")  # only an async exchange could


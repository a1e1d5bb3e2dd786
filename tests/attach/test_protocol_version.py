"""Protocol 2 typed the events, exact and stuck reports: a protocol-1 client can't decode them,
so it is refused at the handshake with the clear `incompatible` error, not a garbled reply."""

from __future__ import annotations

from introspect.agent.server import requests
from introspect.protocol import auth
from introspect.protocol import messages as m
from introspect.protocol.version import PROTOCOL_VERSION, SUPPORTED_VERSIONS
from tests.attach.support import RawConnection, start_host, unix_target


def test_a_protocol_1_client_is_told_to_upgrade() -> None:
    assert PROTOCOL_VERSION == 2 and 1 not in SUPPORTED_VERSIONS
    with start_host() as proc, RawConnection(unix_target(proc)) as raw:
        raw.send(m.Hello(versions=[1], client="old-client", client_nonce=auth.new_nonce()))
        reply = raw.recv()
        assert isinstance(reply, m.ErrorReply) and reply.code == "incompatible", reply
        assert "client offered [1]" in reply.message and "[2]" in reply.message
        assert "upgrade the older side" in reply.message
        assert raw.closed_by_peer()


def test_every_request_the_client_can_send_has_exactly_one_way_in() -> None:
    """Each request type is answered once (ROUTES) or takes the connection (TAKEOVERS)."""
    request_types = {t for t in m.ClientMessage.__args__ if issubclass(t, m.Request)}
    routed, takeovers = set(requests.ROUTES), set(requests.TAKEOVERS)
    assert not routed & takeovers
    assert routed | takeovers | {m.ConsoleInput} == request_types

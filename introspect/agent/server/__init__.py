"""The agent's server, in parts: `listeners` (bind, TLS, inherited addresses), `handshake`
(login, session, peer credentials), `lifecycle` (thread, accept loop, connection cap), `wire`
(send and read one message) and `stream` (the update stream)."""

from introspect.agent.server.lifecycle import AgentServer

__all__ = ["AgentServer"]

"""The agent's server, in parts: `listeners` (bind, TLS, inherited addresses), `lifecycle`
(thread, accept loop, announcement), and what is imported at the first connection only:
`clients` (one connection from accept to close), `connections` (the connection caps and
timeouts), `handshake` (login, session, peer credentials), `requests`, `wire` (send and read
one message) and `stream` (the update stream)."""

from introspect.agent.server.lifecycle import AgentServer

__all__ = ["AgentServer"]

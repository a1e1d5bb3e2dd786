"""The wire contract between the agent and every client (CLI, TUI, recorder).

Nothing else is shared between `introspect.agent` and the clients: messages are msgspec
Structs encoded as MessagePack inside length-prefixed frames (see `framing`), decoded with
strict types (never pickle). `PROTOCOL_VERSION` changes when a message changes incompatibly.
"""

from introspect.protocol.version import PROTOCOL_VERSION, SUPPORTED_VERSIONS

__all__ = ["PROTOCOL_VERSION", "SUPPORTED_VERSIONS"]

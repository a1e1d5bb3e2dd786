"""Protocol versions. A client offers the versions it speaks; the agent picks the highest shared."""

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS: tuple[int, ...] = (1,)
SNAPSHOT_SCHEMA = 1

"""Protocol versions. A client offers the versions it speaks; the agent picks the highest shared."""

# 2: typed events, exact and stuck reports (tagged structs instead of maps); version 1
# clients are refused with `incompatible` rather than fail on a message they can't decode.
PROTOCOL_VERSION = 2
SUPPORTED_VERSIONS: tuple[int, ...] = (2,)
SNAPSHOT_SCHEMA = 1

"""One module per runtime aspect; each keeps its own state and never raises into the host."""

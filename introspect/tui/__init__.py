"""The observer TUI (`introspect top`): `state/` is the model built from protocol messages,
`views/` one file per screen or widget, `app.py` wires them to a live agent or a recording."""

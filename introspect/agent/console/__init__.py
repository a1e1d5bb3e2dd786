"""The remote console's agent side: a Python prompt that runs inside the observed program's
event loop, reached only through the agent's authenticated channel (never a port of its own).

- `bridge`: the agent extension ("console") that serves a console session on a connection.
- `session`: one session's protocol (inputs, prompts, interrupts, audit).
- `evaluate`: compile with top-level `await`, run on the app's loop, format tracebacks.
- `output`: `print()` inside console code goes to the console, not the app's stdout.
- `helpers`: `tasks()`, `task(id)`, `queues()`, `cancel(id)`, `snapshot()`.

The interactive side (`introspect console TARGET`) is `introspect.console.client`.
"""

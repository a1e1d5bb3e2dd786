"""The TUI's model: built only from protocol messages, never from the agent's internals."""

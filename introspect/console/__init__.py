"""The remote console's client side: `client` is the interactive prompt of
`introspect console TARGET` (readline, Ctrl-C, Ctrl-D). What runs inside the observed program
(sessions, evaluation, helpers) is `introspect.agent.console`."""

"""One module per screen or widget. Views read `ObserverState`; they never talk to an agent."""

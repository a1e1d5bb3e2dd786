"""One module per screen (tab or detail screen). Views read `ObserverState` and ask for more
through a `DataSource`; they never talk to an agent. Reusable widgets live in `tui/widgets/`."""

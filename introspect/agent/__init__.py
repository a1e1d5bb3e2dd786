"""The agent: embedded in the observed service. Collectors measure; `server` answers clients."""

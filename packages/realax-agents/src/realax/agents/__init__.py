"""realax.agents (placeholder until its issue lands)."""

"""realax.tasks (placeholder until its issue lands)."""

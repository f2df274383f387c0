"""realax.log (placeholder until its issue lands)."""

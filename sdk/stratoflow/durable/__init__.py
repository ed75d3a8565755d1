"""Durable flow runs: stop an attempt at a task boundary, wait without compute, continue
in a new attempt that replays what was done (docs/durability.md)."""

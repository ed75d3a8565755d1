"""The engine runs flows and tasks in this process (synchronously, one engine)."""

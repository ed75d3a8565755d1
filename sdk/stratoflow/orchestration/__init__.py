"""Orchestration rules shared by every backend: state transitions and claims."""

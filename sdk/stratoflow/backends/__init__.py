"""Backends store runs, states and logs. `memory` is the local default."""

from stratoflow.backends.base import Backend
from stratoflow.backends.memory import MemoryBackend

__all__ = ["Backend", "MemoryBackend"]

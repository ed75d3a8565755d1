"""The enums of `stratoflow.transactions` (imported from there)."""

from __future__ import annotations

import enum


class IsolationLevel(enum.StrEnum):
    READ_COMMITTED = "READ_COMMITTED"
    SERIALIZABLE = "SERIALIZABLE"


class CommitMode(enum.StrEnum):
    EAGER = "EAGER"
    """Commit when the transaction's block ends, even inside another transaction."""
    LAZY = "LAZY"
    """Leave the commit to the enclosing transaction; the outermost commits at its end."""
    OFF = "OFF"
    """Commit only on an explicit `txn.commit()`; the outermost rolls back at its end."""


class TransactionState(enum.StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    STAGED = "STAGED"
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"

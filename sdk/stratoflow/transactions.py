"""Transactions (Prefect 3's `prefect.transactions`): group task runs so that their
cache records are written together on commit, and their rollback hooks undo their side
effects when anything in the group fails.

    with transaction(key="load-2024-01-01") as txn:
        if not txn.is_committed():
            rows = extract()
            load(rows)           # @load.on_rollback undoes it if a later step fails

A transaction is ACTIVE when entered (COMMITTED at once when its key has a record),
STAGED once a value is staged, then COMMITTED or ROLLED_BACK. Nested ones (every task
run opens one) leave their commit to the outermost, which commits them in the order
they ended and rolls them back in reverse. See docs/transactions.md.

Commit and rollback are engine steps (`stratoflow.engine.steps`): `with` runs `async
def` hooks to completion, `async with` awaits them.
"""

from __future__ import annotations

import copy
import logging
import threading
import uuid
from collections.abc import Callable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

from stratoflow._transaction_hooks import TransactionHook, hook_name
from stratoflow._transaction_modes import CommitMode, IsolationLevel, TransactionState
from stratoflow._transaction_records import read_record, write_record
from stratoflow.cache import CacheStore
from stratoflow.context import Services, flow_run_context, get_services
from stratoflow.engine.steps import Blocking, Steps, drive, drive_async
from stratoflow.exceptions import ConfigurationError
from stratoflow.locking import LockManager
from stratoflow.results import ResultRecord

_default_logger = logging.getLogger("stratoflow.transactions")
LoggerLike = logging.Logger | logging.LoggerAdapter[Any]


_UNSET: Any = object()
_active: ContextVar[Transaction | None] = ContextVar("stratoflow_transaction", default=None)


def get_transaction() -> Transaction | None:
    """The innermost active transaction (inside a task run: the task run's own one)."""
    return _active.get()


class Transaction:
    """A transaction's state, hooks and values. Use it through `transaction()`."""

    def __init__(
        self,
        key: str | None = None,
        store: CacheStore | None = None,
        commit_mode: CommitMode | None = None,
        isolation_level: IsolationLevel | None = None,
        overwrite: bool = False,
        write_on_commit: bool = True,
        lock_manager: LockManager | None = None,
        logger: LoggerLike | Callable[[], LoggerLike] | None = None,
        services: Services | None = None,
    ) -> None:
        self.key = key
        self.store = store
        self.commit_mode = CommitMode(commit_mode) if commit_mode is not None else None
        self.isolation_level = IsolationLevel(isolation_level) if isolation_level else None
        self.overwrite = overwrite
        self.write_on_commit = write_on_commit
        self.lock_manager = lock_manager
        # A function makes the logger when first needed: a task run's logger costs
        # more to build than most task runs with hooks need (they never log).
        self._logger = logger
        self.services = services
        self.state = TransactionState.PENDING
        self.children: list[Transaction] = []
        self.on_commit_hooks: list[Any] = []
        self.on_rollback_hooks: list[Any] = []
        self._stored_values: dict[str, Any] = {}
        self._staged_value: Any = None
        self._parent: Transaction | None = None
        self._token: Token[Transaction | None] | None = None
        self._holder = ""  # who holds the key's lock: made when taking it
        self._holds_lock = False
        self._rolling_back = False  # claimed by one thread: hooks run once
        self._children_lock = threading.Lock()  # tasks submitted to threads add children

    @property
    def logger(self) -> LoggerLike:
        if self._logger is None:
            self._logger = _default_logger
        elif callable(self._logger):
            self._logger = self._logger()
        return self._logger

    def __repr__(self) -> str:
        return f"Transaction(key={self.key!r}, state={self.state.value})"

    def set(self, name: str, value: Any) -> None:
        self._stored_values[name] = value

    def get(self, name: str, default: Any = _UNSET) -> Any:
        """A copy of the value set under `name` here or, failing that, in an enclosing
        transaction. Raises ValueError when there is none and no default."""
        if name in self._stored_values:
            # A copy, as in Prefect: changing it does not change the stored value.
            return copy.deepcopy(self._stored_values[name])
        if self._parent is not None:
            return self._parent.get(name, default)
        if default is not _UNSET:
            return default
        raise ValueError(f"Could not retrieve value for unknown key: {name}")

    def is_committed(self) -> bool:
        return self.state is TransactionState.COMMITTED

    def is_rolled_back(self) -> bool:
        return self.state is TransactionState.ROLLED_BACK

    def is_staged(self) -> bool:
        return self.state is TransactionState.STAGED

    def is_pending(self) -> bool:
        return self.state is TransactionState.PENDING

    def is_active(self) -> bool:
        return self.state is TransactionState.ACTIVE

    def get_parent(self) -> Transaction | None:
        return self._parent

    def add_child(self, child: Transaction) -> None:
        with self._children_lock:
            self.children.append(child)

    def stage(
        self,
        value: Any,
        on_rollback_hooks: list[Any] | None = None,
        on_commit_hooks: list[Any] | None = None,
    ) -> None:
        """Stage `value` (written under the key on commit) and hooks; ignored once the
        transaction is committed (its record exists already)."""
        if self.state is TransactionState.COMMITTED:
            return
        self._staged_value = value
        self.on_rollback_hooks += on_rollback_hooks or []
        self.on_commit_hooks += on_commit_hooks or []
        self.state = TransactionState.STAGED

    def read(self) -> ResultRecord | None:
        """The committed record under the key (`.load()` gives its value), or None."""
        if self.store is None or not self.key:
            return None
        return read_record(self.store, self.key, self.services or get_services())

    # Entering: prepare, begin (may wait for the lock), activate.

    def prepare(self) -> None:
        """Inherit unset settings from the enclosing transaction and check them."""
        if self._token is not None:
            raise RuntimeError("This transaction is already entered; enter it once.")
        parent = _active.get()
        self._parent = parent
        if self.commit_mode is None:
            self.commit_mode = parent.commit_mode if parent else CommitMode.LAZY
        if self.isolation_level is None:
            self.isolation_level = (
                parent.isolation_level if parent else IsolationLevel.READ_COMMITTED
            )
        if self.lock_manager is None and parent is not None:
            self.lock_manager = parent.lock_manager
        if self.services is None:
            flow_ctx = flow_run_context.get()
            self.services = flow_ctx.services if flow_ctx is not None else get_services()
        if self.key and self.store is None:
            self.store = self.services.cache_store
        if self.locks and self.lock_manager is None:
            raise ConfigurationError(
                f"Transaction {self.key!r} is SERIALIZABLE but has no lock manager: pass "
                "lock_manager=MemoryLockManager() (threads) or FileSystemLockManager(dir) "
                "(processes) from stratoflow.locking."
            )
        self.state = TransactionState.ACTIVE

    @property
    def locks(self) -> bool:
        """Does entering take the key's lock (SERIALIZABLE with a key)?"""
        return bool(self.key) and self.isolation_level is IsolationLevel.SERIALIZABLE

    def begin(self, check_record: bool = True) -> None:
        """Take the lock, then look for a committed record (which makes it COMMITTED)."""
        if self.locks and self.lock_manager is not None and self.key:
            self.logger.debug("Acquiring lock for transaction %r", self.key)
            self._holder = self._holder or uuid.uuid4().hex
            self.lock_manager.acquire_lock(self.key, holder=self._holder)
            self._holds_lock = True
        if check_record and not self.overwrite:
            try:
                record = self.read()
            except BaseException:
                self._release_lock()  # nobody would release it: the block never runs
                raise
            if record is not None and record.exists():
                self.state = TransactionState.COMMITTED

    def activate(self) -> None:
        self._token = _active.set(self)

    def __enter__(self) -> Transaction:
        self.prepare()
        self.begin()
        self.activate()
        return self

    async def __aenter__(self) -> Transaction:
        self.prepare()
        if self.locks:
            # Waiting for the lock must not block the event loop.
            await Blocking(self.begin).run_awaiting()
        else:
            self.begin()
        self.activate()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        drive(self.exit_steps(failed=exc_type is not None))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await drive_async(self.exit_steps(failed=exc_type is not None))

    def commit(self) -> bool:
        """Commit now (children, commit hooks, the record); False when the transaction
        was already committed or rolled back, or when committing failed (rolled back)."""
        return drive(self.commit_steps())

    def rollback(self) -> bool:
        """Roll back now (rollback hooks in reverse order, then children in reverse);
        False when it was already committed or rolled back, or a rollback hook failed."""
        return drive(self.rollback_steps())

    def exit_steps(self, failed: bool) -> Steps[None]:
        """Leaving the block: a failure rolls back (and re-raises); otherwise EAGER
        commits now, a nested transaction leaves the rest to its parent, and the
        outermost commits (LAZY) or rolls back what nobody committed (OFF)."""
        if self._token is None:
            raise RuntimeError("This transaction was exited without being entered.")
        if failed:
            yield from self.rollback_steps()
        else:
            if self.commit_mode is CommitMode.EAGER:
                yield from self.commit_steps()
            if self._parent is None:
                if self.commit_mode is CommitMode.OFF:
                    yield from self.rollback_steps()
                elif self.commit_mode is CommitMode.LAZY:
                    yield from self.commit_steps()
        yield from self._reset_steps()
        if self.state in (TransactionState.COMMITTED, TransactionState.ROLLED_BACK):
            # E.g. started COMMITTED, then failed: neither commit nor rollback released it.
            self._release_lock()

    def _reset_steps(self) -> Steps[None]:
        parent = self._parent
        if parent is not None:
            parent.add_child(self)  # the parent commits or rolls it back with itself
        if self._token is not None:
            _active.reset(self._token)
            self._token = None
        if parent is None:
            return
        if self.state is TransactionState.ROLLED_BACK:
            # A failed child fails its parent (and so its staged siblings) at once.
            yield from parent.rollback_steps()
        elif parent.is_rolled_back():
            # The parent failed while this one ran (a sibling in another thread, or a
            # failure the flow caught): nobody will roll this one back later.
            yield from self.rollback_steps()

    def commit_steps(self) -> Steps[bool]:
        if self.state in (TransactionState.ROLLED_BACK, TransactionState.COMMITTED):
            self._release_lock()
            return False
        try:
            with self._children_lock:
                children = list(self.children)
            for child in children:
                yield from child.commit_steps()
            for hook in self.on_commit_hooks:
                yield TransactionHook(hook, self, "commit", self.logger)
            if self.store is not None and self.key and self.write_on_commit and self.services:
                write_record(self.store, self.key, self._staged_value, self.services)
        # A commit hook or the record's write is user code or I/O that may raise
        # anything; Prefect rolls back instead of failing the caller's block.
        except Exception:
            self.logger.exception("Committing transaction %r failed; rolling back", self.key)
            yield from self.rollback_steps()
            return False
        self.state = TransactionState.COMMITTED
        self._release_lock()
        return True

    def rollback_steps(self) -> Steps[bool]:
        with self._children_lock:
            if self._rolling_back or self.state in (
                TransactionState.ROLLED_BACK,
                TransactionState.COMMITTED,
            ):
                return False
            self._rolling_back = True
        try:
            for hook in reversed(self.on_rollback_hooks):
                try:
                    yield TransactionHook(hook, self, "rollback", self.logger)
                # A rollback hook is user code; as in Prefect its failure stops the
                # rollback (the transaction stays as it was) and is logged.
                except Exception:
                    self.logger.exception(
                        "Rollback hook %r of transaction %r failed", hook_name(hook), self.key
                    )
                    return False
            self.state = TransactionState.ROLLED_BACK
            with self._children_lock:
                children = list(self.children)
            for child in reversed(children):
                yield from child.rollback_steps()
            return True
        finally:
            self._rolling_back = False
            self._release_lock()

    def _release_lock(self) -> None:
        if self._holds_lock and self.lock_manager is not None and self.key:
            self.logger.debug("Releasing lock for transaction %r", self.key)
            self.lock_manager.release_lock(self.key, holder=self._holder)
            self._holds_lock = False


def transaction(
    key: str | None = None,
    store: CacheStore | None = None,
    commit_mode: CommitMode | None = None,
    isolation_level: IsolationLevel | None = None,
    overwrite: bool = False,
    write_on_commit: bool = True,
    lock_manager: LockManager | None = None,
    logger: LoggerLike | None = None,
) -> Transaction:
    """Open a transaction: `with transaction(...) as txn:` (or `async with`).

    - key: with a key, committing writes a record under it (in the cache store, the
      task cache's namespace), and a later transaction with that key starts COMMITTED
      (`txn.is_committed()`): check it to skip work already done.
    - store: the cache store holding the record (default: the run's cache store).
    - commit_mode: EAGER, LAZY or OFF (default: the enclosing transaction's, else LAZY).
    - isolation_level: READ_COMMITTED (default) or SERIALIZABLE (needs lock_manager).
    - overwrite: start ACTIVE even when the key has a record; write_on_commit=False:
      commit runs the hooks but writes no record.
    """
    return Transaction(
        key=key,
        store=store,
        commit_mode=commit_mode,
        isolation_level=isolation_level,
        overwrite=overwrite,
        write_on_commit=write_on_commit,
        lock_manager=lock_manager,
        logger=logger,
    )


atransaction = transaction  # Prefect's name for `async with`: the same object here

__all__ = [
    "CommitMode",
    "IsolationLevel",
    "Transaction",
    "TransactionState",
    "atransaction",
    "get_transaction",
    "transaction",
]

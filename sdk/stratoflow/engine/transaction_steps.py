"""A task run's own transaction (Prefect 3: every task run is governed by one).

The task run's attempts run inside a transaction keyed by its cache key, nested in the
active transaction if there is one. When the run completes, its cache entry and its
`on_commit`/`on_rollback` hooks are staged; the entry is written (and the commit hooks
run) when the transaction commits: at once for a run outside any transaction, when the
enclosing transaction commits otherwise. A run that does not complete rolls back its
transaction, and with it the enclosing one.

A run outside any transaction and without commit or rollback hooks skips building a
transaction: it writes its cache entry at once, which is all its transaction would do
(and without a cache key its attempts run with nothing around them).
The engine looked the cache key up before the attempts; a SERIALIZABLE run looks again
once it holds the key's lock, since the run that held it may have written it meanwhile.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from stratoflow.cache import CacheEntry
from stratoflow.cache_policies import cache_store_for
from stratoflow.engine.caching import cached_state, store_in_cache
from stratoflow.engine.steps import Blocking, Steps
from stratoflow.states import State, StateType
from stratoflow.transactions import Transaction, get_transaction

if TYPE_CHECKING:
    from stratoflow.engine.task_engine import TaskRunEngine


def attempts_in_transaction(
    engine: TaskRunEngine, cache_key: str | None, attempts: Steps[State]
) -> Steps[State]:
    """Run `attempts` (the task run's attempts) in the run's transaction; returns their
    final state, or a Cached one when a SERIALIZABLE run found the record under lock."""
    options = engine.options
    if get_transaction() is None and not options.on_commit and not options.on_rollback:
        if cache_key is None:
            # Nothing to do around the attempts (most task runs): no wrapping generator,
            # whose every step would cost each task call.
            return attempts
        return _caching_at_once(engine, cache_key, attempts)
    return _in_transaction(engine, cache_key, attempts)


def _caching_at_once(engine: TaskRunEngine, cache_key: str, attempts: Steps[State]) -> Steps[State]:
    state = yield from attempts
    if state.type is StateType.COMPLETED:
        store_in_cache(
            cache_key,
            state,
            engine.services,
            engine.run_record,
            engine.options.cache_expiration,
            engine.task.cache_policy,
        )
    return state


def _in_transaction(
    engine: TaskRunEngine, cache_key: str | None, attempts: Steps[State]
) -> Steps[State]:
    options = engine.options
    txn = Transaction(
        key=cache_key,
        # The policy's key_storage when it has one (as in Prefect), else the services'.
        store=cache_store_for(engine.task.cache_policy, engine.services.cache_store),
        overwrite=bool(options.refresh_cache),
        logger=lambda: engine.logger,
        services=engine.services,
    )
    txn.prepare()
    if txn.locks:
        yield Blocking(txn.begin)
    else:
        txn.begin(check_record=False)  # the engine has just looked the key up
    txn.activate()
    if txn.is_committed() and cache_key is not None:
        hit = cached_state(cache_key, engine.services, engine.run_record, engine.task.cache_policy)
        if hit is not None:
            yield from txn.exit_steps(failed=False)
            return hit
    try:
        state = yield from attempts
    except BaseException:
        yield from txn.exit_steps(failed=True)
        raise
    if state.type is not StateType.COMPLETED:
        yield from txn.exit_steps(failed=True)
        return state
    entry = _cache_entry(cache_key, state, engine, options.cache_expiration)
    if entry is None:
        txn.write_on_commit = False
    txn.stage(
        entry,
        on_rollback_hooks=list(options.on_rollback),
        on_commit_hooks=list(options.on_commit),
    )
    yield from txn.exit_steps(failed=False)
    return state


def _cache_entry(
    cache_key: str | None, state: State, engine: TaskRunEngine, expiration: timedelta | None
) -> CacheEntry | None:
    # What `store_in_cache` writes, built now so that it can be written at commit.
    if cache_key is None or state.result_record is None:
        return None
    expires = engine.services.clock.now() + expiration if expiration is not None else None
    engine.run_record.cache_expiration = expires
    return CacheEntry(
        key=cache_key,
        result=state.result_record,
        expiration=expires,
        task_run_id=engine.run_record.id,
    )

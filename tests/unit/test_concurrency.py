"""Concurrency limits on the memory store: slots, leases, rate limits, tag limits on task runs."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from stratoflow import flow, tags, task
from stratoflow.clock import FakeClock, SystemClock
from stratoflow.concurrency import (
    AcquireConcurrencySlotTimeout,
    ConcurrencyLimit,
    ConcurrencyLimitExists,
    ConcurrencyLimitNotFound,
    MemoryConcurrencyStore,
    concurrency,
    create_concurrency_limit,
    delete_concurrency_limit,
    list_concurrency_limits,
    rate_limit,
    read_concurrency_limit,
    update_concurrency_limit,
)
from stratoflow.concurrency._backoff import backoff_seconds, next_wait
from stratoflow.concurrency.leases import LeaseRenewer, get_renewer
from stratoflow.concurrency.store import ConcurrencyStore
from stratoflow.context import Services, flow_run_context
from stratoflow.exceptions import StratoflowError
from stratoflow.models import TaskRun
from stratoflow.states import State
from stratoflow.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from stratoflow.testing import TestHarness, stratoflow_test_harness


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


@pytest.fixture
def real_time() -> Iterator[TestHarness]:
    with stratoflow_test_harness(clock=SystemClock()) as h:
        yield h


class HookedClock(FakeClock):
    """A FakeClock that calls `on_sleep(n)` after its n-th sleep (n = 1, 2, ...)."""

    def __init__(self, on_sleep: Callable[[int], None]) -> None:
        super().__init__()
        self.on_sleep = on_sleep

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.on_sleep(len(self.sleeps))


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    """Messages logged on the `stratoflow.concurrency` logger."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    logger = logging.getLogger("stratoflow.concurrency")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def history_names(run: TaskRun) -> list[str]:
    assert run.state is not None
    return [s.name for s in run.state_history] + [run.state.name]


def hold_elsewhere(store: ConcurrencyStore, name: str, clock: Any, lease_id: str = "other") -> None:
    """Take one slot as another (possibly dead) holder would."""
    assert store.try_acquire([name], 1, lease_id, clock.now(), 30.0)


def live_count_recorder() -> tuple[Callable[[], None], list[int]]:
    """A body that records how many run at once (peak in peaks[0])."""
    lock = threading.Lock()
    live = [0]
    peaks = [0]

    def body() -> None:
        with lock:
            live[0] += 1
            peaks[0] = max(peaks[0], live[0])
        time.sleep(0.02)
        with lock:
            live[0] -= 1

    return body, peaks


# Backoff (pure)


def test_backoff_doubles_with_equal_jitter_up_to_the_cap() -> None:
    assert backoff_seconds(0, lambda: 0.0) == pytest.approx(0.025)
    assert backoff_seconds(0, lambda: 1.0) == pytest.approx(0.05)
    assert backoff_seconds(2, lambda: 0.5) == pytest.approx(0.15)
    assert backoff_seconds(50, lambda: 1.0) == pytest.approx(1.0)
    assert backoff_seconds(50, lambda: 0.0) == pytest.approx(0.5)
    assert backoff_seconds(3, lambda: 1.0, base=1.0, cap=5.0) == pytest.approx(5.0)
    with pytest.raises(ValueError):
        backoff_seconds(-1, lambda: 0.0)


def test_next_wait_never_passes_the_deadline() -> None:
    assert next_wait(10, lambda: 1.0, None) == pytest.approx(1.0)
    assert next_wait(10, lambda: 1.0, 0.3) == pytest.approx(0.3)
    assert next_wait(10, lambda: 1.0, -2.0) == 0.0


# Managing limits


def test_create_read_list_update_delete(harness: TestHarness) -> None:
    created = create_concurrency_limit("db", 3)
    create_concurrency_limit("api", 10, slot_decay_per_second=0.5, active=False)
    assert created == ConcurrencyLimit(name="db", limit=3)
    assert read_concurrency_limit("db").limit == 3
    assert [limit.name for limit in list_concurrency_limits()] == ["api", "db"]
    assert harness.services.concurrency.read("api") == read_concurrency_limit("api")

    updated = update_concurrency_limit("db", limit=5, active=False)
    assert (updated.limit, updated.active, updated.slot_decay_per_second) == (5, False, 0.0)
    assert update_concurrency_limit("db", slot_decay_per_second=2).is_rate_limit

    delete_concurrency_limit("db")
    with pytest.raises(ConcurrencyLimitNotFound, match="'db' does not exist"):
        read_concurrency_limit("db")
    with pytest.raises(ConcurrencyLimitNotFound):
        delete_concurrency_limit("db")
    with pytest.raises(ConcurrencyLimitNotFound):
        update_concurrency_limit("db", limit=1)


def test_invalid_limits_are_rejected(harness: TestHarness) -> None:
    create_concurrency_limit("db", 1)
    with pytest.raises(ConcurrencyLimitExists, match=r"already exists.*update_concurrency_limit"):
        create_concurrency_limit("db", 2)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="limit="):
            create_concurrency_limit("other", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="slot_decay_per_second"):
        create_concurrency_limit("other", 1, slot_decay_per_second=-1)
    with pytest.raises(ValueError, match="slot_decay_per_second"):
        update_concurrency_limit("db", slot_decay_per_second=float("nan"))
    with pytest.raises(ValueError, match="non-empty"):
        create_concurrency_limit("", 1)
    assert issubclass(ConcurrencyLimitNotFound, StratoflowError)
    assert issubclass(AcquireConcurrencySlotTimeout, TimeoutError)


def test_services_get_their_own_memory_store(harness: TestHarness) -> None:
    services = harness.services
    other = Services(
        backend=services.backend,
        clock=services.clock,
        result_store=services.result_store,
        cache_store=services.cache_store,
    )
    assert isinstance(services.concurrency, MemoryConcurrencyStore)
    assert isinstance(other.concurrency, MemoryConcurrencyStore)
    assert other.concurrency is not services.concurrency


def test_module_exports() -> None:
    import stratoflow.concurrency as module
    from stratoflow.concurrency import api

    assert module.concurrency is api.concurrency
    assert module.rate_limit is api.rate_limit


# concurrency()


def test_concurrency_holds_slots_for_the_block(harness: TestHarness) -> None:
    store = harness.services.concurrency
    create_concurrency_limit("db", 3)
    with concurrency("db", occupy=2):
        limit = store.read("db")
        assert limit is not None
        assert limit.leased_slots(harness.clock.now()) == 2
        assert len(limit.leases) == 1
        with (
            pytest.raises(AcquireConcurrencySlotTimeout),
            concurrency("db", occupy=2, timeout_seconds=0),
        ):
            pass
        with concurrency("db", timeout_seconds=0):
            pass
    limit = store.read("db")
    assert limit is not None
    assert limit.leases == ()
    assert get_renewer().held() == []


def test_a_limit_is_never_exceeded_under_contention(real_time: TestHarness) -> None:
    create_concurrency_limit("db", 3)
    body, peaks = live_count_recorder()
    start = threading.Barrier(12)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            with concurrency("db"):
                body()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert peaks[0] == 3
    limit = real_time.services.concurrency.read("db")
    assert limit is not None
    assert limit.leases == ()


def test_several_limits_are_taken_together_and_released(harness: TestHarness) -> None:
    store = harness.services.concurrency
    create_concurrency_limit("a", 1)
    create_concurrency_limit("b", 1)
    with concurrency(["b", "a"]):
        for name in ("a", "b"):
            limit = store.read(name)
            assert limit is not None
            assert limit.leased_slots(harness.clock.now()) == 1
    assert all(limit.leases == () for limit in store.list())


def test_timeout_raises_after_waiting_that_long(harness: TestHarness) -> None:
    create_concurrency_limit("db", 1)
    hold_elsewhere(harness.services.concurrency, "db", harness.clock)
    clock = harness.clock
    assert isinstance(clock, FakeClock)
    with (
        pytest.raises(AcquireConcurrencySlotTimeout) as raised,
        concurrency("db", timeout_seconds=5),
    ):
        pass
    assert isinstance(raised.value, TimeoutError)
    assert "5 second(s)" in str(raised.value)
    assert "'db'" in str(raised.value)
    assert sum(clock.sleeps) == pytest.approx(5.0)
    assert len(clock.sleeps) > 3  # backed off several times, not one long sleep


def test_occupy_more_than_the_limit_fails_at_once(harness: TestHarness) -> None:
    create_concurrency_limit("db", 2)
    with (
        pytest.raises(ValueError, match=r"occupy=3 is more than concurrency limit 'db' has \(2"),
        concurrency("db", occupy=3),
    ):
        pass
    with pytest.raises(ValueError, match="occupy=0"), concurrency("db", occupy=0):
        pass
    assert harness.clock.sleeps == []  # type: ignore[attr-defined]


# Missing, inactive, strict


def test_strict_missing_limit_raises_with_how_to_create_it(harness: TestHarness) -> None:
    with pytest.raises(ConcurrencyLimitNotFound) as raised, concurrency("missing", strict=True):
        pass
    message = str(raised.value)
    assert "Concurrency limit 'missing' does not exist" in message
    assert "create_concurrency_limit('missing', limit=<slots>)" in message
    with pytest.raises(ConcurrencyLimitNotFound, match="'missing' does not exist"):
        rate_limit("missing", strict=True)


def test_strict_inactive_limit_raises_with_how_to_activate_it(harness: TestHarness) -> None:
    create_concurrency_limit("db", 1, active=False)
    with pytest.raises(ConcurrencyLimitNotFound) as raised, concurrency("db", strict=True):
        pass
    assert "Concurrency limit 'db' is inactive" in str(raised.value)
    assert "update_concurrency_limit('db', active=True)" in str(raised.value)


def test_missing_or_inactive_limit_runs_unlimited_and_warns_once_per_name(
    harness: TestHarness, warnings: list[str]
) -> None:
    create_concurrency_limit("off", 1, active=False)
    for _ in range(3):
        with concurrency("missing"), concurrency("off"), concurrency("off"):
            pass
        rate_limit("missing")
    assert len(warnings) == 2
    assert "'missing' does not exist, so this runs without limiting" in warnings[0]
    assert "create_concurrency_limit('missing', limit=<slots>)" in warnings[0]
    assert "'off' is inactive" in warnings[1]
    limit = harness.services.concurrency.read("off")
    assert limit is not None
    assert limit.leases == ()


def test_the_warning_goes_to_the_run_logger_inside_a_run(
    harness: TestHarness, warnings: list[str]
) -> None:
    @task
    def limited() -> str:
        with concurrency("missing"):
            return "ran"

    @flow
    def pipeline() -> list[str]:
        return [limited(), limited()]

    assert pipeline() == ["ran", "ran"]
    messages = [m for m in harness.log_messages() if "'missing' does not exist" in m]
    assert len(messages) == 1
    assert warnings == []


# Leases


def test_a_dead_holders_slots_come_back_when_its_lease_expires(harness: TestHarness) -> None:
    store = harness.services.concurrency
    clock = harness.clock
    assert isinstance(clock, FakeClock)
    create_concurrency_limit("db", 1)
    hold_elsewhere(store, "db", clock, lease_id="dead")  # acquired, never released or renewed
    with pytest.raises(AcquireConcurrencySlotTimeout), concurrency("db", timeout_seconds=0):
        pass
    clock.advance(29)
    assert not store.try_acquire(["db"], 1, "x", clock.now(), 30)
    clock.advance(1.5)
    with concurrency("db", timeout_seconds=0):
        limit = store.read("db")
        assert limit is not None
        assert [lease.lease_id for lease in limit.leases] != ["dead"]
        assert len(limit.leases) == 1  # the expired lease was dropped


def test_a_waiter_takes_the_slot_once_the_dead_lease_expires(harness: TestHarness) -> None:
    clock = harness.clock
    assert isinstance(clock, FakeClock)
    create_concurrency_limit("db", 1)
    hold_elsewhere(harness.services.concurrency, "db", clock, lease_id="dead")
    with concurrency("db", timeout_seconds=60):
        waited = sum(clock.sleeps)
    assert 30 <= waited < 32


def test_renewal_keeps_a_lease_alive_past_its_first_expiry(harness: TestHarness) -> None:
    store = harness.services.concurrency
    clock = harness.clock
    assert isinstance(clock, FakeClock)
    create_concurrency_limit("db", 1)
    with concurrency("db", lease_seconds=30):
        (held,) = get_renewer().held()
        first_expiry = clock.now() + timedelta(seconds=30)
        for _ in range(4):
            clock.advance(20)
            get_renewer().renew_all()
        assert clock.now() > first_expiry + timedelta(seconds=40)
        assert not store.try_acquire(["db"], 1, "other", clock.now(), 30)
        limit = store.read("db")
        assert limit is not None
        assert limit.leases[0].expires == clock.now() + timedelta(seconds=30)
        assert not held.lost
    assert get_renewer().held() == []
    assert store.try_acquire(["db"], 1, "other", clock.now(), 30)


def test_the_renewer_thread_renews_in_real_time(real_time: TestHarness) -> None:
    store = real_time.services.concurrency
    create_concurrency_limit("db", 1)
    with concurrency("db", lease_seconds=0.3):
        time.sleep(0.75)  # 2.5 leases: only renewals keep it
        limit = store.read("db")
        assert limit is not None
        assert limit.leased_slots(SystemClock().now()) == 1
        assert not store.try_acquire(["db"], 1, "other", SystemClock().now(), 30)


def test_a_lease_that_is_gone_is_reported_lost_and_dropped() -> None:
    store = MemoryConcurrencyStore()
    clock = FakeClock()
    store.create("db", 1)
    renewer = LeaseRenewer(autostart=False)
    assert store.try_acquire(["db"], 1, "mine", clock.now(), 10)
    held = renewer.hold(store, "db", "mine", 10, clock)
    assert renewer.interval() == pytest.approx(10 / 3)
    clock.advance(9)
    renewer.renew_all()
    clock.advance(9)
    assert not store.try_acquire(["db"], 1, "other", clock.now(), 10)  # renewed: still held
    clock.advance(11)
    assert store.try_acquire(["db"], 1, "other", clock.now(), 10)  # expired and reclaimed
    renewer.renew_all()
    assert held.lost
    assert renewer.held() == []
    assert renewer.interval() is None


def test_a_lease_released_during_a_renewal_pass_is_not_reported_lost(
    warnings: list[str],
) -> None:
    renewer = LeaseRenewer(autostart=False)
    clock = FakeClock()

    class ReleasedMeanwhile(MemoryConcurrencyStore):
        def renew(self, name: str, lease_id: str, now: Any, lease_seconds: float) -> bool:
            (held,) = renewer.held()
            renewer.drop(held)  # what LeaseHolding.release does, in this order
            self.release(name, lease_id)
            return super().renew(name, lease_id, now, lease_seconds)

    store = ReleasedMeanwhile()
    store.create("db", 1)
    assert store.try_acquire(["db"], 1, "mine", clock.now(), 10)
    held = renewer.hold(store, "db", "mine", 10, clock)
    renewer.renew_all()
    assert not held.lost
    assert warnings == []


def test_store_try_acquire_gives_back_what_it_took_when_one_name_is_full() -> None:
    store = MemoryConcurrencyStore()
    clock = FakeClock()
    store.create("a", 1)
    store.create("b", 1)
    assert store.try_acquire(["b"], 1, "other", clock.now(), 30)
    assert not store.try_acquire(["a", "b"], 1, "mine", clock.now(), 30)
    limit_a = store.read("a")
    assert limit_a is not None
    assert limit_a.leases == ()
    assert store.try_acquire(["missing"], 1, "mine", clock.now(), 30)  # a missing limit
    assert not store.renew("a", "nobody", clock.now(), 30)
    store.release("a", "nobody")  # ignored


# Rate limits


def test_rate_limit_lets_through_limit_plus_decay(harness: TestHarness) -> None:
    clock = harness.clock
    assert isinstance(clock, FakeClock)
    create_concurrency_limit("api", 5, slot_decay_per_second=2)

    def burst() -> int:
        passed = 0
        while True:
            try:
                rate_limit("api", timeout_seconds=0)
            except AcquireConcurrencySlotTimeout:
                return passed
            passed += 1

    assert burst() == 5
    clock.advance(1)
    assert burst() == 2
    clock.advance(0.5)
    assert burst() == 1
    clock.advance(100)
    assert burst() == 5  # the counter stops at zero: no credit beyond the limit


def test_rate_limit_waits_for_decay(harness: TestHarness) -> None:
    clock = harness.clock
    assert isinstance(clock, FakeClock)
    create_concurrency_limit("api", 5, slot_decay_per_second=2)
    start = clock.now()
    for _ in range(15):
        rate_limit("api")
    elapsed = (clock.now() - start).total_seconds()
    assert 5.0 <= elapsed < 6.5  # (15 - 5) / 2 seconds, plus at most the last backoff


def test_rate_limit_never_exceeds_limit_plus_decay_over_time() -> None:
    store = MemoryConcurrencyStore()
    clock = FakeClock()
    store.create("api", 3, slot_decay_per_second=4)
    passed = 0
    for _ in range(100):  # 10 seconds, asking 3 times per step of 0.1 s
        passed += sum(store.try_consume_rate("api", 1, clock.now()) for _ in range(3))
        clock.advance(0.1)
    assert passed <= 3 + 4 * 10
    assert passed >= 3 + 4 * 9.9 - 1


def test_rate_limit_needs_a_decay(harness: TestHarness) -> None:
    create_concurrency_limit("db", 5)
    with pytest.raises(ValueError, match=r"no slot decay.*slot_decay_per_second"):
        rate_limit("db")
    with pytest.raises(ValueError, match="occupy=6 is more than"):
        create_concurrency_limit("api", 5, slot_decay_per_second=1)
        rate_limit("api", occupy=6)


def test_leases_and_rate_slots_share_the_limit(harness: TestHarness) -> None:
    create_concurrency_limit("api", 2, slot_decay_per_second=1)
    with concurrency("api"):
        rate_limit("api", timeout_seconds=0)
        with pytest.raises(AcquireConcurrencySlotTimeout):
            rate_limit("api", timeout_seconds=0)


# Tag limits on task runs


def test_a_tagged_task_run_waits_for_a_slot_then_runs() -> None:
    store_box: list[ConcurrencyStore] = []
    clock = HookedClock(lambda n: store_box[0].release("tag:db", "other") if n == 2 else None)
    with stratoflow_test_harness(clock=clock) as harness:
        store = harness.services.concurrency
        store_box.append(store)
        create_concurrency_limit("tag:db", 1)
        hold_elsewhere(store, "tag:db", clock)

        @task(tags=["db", "other-tag"])
        def write() -> str:
            limit = store.read("tag:db")
            assert limit is not None
            assert limit.leased_slots(clock.now()) == 1
            return "written"

        @flow
        def pipeline() -> str:
            return write()

        assert pipeline() == "written"
        (run,) = harness.task_runs()
        assert history_names(run) == ["Pending", "AwaitingConcurrencySlot", "Running", "Completed"]
        waiting = run.state_history[1]
        assert waiting.is_pending()
        assert "concurrency limit 'tag:db'" in (waiting.message or "")
        assert len(clock.sleeps) == 2
        limit = store.read("tag:db")
        assert limit is not None
        assert limit.leases == ()


def test_a_task_run_waiting_on_two_tag_limits_is_awaiting_once() -> None:
    store = MemoryConcurrencyStore()
    clock = HookedClock(
        lambda n: store.release("tag:a", "other") if n == 1 else store.release("tag:b", "other")
    )
    with stratoflow_test_harness(clock=clock) as harness:
        harness.services.concurrency = store
        for name in ("tag:b", "tag:a"):
            create_concurrency_limit(name, 1)
            hold_elsewhere(store, name, clock)

        @task(tags=["b", "a"])
        def work() -> str:
            return "done"

        @flow
        def pipeline() -> str:
            return work()

        assert pipeline() == "done"
        (run,) = harness.task_runs()
        assert history_names(run) == ["Pending", "AwaitingConcurrencySlot", "Running", "Completed"]
        assert "'tag:a'" in (run.state_history[1].message or "")
        assert len(clock.sleeps) == 2
        assert all(limit.leases == () for limit in store.list())


def test_tag_limits_hold_across_the_process_pool(real_time: TestHarness) -> None:
    """The flow's process takes the slots before handing the run to a worker process and
    gives them back when it records the worker's final state."""
    create_concurrency_limit("tag:db", 1)

    @task(tags=["db"])
    def hold(i: int) -> tuple[float, float]:
        start = time.time()
        time.sleep(0.15)
        return start, time.time()

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=3))
    def pipeline() -> list[tuple[float, float]]:
        return [future.result() for future in hold.map(range(3))]

    spans = sorted(pipeline())
    assert all(first[1] <= second[0] for first, second in itertools.pairwise(spans))
    limit = real_time.services.concurrency.read("tag:db")
    assert limit is not None
    assert limit.leases == ()


def test_untagged_or_unlimited_task_runs_do_not_wait(harness: TestHarness) -> None:
    create_concurrency_limit("tag:off", 1, active=False)
    hold_elsewhere(harness.services.concurrency, "tag:other", harness.clock)

    @task(tags=["off", "no-limit"])
    def work() -> int:
        return 1

    @flow
    def pipeline() -> int:
        with tags("also-no-limit"):
            return work() + work()

    assert pipeline() == 2
    assert [history_names(run) for run in harness.task_runs()] == [
        ["Pending", "Running", "Completed"]
    ] * 2


def test_tag_limit_is_never_exceeded_by_submitted_task_runs(real_time: TestHarness) -> None:
    create_concurrency_limit("tag:db", 2)
    body, peaks = live_count_recorder()

    @task(tags=["db"])
    def write(i: int) -> int:
        body()
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=8))
    def pipeline() -> list[int]:
        return [future.result() for future in write.map(range(8))]

    assert pipeline() == list(range(8))
    assert peaks[0] == 2
    runs = real_time.task_runs()
    assert all(run.state is not None and run.state.is_completed() for run in runs)
    assert any("AwaitingConcurrencySlot" in history_names(run) for run in runs)
    limit = real_time.services.concurrency.read("tag:db")
    assert limit is not None
    assert limit.leases == ()


def test_slots_are_released_after_a_task_run_fails(harness: TestHarness) -> None:
    create_concurrency_limit("tag:db", 1)
    store = harness.services.concurrency

    @task(tags=["db"], retries=1)
    def fails() -> None:
        raise ValueError("boom")

    @task(tags=["db"])
    def succeeds() -> str:
        return "ok"

    @flow
    def pipeline() -> tuple[bool, str]:
        return fails(return_state=True).is_failed(), succeeds()

    assert pipeline() == (True, "ok")
    first, second = harness.task_runs()
    assert "AwaitingConcurrencySlot" not in history_names(first) + history_names(second)
    limit = store.read("tag:db")
    assert limit is not None
    assert limit.leases == ()
    assert get_renewer().held() == []


class Crash(BaseException):
    pass


def test_slots_are_released_after_a_task_run_crashes(harness: TestHarness) -> None:
    create_concurrency_limit("tag:db", 1)

    @task(tags=["db"])
    def crashes() -> None:
        raise Crash("process going down")

    @flow
    def pipeline() -> None:
        crashes()

    with pytest.raises(Crash):
        pipeline()
    (run,) = harness.task_runs(harness.last_flow_run().id)
    assert run.state is not None
    assert run.state.is_crashed()
    limit = harness.services.concurrency.read("tag:db")
    assert limit is not None
    assert limit.leases == ()


def test_cancelling_the_flow_stops_a_task_run_waiting_for_a_slot() -> None:
    def cancel(n: int) -> None:
        ctx = flow_run_context.get()
        assert ctx is not None
        ctx.cancel_requested.set()

    with stratoflow_test_harness(clock=HookedClock(cancel)) as harness:
        create_concurrency_limit("tag:db", 1)
        hold_elsewhere(harness.services.concurrency, "tag:db", harness.clock)

        @task(tags=["db"])
        def never() -> None:
            raise AssertionError("must not run")

        states: list[State] = []

        @flow
        def pipeline() -> None:
            states.append(never(return_state=True))

        pipeline(return_state=True)
        (state,) = states
        assert state.is_cancelled()
        assert "waited for a concurrency slot" in (state.message or "")
        (run,) = harness.task_runs()
        assert history_names(run) == ["Pending", "AwaitingConcurrencySlot", "Cancelled"]
        limit = harness.services.concurrency.read("tag:db")
        assert limit is not None
        assert [lease.lease_id for lease in limit.leases] == ["other"]

"""Flow-run state events derived on read (pure): from a run's item alone they are the
events the stream derived from each of its writes; and the readers' merge of stored and
derived events (newest first, filters, limit, early stop, cursor paging)."""

from __future__ import annotations

import copy
import itertools
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from stratoflow import resources
from stratoflow.backends.aws.changed_runs import ChangedRun
from stratoflow.backends.aws.items import flow_run_to_item, from_item, task_run_to_item
from stratoflow.events.derive import (
    StreamChange,
    UnreadableRecord,
    derive_events,
    flow_run_state_events,
    task_run_events,
)
from stratoflow.events.models import Event, Resource
from stratoflow.events.on_read import (
    CLOCK_SKEW,
    EventsWithDerived,
    merged,
    newest_derived,
)
from stratoflow.events.store import MemoryEventStore
from stratoflow.models import STATE_HISTORY_LIMIT, FlowRun, TaskRun
from stratoflow.orchestration.transitions import apply_transition
from stratoflow.states import (
    AwaitingRetry,
    Completed,
    Failed,
    Late,
    Pending,
    Resuming,
    Running,
    Scheduled,
    State,
    Suspended,
)
from stratoflow.ui.pages.events import EventFilter, read_page
from tests._time import anchor

T0 = anchor()


def at(state: State, seconds: float) -> State:
    state.timestamp = T0 + timedelta(seconds=seconds)
    return state


def image(low_level: dict[str, Any]) -> dict[str, Any]:
    """As the stream delivers an item (and a reader reads it): deserialized."""
    return from_item(copy.deepcopy(low_level))


def modify(old: dict[str, Any], new: dict[str, Any]) -> StreamChange:
    return StreamChange("MODIFY", new_image=image(new), old_image=image(old))


def new_run(run_id: str = "run-1", **fields: Any) -> FlowRun:
    values: dict[str, Any] = {
        "id": run_id,
        "name": "brave-otter",
        "flow_name": "etl",
        "tags": ("nightly",),
        "deployment_name": "etl-nightly",
        "work_pool_name": "default",
        "work_queue_name": "high",
        "created": T0,
        "state": at(Scheduled(), 0),
        "version": 1,
        **fields,
    }
    return FlowRun(**values)


def drive(run: FlowRun, states: list[State]) -> tuple[list[dict[str, Any]], list[Event]]:
    """The run's item after creation and after each transition, and every event the
    stream derived from those writes."""
    items = [flow_run_to_item(run)]
    for state in states:
        apply_transition(run, state, force=True)
        items.append(flow_run_to_item(run))
    streamed = derive_events(StreamChange("INSERT", new_image=image(items[0])))
    for old, new in itertools.pairwise(items):
        streamed += derive_events(modify(old, new))
    return items, streamed


def a_retried_run() -> list[State]:
    """Late, a failed attempt and its retry, a pause and its resume."""
    return [
        at(Late(), 60),
        at(Pending(), 61),
        at(Running(), 62),
        at(Failed("boom: ZeroDivisionError"), 70),
        at(AwaitingRetry(), 71),
        at(Pending(), 81),
        at(Running(), 82),
        at(Suspended("waiting for input", pause_key="pause-0"), 90),
        at(Resuming("Resumed."), 95),
        at(Running(), 96),
        at(Completed(), 100),
    ]


# The derivation from an item equals the stream's


def test_an_items_history_derives_the_events_the_stream_derived() -> None:
    items, streamed = drive(new_run(), a_retried_run())
    derived = flow_run_state_events(image(items[-1]))
    assert derived == streamed  # ids, times, resource, related, payload, follows: all of it
    assert [e.event.removeprefix("stratoflow.flow-run.") for e in derived] == [
        "Scheduled",
        "Late",
        "Pending",
        "Running",
        "Failed",
        "AwaitingRetry",
        "Pending",
        "Running",
        "Suspended",
        "Paused",
        "Resuming",
        "Resumed",
        "Running",
        "Completed",
    ]


def test_every_intermediate_item_derives_the_events_streamed_so_far() -> None:
    items, streamed = drive(new_run(), a_retried_run())
    for item in items:
        derived = flow_run_state_events(image(item))
        assert derived == streamed[: len(derived)]
        assert derived[-1].resource.get("stratoflow.state-name") == item["state"]["M"]["name"]["S"]


def test_a_run_created_without_a_state_derives_the_same_events() -> None:
    run = new_run(state=None, version=0)
    items, streamed = drive(run, [at(Pending(), 1), at(Running(), 2), at(Completed(), 3)])
    assert flow_run_state_events(image(items[0])) == []
    assert flow_run_state_events(image(items[-1])) == streamed
    assert streamed[0].payload["initial_state"] is None


def test_a_history_cut_at_its_bound_derives_the_events_of_the_states_it_holds() -> None:
    flips = [at(Running() if i % 2 else Pending(), i + 1) for i in range(STATE_HISTORY_LIMIT + 4)]
    items, streamed = drive(new_run(), flips)
    derived = flow_run_state_events(image(items[-1]))
    by_id = {e.id: e for e in streamed}
    assert all(by_id[e.id] == e for e in derived)  # each one exactly the stream's
    # The states the history lost, and the oldest one it kept (its previous state, which
    # the event names, is gone): the last STATE_HISTORY_LIMIT states have their events.
    assert derived == streamed[-STATE_HISTORY_LIMIT:]


def test_a_long_message_is_cut_once_the_state_is_in_the_history() -> None:
    long = "x" * 500
    items, streamed = drive(new_run(), [at(Failed(long), 5)])
    assert flow_run_state_events(image(items[-1])) == streamed  # the current state: whole
    run = new_run(state=at(Running(), 0))
    items, streamed = drive(run, [at(Failed(long), 5), at(AwaitingRetry(), 6)])
    derived = flow_run_state_events(image(items[-1]))
    failed_streamed, failed_derived = streamed[1], derived[1]
    assert failed_streamed.resource.get("stratoflow.state-message") == long
    cut = failed_derived.resource.get("stratoflow.state-message")
    assert cut is not None and len(cut) == 200 and long.startswith(cut[:-1])
    assert failed_derived.payload["validated_state"]["message"] == cut
    # Everything else is the stream's.
    assert (
        failed_derived.model_copy(
            update={"resource": failed_streamed.resource, "payload": failed_streamed.payload}
        )
        == failed_streamed
    )
    assert [derived[0], derived[2]] == [streamed[0], streamed[2]]


def test_an_empty_message_is_no_message_either_way() -> None:
    items, streamed = drive(new_run(), [at(Running(message=""), 1), at(Completed(), 2)])
    assert flow_run_state_events(image(items[-1])) == streamed
    assert streamed[1].payload["validated_state"]["message"] is None


def test_a_task_runs_cut_history_also_leaves_out_the_oldest_kept_state() -> None:
    run = TaskRun(
        id="task-1",
        name="extract-0",
        task_key="extract",
        dynamic_key="0",
        task_name="extract",
        flow_run_id="run-1",
        created=T0,
    )
    apply_transition(run, at(Pending(), 0))
    before = task_run_to_item(run)
    for i in range(STATE_HISTORY_LIMIT + 2):
        apply_transition(run, at(Running() if i % 2 == 0 else Pending(), i + 1), force=True)
    after = task_run_to_item(run)
    streamed = derive_events(modify(before, after))
    derived = task_run_events(image(after))
    assert derived == streamed[-STATE_HISTORY_LIMIT:]


# Malformed items: refused, never a crash


def _garbled(**changes: Any) -> dict[str, Any]:
    items, _ = drive(new_run(), [at(Pending(), 1)])
    item = image(items[-1])
    item.update(changes)
    return item


@pytest.mark.parametrize(
    "item",
    [
        _garbled(state="garbage"),
        _garbled(state={"type": "NOPE", "name": "x", "timestamp": T0.isoformat()}),
        _garbled(state={"type": "RUNNING", "name": "x", "timestamp": "yesterday"}),
        _garbled(state={"type": "RUNNING", "name": "x" * 2000, "timestamp": T0.isoformat()}),
        _garbled(version="seven"),
        _garbled(state_history_z=b"not zlib"),
        _garbled(state_history_z=zlib.compress(b"0" * 100_000)),
        _garbled(**{resources.SORT_KEY: "HEARTBEAT"}),
        {resources.PARTITION_KEY: "DEPLOYMENT#x", resources.SORT_KEY: "META"},
    ],
)
def test_an_unreadable_item_is_refused(item: dict[str, Any]) -> None:
    with pytest.raises(UnreadableRecord):
        flow_run_state_events(item)


# Merging stored and derived events


def event(minutes: float, name: str = "acme.tick", resource: str = "acme.clock.1") -> Event:
    return Event(
        event=name,
        resource=Resource.of(resource),
        occurred=T0 + timedelta(minutes=minutes),
    )


def changed_run(run_id: str, start_minutes: float, *, ended: bool = True) -> ChangedRun:
    """A run Scheduled at `start_minutes`, then Pending, Running (and Completed), a minute
    apart."""
    states = [at(Pending(), 60 * start_minutes + 60), at(Running(), 60 * start_minutes + 120)]
    if ended:
        states.append(at(Completed(), 60 * start_minutes + 180))
    items, _ = drive(new_run(run_id, state=at(Scheduled(), 60 * start_minutes)), states)
    item = image(items[-1])
    last = flow_run_state_events(item)[-1].occurred
    return ChangedRun(item, last)


class Runs:
    """Stands in for the backend: the runs in its order, counting how many were read."""

    def __init__(self, waiting: list[ChangedRun], changed: list[ChangedRun]) -> None:
        self.waiting = waiting
        self.changed = sorted(changed, key=lambda r: r.changed or T0, reverse=True)
        self.read = 0
        self.asked: list[datetime] = []

    def list_flow_runs_changed_since(self, moment: datetime) -> Iterator[ChangedRun]:
        self.asked.append(moment)
        for run in [*self.waiting, *self.changed]:
            self.read += 1
            yield run


def test_merged_keeps_one_per_id_newest_first() -> None:
    a, b, c = event(1), event(2), event(3)
    assert merged([c, a], [b, a.model_copy(update={"payload": {"derived": True}})], 10) == [c, b, a]
    assert merged([c, a], [b], 2) == [c, b]


def test_newest_derived_filters_and_limits() -> None:
    runs = Runs([], [changed_run("run-1", 0), changed_run("run-2", 10)])
    found = newest_derived(runs.list_flow_runs_changed_since(T0), T0, None, limit=100)
    assert len(found) == 8
    assert [e.occurred for e in found] == sorted((e.occurred for e in found), reverse=True)
    completed = newest_derived(
        iter(runs.changed), T0, None, name="stratoflow.flow-run.Completed", limit=100
    )
    assert [e.resource.id for e in completed] == [
        "stratoflow.flow-run.run-2",
        "stratoflow.flow-run.run-1",
    ]
    only_one = newest_derived(iter(runs.changed), T0, None, resource="stratoflow.flow-run.run-1")
    assert {e.resource.id for e in only_one} == {"stratoflow.flow-run.run-1"}
    window = newest_derived(
        iter(runs.changed), T0 + timedelta(minutes=1), T0 + timedelta(minutes=11), limit=100
    )
    assert [e.event.rsplit(".", 1)[1] for e in window] == [
        "Pending",
        "Scheduled",
        "Completed",
        "Running",
        "Pending",
    ]


def test_newest_derived_stops_at_runs_older_than_what_it_kept() -> None:
    old = [changed_run(f"old-{i}", i) for i in range(20)]
    recent = [changed_run(f"new-{i}", 100 + i) for i in range(3)]
    waiting = [ChangedRun(changed_run("waiting", 200, ended=False).item, None)]
    runs = Runs(waiting, [*old, *recent])
    found = newest_derived(runs.list_flow_runs_changed_since(T0), T0, None, limit=5)
    assert [e.resource.id for e in found[:3]] == ["stratoflow.flow-run.waiting"] * 3
    assert len(found) == 5
    assert runs.read == len(waiting) + len(recent) + 1  # the first old run, where it stopped


def test_newest_derived_reads_runs_within_the_clock_skew() -> None:
    # "new" keeps minutes 103, 102, 101. "skewed" last changed at minute 100, earlier
    # than all three, but its earlier states may be stamped up to CLOCK_SKEW later: read.
    # "old" last changed at minute 91: stopped at.
    assert timedelta(minutes=2) <= CLOCK_SKEW
    runs = Runs([], [changed_run("new", 100), changed_run("skewed", 97), changed_run("old", 88)])
    newest_derived(runs.list_flow_runs_changed_since(T0), T0, None, limit=3)
    assert runs.read == 3


def test_newest_derived_skips_unreadable_items_and_runs_read_twice() -> None:
    good = changed_run("run-1", 0)
    garbled = ChangedRun({**good.item, "state": "garbage"}, good.changed)
    found = newest_derived(iter([garbled, good, good]), T0, None)
    assert len(found) == 4 and len({e.id for e in found}) == 4


def test_the_reader_merges_stored_and_derived_events() -> None:
    store = MemoryEventStore()
    own = event(30)
    store.put(own, derived=False)
    runs = Runs([], [changed_run("run-1", 0)])
    [stored_copy, *_] = flow_run_state_events(runs.changed[0].item)
    store.put(stored_copy, derived=True)  # stored before the setting was turned off
    reader = EventsWithDerived(store, runs)
    found = reader.query(T0 - timedelta(hours=1))
    assert found[0] == own and len(found) == 5 and len({e.id for e in found}) == 5
    assert runs.asked == [T0 - timedelta(hours=1) - CLOCK_SKEW]
    assert reader.query(T0 - timedelta(hours=1), limit=2) == found[:2]
    # Filters that no flow-run event matches read no runs.
    asked = len(runs.asked)
    assert reader.query(T0 - timedelta(hours=1), name="acme.") == [own]
    assert reader.query(T0 - timedelta(hours=1), resource="acme.clock.") == [own]
    assert len(runs.asked) == asked
    flow_runs = reader.query(T0 - timedelta(hours=1), name="stratoflow.")
    assert len(flow_runs) == 4
    assert reader.get(own.id) == own


def test_the_events_pages_follow_a_cursor_over_stored_and_derived_events() -> None:
    store = MemoryEventStore()
    mine = [event(m / 2) for m in range(40)]
    for made in mine:
        store.put(made, derived=False)
    runs = Runs([], [changed_run(f"run-{i}", i * 3) for i in range(10)])
    reader = EventsWithDerived(store, runs)
    now = T0 + timedelta(hours=2)
    seen: list[str] = []
    where = EventFilter()
    while True:
        page = read_page(reader, where, now)
        seen += [e.id for e in page.events]
        if page.next is None:
            break
        where = EventFilter(before=page.next)
    assert len(seen) == len(set(seen)) == 40 + 10 * 4

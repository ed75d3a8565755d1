"""Malformed and oversized input: SQS bodies that are not work messages go to the
dead-letter queue with their reason while the worker goes on and no run is affected;
stream records that cannot be read are reported as batch item failures, retried a
bounded number of times, then dropped (what the failure destination would receive),
while the other records are processed and the shard keeps moving."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stratoflow import platform as platform_module
from stratoflow.backends.aws.items import to_item
from stratoflow.deployments.runs import run_deployment
from stratoflow.dev.event_sources import StreamSource, sqs_event
from stratoflow.dev.lambda_runtime import invoke
from stratoflow.events.store import EventStore
from stratoflow.models import FlowRun
from stratoflow.settings import get_settings
from stratoflow.states import Completed, Pending, Running
from stratoflow.workers.messages import MAX_BODY_BYTES, FlowRunMessage
from stratoflow.workers.queues import REASON_ATTRIBUTE
from stratoflow.workers.registry import list_workers
from tests.chaos._chaos import SCALE, Pollers, Stack, audit, record_figures, settle

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240 if SCALE.name == "default" else 900)]

# (body, a phrase its dead-letter reason must contain)
MALFORMED: list[tuple[str, str]] = [
    ("definitely not json", "not a flow run message"),
    ("", "not a flow run message"),
    ("null", "not a flow run message"),
    ("[1, 2, 3]", "not a flow run message"),
    ("{}", "flow_run_id: Field required"),
    ('{"flow_run_id": ""}', "flow_run_id: String should have at least 1 character"),
    ('{"flow_run_id": 42}', "flow_run_id: Input should be a valid string"),
    (json.dumps({"flow_run_id": "x" * 65}), "flow_run_id: String should have at most 64"),
    (json.dumps({"kind": "task-run", "flow_run_id": "abc"}), "kind: Input should be 'flow-run'"),
    (json.dumps({"version": 2, "flow_run_id": "abc"}), "version: Input should be 1"),
    (json.dumps({"flow_run_id": "abc", "attempt": 0}), "attempt: Input should be greater"),
    ('{"flow_run_id": "abc"', "not a flow run message"),
    ("\u2603 \u00e9t\u00e9 \U0001f4a5", "not a flow run message"),
    # Oversized: a work message padded past the limit, and one near SQS's own limit.
    (
        json.dumps({"flow_run_id": "abc", "padding": "p" * (MAX_BODY_BYTES + 1)}),
        f"over {MAX_BODY_BYTES}",
    ),
    ("z" * 200_000, "message body is 200000 bytes"),
]


def send_body(stack: Stack, pool: str, body: str) -> None:
    queues = stack.platform.queues
    queues.client.send_message(QueueUrl=queues.url(pool, "default"), MessageBody=body)


def check_dead_letters(found: list[dict[str, Any]], sent: list[tuple[str, str]]) -> None:
    """Each malformed body is in the DLQ once, with its reason."""
    reasons = {}
    for message in found:
        reason = message["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]
        assert message["Body"] not in reasons, f"dead-lettered twice: {message['Body'][:80]}"
        reasons[message["Body"]] = reason
    expected = {("<empty>" if body == "" else body): phrase for body, phrase in sent}
    assert set(reasons) == set(expected)
    for body, phrase in expected.items():
        assert phrase in reasons[body], (body[:80], reasons[body])


def test_malformed_sqs_bodies_are_dead_lettered_and_the_poller_goes_on(stack: Stack) -> None:
    began = time.monotonic()
    platform = stack.platform
    backend = platform.backend
    # A final run, and a message for it (stale), and one for a run that does not exist.
    finished = run_deployment("bad-input-steady", timeout=0)
    backend.set_flow_run_state(
        finished.id, Completed("finished before its message came"), force=True
    )
    finished_version = backend.read_flow_run(finished.id).version
    unknown = FlowRunMessage(flow_run_id=str(uuid.uuid4()), deployment="bad-input-steady")

    pollers = Pollers(stack, "malformed")
    created = []
    try:
        pollers.start()
        for index, (body, _) in enumerate(MALFORMED * max(1, SCALE.malformed_runs // 4)):
            send_body(stack, "malformed", body)
            if index % 3 == 0 and len(created) < SCALE.malformed_runs:
                created.append(run_deployment("bad-input-steady", timeout=0))
        while len(created) < SCALE.malformed_runs:
            created.append(run_deployment("bad-input-steady", timeout=0))
        send_body(stack, "malformed", unknown.body())
        send_body(stack, "malformed", FlowRunMessage(flow_run_id=finished.id).body())

        runs = settle(
            lambda: [r for r in stack.runs_of("bad-input-steady") if r.id != finished.id],
            expected=len(created),
            timeout=120,
        )
        deadline = time.monotonic() + 60
        while stack.queue_depth("malformed") != (0, 0, 0):
            assert time.monotonic() < deadline, stack.queue_depth("malformed")
            time.sleep(0.5)
        pollers.check_alive()  # the worker is alive, and still registered as such
        (worker,) = [w for w in list_workers(platform, "malformed") if w.alive]
        assert worker.name == pollers.live[0].name
        pollers.stop()
    except BaseException:
        print(pollers.logs())
        raise
    finally:
        pollers.close()

    sent = MALFORMED * max(1, SCALE.malformed_runs // 4)
    dead = stack.dead_letters("malformed")
    # A repeated body is dead-lettered each time it is sent: compare the distinct ones.
    assert len(dead) == len(sent)
    check_dead_letters(list({m["Body"]: m for m in dead}.values()), MALFORMED)
    # No run affected: the real runs ran once each, the final one was not touched, and
    # nothing was created for the unknown id.
    report = audit(stack, runs)
    assert report.states == {"Completed": len(created)}
    assert all(len(stack.executions(r.id)) == 1 for r in runs)
    stored = backend.read_flow_run(finished.id)
    assert (stored.state_name, stored.version) == ("Completed", finished_version)
    assert stack.executions(finished.id) == []
    assert {r.id for r in runs} == {r.id for r in created}
    record_figures(
        "malformed SQS bodies (poller)",
        malformed_bodies=len(sent),
        largest_body_bytes=max(len(b.encode()) for b, _ in sent),
        dead_lettered=len(dead),
        stale_or_unknown_dropped=2,
        real_runs=len(runs),
        seconds=round(time.monotonic() - began, 1),
    )


def test_malformed_records_reach_the_lambda_worker_and_are_dead_lettered(stack: Stack) -> None:
    platform = stack.platform
    name = f"{platform.settings.queue_prefix}-faults-default"
    arn = f"arn:aws:sqs:us-east-1:123456789012:{name}"
    good = run_deployment("fault-steady", timeout=0)
    queues = platform.queues
    received = queues.client.receive_message(QueueUrl=queues.url("faults", "default")).get(
        "Messages", []
    )
    assert [json.loads(m["Body"])["flow_run_id"] for m in received] == [good.id]
    [record] = sqs_event(received, arn)["Records"]
    records = [record]
    for index, (body, _) in enumerate(MALFORMED):
        fake = {"MessageId": f"malformed-{index}", "ReceiptHandle": "-", "Body": body}
        records.insert(index % len(records), sqs_event([fake], arn)["Records"][0])

    response = invoke("lambda_worker", {"Records": records})

    assert response == {"batchItemFailures": []}  # dead-lettered counts as processed
    check_dead_letters(stack.dead_letters("faults"), MALFORMED)
    done = backend_run(stack, good.id)
    assert done.state_name == "Completed"
    assert len(stack.executions(good.id)) == 1
    record_figures("malformed SQS bodies (Lambda worker)", records=len(records))


def backend_run(stack: Stack, run_id: str) -> FlowRun:
    return stack.platform.backend.read_flow_run(run_id)


# Stream records


class StreamFromNow(StreamSource):
    """The runtime's stream source, reading from the end of the shard as it is now (an
    event source mapping created with StartingPosition LATEST), not from the start of
    everything the suite wrote before."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refresh_shards()  # now: what is written from here on is delivered

    def _refresh_shards(self) -> None:
        shards = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"][
            "Shards"
        ]
        for shard in shards:
            if shard["ShardId"] not in self._iterators:
                self._iterators[shard["ShardId"]] = self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
                )["ShardIterator"]


@pytest.fixture
def flow_run_events_stored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The stream handler stores flow-run events (STRATOFLOW_STORE_FLOW_RUN_EVENTS): the
    stream tests see which records it processed by the events it stored."""
    monkeypatch.setenv("STRATOFLOW_STORE_FLOW_RUN_EVENTS", "true")
    get_settings.cache_clear()
    monkeypatch.setattr(platform_module, "_platform", None)  # the handler's, rebuilt
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def write_a_run(stack: Stack) -> FlowRun:
    backend = stack.platform.backend
    run = FlowRun(
        id=str(uuid.uuid4()), name="streamed", flow_name="streamed", created=datetime.now(UTC)
    )
    backend.create_flow_run(run)
    for state in (Pending(), Running(), Completed()):
        backend.set_flow_run_state(run.id, state)
    return run


def write_poison(stack: Stack, what: str) -> str:
    """A flow run item the stream handler cannot read."""
    run_id = f"poison-{uuid.uuid4()}"
    item: dict[str, Any] = {
        "pk": f"FLOWRUN#{run_id}",
        "sk": "META",
        "name": "poison",
        "flow_name": "poison",
        "version": 1,
    }
    if what == "state":
        item["state"] = "garbage"
    elif what == "type":
        item["state"] = {"type": "EXPLODED", "name": "Exploded"}
    elif what == "time":
        item["state"] = {"type": "RUNNING", "name": "Running", "timestamp": "yesterday-ish"}
    backend = stack.platform.backend
    backend.dynamodb.put_item(TableName=backend.table, Item=to_item(item))
    return run_id


@pytest.mark.usefixtures("flow_run_events_stored")
def test_poison_stream_records_are_reported_retried_dropped_and_the_shard_moves_on(
    stack: Stack,
) -> None:
    began = time.monotonic()
    platform = stack.platform
    invocations: list[tuple[int, list[str]]] = []

    def deliver(name: str, event: dict[str, Any]) -> Any:
        response = invoke(name, event)
        failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
        invocations.append((len(event["Records"]), failed))
        return response

    source = StreamFromNow(platform, deliver, max_retries=2)
    before = write_a_run(stack)
    poisons = [write_poison(stack, what) for what in ("state", "type", "time")]
    after = write_a_run(stack)

    delivered = 0
    deadline = time.monotonic() + 60
    while (count := source.poll()) or not delivered:
        delivered += count
        assert time.monotonic() < deadline

    # The poison records: in batchItemFailures at the first delivery and each retry,
    # then dropped (the failure destination's job); nothing else was dropped.
    dropped = {r["dynamodb"]["Keys"]["pk"]["S"] for r in source.dropped}
    assert dropped == {f"FLOWRUN#{p}" for p in poisons}
    # (Later invocations carry the records of the events the handler stored.)
    assert [len(failed) for _, failed in invocations[:3]] == [len(poisons)] * 3
    assert [size for size, _ in invocations[1:3]] == [len(poisons)] * 2
    assert all(not failed for _, failed in invocations[3:])
    # The other records were processed: both runs' state events are stored.
    store = EventStore(platform.backend.dynamodb, platform.backend.table)
    since = datetime.now(UTC) - timedelta(hours=1)
    for run in (before, after):
        names = {e.event for e in store.query(since, resource=f"stratoflow.flow-run.{run.id}")}
        assert {"stratoflow.flow-run.Pending", "stratoflow.flow-run.Completed"} <= names, names

    # The shard keeps moving: a later run is delivered, nothing more is dropped.
    later = write_a_run(stack)
    while source.poll():
        pass
    names = {e.event for e in store.query(since, resource=f"stratoflow.flow-run.{later.id}")}
    assert "stratoflow.flow-run.Completed" in names
    assert len(source.dropped) == len(poisons)
    for poison in poisons:
        platform.backend.dynamodb.delete_item(
            TableName=platform.backend.table,
            Key={"pk": {"S": f"FLOWRUN#{poison}"}, "sk": {"S": "META"}},
        )
    record_figures(
        "malformed stream records",
        records_delivered=delivered,
        poison_records=len(poisons),
        invocations=len(invocations),
        dropped=len(source.dropped),
        seconds=round(time.monotonic() - began, 1),
    )


@pytest.mark.usefixtures("flow_run_events_stored")
def test_garbage_records_handed_to_the_stream_handler_fail_alone(stack: Stack) -> None:
    """Records no stream would send (no images, an unknown event name, a non-map state)
    next to a good one: each bad one is a batch item failure, the good one is stored."""
    run = FlowRun(id=str(uuid.uuid4()), name="ok", flow_name="ok", created=datetime.now(UTC))
    run.state = Completed()
    run.version = 1
    platform = stack.platform
    backend = platform.backend
    backend.create_flow_run(run)
    good_image = backend.dynamodb.get_item(
        TableName=backend.table, Key={"pk": {"S": f"FLOWRUN#{run.id}"}, "sk": {"S": "META"}}
    )["Item"]

    def record(seq: int, event_name: str, image: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"SequenceNumber": str(seq), "Keys": {"pk": {"S": "x"}}}
        if image is not None:
            body["NewImage"] = image
        return {
            "eventID": f"e{seq}",
            "eventName": event_name,
            "eventSource": "aws:dynamodb",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/stratoflow/stream/x",
            "dynamodb": body,
        }

    records = [
        record(1, "MODIFY", None),
        record(2, "EXPLODE", good_image),
        record(3, "MODIFY", {**good_image, "state": {"S": "garbage"}}),
        record(4, "INSERT", good_image),
        record(5, "MODIFY", {**good_image, "state": {"M": {"type": {"S": "NOPE"}}}}),
    ]
    response = invoke("automations", {"Records": records})

    failed = sorted(f["itemIdentifier"] for f in response["batchItemFailures"])
    assert failed == ["1", "2", "3", "5"]
    store = EventStore(backend.dynamodb, backend.table)
    names = {
        e.event
        for e in store.query(
            datetime.now(UTC) - timedelta(hours=1), resource=f"stratoflow.flow-run.{run.id}"
        )
    }
    assert "stratoflow.flow-run.Completed" in names
    record_figures("garbage stream records", records=len(records), failed=len(failed))

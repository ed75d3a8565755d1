"""Finding 1 (docs/security.md "Results and cache entries come only from the configured
stores"): a worker rewrites a finished run's result record, or writes a cache entry, so
that it carries a pickle that acts when loaded, or points at `file:///...`, another
bucket or another run's object. On moto, with the writes a worker's role allows
(UpdateItem of a FLOWRUN# item, PutItem of a CACHE# item; see test_worker_table_policy).

Nothing is unpickled by the CLI unless asked, and nothing is read from a location the
item chose: the SDK refuses it with an error naming the run, a cache hit on it is a miss.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import cloudpickle
import pytest
from typer.testing import CliRunner

from stratoflow import flow, resources, runs, task
from stratoflow.backends.aws import AwsBackend, build_aws_services
from stratoflow.backends.aws.items import (
    flow_run_from_item,
    task_run_from_item,
    to_attribute,
    to_item,
)
from stratoflow.backends.aws.result_refs import ResultRefs
from stratoflow.cache_policies import INPUTS
from stratoflow.cli import app
from stratoflow.clock import FakeClock
from stratoflow.context import Services, set_process_services
from stratoflow.resources import RESULTS_PREFIX, ResourceNames, provision
from stratoflow.result_signing import ResultVerifier, StaticKeys
from stratoflow.results import ResultRefused, ResultStore, cache_result_key
from stratoflow.settings import load_settings
from tests.contract.conftest import (
    close_aws_services,
    isolate_aws_environment,
    new_session,
    serialize_moto_requests,
)

runner = CliRunner()


class _Marker:
    """Pickles to a call that creates `path` when the pickle is loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.path),))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[boto3.Session, Services]]:
    from moto import mock_aws

    isolate_aws_environment(monkeypatch)
    serialize_moto_requests(monkeypatch)
    with mock_aws():
        session = new_session()
        provision(session, ResourceNames.from_settings(load_settings()))
        services = build_aws_services(
            load_settings(), session=session, clock=FakeClock(datetime.now(UTC))
        )
        previous = set_process_services(services)
        try:
            yield session, services
        finally:
            set_process_services(previous)
            close_aws_services(services)


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "pwned"


def _backend(services: Services) -> AwsBackend:
    assert isinstance(services.backend, AwsBackend)
    return services.backend


def _finished_run(value: Any) -> str:
    @flow
    def produce() -> Any:
        return value

    state = produce(return_state=True)
    assert state.is_completed()
    return str(state.details["flow_run_id"])


def _worker_sets_result(services: Services, flow_run_id: str, record: dict[str, Any]) -> None:
    """What a worker's role may do: UpdateItem of a FLOWRUN# item's result."""
    backend = _backend(services)
    backend.dynamodb.update_item(
        TableName=backend.table,
        Key=to_item(resources.flow_run_key(flow_run_id)),
        UpdateExpression="SET #r = :r",
        ExpressionAttributeNames={"#r": "result"},
        ExpressionAttributeValues={":r": to_attribute(record)},
    )


def _bucket(services: Services) -> str:
    return load_settings().results_bucket


def test_inspect_shows_a_forged_pickle_without_loading_it(aws: Any, marker: Path) -> None:
    _, services = aws
    flow_run_id = _finished_run({"plain": "json"})
    payload = cloudpickle.dumps(_Marker(marker))
    _worker_sets_result(
        services, flow_run_id, {"serializer": "cloudpickle", "key": "", "inline": payload}
    )

    shown = runner.invoke(app, ["flow-run", "inspect", flow_run_id])
    assert shown.exit_code == 0, shown.output
    assert f"<cloudpickle, {len(payload)} bytes> inline; unsigned" in shown.output
    as_json = runner.invoke(app, ["flow-run", "inspect", flow_run_id, "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["result"].startswith(f"<cloudpickle, {len(payload)} bytes>")
    listed = runner.invoke(app, ["flow-run", "ls", "--json"])
    assert flow_run_id in listed.output
    assert not marker.exists()

    # Even --load-result does not load it: it is not signed by any pool's key.
    loaded = runner.invoke(app, ["flow-run", "inspect", flow_run_id, "--load-result"])
    assert loaded.exit_code == 0, loaded.output
    assert "its pickled result is not signed" in " ".join(loaded.output.split())
    assert not marker.exists()


def test_the_load_result_flag_warns_that_it_runs_code() -> None:
    shown = runner.invoke(app, ["flow-run", "inspect", "--help"], env={"COLUMNS": "200"})
    assert "--load-result" in shown.output
    assert "runs code from the result" in " ".join(shown.output.split())


@pytest.mark.parametrize(
    "location",
    ["file", "other-bucket", "other-run", "dot-dot", "absolute", "scheme-in-key"],
)
def test_a_result_outside_the_runs_own_keys_is_refused(
    aws: Any, marker: Path, tmp_path: Path, location: str
) -> None:
    session, services = aws
    victim = _finished_run({"secret": 1})
    flow_run_id = _finished_run({"mine": 2})
    payload = cloudpickle.dumps(_Marker(marker))
    bucket = _bucket(services)
    (tmp_path / "evil").write_bytes(payload)
    session.client("s3").create_bucket(Bucket="attacker-bucket")
    session.client("s3").put_object(
        Bucket="attacker-bucket", Key=f"{RESULTS_PREFIX}{flow_run_id}/flow", Body=payload
    )
    ours = f"s3://{bucket}/{RESULTS_PREFIX}"
    record = {
        "file": {"store": tmp_path.as_uri(), "key": "evil"},
        "other-bucket": {
            "store": f"s3://attacker-bucket/{RESULTS_PREFIX}",
            "key": f"{flow_run_id}/flow",
        },
        "other-run": {"store": ours, "key": f"{victim}/flow"},
        "dot-dot": {"store": ours, "key": f"{flow_run_id}/../{victim}/flow"},
        "absolute": {"key": f"/{flow_run_id}/flow"},
        "scheme-in-key": {"key": f"file://{tmp_path}/evil"},
    }[location]
    _worker_sets_result(services, flow_run_id, {"serializer": "cloudpickle", **record})

    run = runs.read_flow_run(flow_run_id)  # the run itself still reads
    with pytest.raises(ResultRefused) as refused:
        runs.read_result(run)
    message = str(refused.value)
    assert f"Flow run {flow_run_id}" in message
    assert "does not point into the configured results store" in message
    assert runs.read_result(runs.read_flow_run(victim)) == {"secret": 1}  # others unaffected

    shown = runner.invoke(app, ["flow-run", "inspect", flow_run_id, "--load-result"])
    assert shown.exit_code == 0, shown.output
    assert "does not point into the configured results store" in " ".join(shown.output.split())
    assert not marker.exists()


def test_an_unknown_serializer_is_refused(aws: Any) -> None:
    _, services = aws
    flow_run_id = _finished_run([1, 2])
    _worker_sets_result(services, flow_run_id, {"serializer": "pickle", "key": "", "inline": b"x"})
    with pytest.raises(ResultRefused, match="unknown serializer 'pickle'"):
        runs.read_result(runs.read_flow_run(flow_run_id))


def test_a_record_of_the_previous_format_in_the_configured_bucket_still_reads(aws: Any) -> None:
    _, services = aws
    flow_run_id = _finished_run({"v": 1})
    key = f"{flow_run_id}/flow"
    services.result_store.write(key, b'{"v":"stored"}')
    store = f"s3://{_bucket(services)}/{RESULTS_PREFIX}"
    _worker_sets_result(
        services, flow_run_id, {"serializer": "json", "key": key, "store": store, "inline": None}
    )
    assert runs.read_result(runs.read_flow_run(flow_run_id)) == {"v": "stored"}


def _put_cache_entry(services: Services, cache_key: str, record: dict[str, Any]) -> None:
    """What a worker's role may do: PutItem of a CACHE# item."""
    backend = _backend(services)
    backend.dynamodb.put_item(
        TableName=backend.table,
        Item=to_item({**resources.cache_key(cache_key), "entity": "cache", "result": record}),
    )


def test_a_cache_entry_pointing_elsewhere_is_a_miss(aws: Any, marker: Path, tmp_path: Path) -> None:
    _, services = aws
    calls: list[int] = []

    @task(cache_policy=INPUTS, persist_result=True, result_serializer="cloudpickle")
    def compute(x: int) -> tuple[int, int]:
        calls.append(x)
        return (x, x)  # a tuple: stored with cloudpickle

    @flow
    def uses_cache(x: int) -> tuple[int, int]:
        return compute(x)

    assert uses_cache(1) == (1, 1)
    assert uses_cache(1) == (1, 1)
    assert calls == [1]  # a genuine cache hit, from S3 or inline

    entry = services.cache_store.get(_only_cache_key(services), services.clock.now())
    assert entry is not None
    cache_key = entry.key
    payload = cloudpickle.dumps(_Marker(marker))
    (tmp_path / "evil").write_bytes(payload)
    victim = _finished_run({"secret": 1})
    for record in (
        {"serializer": "cloudpickle", "store": tmp_path.as_uri(), "key": "evil"},
        {"serializer": "cloudpickle", "key": f"{victim}/flow"},
        {"serializer": "cloudpickle", "key": f"{cache_result_key(cache_key)}/../x"},
    ):
        _put_cache_entry(services, cache_key, record)
        assert services.cache_store.get(cache_key, services.clock.now()) is None
        assert uses_cache(1) == (1, 1)  # recomputed: the refused entry is a miss
    assert calls == [1, 1, 1, 1]
    assert not marker.exists()


def _only_cache_key(services: Services) -> str:
    backend = _backend(services)
    items = backend.dynamodb.scan(TableName=backend.table)["Items"]
    keys = [i["pk"]["S"].removeprefix("CACHE#") for i in items if i["pk"]["S"].startswith("CACHE#")]
    assert len(keys) == 1, keys
    return keys[0]


def test_genuine_results_still_read_inline_and_from_s3(aws: Any) -> None:
    _, services = aws
    big = {"n": frozenset(range(2000))}  # not JSON, and over the inline limit
    calls: list[int] = []

    @task(cache_policy=INPUTS, persist_result=True)
    def cached_big(x: int) -> dict[str, frozenset[int]]:
        calls.append(x)
        return big

    @flow(result_serializer="cloudpickle")  # the opt-in, for its tasks too
    def pipeline() -> Any:
        return cached_big(1)

    flow_run_id = str(pipeline(return_state=True).details["flow_run_id"])
    again = str(pipeline(return_state=True).details["flow_run_id"])
    assert calls == [1]  # the second run hit the cache (an S3 object under cache/)
    for run_id in (flow_run_id, again):
        assert runs.read_result(runs.read_flow_run(run_id)) == big
        (task_run,) = runs.read_task_runs(run_id)
        assert task_run.result_record is not None
        assert task_run.result_record.key.startswith("cache/")
        assert runs.read_result(task_run) == big

    shown = runner.invoke(app, ["flow-run", "inspect", flow_run_id, "--json"])
    assert shown.exit_code == 0, shown.output
    described = json.loads(shown.output)["result"]
    assert described.startswith("<cloudpickle, ")
    assert f"s3://{_bucket(services)}/{RESULTS_PREFIX}{flow_run_id}/flow" in described
    loaded = runner.invoke(app, ["flow-run", "inspect", flow_run_id, "--load-result"])
    assert loaded.exit_code == 0, loaded.output
    assert "frozenset" in loaded.output

    (task_run,) = runs.read_task_runs(flow_run_id)
    args = ["task-run", "inspect", task_run.id, "--flow-run", flow_run_id, "--json"]
    task_json = runner.invoke(app, args)
    assert task_json.exit_code == 0, task_json.output
    assert json.loads(task_json.output)["result"].startswith("<cloudpickle, ")

    json_run = _finished_run({"plain": [1, 2]})
    plain = runner.invoke(app, ["flow-run", "inspect", json_run, "--json"])
    assert json.loads(plain.output)["result"] == {"plain": [1, 2]}  # JSON shown as before


class _NoStore(ResultStore):
    """The configured store of the pure tests: nothing is ever read from it."""

    def write(self, key: str, data: bytes) -> None:
        raise AssertionError("not written")

    def read(self, key: str) -> bytes:
        raise AssertionError("not read")

    def exists(self, key: str) -> bool:
        raise AssertionError("not read")

    def uri(self, key: str) -> str:
        return f"s3://results/{RESULTS_PREFIX}{key}"


def test_the_owner_comes_from_the_items_table_key_not_its_attributes() -> None:
    refs = ResultRefs(_NoStore(), ResultVerifier(StaticKeys({})))
    forged = {"serializer": "cloudpickle", "key": "victim/flow"}
    task_item = to_item(
        {
            **resources.task_run_key("mine", "t1"),
            "id": "t1",
            "name": "t",
            "task_key": "k",
            "dynamic_key": "0",
            "task_name": "t",
            "flow_run_id": "victim",  # what the writer claims
            "result": forged,
        }
    )
    record = task_run_from_item(task_item, refs).result_record
    assert record is not None and record.refused is not None
    assert "Task run t1 of flow run mine" in record.refused
    flow_item = to_item(
        {
            **resources.flow_run_key("mine"),
            "id": "victim",
            "name": "f",
            "flow_name": "f",
            "result": forged,
        }
    )
    record = flow_run_from_item(flow_item, refs).result_record
    assert record is not None and record.refused is not None
    assert "Flow run mine" in record.refused

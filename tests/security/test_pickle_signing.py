"""Finding 1, integrity (docs/security.md "Results and cache entries"): a pickled result
is loaded only when its signature verifies under a key the reader may read. On moto, with
the writes a worker's role allows (its runs' items, CACHE# items, objects under the
results bucket's `results/`; see test_worker_table_policy): the bytes of a genuine signed
result are replaced, a signed entry of one pool is planted where another pool reads, a
key is rotated or missing. Nothing acts when loaded; each refusal names the run and what
to do; the run and every other result still read.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from typer.testing import CliRunner

from stratoflow import flow, runs, task
from stratoflow.backends.aws.items import to_item
from stratoflow.backends.aws.result_key_setup import create_result_key
from stratoflow.backends.aws.result_keys import ParameterStoreResultKeys
from stratoflow.cache_policies import INPUTS
from stratoflow.cli import app
from stratoflow.context import Services
from stratoflow.exceptions import ResultRefused
from stratoflow.resources import (
    OPERATORS_SIGNING_DOMAIN,
    flow_run_key,
    result_key_parameter_name,
)
from stratoflow.result_signing import KeyUnavailable, ResultVerifier, signer_of
from stratoflow.settings import load_settings
from tests.security.test_result_trust import (  # noqa: F401 - fixtures
    _backend,
    _finished_run,
    _Marker,
    _put_cache_entry,
    _worker_sets_result,
    aws,
    marker,
)

runner = CliRunner()
BIG = frozenset(range(3000))  # not JSON, and over the inline limit: an S3 object


def _pickled_run(value: Any) -> str:
    @flow(result_serializer="cloudpickle")
    def produce() -> Any:
        return value

    state = produce(return_state=True)
    assert state.is_completed(), state
    return str(state.details["flow_run_id"])


class _OnlyDomains:
    """The keys a worker of `domains` can read: IAM denies it every other pool's key
    (the grant is checked against the template in tests/infra/test_permissions.py)."""

    def __init__(self, keys: ParameterStoreResultKeys, *domains: str) -> None:
        self.keys, self.domains = keys, domains

    def current(self, domain: str) -> bytes:
        if domain not in self.domains:
            raise KeyUnavailable("AccessDeniedException")
        return self.keys.current(domain)

    def previous(self, domain: str) -> bytes | None:
        return self.keys.previous(domain) if domain in self.domains else None


def _as_worker_of(services: Services, *domains: str) -> None:
    backend = _backend(services)
    backend.results.verifier = ResultVerifier(_OnlyDomains(backend.result_keys, *domains))


def test_replaced_bytes_of_a_signed_result_are_refused_and_lose_nothing(
    aws: Any, marker: Path
) -> None:
    _, services = aws
    flow_run_id = _pickled_run(BIG)
    other = _pickled_run(BIG | {-1})
    record = runs.read_flow_run(flow_run_id).result_record
    assert record is not None and record.inline is None
    assert signer_of(record.signature) == OPERATORS_SIGNING_DOMAIN
    # A worker may write under results/: it swaps the object for a pickle that acts.
    services.result_store.write(record.key, cloudpickle.dumps(_Marker(marker)))

    run = runs.read_flow_run(flow_run_id)  # the run itself still reads
    assert run.state_name == "Completed"
    with pytest.raises(ResultRefused) as refused:
        runs.read_result(run)
    message = str(refused.value)
    assert message.startswith(f"Flow run {flow_run_id}: the signature of its pickled result")
    assert "Run the flow again" in message
    shown = runner.invoke(app, ["flow-run", "inspect", flow_run_id, "--load-result"])
    assert shown.exit_code == 0, shown.output
    assert "does not match its bytes" in " ".join(shown.output.split())
    assert not marker.exists()
    assert runs.read_result(runs.read_flow_run(other)) == BIG | {-1}  # others unaffected


def test_inspect_names_the_signer_without_loading(aws: Any) -> None:
    flow_run_id = _pickled_run(BIG)
    shown = runner.invoke(app, ["flow-run", "inspect", flow_run_id, "--json"])
    described = json.loads(shown.output)["result"]
    assert f"signed as {OPERATORS_SIGNING_DOMAIN!r}" in described
    loaded = runner.invoke(app, ["flow-run", "inspect", flow_run_id, "--load-result"])
    assert "frozenset" in loaded.output


def test_a_tampered_cache_entry_is_a_miss(aws: Any, marker: Path) -> None:
    _, services = aws
    calls: list[int] = []

    @task(cache_policy=INPUTS, result_serializer="cloudpickle")
    def compute(x: int) -> tuple[int, int]:
        calls.append(x)
        return (x, x)

    @flow
    def uses_cache(x: int) -> tuple[int, int]:
        return compute(x)

    assert uses_cache(1) == (1, 1)
    (entry_key,) = _cache_keys(services)
    entry = services.cache_store.get(entry_key, services.clock.now())
    assert entry is not None and entry.result.inline is not None
    genuine = entry.result
    # Same signature, other bytes (inline in the CACHE# item, which a worker may put).
    _put_cache_entry(
        services,
        entry_key,
        {
            "serializer": "cloudpickle",
            "key": genuine.key,
            "inline": cloudpickle.dumps(_Marker(marker)),
            "signature": genuine.signature,
        },
    )
    assert services.cache_store.get(entry_key, services.clock.now()) is None
    assert uses_cache(1) == (1, 1)  # recomputed, and the entry written anew
    assert calls == [1, 1]
    assert uses_cache(1) == (1, 1)
    assert calls == [1, 1]  # the new entry is a genuine hit
    assert not marker.exists()


def _cache_keys(services: Services) -> list[str]:
    backend = _backend(services)
    items = backend.dynamodb.scan(TableName=backend.table)["Items"]
    return [i["pk"]["S"].removeprefix("CACHE#") for i in items if i["pk"]["S"].startswith("CACHE#")]


def test_another_pools_signed_pickle_is_refused_by_a_worker_and_its_cache_entry_missed(
    aws: Any,
) -> None:
    _, services = aws
    calls: list[int] = []

    @task(cache_policy=INPUTS, result_serializer="cloudpickle")
    def compute(x: int) -> tuple[int, int]:
        calls.append(x)
        return (x, x)

    @flow(result_serializer="cloudpickle")
    def pipeline(x: int) -> tuple[int, int]:
        return compute(x)

    session, _ = aws
    create_result_key(
        session.client("ssm"), session.client("secretsmanager"), load_settings().queue_prefix, "etl"
    )
    # Written as an operator (the `_operators` key): a worker of pool "etl" cannot read
    # that key, as it cannot read another pool's.
    written = str(pipeline(2, return_state=True).details["flow_run_id"])
    _as_worker_of(services, "etl")
    with pytest.raises(ResultRefused, match="whose key this process cannot read"):
        runs.read_result(runs.read_flow_run(written))
    services.result_signer = services.result_signer.for_domain("etl")  # type: ignore[union-attr]
    assert pipeline(2) == (2, 2)
    assert calls == [2, 2]  # the other domain's cache entry was a miss


def test_a_rotated_key_still_verifies_earlier_results(aws: Any) -> None:
    session, services = aws
    before = _pickled_run(BIG)
    name = result_key_parameter_name(load_settings().queue_prefix, OPERATORS_SIGNING_DOMAIN)
    # As docs/security.md says an operator rotates a key: a new version of the parameter.
    session.client("ssm").put_parameter(
        Name=name, Value="n" * 44, Type="SecureString", Tier="Standard", Overwrite=True
    )
    backend = _backend(services)
    backend.result_keys.cache_clear()  # another process, or an hour later
    after = _pickled_run(BIG | {1})
    assert runs.read_result(runs.read_flow_run(before)) == BIG  # under the version before
    assert runs.read_result(runs.read_flow_run(after)) == BIG | {1}


def test_a_missing_key_fails_a_required_persist_clearly_and_skips_an_optional_one(
    aws: Any, caplog: pytest.LogCaptureFixture
) -> None:
    session, services = aws
    name = result_key_parameter_name(load_settings().queue_prefix, OPERATORS_SIGNING_DOMAIN)
    session.client("ssm").delete_parameter(Name=name)
    _backend(services).result_keys.cache_clear()

    @flow(result_serializer="cloudpickle", persist_result=True)
    def required() -> Any:
        return BIG

    state = required(return_state=True)
    assert state.is_failed()
    assert "could not be read" in str(state.message) and name in str(state.message)

    @flow(result_serializer="cloudpickle")
    def optional() -> Any:
        return BIG

    with caplog.at_level(logging.WARNING):
        state = optional(return_state=True)
    assert state.is_completed() and state.result() == BIG
    assert any("not persisted" in r.getMessage() for r in caplog.records)
    assert runs.read_result(runs.read_flow_run(_finished_run({"json": 1}))) == {"json": 1}


def test_cloudpickle_is_opt_in_on_the_shared_store(
    aws: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, services = aws

    @flow
    def returns_a_tuple() -> tuple[int, int]:
        return (1, 2)

    with caplog.at_level(logging.WARNING):
        state = returns_a_tuple(return_state=True)
    assert state.is_completed() and state.result() == (1, 2)  # in this process
    warning = next(r.getMessage() for r in caplog.records if "not persisted" in r.getMessage())
    assert "result_serializer='cloudpickle'" in warning and "pickle_results: true" in warning
    backend = _backend(services)
    item = backend.dynamodb.get_item(
        TableName=backend.table, Key=to_item(flow_run_key(str(state.details["flow_run_id"])))
    )["Item"]
    assert "result" not in item  # nothing stored: another process has no result to read

    @flow(persist_result=True)
    def must_persist() -> tuple[int, int]:
        return (1, 2)

    failed = must_persist(return_state=True)
    assert failed.is_failed()
    assert "needs cloudpickle, which is opt-in" in str(failed.message)

    services.pickle_results = True  # STRATOFLOW_PICKLE_RESULTS=true for this process
    kept = returns_a_tuple(return_state=True)
    assert runs.read_result(runs.read_flow_run(str(kept.details["flow_run_id"]))) == (1, 2)

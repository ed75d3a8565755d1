"""Run ids that carry their pool (stratoflow.run_ids) and the senders' check on them."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from stratoflow.models import FlowRun
from stratoflow.run_ids import (
    carries_pool,
    new_flow_run_id,
    pool_tag,
    random_run_id,
    subflow_run_id,
)
from stratoflow.workers.ownership import namespace_problem

POOLS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,40}", fullmatch=True)


@given(pool=POOLS)
def test_a_pools_run_ids_are_uuids_that_start_with_its_tag(pool: str) -> None:
    run_id = new_flow_run_id(pool)
    assert str(uuid.UUID(run_id)) == run_id
    assert run_id.startswith(f"{pool_tag(pool)}-")
    assert carries_pool(run_id, pool)
    assert carries_pool(subflow_run_id(run_id), pool)  # its subflows too
    assert new_flow_run_id(pool) != run_id


def test_a_seed_gives_the_same_id_and_the_tag_is_stable() -> None:
    seed = uuid.uuid5(uuid.NAMESPACE_URL, "slot")
    assert new_flow_run_id("etl", seed=seed) == new_flow_run_id("etl", seed=seed)
    assert new_flow_run_id("etl", seed=seed)[8:] == str(seed)[8:]
    assert pool_tag("default") == pool_tag("default") != pool_tag("etl")
    assert new_flow_run_id(None, seed=seed) == str(seed)  # outside a pool: plain


def test_other_pools_and_plain_ids_are_not_in_a_pools_namespace() -> None:
    assert not carries_pool(new_flow_run_id("etl"), "default")
    assert not carries_pool("evil", "default")
    assert not carries_pool(pool_tag("default"), "default")  # a tag alone is no run id
    assert subflow_run_id("not-a-uuid") != subflow_run_id("not-a-uuid")


def _run(run_id: str, pool: str | None) -> FlowRun:
    return FlowRun(id=run_id, name="r", flow_name="f", deployment_name="d", work_pool_name=pool)


def test_a_run_is_sent_only_from_its_pools_namespace() -> None:
    assert namespace_problem(_run(new_flow_run_id("etl"), "etl")) is None
    assert namespace_problem(_run(new_flow_run_id("default"), None)) is None  # default pool
    forged = _run(new_flow_run_id("etl"), "gpu")  # written by etl's host, claims gpu
    problem = namespace_problem(forged)
    assert problem is not None
    assert forged.id in problem and "'gpu'" in problem and pool_tag("gpu") in problem
    assert "Run the deployment again" in problem


def test_a_subflow_id_for_a_call_is_the_same_in_every_attempt_and_carries_the_tag() -> None:
    parent = new_flow_run_id("etl")
    first = subflow_run_id(parent, call_key="/flow:child#0")
    assert first == subflow_run_id(parent, call_key="/flow:child#0")
    assert first != subflow_run_id(parent, call_key="/flow:child#1")
    assert first != subflow_run_id(new_flow_run_id("etl"), call_key="/flow:child#0")
    assert carries_pool(first, "etl")


def test_random_run_ids_are_version_4_uuids_in_their_usual_text() -> None:
    ids = {random_run_id() for _ in range(1000)}
    assert len(ids) == 1000
    for run_id in ids:
        parsed = uuid.UUID(run_id)
        assert str(parsed) == run_id
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122

"""`stratoflow.assets` (Prefect 3's assets): keys and properties, `@materialize`, lineage
from the task graph and `asset_deps`, metadata, and the events, with the memory backend.

The expected events follow Prefect's documentation: a @materialize run that completes
emits `asset.referenced` for each upstream asset and `asset.materialization.succeeded`
for each of its assets (upstream assets related with role `asset`); a failed one the
same with `...failed`; a cached one nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest

from stratoflow import flow, task
from stratoflow.assets import Asset, AssetProperties, add_asset_metadata, materialize
from stratoflow.assets.core import MAX_ASSET_DESCRIPTION_LENGTH, MAX_ASSET_KEY_LENGTH
from stratoflow.automations.matching import covers
from stratoflow.cache_policies import INPUTS
from stratoflow.clock import FakeClock
from stratoflow.context import AssetContext
from stratoflow.events import Event, local_event_store
from stratoflow.events.schemas.automations import EventTrigger
from stratoflow.exceptions import OptionError
from stratoflow.states import StateType
from stratoflow.task_runners import ProcessPoolTaskRunner
from stratoflow.tasks import MaterializingTask
from stratoflow.testing import TestHarness, stratoflow_test_harness
from tests._time import anchor

T0 = anchor()
SUCCEEDED = "stratoflow.asset.materialization.succeeded"
FAILED = "stratoflow.asset.materialization.failed"
REFERENCED = "stratoflow.asset.referenced"


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness(clock=FakeClock(T0)) as h:
        yield h


def asset_events() -> list[Event]:
    found = local_event_store().query(T0 - timedelta(days=1), name="stratoflow.asset.")
    return sorted(found, key=lambda e: (e.occurred, e.event != REFERENCED))


def materializations() -> dict[str, Event]:
    return {e.resource.id: e for e in asset_events() if e.event.startswith(SUCCEEDED[:-9])}


def references() -> list[str]:
    return sorted(e.resource.id for e in asset_events() if e.event == REFERENCED)


def upstream_of(event: Event) -> set[str]:
    return {r.id for r in event.related if r.role == "asset"}


# Assets


@pytest.mark.parametrize(
    "key",
    ["invalid-key", "/path/to/file", "UPPERCASE://resource", "://missing-protocol"],
)
def test_keys_must_be_uris(key: str) -> None:
    with pytest.raises(ValueError, match="Key must be a valid URI"):
        Asset(key=key)


@pytest.mark.parametrize("char", [" ", "\n", "#", "?", "&", "%", '"', "<", "[", "{", "|", "\\"])
def test_keys_refuse_restricted_characters(char: str) -> None:
    with pytest.raises(ValueError, match="cannot contain"):
        Asset(key=f"s3://bucket/a{char}b.csv")


def test_keys_and_descriptions_have_prefects_limits() -> None:
    longest = "s3://bucket/" + "a" * (MAX_ASSET_KEY_LENGTH - len("s3://bucket/"))
    assert Asset(key=longest).key == longest
    with pytest.raises(ValueError, match=f"cannot exceed {MAX_ASSET_KEY_LENGTH}"):
        Asset(key=longest + "a")
    AssetProperties(description="x" * MAX_ASSET_DESCRIPTION_LENGTH)
    with pytest.raises(ValueError, match="at most 2500"):
        AssetProperties(description="x" * (MAX_ASSET_DESCRIPTION_LENGTH + 1))
    for key in ("s3://a", "postgres://db/table", "protocol://host:port/path", "x://u@h/r"):
        assert Asset(key=key).key == key


def test_assets_as_event_resources() -> None:
    plain = Asset(key="s3://bucket/data")
    assert repr(plain) == "Asset(key='s3://bucket/data')"
    assert hash(plain) == hash(Asset(key="s3://bucket/data"))
    assert AssetContext.asset_as_resource(plain) == {"stratoflow.resource.id": "s3://bucket/data"}
    full = Asset(
        key="s3://lake/customers.parquet",
        properties=AssetProperties(
            name="Customers",
            description="Enriched",
            url="https://dash/customers",
            owners=["data-team", "analytics"],
        ),
    )
    assert AssetContext.asset_as_resource(full) == {
        "stratoflow.resource.id": "s3://lake/customers.parquet",
        "stratoflow.resource.name": "Customers",
        "stratoflow.asset.description": "Enriched",
        "stratoflow.asset.url": "https://dash/customers",
        "stratoflow.asset.owners": '["data-team", "analytics"]',
    }
    partial = Asset(key="s3://x/y", properties=AssetProperties(name="Y", url=None))
    assert AssetContext.asset_as_resource(partial) == {
        "stratoflow.resource.id": "s3://x/y",
        "stratoflow.resource.name": "Y",
    }
    assert AssetContext.asset_as_related(plain) == {
        "stratoflow.resource.id": "s3://bucket/data",
        "stratoflow.resource.role": "asset",
    }


# @materialize


def test_materialize_makes_a_task() -> None:
    @materialize("s3://bucket/a.csv", Asset(key="s3://bucket/b.csv"), by="dbt", retries=2)
    def make() -> int:
        return 1

    assert isinstance(make, MaterializingTask)
    assert [a.key for a in make.assets] == ["s3://bucket/a.csv", "s3://bucket/b.csv"]
    assert make.materialized_by == "dbt" and make.retries == 2
    other = make.with_options(assets=["s3://bucket/c.csv"], retries=0)
    assert isinstance(other, MaterializingTask)
    assert [a.key for a in other.assets] == ["s3://bucket/c.csv"] and other.retries == 0
    assert make.with_options(name="again").assets == make.assets
    assert make.fn() == 1


def test_materialize_refuses_no_asset_and_bad_arguments() -> None:
    with pytest.raises(TypeError, match="requires at least one asset"):
        materialize()
    with pytest.raises(TypeError, match="takes asset keys"):
        materialize(lambda: 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="valid URI"):
        materialize("not-a-uri")
    with pytest.raises(OptionError, match="not an option of @materialize"):
        materialize("s3://b/k", retires=3)(lambda: 1)
    with pytest.raises(OptionError, match="asset_deps"):
        task(asset_deps=["bad key"])(lambda: 1)


# Events


def test_a_materialization_succeeds(harness: TestHarness) -> None:
    users = Asset(key="postgres://prod/users")

    @materialize(users)
    def make_users() -> dict[str, int]:
        return {"rows": 100}

    @flow
    def pipeline() -> None:
        make_users()

    pipeline()
    (event,) = asset_events()
    run = harness.last_flow_run()
    (task_run,) = harness.task_runs()
    assert event.event == SUCCEEDED and event.resource.id == users.key
    assert event.occurred == T0 and event.payload == {}
    assert {(r.role, r.id) for r in event.related} >= {
        ("flow-run", f"stratoflow.flow-run.{run.id}"),
        ("task-run", f"stratoflow.task-run.{task_run.id}"),
        ("task", "stratoflow.task.make_users"),
        ("flow", "stratoflow.flow.pipeline"),
    }


def test_a_materialization_fails_with_its_metadata(harness: TestHarness) -> None:
    asset = Asset(key="s3://data/broken")

    @materialize(asset)
    def broken() -> None:
        asset.add_metadata({"attempted_rows": 1000})
        raise RuntimeError("boom")

    @flow
    def pipeline() -> None:
        broken(return_state=True)

    pipeline()
    (event,) = asset_events()
    assert event.event == FAILED and event.payload == {"attempted_rows": 1000}


def test_a_reference_alone_emits_nothing(harness: TestHarness) -> None:
    @task(asset_deps=["s3://bucket/raw.csv"])
    def read() -> dict[str, int]:
        return {"rows": 1}

    @flow
    def pipeline() -> None:
        read()

    pipeline()
    assert asset_events() == []


def test_materialization_to_materialization(harness: TestHarness) -> None:
    @materialize("postgres://prod/users")
    def extract() -> dict[str, int]:
        return {"rows": 10}

    @materialize("postgres://prod/users_clean")
    def load(data: dict[str, int]) -> None:
        pass

    @flow
    def pipeline() -> None:
        load(extract())

    pipeline()
    assert set(materializations()) == {"postgres://prod/users", "postgres://prod/users_clean"}
    assert references() == ["postgres://prod/users"]
    assert upstream_of(materializations()["postgres://prod/users_clean"]) == {
        "postgres://prod/users"
    }
    assert upstream_of(materializations()["postgres://prod/users"]) == set()


def test_lineage_crosses_a_plain_task_and_mixes_asset_deps(harness: TestHarness) -> None:
    config = Asset(key="s3://bucket/config.json")

    @materialize("s3://data/raw")
    def extract() -> dict[str, int]:
        return {"rows": 100}

    @task
    def transform(data: dict[str, int]) -> dict[str, object]:
        return {"rows": data["rows"], "processed": True}

    @materialize("s3://data/processed", asset_deps=[config, "s3://bucket/config.json"])
    def load(data: dict[str, object]) -> None:
        pass

    @flow
    def pipeline() -> None:
        load(transform(extract()))

    pipeline()
    assert upstream_of(materializations()["s3://data/processed"]) == {
        "s3://data/raw",
        "s3://bucket/config.json",
    }
    assert references() == ["s3://bucket/config.json", "s3://data/raw"]


def test_futures_map_and_wait_for_carry_lineage(harness: TestHarness) -> None:
    source = Asset(key="s3://data/source")

    @task(asset_deps=[source])
    def extract() -> list[str]:
        return ["item1", "item2", "item3"]

    @materialize("s3://data/processed")
    def process(item: str) -> str:
        return item

    @materialize("s3://data/after")
    def after() -> None:
        pass

    @flow
    def pipeline() -> None:
        items = extract()
        futures = process.map(items)  # each item is an item of extract's result
        futures.wait()
        after.submit(wait_for=[extract.submit()]).wait()

    pipeline()
    processed = [e for e in asset_events() if e.resource.id == "s3://data/processed"]
    assert len(processed) == 3
    assert all(upstream_of(e) == {source.key} for e in processed)
    assert upstream_of(materializations()["s3://data/after"]) == {source.key}
    assert references().count(source.key) == 4


def test_by_names_the_tool_as_a_related_resource(harness: TestHarness) -> None:
    @task(asset_deps=["postgres://prod/raw_users"])
    def extract() -> dict[str, int]:
        return {"users": 500}

    @materialize("s3://warehouse/users", by="spark")
    def transform(raw: dict[str, int]) -> None:
        pass

    @flow
    def pipeline() -> None:
        transform(extract())

    pipeline()
    event = materializations()["s3://warehouse/users"]
    roles = {r.role: r.id for r in event.related if r.role.startswith("asset")}
    assert roles == {"asset": "postgres://prod/raw_users", "asset-materialized-by": "spark"}


def test_repeated_assets_give_one_event_each(harness: TestHarness) -> None:
    a1, a2 = Asset(key="s3://bucket/d1.csv"), Asset(key="s3://bucket/d2.csv")

    @materialize(a1, a1, a2)
    def make_both() -> None:
        pass

    @materialize("s3://bucket/out.csv", asset_deps=[a1, "s3://bucket/d1.csv", a2, a2])
    def make_out() -> None:
        pass

    @flow
    def pipeline() -> None:
        make_both()
        make_out()

    pipeline()
    assert sorted(materializations()) == [a1.key, a2.key, "s3://bucket/out.csv"]
    assert len([e for e in asset_events() if e.event == SUCCEEDED]) == 3
    assert references() == [a1.key, a2.key]


def test_metadata_accumulates_per_asset_and_is_json(harness: TestHarness) -> None:
    a1, a2 = Asset(key="s3://bucket/m1.csv"), Asset(key="s3://bucket/m2.csv")

    @materialize(a1, a2)
    def make() -> None:
        a1.add_metadata({"rows": 1000})
        a1.add_metadata({"columns": 5})
        add_asset_metadata("s3://bucket/m2.csv", {"when": T0})
        with pytest.raises(TypeError, match="JSON-serializable"):
            add_asset_metadata(a2, {"bad": object()})

    @flow
    def pipeline() -> None:
        make()

    pipeline()
    found = materializations()
    assert found[a1.key].payload == {"rows": 1000, "columns": 5}
    assert found[a2.key].payload == {"when": T0.isoformat().replace("+00:00", "Z")}


def test_metadata_only_for_the_tasks_own_assets(harness: TestHarness) -> None:
    with pytest.raises(RuntimeError, match="not inside of an AssetContext"):
        add_asset_metadata("s3://bucket/x.csv", {"rows": 1})

    @materialize("s3://bucket/mine.csv")
    def other_key() -> None:
        add_asset_metadata("s3://bucket/other.csv", {"rows": 1})

    @task
    def plain() -> None:
        add_asset_metadata("s3://bucket/any.csv", {"rows": 1})

    for fn in (other_key, plain):
        state = fn(return_state=True)
        assert state.type is StateType.FAILED
        with pytest.raises(ValueError, match="Can only add metadata to assets that are arguments"):
            state.result()


def test_a_cached_run_emits_nothing(harness: TestHarness) -> None:
    @materialize("s3://bucket/cached", cache_policy=INPUTS, persist_result=True)
    def make(n: int) -> dict[str, int]:
        return {"rows": n}

    @flow
    def pipeline() -> None:
        make(1)
        make(1)

    pipeline()
    assert [e.event for e in asset_events()] == [SUCCEEDED]


def test_nested_materializations_are_not_related(harness: TestHarness) -> None:
    @materialize("s3://bucket/inner.csv")
    def inner() -> dict[str, str]:
        return {"inner": "x"}

    @materialize("s3://bucket/outer.csv")
    def outer() -> dict[str, object]:
        return {"outer": "y", "inner": inner()}

    @task(asset_deps=["postgres://db/source"])
    def plain_parent() -> dict[str, str]:
        return inner()

    @flow
    def pipeline() -> None:
        outer()
        plain_parent()

    pipeline()
    found = [e for e in asset_events() if e.event == SUCCEEDED]
    assert sorted(e.resource.id for e in found) == [
        "s3://bucket/inner.csv",
        "s3://bucket/inner.csv",
        "s3://bucket/outer.csv",
    ]
    assert all(upstream_of(e) == set() for e in found)
    assert references() == []


def test_async_materialization(harness: TestHarness) -> None:
    @materialize("postgres://prod/async")
    async def make() -> dict[str, int]:
        add_asset_metadata("postgres://prod/async", {"rows": 5})
        return {"rows": 5}

    @flow
    async def pipeline() -> None:
        await make()

    asyncio.run(pipeline())
    (event,) = asset_events()
    assert event.event == SUCCEEDED and event.payload == {"rows": 5}


def test_outside_a_flow_a_materialization_still_emits(harness: TestHarness) -> None:
    @materialize("s3://bucket/standalone.csv")
    def make() -> int:
        return 1

    assert make() == 1
    assert [e.event for e in asset_events()] == [SUCCEEDED]


def test_a_process_pool_run_emits_from_the_flows_process(harness: TestHarness) -> None:
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def pipeline() -> None:
        source = extract_in_process.submit()
        materialize_in_process.submit(source).wait()

    pipeline()
    event = materializations()["s3://bucket/from-a-process.csv"]
    assert event.payload == {"rows": 3}
    assert upstream_of(event) == {"postgres://db/source"}


def test_automations_see_them_under_prefects_names(harness: TestHarness) -> None:
    @materialize("s3://bucket/daily.csv", by="dbt")
    def daily() -> None:
        raise RuntimeError("boom")

    @flow
    def pipeline() -> None:
        daily(return_state=True)

    pipeline()
    (event,) = asset_events()
    trigger = EventTrigger(
        expect={"prefect.asset.materialization.failed"},
        match={"prefect.resource.id": "s3://bucket/*"},
        match_related={"prefect.resource.role": "asset-materialized-by"},
    )
    assert trigger.expect == ("stratoflow.asset.materialization.failed",)
    assert covers(trigger, event)
    assert not covers(trigger.model_copy(update={"expect": (SUCCEEDED,)}), event)


# Module-level: the process pool imports them by name.


@task(asset_deps=["postgres://db/source"])
def extract_in_process() -> list[int]:
    return [1, 2, 3]


@materialize("s3://bucket/from-a-process.csv")
def materialize_in_process(rows: list[int]) -> None:
    add_asset_metadata("s3://bucket/from-a-process.csv", {"rows": len(rows)})

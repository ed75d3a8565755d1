"""Variables and artifacts on the AWS backend (moto): item layout, large bodies in the
results bucket, versions, run links, progress updates, and items a worker role could
forge (index injection, broken items, a changed or expired body)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import boto3
import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from stratoflow import flow, resources, task
from stratoflow.artifacts import (
    Artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    list_artifacts,
    read_artifact,
    update_progress_artifact,
)
from stratoflow.artifacts.queries import load_body
from stratoflow.backends.aws import AwsBackend, build_aws_services
from stratoflow.backends.aws.items import to_item
from stratoflow.cli import app
from stratoflow.clock import FakeClock
from stratoflow.context import Services, set_process_services
from stratoflow.exceptions import ObjectNotFound
from stratoflow.records import (
    INLINE_DATA_MAX_BYTES,
    ArtifactBodyUnavailable,
    InvalidArtifactError,
    InvalidVariableError,
    VariableAlreadyExists,
)
from stratoflow.resources import provision
from stratoflow.settings import get_settings, load_settings
from stratoflow.variables import Variable, list_variables, read_variable
from tests._time import anchor

_MODELS = botocore.loaders.create_loader()
TABLE = "stratoflow"
runner = CliRunner()


@dataclass
class Aws:
    session: boto3.Session
    services: Services
    clock: FakeClock

    @property
    def backend(self) -> AwsBackend:
        assert isinstance(self.services.backend, AwsBackend)
        return self.services.backend

    def put(self, values: dict[str, Any]) -> None:
        """Write an item as any worker role could."""
        self.backend.dynamodb.put_item(TableName=TABLE, Item=to_item(values))

    def item(self, key: dict[str, str]) -> dict[str, Any] | None:
        found = self.backend.dynamodb.get_item(
            TableName=TABLE, Key=to_item(key), ConsistentRead=True
        )
        return found.get("Item")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Aws]:
    for name in list(os.environ):
        if name.startswith(("STRATOFLOW_", "AWS_")):
            monkeypatch.delenv(name)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "STRATOFLOW_BACKEND": "aws",
        "STRATOFLOW_HOME": str(tmp_path / "home"),
        "STRATOFLOW_LOG_TO_CONSOLE": "false",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    with mock_aws():
        core = botocore.session.Session()
        core.register_component("data_loader", _MODELS)
        session = boto3.Session(botocore_session=core, region_name="us-east-1")
        provision(session)
        clock = FakeClock(anchor())
        services = build_aws_services(load_settings(), session=session, clock=clock)
        previous = set_process_services(services)
        try:
            yield Aws(session, services, clock)
        finally:
            services.backend.close()  # type: ignore[attr-defined]
            set_process_services(previous)
            get_settings.cache_clear()


# Variables


def test_variables_round_trip_in_their_own_items(aws: Aws) -> None:
    stored = Variable.set("batch_size", {"rows": [1, 2]}, tags=["etl"])
    assert stored.value == {"rows": [1, 2]}
    item = aws.item(resources.variable_key("batch_size"))
    assert item is not None
    assert json.loads(item["value"]["S"]) == {"rows": [1, 2]}
    assert item[resources.BY_TIME.partition_key]["S"] == resources.VARIABLES_PARTITION
    assert Variable.get("batch_size") == {"rows": [1, 2]}
    assert Variable.get("missing", default=7) == 7


def test_set_without_overwrite_is_refused_and_overwrite_keeps_created(aws: Aws) -> None:
    Variable.set("limit", 1)
    created = aws.clock.now()
    with pytest.raises(VariableAlreadyExists, match="overwrite=True"):
        Variable.set("limit", 2)
    aws.clock.advance(30)
    Variable.set("limit", 2, tags=["t"], overwrite=True)
    record = read_variable("limit")
    assert record is not None
    assert (record.value, record.tags) == (2, ["t"])
    assert record.created == created and record.updated == aws.clock.now()
    # overwrite=True also creates
    Variable.set("fresh", None, overwrite=True)
    assert read_variable("fresh") is not None


def test_unset_and_list(aws: Aws) -> None:
    for name in ("b", "a", "c"):
        Variable.set(name, name)
    assert [r.name for r in list_variables()] == ["a", "b", "c"]
    assert [r.name for r in list_variables(limit=1)] == ["a"]
    assert Variable.unset("b") is True
    assert Variable.unset("b") is False
    assert [r.name for r in list_variables()] == ["a", "c"]


def test_forged_variable_items_are_not_listed_and_broken_ones_say_so(aws: Aws) -> None:
    Variable.set("genuine", 1)
    index = resources.BY_TIME
    # A run item carrying the variables listing's index keys: not a variable.
    aws.put(
        {
            **resources.flow_run_key("evil"),
            "name": "victim",
            "value": '"forged"',
            "created": "x",
            "updated": "x",
            index.partition_key: resources.VARIABLES_PARTITION,
            index.sort_key: "victim",
        }
    )
    # A variable item whose value is not JSON (a worker wrote it by hand).
    aws.put(
        {
            **resources.variable_key("broken"),
            "name": "broken",
            "value": "{not json",
            "created": aws.clock.now().isoformat(),
            "updated": aws.clock.now().isoformat(),
            index.partition_key: resources.VARIABLES_PARTITION,
            index.sort_key: "broken",
        }
    )
    assert [r.name for r in list_variables()] == ["genuine"]
    with pytest.raises(InvalidVariableError, match="strato variable set broken VALUE --overwrite"):
        Variable.get("broken")
    Variable.set("broken", "fixed", overwrite=True)
    assert Variable.get("broken") == "fixed"


# Artifacts


def test_small_artifacts_are_inline_and_linked_to_their_runs(aws: Aws) -> None:
    @task
    def table() -> UUID:
        return create_table_artifact({"a": [1, 2]}, key="counts")

    @flow
    def report() -> tuple[UUID, UUID]:
        return create_markdown_artifact("# Hi", key="report"), table()

    markdown_id, table_id = report()
    run_id = aws.backend.list_flow_runs(limit=1)[0].id
    item = aws.item(resources.artifact_key(str(markdown_id)))
    assert item is not None and item["data"]["S"] == json.dumps("# Hi")
    assert item[resources.ARTIFACT_BY_KEY.partition_key]["S"] == "ARTIFACTKEY#report"
    assert item[resources.ARTIFACT_BY_FLOW_RUN.partition_key]["S"] == f"ARTIFACTRUN#{run_id}"
    stored = read_artifact(str(table_id))[0]
    assert stored.flow_run_id == run_id and stored.task_run_id is not None
    assert json.loads(stored.data) == {"a": [1, 2]}
    assert {r.id for r in list_artifacts(flow_run_id=run_id)} == {markdown_id, table_id}


def test_versions_and_latest(aws: Aws) -> None:
    ids = []
    for text in ("one", "two", "three"):
        ids.append(create_markdown_artifact(text, key="nightly"))
        aws.clock.advance(60)
    latest = Artifact.get("nightly")
    assert latest is not None and (latest.id, latest.data) == (ids[-1], "three")
    assert [r.id for r in list_artifacts(key="nightly")] == ids[::-1]
    assert [r.id for r in read_artifact("nightly", limit=2)] == ids[:0:-1]
    unkeyed = create_markdown_artifact("no key")
    assert [r.id for r in list_artifacts()] == [ids[-1]]
    assert [r.id for r in list_artifacts(all_versions=True)][:2] == [unkeyed, ids[-1]]
    newest = Artifact.get()
    assert newest is not None and newest.id == unkeyed


def test_large_bodies_go_to_the_results_bucket(aws: Aws) -> None:
    text = "x" * (INLINE_DATA_MAX_BYTES + 10)
    artifact_id = create_markdown_artifact(text, key="big")
    item = aws.item(resources.artifact_key(str(artifact_id)))
    assert item is not None and "data" not in item
    body_key = resources.artifact_body_key(str(artifact_id))
    assert body_key == f"results/artifacts/{artifact_id}.json"
    s3 = aws.session.client("s3")
    bucket = aws.backend.result_store.bucket
    body = s3.get_object(Bucket=bucket, Key=body_key)["Body"].read()
    assert json.loads(body) == text
    assert item["body_sha256"]["S"] == hashlib.sha256(body).hexdigest()
    # listings do not read bodies; get and inspect do
    (listed,) = list_artifacts(key="big")
    assert listed.body_loaded is False and listed.data is None
    latest = Artifact.get("big")
    assert latest is not None and latest.data == text


def test_a_changed_or_expired_body_is_not_shown(aws: Aws) -> None:
    artifact_id = create_markdown_artifact("y" * (INLINE_DATA_MAX_BYTES + 1), key="big")
    s3 = aws.session.client("s3")
    bucket = aws.backend.result_store.bucket
    body_key = resources.artifact_body_key(str(artifact_id))
    s3.put_object(Bucket=bucket, Key=body_key, Body=json.dumps("[bold]swapped").encode())
    with pytest.raises(ArtifactBodyUnavailable, match="not the one artifact"):
        Artifact.get("big")
    (listed,) = list_artifacts(key="big")
    record, problem = load_body(listed)
    assert record.data is None and problem is not None
    s3.delete_object(Bucket=bucket, Key=body_key)
    with pytest.raises(ArtifactBodyUnavailable, match="results_expiration_days"):
        read_artifact(str(artifact_id))


def test_progress_updates_on_aws(aws: Aws) -> None:
    progress_id = create_progress_artifact(5, key="load", description="start")
    aws.clock.advance(10)
    update_progress_artifact(progress_id, 60)
    stored = read_artifact(str(progress_id))[0]
    assert (stored.data, stored.description, stored.updated) == (60, "start", aws.clock.now())
    update_progress_artifact(progress_id, 100, description="done")
    assert read_artifact(str(progress_id))[0].description == "done"
    markdown_id = create_markdown_artifact("m")
    with pytest.raises(InvalidArtifactError, match="only progress artifacts"):
        update_progress_artifact(markdown_id, 10)
    with pytest.raises(ObjectNotFound):
        update_progress_artifact(uuid4(), 10)
    with pytest.raises(ObjectNotFound, match="UUIDs"):
        update_progress_artifact("not-a-uuid", 10)


def test_forged_artifact_items_are_ignored_by_every_listing(aws: Aws) -> None:
    genuine = create_markdown_artifact("genuine", key="report")
    run_id = "run-1"
    order = f"{aws.clock.now().isoformat()}#zzz"
    forged_id = str(uuid4())
    common = {
        "id": forged_id,
        "key": "report",
        "type": "markdown",
        "data": json.dumps("forged"),
        "flow_run_id": run_id,
        "created": aws.clock.now().isoformat(),
        "updated": aws.clock.now().isoformat(),
        resources.ARTIFACT_BY_KEY.partition_key: resources.artifact_key_partition("report"),
        resources.ARTIFACT_BY_KEY.sort_key: "9999" + order,
        resources.ARTIFACT_BY_FLOW_RUN.partition_key: resources.artifact_flow_run_partition(run_id),
        resources.ARTIFACT_BY_FLOW_RUN.sort_key: "9999" + order,
        resources.ARTIFACT_BY_DAY.partition_key: resources.artifacts_day_partition(
            aws.clock.now().date()
        ),
        resources.ARTIFACT_BY_DAY.sort_key: "9999" + order,
    }
    # A run item carrying the artifact indexes' keys: not an artifact.
    aws.put({**resources.flow_run_key("evil"), **common})
    # An artifact item under another id than its own key.
    aws.put({**resources.artifact_key(str(uuid4())), **common})
    # An artifact item of another key placed in this key's partition.
    aws.put({**resources.artifact_key(forged_id), **common, "key": "other"})
    # An artifact item too broken to read.
    broken_id = str(uuid4())
    aws.put({**resources.artifact_key(broken_id), **common, "id": broken_id, "created": "?"})
    latest = Artifact.get("report")
    assert latest is not None and latest.id == genuine
    assert [r.id for r in list_artifacts(key="report")] == [genuine]
    # Only the own-key item is an artifact (of key "other": any worker may create one,
    # and name any run in it, as any flow may create artifacts).
    assert [str(r.id) for r in list_artifacts(flow_run_id=run_id)] == [forged_id]
    listed = {str(r.id): r.key for r in list_artifacts(all_versions=True)}
    assert listed == {str(genuine): "report", forged_id: "other"}


def test_cli_over_aws(aws: Aws) -> None:
    create_markdown_artifact("[bold]big[/bold]" + "z" * INLINE_DATA_MAX_BYTES, key="big")
    result = runner.invoke(app, ["artifact", "inspect", "big"])
    assert result.exit_code == 0, result.output
    assert "[bold]big[/bold]" in result.output
    listed = runner.invoke(app, ["artifact", "ls", "--json"])
    document = json.loads(listed.stdout)
    assert document[0]["key"] == "big" and document[0]["data"] is None
    assert runner.invoke(app, ["variable", "set", "cli_var", '{"a": 1}']).exit_code == 0
    got = runner.invoke(app, ["variable", "get", "cli_var"])
    assert got.exit_code == 0 and json.loads(got.stdout) == {"a": 1}
    assert Variable.get("cli_var") == {"a": 1}

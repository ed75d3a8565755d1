"""Blocks on the AWS backend (moto): the document in the state table, the secret fields in
Secrets Manager (one secret per block and scope), never in the table; pools; deletion;
a worker's denied save; the CLI; the S3Bucket block."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from pydantic import SecretStr
from typer.testing import CliRunner

from stratoflow import resources
from stratoflow.backends.aws import AwsBackend, build_aws_services
from stratoflow.backends.aws.blocks import DynamoBlockStore
from stratoflow.backends.aws.items import to_item
from stratoflow.blocks import (
    Block,
    BlockSaveDenied,
    BlockSecretsUnavailable,
    Secret,
    SecretDict,
)
from stratoflow.blocks.aws import S3Bucket
from stratoflow.cli import app
from stratoflow.context import Services, set_process_services
from stratoflow.resources import provision
from stratoflow.settings import get_settings, load_settings

_MODELS = botocore.loaders.create_loader()
TABLE = "stratoflow"
PREFIX = "stratoflow"
TOKEN = "sk-live-4be0c2a9"  # a test value, looked for in every output
runner = CliRunner()


class Warehouse(Block):
    host: str
    password: SecretStr
    options: SecretDict | None = None


@dataclass
class Aws:
    session: boto3.Session
    services: Services

    @property
    def backend(self) -> AwsBackend:
        assert isinstance(self.services.backend, AwsBackend)
        return self.services.backend

    @property
    def store(self) -> DynamoBlockStore:
        return self.backend.blocks

    def table_text(self) -> str:
        """Every item of the table, as a worker reading all of it would see it."""
        items = self.backend.dynamodb.scan(TableName=TABLE)["Items"]
        return json.dumps(items)

    def secret(self, name: str) -> dict[str, Any]:
        client = self.session.client("secretsmanager")
        return client.describe_secret(SecretId=name)  # type: ignore[no-any-return]

    def secret_value(self, name: str) -> Any:
        client = self.session.client("secretsmanager")
        return json.loads(client.get_secret_value(SecretId=name)["SecretString"])


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
        services = build_aws_services(load_settings(), session=session)
        previous = set_process_services(services)
        try:
            yield Aws(session, services)
        finally:
            services.backend.close()  # type: ignore[attr-defined]
            set_process_services(previous)
            get_settings.cache_clear()


def name_of(scope: str, slug: str, name: str) -> str:
    return resources.block_secret_name(PREFIX, scope, slug, name)


def test_secret_values_live_in_secrets_manager_never_in_the_table(
    aws: Aws, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stratoflow")
    Secret(value=TOKEN).save("api-token")
    Warehouse(host="db.internal", password=TOKEN, options={"sslkey": TOKEN}).save("prod")
    assert Secret.load("api-token").get() == TOKEN
    loaded = Warehouse.load("prod")
    assert loaded.host == "db.internal" and loaded.password.get_secret_value() == TOKEN
    assert loaded.options is not None and loaded.options.get_secret_value() == {"sslkey": TOKEN}
    assert Block.load("warehouse/prod").host == "db.internal"

    assert TOKEN not in aws.table_text()
    assert TOKEN not in caplog.text
    item = aws.backend.dynamodb.get_item(
        TableName=TABLE, Key=to_item(resources.block_key("warehouse", "prod"))
    )["Item"]
    document = json.loads(item["document"]["S"])
    assert document["data"] == {"host": "db.internal"}
    assert document["secret_fields"] == ["password", "options"]
    assert item[resources.BY_TIME.partition_key]["S"] == resources.BLOCKS_PARTITION
    assert aws.secret_value(name_of("_all", "secret", "api-token")) == {"value": TOKEN}
    assert aws.secret_value(name_of("_all", "warehouse", "prod")) == {
        "password": TOKEN,
        "options": {"sslkey": TOKEN},
    }


def test_a_block_without_secret_fields_has_no_secret(aws: Aws) -> None:
    S3Bucket(bucket_name="acme-data").save("raw")
    assert S3Bucket.load("raw").bucket_name == "acme-data"
    listed = aws.session.client("secretsmanager").list_secrets()["SecretList"]
    assert not [s for s in listed if "/blocks/" in s["Name"]]


def test_pools_choose_the_secrets_scopes_and_overwrite_moves_them(aws: Aws) -> None:
    Warehouse(host="h", password=TOKEN).save("prod", pools=["etl", "default"])
    for pool in ("default", "etl"):
        assert aws.secret_value(name_of(pool, "warehouse", "prod"))["password"] == TOKEN
    with pytest.raises(ClientError):
        aws.secret(name_of("_all", "warehouse", "prod"))
    Warehouse(host="h", password="rotated").save("prod", overwrite=True)  # every pool now
    assert aws.secret_value(name_of("_all", "warehouse", "prod"))["password"] == "rotated"
    for pool in ("default", "etl"):
        assert aws.secret(name_of(pool, "warehouse", "prod")).get("DeletedDate") is not None
    assert Warehouse.load("prod").password.get_secret_value() == "rotated"


def test_delete_schedules_the_secrets_deletion_and_a_new_save_restores_it(aws: Aws) -> None:
    Secret(value=TOKEN).save("tok")
    Secret.delete("tok")
    secret = aws.secret(name_of("_all", "secret", "tok"))
    assert secret.get("DeletedDate") is not None  # a 7-day recovery window
    assert aws.store.read("secret", "tok") is None
    Secret(value="again").save("tok")
    assert aws.secret(name_of("_all", "secret", "tok")).get("DeletedDate") is None
    assert Secret.load("tok").get() == "again"


class Denying:
    """A client whose principal is denied some operations (moto enforces no IAM)."""

    def __init__(self, client: Any, denied: set[str], allowed_names: set[str] | None = None):
        self._client = client
        self._denied = denied
        self._allowed_names = allowed_names

    def __getattr__(self, operation: str) -> Any:
        method = getattr(self._client, operation)

        def call(**kwargs: Any) -> Any:
            name = kwargs.get("SecretId")
            refused = operation in self._denied and (
                self._allowed_names is None or name not in self._allowed_names
            )
            if refused:
                error = {"Error": {"Code": "AccessDeniedException", "Message": "denied"}}
                raise ClientError(error, operation)  # type: ignore[arg-type]
            return method(**kwargs)

        return call


def test_a_workers_save_is_denied_with_how_to_save_blocks(aws: Aws) -> None:
    store = aws.store
    operator_secrets = store.secretsmanager
    # A worker's role: no CreateSecret / PutSecretValue, no write of BLOCK# items.
    store.secretsmanager = Denying(operator_secrets, {"create_secret", "put_secret_value"})
    with pytest.raises(BlockSaveDenied, match="saved by operators") as denied:
        Secret(value=TOKEN).save("tok")
    assert TOKEN not in str(denied.value)
    store.dynamodb = Denying(aws.backend.dynamodb, {"put_item", "delete_item"})  # type: ignore[assignment]
    with pytest.raises(BlockSaveDenied, match="strato block ls"):
        S3Bucket(bucket_name="acme-data").save("raw")
    assert store.read("s3-bucket", "raw") is None


def test_a_worker_reads_its_own_pools_scope_first_and_is_told_when_it_may_not(aws: Aws) -> None:
    Warehouse(host="h", password=TOKEN).save("prod", pools=["etl", "gpu"])
    document = aws.store.read("warehouse", "prod")
    assert document is not None
    operator_secrets = aws.store.secretsmanager
    # A worker of pool etl: its role reads `<prefix>/blocks/etl/*` (and `_all`) only.
    etl = {name_of("etl", "warehouse", "prod")}
    aws.store.secretsmanager = Denying(operator_secrets, {"get_secret_value"}, etl)
    assert aws.store.read_secrets(document, pool="etl").values() == {
        "password": TOKEN,
        "options": None,
    }
    # A worker of pool other: nothing readable; the error says who may and how to fix it.
    aws.store.secretsmanager = Denying(operator_secrets, {"get_secret_value"}, set())
    with pytest.raises(BlockSecretsUnavailable, match=r"pools \('etl', 'gpu'\)") as refused:
        Warehouse.load("prod")
    assert "AccessDeniedException" in str(refused.value) and TOKEN not in str(refused.value)
    assert "`pools`" in str(refused.value)


def test_a_listing_keeps_only_items_whose_key_is_their_documents(aws: Aws) -> None:
    Secret(value="v").save("real")
    document = aws.store.read("secret", "real")
    assert document is not None
    forged = document.model_copy(update={"name": "forged"})
    aws.backend.dynamodb.put_item(  # any worker may write a run item with index attributes
        TableName=TABLE,
        Item=to_item(
            {
                **resources.flow_run_key("evil"),
                "document": forged.model_dump_json(),
                resources.BY_TIME.partition_key: resources.BLOCKS_PARTITION,
                resources.BY_TIME.sort_key: "secret/forged",
            }
        ),
    )
    assert [d.slug for d in aws.store.list_blocks()] == ["secret/real"]
    assert [d.slug for d in aws.store.list_blocks(block_type_slug="secret")] == ["secret/real"]
    assert aws.store.list_blocks(block_type_slug="warehouse") == []


def test_cli_lists_inspects_and_deletes_without_showing_secrets(aws: Aws) -> None:
    Warehouse(host="[red]db[/red]", password=TOKEN).save("prod", pools=["etl"])
    Secret(value=TOKEN).save("tok")
    listed = runner.invoke(app, ["block", "ls"])
    assert listed.exit_code == 0, listed.output
    assert "warehouse/prod" in listed.output and "secret/tok" in listed.output
    assert TOKEN not in listed.output
    shown = runner.invoke(app, ["block", "inspect", "warehouse/prod"])
    assert shown.exit_code == 0, shown.output
    assert "[red]db[/red]" in shown.output  # untrusted text shown as written
    assert "********" in shown.output and TOKEN not in shown.output
    as_json = runner.invoke(app, ["block", "inspect", "warehouse/prod", "--json"])
    document = json.loads(as_json.output)
    assert document["data"] == {
        "host": "[red]db[/red]",
        "password": "********",
        "options": "********",
    }
    assert document["pools"] == ["etl"]
    listed_json = json.loads(
        runner.invoke(app, ["block", "ls", "--json", "--type", "secret"]).output
    )
    assert [d["name"] for d in listed_json] == ["tok"]
    deleted = runner.invoke(app, ["block", "delete", "secret/tok"])
    assert deleted.exit_code == 0 and "Deleted block 'secret/tok'" in deleted.output
    assert aws.secret(name_of("_all", "secret", "tok")).get("DeletedDate") is not None
    missing = runner.invoke(app, ["block", "inspect", "secret/[bold]x"])
    assert missing.exit_code == 2
    bad = runner.invoke(app, ["block", "delete", "no-slash"])
    assert bad.exit_code == 2 and "TYPE/NAME" in bad.output


def test_s3_bucket_reads_writes_uploads_and_downloads(aws: Aws, tmp_path: Path) -> None:
    aws.session.client("s3").create_bucket(Bucket="acme-data")
    S3Bucket(bucket_name="acme-data", bucket_folder="raw").save("raw-data")
    bucket = S3Bucket.load("raw-data")
    assert bucket.write_path("2026/orders.json", b"[1]") == "raw/2026/orders.json"
    assert bucket.read_path("2026/orders.json") == b"[1]"
    source = tmp_path / "notes.txt"
    source.write_text("hello")
    assert bucket.upload_from_path(source) == "raw/notes.txt"
    target = bucket.download_object_to_path("notes.txt", tmp_path / "copy.txt")
    assert target == (tmp_path / "copy.txt").absolute() and target.read_text() == "hello"

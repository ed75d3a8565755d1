"""`stratoflow.blocks` on the memory backend: Prefect 3's Block and Secret API, custom
blocks with secret fields, and secret values kept out of reprs, logs and errors."""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from stratoflow import flow, task
from stratoflow.blocks import (
    Block,
    BlockAlreadyExists,
    BlockError,
    BlockNotFound,
    Secret,
    SecretDict,
)
from stratoflow.blocks.aws import S3Bucket
from stratoflow.blocks.records import BlockSecrets, is_secret_type, slugify
from stratoflow.context import get_services
from stratoflow.testing import TestHarness, stratoflow_test_harness

TOKEN = "sk-live-7c1f0e9d"  # a test value, looked for in every output


class Warehouse(Block):
    """A warehouse connection."""

    host: str
    port: int = 5432
    password: SecretStr
    options: SecretDict | None = None


class Nested(BaseModel):
    user: str
    key: SecretStr


class WithNested(Block):
    _block_type_name = "With Nested Secrets"

    login: Nested
    label: str = "x"


class Custom(Block):
    _block_type_slug = "my-custom"

    message: str


@pytest.fixture
def harness() -> Iterator[TestHarness]:
    with stratoflow_test_harness() as h:
        yield h


def test_block_type_slugs_follow_prefect() -> None:
    assert Secret.get_block_type_slug() == "secret"
    assert Secret[str].get_block_type_slug() == "secret"
    assert Warehouse.get_block_type_slug() == "warehouse"
    assert WithNested.get_block_type_slug() == "with-nested-secrets"
    assert WithNested.get_block_type_name() == "With Nested Secrets"
    assert Custom.get_block_type_slug() == "my-custom"
    assert S3Bucket.get_block_type_slug() == "s3-bucket"
    assert slugify("My  Block!") == "my-block" and slugify("MyCustomBlock") == "mycustomblock"
    assert Warehouse.get_description() == "A warehouse connection."


def test_secret_fields_are_found_in_unions_containers_and_models() -> None:
    assert Secret.secret_field_names() == ("value",)
    assert Warehouse.secret_field_names() == ("password", "options")
    assert WithNested.secret_field_names() == ("login",)
    assert Custom.secret_field_names() == ()
    assert is_secret_type(list[SecretStr]) and not is_secret_type(dict[str, int])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (TOKEN, TOKEN),
        ('{"user": "u", "password": "p"}', {"user": "u", "password": "p"}),
        ({"user": "u", "password": "p"}, {"user": "u", "password": "p"}),
        ([1, "two", None], [1, "two", None]),
        (42, 42),
    ],
)
def test_secret_round_trips_strings_and_json(
    harness: TestHarness, value: Any, expected: Any
) -> None:
    block_id = Secret(value=value).save("my-secret")
    loaded = Secret.load("my-secret")
    assert loaded.get() == expected
    assert loaded._block_document_id == block_id
    assert Block.load("secret/my-secret").get() == expected


def test_secret_values_never_show_in_repr_str_or_documents(harness: TestHarness) -> None:
    secret = Secret(value=TOKEN)
    warehouse = Warehouse(host="db", password=TOKEN, options={"sslkey": TOKEN})
    for shown in (repr(secret), str(secret), repr(warehouse), str(warehouse)):
        assert TOKEN not in shown and "**********" in shown
    secret.save("tok")
    warehouse.save("prod")
    for document in get_services().backend.blocks.list_blocks():
        assert TOKEN not in document.model_dump_json()
    stored = get_services().backend.blocks.read("warehouse", "prod")
    assert stored is not None and stored.data == {"host": "db", "port": 5432}
    assert stored.secret_fields == ("password", "options")
    secrets = BlockSecrets({"password": TOKEN})
    assert TOKEN not in repr(secrets) and TOKEN not in str(secrets)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secrets)


def test_custom_blocks_keep_secret_and_plain_fields(harness: TestHarness) -> None:
    Warehouse(host="db", password=TOKEN, options={"sslkey": "k"}).save("prod")
    loaded = Warehouse.load("prod")
    assert (loaded.host, loaded.port) == ("db", 5432)
    assert loaded.password.get_secret_value() == TOKEN
    assert loaded.options is not None and loaded.options.get_secret_value() == {"sslkey": "k"}
    WithNested(login=Nested(user="u", key=TOKEN)).save("n")
    assert WithNested.load("n").login.key.get_secret_value() == TOKEN
    Custom(message="hello").save("c")
    assert Custom.load("c").message == "hello"


def test_save_refuses_a_used_name_unless_overwrite_and_keeps_the_id(harness: TestHarness) -> None:
    first = Secret(value="a").save("tok")
    with pytest.raises(BlockAlreadyExists, match="overwrite=True") as refused:
        Secret(value="b").save("tok")
    assert isinstance(refused.value, ValueError)
    assert Secret(value="b").save("tok", overwrite=True) == first
    assert Secret.load("tok").get() == "b"
    # the same name under another type is another block
    Custom(message="m").save("tok")


def test_a_loaded_block_saves_under_its_own_name(harness: TestHarness) -> None:
    Custom(message="a").save("c")
    loaded = Custom.load("c")
    loaded.message = "b"
    loaded.save(overwrite=True)
    assert Custom.load("c").message == "b"
    with pytest.raises(BlockError, match="without a name"):
        Custom(message="x").save()


@pytest.mark.parametrize("name", ["My Token", "under_score", "", "a/b", "x" * 129, "ÄÖ"])
def test_names_are_lowercase_letters_numbers_and_dashes(harness: TestHarness, name: str) -> None:
    with pytest.raises(BlockError, match="lowercase letters, numbers, and dashes"):
        Secret(value="v").save(name)


def test_loading_what_is_not_there_is_a_clear_value_error(harness: TestHarness) -> None:
    with pytest.raises(BlockNotFound, match="named missing for block type secret") as missing:
        Secret.load("missing")
    assert isinstance(missing.value, ValueError)
    with pytest.raises(BlockError, match="TYPE/NAME"):
        Block.load("no-slash")
    with pytest.raises(BlockError, match="No block class of type 'unknown-type'"):
        Block.load("unknown-type/x")


def test_delete_removes_the_document_and_its_secrets(harness: TestHarness) -> None:
    Secret(value="v").save("tok")
    Secret.delete("tok")
    with pytest.raises(BlockNotFound):
        Secret.load("tok")
    with pytest.raises(BlockNotFound):
        Secret.delete("tok")
    Custom(message="m").save("c")
    Block.delete("my-custom/c")
    assert get_services().backend.blocks.list_blocks() == []


def test_validation_errors_name_fields_never_values(harness: TestHarness) -> None:
    class Strict(Block):
        _block_type_slug = "strict-check"
        token: SecretStr
        retries: int

    Strict(token=TOKEN, retries=1).save("s")
    document = get_services().backend.blocks.read("strict-check", "s")
    assert document is not None
    # The stored document changed under the class (an older class saved another shape).
    blocks = get_services().backend.blocks
    broken = document.model_copy(update={"data": {"retries": "not a number " + TOKEN}})
    blocks.write(broken, BlockSecrets({"token": TOKEN}), overwrite=True)
    with pytest.raises(BlockError) as refused:
        Strict.load("s")
    assert "retries" in str(refused.value) and TOKEN not in str(refused.value)
    with pytest.warns(UserWarning, match="retries") as warned:
        loose = Strict.load("s", validate=False)
    assert all(TOKEN not in str(w.message) for w in warned)
    assert loose.token.get_secret_value() == TOKEN


def test_secret_values_stay_out_of_logs(
    harness: TestHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    @task
    def use(name: str) -> int:
        return len(Secret.load(name).get())

    @flow(log_prints=True)
    def uses_a_secret() -> int:
        secret = Secret.load("tok")
        print(secret)  # a careless print: the block shows masked
        return use("tok")

    Secret(value=TOKEN).save("tok")
    assert uses_a_secret() == len(TOKEN)
    assert TOKEN not in caplog.text
    for run in get_services().backend.list_flow_runs():
        assert all(TOKEN not in entry.message for entry in get_services().backend.read_logs(run.id))


def test_async_forms(harness: TestHarness) -> None:
    async def main() -> Any:
        await Secret(value={"k": 1}).asave("tok")
        loaded = await Secret.aload("tok")
        awaited = await Secret.load("tok")  # dispatches to aload in a running loop
        await Secret.adelete("tok")
        return loaded.get(), awaited.get()

    assert asyncio.run(main()) == ({"k": 1}, {"k": 1})


def test_pools_are_recorded_and_checked(harness: TestHarness) -> None:
    Secret(value="v").save("tok", pools=["etl", "default"])
    document = get_services().backend.blocks.read("secret", "tok")
    assert document is not None and document.pools == ("default", "etl")
    with pytest.raises(BlockError, match="pools must name"):
        Secret(value="v").save("bad", pools=["*"])


def test_s3_bucket_keys_join_the_folder() -> None:
    bucket = S3Bucket(bucket_name="acme-data", bucket_folder="raw/")
    assert bucket._key("2026/a.json") == "raw/2026/a.json"
    assert bucket._key("raw/2026/a.json") == "raw/2026/a.json"
    assert S3Bucket(bucket_name="acme-data")._key(Path("a") / "b.txt") == "a/b.txt"
    assert S3Bucket.secret_field_names() == ()

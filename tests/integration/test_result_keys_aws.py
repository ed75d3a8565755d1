"""The result-signing keys in SSM Parameter Store (docs/security.md, "A pickle is loaded
only when its signature verifies"), on moto: how a key is created (random, or copied
from the Secrets Manager secret of an earlier version, never replaced), read (once per
process, the version before on demand), rotated, missing, and the upgrade path (an
installation whose parameters do not exist yet, or whose policies grant no
`ssm:GetParameter` yet, reads the earlier secret); and the stack's custom resource
handler (functions/result_keys/handler.py) on Create, Update and Delete."""

from __future__ import annotations

import base64
import importlib.util
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from stratoflow.backends.aws.result_key_setup import (
    create_result_key,
    delete_result_key,
    new_key,
)
from stratoflow.backends.aws.result_keys import ParameterStoreResultKeys
from stratoflow.resources import result_key_parameter_name, result_key_secret_name
from stratoflow.result_signing import KeyUnavailable, ResultSigner, ResultVerifier, StaticKeys
from stratoflow.settings import get_settings

PREFIX = "sf"
HANDLER = Path(__file__).resolve().parents[2] / "functions" / "result_keys" / "handler.py"


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "STRATOFLOW_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield boto3.Session(
            region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )


class Counting:
    """A client that counts its calls (and may answer some with an error)."""

    def __init__(self, client: Any, deny: frozenset[str] = frozenset()) -> None:
        self.client, self.deny, self.calls = client, deny, Counter[str]()

    def __getattr__(self, operation: str) -> Any:
        method = getattr(self.client, operation)

        def call(**kwargs: Any) -> Any:
            self.calls[operation] += 1
            if operation in self.deny:
                raise ClientError(
                    {"Error": {"Code": "AccessDeniedException", "Message": "denied"}}, operation
                )
            return method(**kwargs)

        return call


def keys(session: boto3.Session, ssm: Any = None) -> ParameterStoreResultKeys:
    return ParameterStoreResultKeys(
        ssm or session.client("ssm"), session.client("secretsmanager"), PREFIX
    )


def rotate(session: boto3.Session, domain: str, value: str) -> None:
    """What docs/security.md tells an operator to run."""
    session.client("ssm").put_parameter(
        Name=result_key_parameter_name(PREFIX, domain),
        Value=value,
        Type="SecureString",
        Tier="Standard",
        Overwrite=True,
    )


def earlier_secret(session: boto3.Session, domain: str, *values: str) -> None:
    """The secret an earlier version created (then rotated, for each further value)."""
    client = session.client("secretsmanager")
    name = result_key_secret_name(PREFIX, domain)
    client.create_secret(Name=name, SecretString=values[0])
    for value in values[1:]:
        client.put_secret_value(SecretId=name, SecretString=value)


def test_a_new_key_is_a_random_standard_secure_string_never_replaced(session: boto3.Session):
    ssm = session.client("ssm")
    assert create_result_key(ssm, session.client("secretsmanager"), PREFIX, "etl")
    name = result_key_parameter_name(PREFIX, "etl")
    assert name == "/sf/result-keys/etl"
    stored = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert stored["Type"] == "SecureString" and stored["Version"] == 1
    assert len(base64.b64decode(stored["Value"], validate=True)) == 32
    [described] = ssm.describe_parameters()["Parameters"]
    assert described["Tier"] == "Standard"  # free, whatever the account's default tier
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] != stored["Value"]  # encrypted
    # Again (a second deploy, `strato dev` once more): the key stays.
    assert not create_result_key(ssm, session.client("secretsmanager"), PREFIX, "etl")
    again = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert (again["Value"], again["Version"]) == (stored["Value"], 1)
    assert new_key() != new_key()


def test_a_key_is_read_once_per_process_and_the_version_before_only_when_needed(
    session: boto3.Session,
):
    create_result_key(session.client("ssm"), session.client("secretsmanager"), PREFIX, "etl")
    ssm = Counting(session.client("ssm"))
    source = keys(session, ssm)
    signer, verifier = ResultSigner(source, "etl"), ResultVerifier(source)
    for i in range(20):
        signature = signer.sign(serializer="cloudpickle", key=f"k{i}", data=b"x")
        verifier.verify(signature, serializer="cloudpickle", key=f"k{i}", data=b"x", what="r")
    assert ssm.calls == {"get_parameter": 1}
    assert source.previous("etl") is None  # never rotated: version 1 has none before it
    assert ssm.calls == {"get_parameter": 1}


def test_after_a_rotation_the_new_version_signs_and_the_one_before_still_verifies(
    session: boto3.Session,
):
    create_result_key(session.client("ssm"), session.client("secretsmanager"), PREFIX, "etl")
    before = ResultSigner(keys(session), "etl").sign(serializer="s", key="k", data=b"d")
    rotate(session, "etl", "r" * 44)
    ssm = Counting(session.client("ssm"))
    source = keys(session, ssm)  # a process started after the rotation
    assert source.current("etl") == b"r" * 44
    assert ResultVerifier(source).verify(before, serializer="s", key="k", data=b"d", what="r")
    assert ssm.calls == {"get_parameter": 2}  # the current version, then `<name>:1`
    assert source.previous("etl") is not None and ssm.calls == {"get_parameter": 2}
    rotate(session, "etl", "s" * 44)
    source.cache_clear()  # an hour later
    assert source.current("etl") == b"s" * 44 and source.previous("etl") == b"r" * 44
    with pytest.raises(Exception, match="does not match its bytes"):  # two rotations ago
        ResultVerifier(source).verify(before, serializer="s", key="k", data=b"d", what="r")


def test_a_missing_key_names_the_parameter_and_who_creates_it(session: boto3.Session):
    with pytest.raises(KeyUnavailable) as missing:
        keys(session).current("etl")
    message = str(missing.value)
    assert "'/sf/result-keys/etl' could not be read (ParameterNotFound)" in message
    assert "nor the secret 'sf/result-keys/etl'" in message
    assert "the stack (or `strato dev`) creates one per work pool" in message


def test_a_short_value_is_refused(session: boto3.Session):
    session.client("ssm").put_parameter(
        Name=result_key_parameter_name(PREFIX, "etl"), Value="short", Type="SecureString"
    )
    with pytest.raises(KeyUnavailable, match="holds no key of at least 32 characters"):
        keys(session).current("etl")


def test_an_installation_of_an_earlier_version_reads_its_secret_until_it_is_deployed(
    session: boto3.Session, caplog: pytest.LogCaptureFixture
):
    earlier_secret(session, "etl", "a" * 64, "b" * 64)  # created, then rotated once
    source = keys(session)
    with caplog.at_level(logging.WARNING):
        assert source.current("etl") == b"b" * 64
    assert source.previous("etl") == b"a" * 64  # AWSPREVIOUS, as before
    [warning] = [r.getMessage() for r in caplog.records]
    assert "read from the Secrets Manager secret 'sf/result-keys/etl'" in warning
    assert "Deploy the stack of this version" in warning


def test_a_policy_without_get_parameter_falls_back_to_the_secret_too(session: boto3.Session):
    """A stack not deployed since the upgrade grants no `ssm:GetParameter`: IAM answers
    AccessDenied (before Parameter Store looks for the name), not ParameterNotFound."""
    earlier_secret(session, "etl", "a" * 64)
    create_result_key(session.client("ssm"), session.client("secretsmanager"), PREFIX, "etl")
    denied = Counting(session.client("ssm"), deny=frozenset({"get_parameter"}))
    assert keys(session, denied).current("etl") == b"a" * 64
    assert keys(session, denied).previous("etl") is None


def test_other_parameter_store_errors_are_not_hidden_by_the_fallback(session: boto3.Session):
    earlier_secret(session, "etl", "a" * 64)

    class Throttled:
        def get_parameter(self, **_: Any) -> Any:
            raise ClientError({"Error": {"Code": "ThrottlingException"}}, "GetParameter")

    with pytest.raises(KeyUnavailable, match=r"could not be read \(ThrottlingException\)"):
        keys(session, Throttled()).current("etl")


def test_the_parameter_copies_the_earlier_secret_so_earlier_signatures_verify(
    session: boto3.Session,
):
    earlier_secret(session, "etl", "a" * 64, "b" * 64)
    signed_now = ResultSigner(keys(session), "etl").sign(serializer="s", key="k", data=b"d")
    before_rotation = ResultSigner(StaticKeys({"etl": b"a" * 64}), "etl").sign(
        serializer="s", key="k", data=b"d"
    )
    assert create_result_key(session.client("ssm"), session.client("secretsmanager"), PREFIX, "etl")
    name = result_key_parameter_name(PREFIX, "etl")
    history = session.client("ssm").get_parameter_history(Name=name, WithDecryption=True)
    assert [(v["Version"], v["Value"]) for v in history["Parameters"]] == [
        (1, "a" * 64),  # AWSPREVIOUS
        (2, "b" * 64),  # AWSCURRENT: signs
    ]
    by_parameter = keys(session)
    assert by_parameter.current("etl") == b"b" * 64
    for signature in (signed_now, before_rotation):
        assert ResultVerifier(by_parameter).verify(
            signature, serializer="s", key="k", data=b"d", what="r"
        )


@dataclass
class FakeLambdaContext:
    function_name: str = "sf-result-keys"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:sf-result-keys"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def handler(session: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    get_settings.cache_clear()
    spec = importlib.util.spec_from_file_location("result_keys_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def event(request: str, domain: str = "etl", physical: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "RequestType": request,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
        "ResourceType": "Custom::StratoflowResultKey",
        "LogicalResourceId": "ResultKeysPooletl",
        "ResourceProperties": {"ServiceToken": "x", "QueuePrefix": PREFIX, "Domain": domain},
    }
    if physical is not None:
        found["PhysicalResourceId"] = physical
    return found


def test_the_custom_resource_creates_keeps_and_deletes_the_key(
    session: boto3.Session, handler: ModuleType, capsys: pytest.CaptureFixture[str]
):
    ssm = session.client("ssm")
    name = "/sf/result-keys/etl"
    created = handler.on_event(event("Create"), FakeLambdaContext())
    assert created == {"PhysicalResourceId": name}  # no Data: the key is never returned
    value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    assert handler.on_event(event("Update", physical=name), FakeLambdaContext()) == created
    kept = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert (kept["Value"], kept["Version"]) == (value, 1)  # an update leaves it alone
    assert value not in capsys.readouterr().out  # nor is it logged
    assert handler.on_event(event("Delete", physical=name), FakeLambdaContext()) == created
    with pytest.raises(ClientError, match="ParameterNotFound"):
        ssm.get_parameter(Name=name)
    # A Delete of a key already gone (deleted by hand) succeeds.
    assert handler.on_event(event("Delete", physical=name), FakeLambdaContext()) == created
    assert not delete_result_key(ssm, name)


def test_the_custom_resource_recreates_a_missing_key_on_update(
    session: boto3.Session, handler: ModuleType
):
    handler.on_event(event("Update", physical="/sf/result-keys/etl"), FakeLambdaContext())
    assert session.client("ssm").get_parameter(Name="/sf/result-keys/etl")["Parameter"]

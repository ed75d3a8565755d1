"""A user's view of the AWS backend: `strato run` in separate processes against the
emulator, then look where the README says things are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from stratoflow import resources
from stratoflow.emulator import emulator
from stratoflow.settings import Settings

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with emulator() as url:
        session = boto3.Session(region_name="us-east-1")
        resources.provision(session, endpoint_url=url)
        yield url


def strato_run(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "STRATOFLOW_BACKEND": "aws",
        "STRATOFLOW_ENDPOINT_URL": endpoint,
        "STRATOFLOW_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "STRATOFLOW_LOG_TO_CONSOLE": "false",
    }
    return subprocess.run(
        [sys.executable, "-m", "stratoflow.cli", "run", *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def client(endpoint: str, service: str):  # type: ignore[no-untyped-def]
    return boto3.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    ).client(service, endpoint_url=endpoint)


def test_a_flow_run_leaves_everything_where_the_docs_say(endpoint: str):
    first = strato_run(endpoint, f"{EXAMPLES}/etl.py:etl", "--param", "rows=300")
    assert first.returncode == 0, first.stderr
    run = json.loads(first.stdout)
    assert run["state"]["name"] == "Completed"
    assert run["result"] == sum(round(i * 10 * 1.2) for i in range(300))

    dynamodb = client(endpoint, "dynamodb")
    table = resources.ResourceNames.from_settings(Settings()).table
    item = dynamodb.get_item(
        TableName=table, Key={"pk": {"S": f"FLOWRUN#{run['id']}"}, "sk": {"S": "META"}}
    )["Item"]
    assert item["state"]["M"]["name"]["S"] == "Completed"
    assert "inline" in item["result"]["M"]  # a small result lives in the item

    task_items = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :t)",
        ExpressionAttributeValues={":pk": {"S": f"FLOWRUN#{run['id']}"}, ":t": {"S": "TASKRUN#"}},
    )["Items"]
    assert sorted(i["name"]["S"] for i in task_items) == ["extract-0", "load-0", "transform-0"]
    extract = next(i for i in task_items if i["name"]["S"] == "extract-0")
    assert extract["run_count"]["N"] == "2"
    assert [h["M"]["name"]["S"] for h in extract["state_history"]["L"]][-2:] == [
        "AwaitingRetry",
        "Retrying",
    ]

    # 300 records are more than the inline limit: the extract result is an S3 object.
    objects = client(endpoint, "s3").list_objects_v2(Bucket="stratoflow-results")["Contents"]
    assert any(o["Key"] == f"results/{run['id']}/{extract['id']['S']}" for o in objects)

    transform = next(i for i in task_items if i["name"]["S"] == "transform-0")
    cache_key = transform["cache_key"]["S"]
    cache_item = dynamodb.get_item(
        TableName=table, Key={"pk": {"S": f"CACHE#{cache_key}"}, "sk": {"S": "META"}}
    )["Item"]
    assert int(cache_item["expires_at"]["N"]) > 0

    events = client(endpoint, "logs").get_log_events(
        logGroupName="/stratoflow/runs", logStreamName=f"flow-run/{run['id']}", startFromHead=True
    )["events"]
    lines = [json.loads(e["message"]) for e in events]
    assert any(line["message"] == "Extracted 300 records" for line in lines)
    assert all(line["flow_run_id"] == run["id"] for line in lines)

    # Another process (another machine) hits the cache written by the first.
    second = strato_run(endpoint, f"{EXAMPLES}/etl.py:etl", "--param", "rows=300")
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert [t["state"]["name"] for t in again["task_runs"]] == ["Completed", "Cached", "Completed"]
    assert again["result"] == run["result"]


def test_misconfigured_backend_is_one_clear_line(endpoint: str):
    env = {**os.environ, "STRATOFLOW_BACKEND": "gcp"}
    done = subprocess.run(
        [sys.executable, "-m", "stratoflow.cli", "run", f"{EXAMPLES}/fanout.py:fan_out"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "STRATOFLOW_BACKEND: Input should be 'memory' or 'aws' (got 'gcp')" in done.stderr
    assert "Traceback" not in done.stderr

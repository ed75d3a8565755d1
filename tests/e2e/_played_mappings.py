"""The event source mappings the emulator cannot be given (`_stack_deploy.UNSUPPORTED`),
played by the test as `strato dev` plays them: read the mapping's source (a queue, the
table's stream), invoke the function it names (the code its `Handler` names, with its
deployed environment), and settle the batch as Lambda would (delete what succeeded)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from stratoflow.context import set_process_services
from stratoflow.dev.event_sources import sqs_event
from stratoflow.dev.lambda_runtime import LocalLambdaContext, load_handler
from stratoflow.platform import get_platform
from stratoflow.settings import get_settings


@dataclass
class Installation:
    """A stack created in the emulator."""

    endpoint: str
    region: str
    template: dict[str, Any]
    """The synthesized template (before pruning: the mappings are in it)."""
    physical: dict[str, str]
    """Logical id → physical id of the created resources."""
    home: Path

    def client(self, service: str) -> Any:
        session = boto3.Session(region_name=self.region)
        return session.client(service, endpoint_url=self.endpoint)


@dataclass(frozen=True)
class Mapping:
    """An event source mapping of the template: which function reads which source
    (logical ids), in batches of how many."""

    function: str
    source: str
    source_type: str
    """`AWS::SQS::Queue` or `AWS::DynamoDB::Table` (its stream)."""
    batch_size: int
    report_failures: bool
    retries: int | None


def event_source_mappings(template: dict[str, Any]) -> list[Mapping]:
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Lambda::EventSourceMapping":
            continue
        properties = resource["Properties"]
        source = properties["EventSourceArn"]["Fn::GetAtt"][0]
        found.append(
            Mapping(
                function=properties["FunctionName"]["Ref"],
                source=source,
                source_type=template["Resources"][source]["Type"],
                batch_size=int(properties["BatchSize"]),
                report_failures="ReportBatchItemFailures"
                in properties.get("FunctionResponseTypes", []),
                retries=properties.get("MaximumRetryAttempts"),
            )
        )
    return found


def mapping_of(installation: Installation, function: str) -> Mapping:
    """The one mapping of `function` (a logical id)."""
    [mapping] = [m for m in event_source_mappings(installation.template) if m.function == function]
    return mapping


@contextlib.contextmanager
def deployed_function(
    installation: Installation, function: str
) -> Iterator[Callable[[dict[str, Any]], Any]]:
    """Invoke the deployed function `function` (a logical id) as Lambda would: the code
    its `Handler` names (`functions.<name>.handler.<function>`), with its deployed
    environment in effect in this process; only the endpoint and home are this
    machine's. Yields `invoke(event) -> response`."""
    config: dict[str, Any] = installation.client("lambda").get_function_configuration(
        FunctionName=installation.physical[function]
    )
    package, name, module, attribute = config["Handler"].split(".")
    assert (package, module) == ("functions", "handler"), config["Handler"]
    handler = load_handler(name, attribute)
    variables = {
        **config["Environment"]["Variables"],
        "STRATOFLOW_ENDPOINT_URL": installation.endpoint,
        "STRATOFLOW_HOME": str(installation.home / config["FunctionName"]),
    }

    def invoke(event: dict[str, Any]) -> Any:
        context = LocalLambdaContext(config["FunctionName"], timeout_seconds=config["Timeout"])
        return handler(event, context)

    with pytest.MonkeyPatch.context() as patch:
        for variable in list(os.environ):
            if variable.startswith("STRATOFLOW_"):
                patch.delenv(variable)
        for variable, value in variables.items():
            patch.setenv(variable, value)
        get_settings.cache_clear()
        previous = set_process_services(None)
        try:
            yield invoke
        finally:
            get_platform().backend.close()  # what the function buffered, written
            set_process_services(previous)
            get_settings.cache_clear()


def play_queue_mapping(installation: Installation, function: str) -> dict[str, Any]:
    """One round of the SQS event source mapping of `function`: receive a batch from its
    queue, invoke the function, delete what it did not report failed."""
    mapping = mapping_of(installation, function)
    assert mapping.source_type == "AWS::SQS::Queue"
    sqs = installation.client("sqs")
    url = installation.physical[mapping.source]
    messages = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=mapping.batch_size,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
        WaitTimeSeconds=1,
    ).get("Messages", [])
    assert messages, f"no message in {url}"
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    event = sqs_event(messages, attributes["Attributes"]["QueueArn"], installation.region)
    with deployed_function(installation, function) as invoke:
        response: dict[str, Any] = invoke(event)
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert mapping.report_failures or not failed
    for message in messages:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return response

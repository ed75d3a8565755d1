"""The result-signing keys' custom resource: the `onEvent` handler of the stack's
`custom_resources.Provider` (infra/constructs/result_keys.py), one resource per signing
domain.

CloudFormation cannot create SecureString parameters, and a key must never be in a
template, so the key is made here: Create (and Update) create the domain's parameter
when it does not exist and leave an existing one's value alone (`create_result_key`:
random, or copied from the Secrets Manager secret of an earlier version); Delete deletes
it. The stack's `retain_data` sets the resource's DeletionPolicy to Retain, so
CloudFormation sends no Delete when data is retained. The key is never returned (no
`Data`) nor logged: the provider framework logs its responses.
"""

# No `from __future__ import annotations`: pydantic resolves the models' fields from this
# module, which the runtime (and the tests) may load without registering it.

from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from stratoflow.backends.aws.clients import AwsClients, AwsConfig
from stratoflow.backends.aws.result_key_setup import create_result_key, delete_result_key
from stratoflow.resources import result_key_parameter_name
from stratoflow.settings import get_settings

logger = Logger(service="stratoflow-result-keys")


class ResultKeyProperties(BaseModel):
    """The resource's properties (CloudFormation adds `ServiceToken`, ignored)."""

    model_config = ConfigDict(populate_by_name=True)

    queue_prefix: str = Field(alias="QueuePrefix", min_length=1)
    domain: str = Field(alias="Domain", min_length=1)


class ResultKeyEvent(BaseModel):
    """The fields of the provider framework's event this handler uses."""

    model_config = ConfigDict(populate_by_name=True)

    request_type: Literal["Create", "Update", "Delete"] = Field(alias="RequestType")
    physical_resource_id: str | None = Field(default=None, alias="PhysicalResourceId")
    properties: ResultKeyProperties = Field(alias="ResourceProperties")


def respond(event: ResultKeyEvent, clients: AwsClients) -> dict[str, Any]:
    properties = event.properties
    name = result_key_parameter_name(properties.queue_prefix, properties.domain)
    if event.request_type == "Delete":
        # The name this resource was created with (a renamed one's Delete names its old
        # parameter); the role may delete this stack's key parameters only.
        target = event.physical_resource_id or name
        deleted = delete_result_key(clients.ssm, target)
        logger.info("Result-signing key deleted", extra={"parameter": target, "existed": deleted})
        return {"PhysicalResourceId": target}
    created = create_result_key(
        clients.ssm, clients.secretsmanager, properties.queue_prefix, properties.domain
    )
    logger.info(
        "Result-signing key ensured",
        extra={"parameter": name, "request": event.request_type, "new_key": created},
    )
    # A new name (another queue prefix) is a new physical id: CloudFormation then deletes
    # the old resource's parameter.
    return {"PhysicalResourceId": name}


@logger.inject_lambda_context
def on_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return respond(
        ResultKeyEvent.model_validate(event),
        AwsClients(config=AwsConfig.from_settings(get_settings())),
    )

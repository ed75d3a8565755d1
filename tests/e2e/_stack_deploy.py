"""Deploying a synthesized CDK stack into the emulator, as `cdk bootstrap` + `cdk deploy`
would into an account: the bootstrap version parameter and assets bucket, the file
assets published to their destinations, the template given to CloudFormation by URL.

moto's CloudFormation creates most of the template; `prune` removes what it cannot (each
type with its reason) and everything that refers to a removed resource, transitively.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import importlib.util
import io
import json
import re
import sys
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    # `infra` is imported from the repository root: tests/infra have it on the path by
    # being a package, this directory is not one.
    sys.path.insert(0, str(ROOT))

# tests.infra._cdk silences jsii's banner about Node's version before the CDK loads.
from infra.constructs.lambda_code import ASSET_EXCLUDE  # noqa: E402
from infra.constructs.result_keys import RESOURCE_TYPE as RESULT_KEY_RESOURCE  # noqa: E402
from stratoflow.backends.aws.clients import AwsClients  # noqa: E402
from tests.infra._cdk import CDK_JSON_CONTEXT  # noqa: E402

ACCOUNT = "123456789012"
"""moto's default account: the one the emulator's resources live in."""

UNSUPPORTED: dict[str, str] = {
    # moto has no CloudFormation model for these: it logs a warning and skips the
    # resource, so a Ref or GetAtt to it fails (or resolves to nothing) later.
    "AWS::CloudWatch::Alarm": "no CloudFormation model in moto (skipped with a warning)",
    "AWS::Logs::MetricFilter": "no CloudFormation model in moto (skipped with a warning)",
    "AWS::S3::BucketPolicy": "no CloudFormation model in moto (skipped with a warning)",
    "AWS::SQS::QueuePolicy": "no CloudFormation model in moto (skipped with a warning)",
    "AWS::SNS::TopicPolicy": "no CloudFormation model in moto (skipped with a warning)",
    "AWS::SNS::Subscription": "no CloudFormation model in moto (skipped with a warning)",
    # The web UI's edge and sign-in (infra/constructs/web_ui.py): no CloudFormation
    # model either. What refers to them goes too: CloudFront's permissions to invoke the
    # function and the sign-in parameter (the function and its role stay).
    "AWS::Lambda::Url": "no CloudFormation model in moto (skipped with a warning)",
    "AWS::CloudFront::Distribution": "no CloudFormation model in moto (skipped with a warning)",
    "AWS::CloudFront::OriginAccessControl": "no CloudFormation model in moto (skipped with a "
    "warning)",
    "AWS::CloudFront::CachePolicy": "no CloudFormation model in moto (skipped with a warning)",
    "AWS::CloudFront::ResponseHeadersPolicy": "no CloudFormation model in moto (skipped with a "
    "warning)",
    "AWS::Cognito::UserPool": "no CloudFormation model in moto (skipped with a warning)",
    "AWS::Cognito::UserPoolDomain": "no CloudFormation model in moto (skipped with a warning)",
    "AWS::Cognito::UserPoolClient": "no CloudFormation model in moto (skipped with a warning)",
    "AWS::Cognito::UserPoolGroup": "no CloudFormation model in moto (skipped with a warning)",
    # moto can create a mapping, but then does the mapping's work itself, wrongly for us:
    # on a table stream it serialises each written item as JSON for the function, so any
    # write carrying a binary attribute gets HTTP 500; on a queue it invokes the function
    # at SendMessage (in Docker, which the emulator's host need not have) and consumes
    # the message. The test plays the mappings' part, as `strato dev` does.
    "AWS::Lambda::EventSourceMapping": "moto would act on it (stream writes with binary "
    "attributes fail with HTTP 500; queue messages are consumed by a Docker invocation)",
}
"""Resource types removed before the template is given to moto, with the reason."""


def references(node: Any) -> set[str]:
    """Logical ids `node` refers to: Ref, Fn::GetAtt (both forms), Fn::Sub's `${...}`."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else str(value).split(".")[0])
            elif key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else value
                names = re.findall(r"\$\{([^}!][^}]*)\}", text)
                found |= {name.split(".")[0] for name in names} - set(variables)
                found |= references(variables)
            else:
                found |= references(value)
    return found


def depends_on(resource: dict[str, Any]) -> set[str]:
    value = resource.get("DependsOn", [])
    return {value} if isinstance(value, str) else set(value)


@dataclass
class Pruned:
    template: dict[str, Any]
    removed: dict[str, str] = field(default_factory=dict)
    """Logical id → type of every removed resource."""
    removed_outputs: list[str] = field(default_factory=list)


def prune(template: dict[str, Any], unsupported: Iterable[str] = UNSUPPORTED) -> Pruned:
    """The template without resources of the `unsupported` types, nor any resource or
    output that refers to (or depends on) a removed resource, transitively."""
    pruned = copy.deepcopy(template)
    resources: dict[str, Any] = pruned["Resources"]
    kinds = set(unsupported)
    removed = {name: r["Type"] for name, r in resources.items() if r["Type"] in kinds}
    while True:
        dependent = {
            name: resource["Type"]
            for name, resource in resources.items()
            if name not in removed and (references(resource) | depends_on(resource)) & set(removed)
        }
        if not dependent:
            break
        removed |= dependent
    for name in removed:
        del resources[name]
    outputs: dict[str, Any] = pruned.get("Outputs", {})
    gone = [name for name, output in outputs.items() if references(output) & set(removed)]
    for name in gone:
        del outputs[name]
    return Pruned(pruned, removed, gone)


STOOD_IN: dict[str, str] = {
    RESULT_KEY_RESOURCE: "moto would invoke the custom resource's provider framework (a "
    "Node.js function, in Docker, which the emulator's host need not have): the test "
    "makes each key as the provider would, by calling the resource's handler "
    "(functions/result_keys/handler.py) with a Create event, then takes the resource out "
    "(nothing in the template refers to it: the grants name the parameters' ARNs; the "
    "worker policies that wait for it, with DependsOn, wait no more)",
}
"""Resource types the test creates through their API instead, with the reason."""

RESULT_KEYS_HANDLER = ROOT / "functions" / "result_keys" / "handler.py"


def stand_in(template: dict[str, Any], clients: AwsClients) -> dict[str, str]:
    """Make the template's result-signing keys with their custom resource's handler and
    take the resources out of the template, in place; returns logical id → type of the
    resources taken out."""
    spec = importlib.util.spec_from_file_location("result_keys_handler", RESULT_KEYS_HANDLER)
    assert spec is not None and spec.loader is not None
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)
    resources: dict[str, Any] = template["Resources"]
    taken = {name: r["Type"] for name, r in resources.items() if r["Type"] in STOOD_IN}
    for name in taken:
        event = {"RequestType": "Create", "ResourceProperties": resources.pop(name)["Properties"]}
        handler.respond(handler.ResultKeyEvent.model_validate(event), clients)
    assert not references(template) & set(taken), "the template refers to a stood-in resource"
    for resource in resources.values():  # made already: nothing waits for them
        waits = depends_on(resource) - set(taken)
        if waits:
            resource["DependsOn"] = sorted(waits)
        else:
            resource.pop("DependsOn", None)
    return taken


def give_containers_memory(template: dict[str, Any]) -> list[str]:
    """The one change (not a removal) moto needs: its `RunTask` adds up the containers'
    `memory` and fails (HTTP 500, a TypeError) on a container without one, which Fargate
    allows (the task's memory applies). Each such container of a task definition with a
    task-level memory gets that memory, in place; returns `<logical id>/<container>` of
    each. (The stack leaves it unset on purpose: a run's `job_variables` may raise the
    task's memory, and a container limit would not follow.)"""
    changed = []
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] != "AWS::ECS::TaskDefinition" or "Memory" not in properties:
            continue
        for container in properties.get("ContainerDefinitions", []):
            if "Memory" not in container and "MemoryReservation" not in container:
                container["Memory"] = int(properties["Memory"])
                changed.append(f"{name}/{container['Name']}")
    return changed


def spell_key_tags_for_moto(template: dict[str, Any]) -> list[str]:
    """moto creates an `AWS::KMS::Key` with tags through its KMS API's spelling
    (`TagKey`/`TagValue`) and fails (HTTP 500, a KeyError) on CloudFormation's
    (`Key`/`Value`). Each key's tags are respelled in place; returns the keys' logical
    ids. (The notifications topic's key carries the stack's tags.)"""
    changed = []
    for name, resource in template["Resources"].items():
        tags = resource.get("Properties", {}).get("Tags")
        if resource["Type"] != "AWS::KMS::Key" or not tags:
            continue
        resource["Properties"]["Tags"] = [
            {"TagKey": tag["Key"], "TagValue": tag["Value"]} for tag in tags
        ]
        changed.append(name)
    return changed


def synthesize(outdir: Path, context: dict[str, Any]) -> Path:
    """The cloud assembly of the app (`infra/app.py`) with cdk.json's context and
    `context`; bundling skipped (the Lambda code asset is then the source directory),
    cdk-nag on, as `cdk synth` runs it."""
    import aws_cdk as cdk

    from infra.app import build_app

    app = cdk.App(
        context={**CDK_JSON_CONTEXT, **context, "aws:cdk:bundling-stacks": []},
        outdir=str(outdir),
    )
    build_app(app)
    app.synth()
    return outdir


# Bootstrap and assets


def substitute(text: str, region: str) -> str:
    """A cloud assembly's `${AWS::...}` placeholders for this account and region."""
    values = {"AWS::AccountId": ACCOUNT, "AWS::Region": region, "AWS::Partition": "aws"}
    return re.sub(r"\$\{(AWS::[A-Za-z]+)\}", lambda m: values[m[1]], text)


def bootstrap(ssm: Any, s3: Any, stack_artifact: dict[str, Any], region: str) -> str:
    """What `cdk bootstrap` leaves that a deploy reads: the version parameter (at the
    version the stack requires; returned) and the assets bucket."""
    properties = stack_artifact["properties"]
    version = str(properties["requiresBootstrapStackVersion"])
    ssm.put_parameter(
        Name=properties["bootstrapStackVersionSsmParameter"], Value=version, Type="String"
    )
    s3.create_bucket(Bucket=assets_bucket(stack_artifact, region))
    return version


def assets_bucket(stack_artifact: dict[str, Any], region: str) -> str:
    url = stack_artifact["properties"]["stackTemplateAssetObjectUrl"]
    return split_s3_url(substitute(url, region))[0]


def split_s3_url(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


def zip_directory(source: Path, unbundled_source: bool) -> bytes:
    """A directory asset zipped, as cdk-assets does. With bundling skipped, the asset is
    the unbundled source directory (the repository): only what the asset's hash covers
    goes in (the top-level names its exclude patterns re-include), not .venv and the
    rest."""
    keep = {p[1:] for p in ASSET_EXCLUDE if p.startswith("!") and "*" not in p}
    skip = re.compile(r"(^|/)(__pycache__|[^/]*\.egg-info)(/|$)|\.pyc$")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(source).as_posix()
            if not path.is_file() or skip.search(relative):
                continue
            if unbundled_source and relative.split("/")[0] not in keep:
                continue
            archive.write(path, relative)
    return buffer.getvalue()


def publish_assets(s3: Any, assembly: Path, stack: str, region: str) -> dict[str, str]:
    """Upload each file asset of `<stack>.assets.json` to its destinations (cdk-assets'
    part of `cdk deploy`); returns the uploaded s3:// URLs and the SHA-256 of each body,
    base64 (as Lambda reports a function's `CodeSha256`)."""
    manifest = json.loads((assembly / f"{stack}.assets.json").read_text())
    uploaded = {}
    for asset in manifest["files"].values():
        source = assembly / asset["source"]["path"]  # an absolute path stays as it is
        if asset["source"]["packaging"] == "zip":
            body = zip_directory(source, unbundled_source=not source.is_relative_to(assembly))
        else:
            body = source.read_bytes()
        for destination in asset["destinations"].values():
            bucket = substitute(destination["bucketName"], region)
            key = substitute(destination["objectKey"], region)
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
            uploaded[f"s3://{bucket}/{key}"] = digest
    return uploaded


def create_stack(
    cloudformation: Any, s3: Any, stack: str, template: dict[str, Any], bucket: str, region: str
) -> dict[str, Any]:
    """Create the stack from `template` (uploaded next to the assets and given by URL, as
    `cdk deploy` does: the template is larger than CreateStack's 51,200-byte body limit);
    returns the stack once CREATE_COMPLETE, or fails with the events' reasons."""
    key = f"{stack}.pruned.template.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(template).encode())
    try:
        cloudformation.create_stack(
            StackName=stack,
            TemplateURL=f"https://{bucket}.s3.{region}.amazonaws.com/{key}",
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
    except (BotoCoreError, ClientError, ResponseParserError) as exc:
        # moto creates the resources within CreateStack: a resource it fails to create
        # is an HTTP 500 with no reason (the emulator's log is not kept).
        raise AssertionError(
            f"CreateStack {stack} failed: {exc}\n{stack_events(cloudformation, stack)}\n"
            "(an HTTP 500 is an exception in moto: create the template under "
            "moto.mock_aws in-process to see its traceback)"
        ) from None
    deadline = time.monotonic() + 60
    while True:
        described: dict[str, Any] = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
        status = described["StackStatus"]
        if status == "CREATE_COMPLETE":
            return described
        if not status.endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            raise AssertionError(
                f"Stack {stack} is {status}:\n{stack_events(cloudformation, stack)}"
            )
        time.sleep(0.2)


def stack_events(cloudformation: Any, stack: str) -> str:
    """The reasons the stack's events give (failures first), one per line."""
    try:
        events = cloudformation.describe_stack_events(StackName=stack)["StackEvents"]
    except ClientError as exc:
        return f"(no stack events: {exc.response['Error']['Message']})"
    lines = [
        f"{e['LogicalResourceId']} ({e['ResourceType']}): {e['ResourceStatus']} "
        f"{e.get('ResourceStatusReason', '')}"
        for e in sorted(events, key=lambda e: "FAILED" not in e["ResourceStatus"])
        if "FAILED" in e["ResourceStatus"] or e.get("ResourceStatusReason")
    ]
    return "\n".join(lines) or "(no stack event gives a reason)"

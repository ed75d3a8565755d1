"""The options of the CDK app, read from CDK context (`cdk synth -c key=value`, or the
`context` of cdk.json) and validated here, so a wrong value stops synthesis with one line
per problem naming the `-c` option.

Values given with `-c` arrive as strings: structured options (`work_pools`, lists) are
JSON, lists may also be comma-separated, booleans are `true`/`false`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from infra import outputs
from stratoflow import resources
from stratoflow.deployments.models import WorkPoolSpec
from stratoflow.exceptions import StratoflowError
from stratoflow.run_ids import pool_tag

DEFAULT_ECS_IMAGE = "public.ecr.aws/docker/library/python:3.12-slim"
"""A public Python image. Flow runs need stratoflow and the flows' dependencies in the
image: build your own and pass it with `-c ecs_image=...`."""

LOG_RETENTION_VALUES = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
"""Retention periods CloudWatch Logs accepts, in days."""

FARGATE_CPU = (256, 512, 1024, 2048, 4096, 8192, 16384)
SQS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
STAGE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(root|user/\S+|role/\S+)$")
WEB_ACL_ARN = re.compile(r"^arn:aws[a-z-]*:wafv2:us-east-1:\d{12}:global/webacl/[\w-]+/[\w-]+$")
"""A CloudFront distribution's web ACL: WAFv2, global scope (always in us-east-1)."""
EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
"""What STS accepts as an `ExternalId`."""


class ContextError(StratoflowError, ValueError):
    """A CDK context option holds a value the app cannot use."""


class StackOptions(BaseModel):
    """Every option of the app. Field name = context key (`-c <name>=<value>`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str = Field(
        default="dev",
        description="Installation name: stack `Stratoflow-<stage>` and resource names.",
    )
    table_name: str | None = Field(default=None, min_length=3, max_length=255)
    queue_prefix: str | None = Field(default=None, min_length=1, max_length=40)
    runs_log_group: str | None = Field(default=None, min_length=1, max_length=512)
    results_bucket_name: str | None = Field(default=None, min_length=3, max_length=63)
    code_bucket_name: str | None = Field(default=None, min_length=3, max_length=63)
    work_pools: tuple[WorkPoolSpec, ...] = Field(
        default=(WorkPoolSpec(),),
        description="Work pools and their queues: one SQS queue (+ DLQ) per work queue.",
    )
    results_expiration_days: int = Field(default=30, ge=1, le=3650)
    code_noncurrent_version_days: int = Field(default=90, ge=1, le=3650)
    retain_data: bool = Field(
        default=True, description="Keep the table and buckets when the stack is deleted."
    )
    log_retention_days: int = Field(default=resources.LOG_RETENTION_DAYS)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    lambda_worker_memory_mb: int = Field(default=1024, ge=128, le=10240)
    lambda_worker_timeout_seconds: int = Field(default=900, ge=60, le=900)
    ecs_image: str = Field(default=DEFAULT_ECS_IMAGE, min_length=1)
    ecs_cpu: int = 512
    ecs_memory_mib: int = Field(default=1024, ge=512, le=122880)
    ecs_subnet_ids: tuple[str, ...] = Field(
        default=(), description="Subnets of the flow-run tasks (default: a VPC of the stack)."
    )
    ecs_security_group_ids: tuple[str, ...] = ()
    ecs_assign_public_ip: bool | None = Field(
        default=None,
        description="Default: true in the stack's VPC (public subnets, no NAT), false in "
        "your subnets.",
    )
    on_prem_principal_arn: str | None = Field(
        default=None,
        description="IAM principal allowed to assume the on-prem worker role.",
    )
    on_prem_external_id: str | None = Field(
        default=None,
        description="The external id the on-prem principal must pass to AssumeRole (a "
        "StringEquals sts:ExternalId condition of the role's trust policy).",
    )
    on_prem_session_hours: int = Field(
        default=1,
        ge=1,
        le=12,
        description="Longest session of the on-prem worker role, in hours (IAM allows 1 to "
        "12); the worker's credential provider renews its credentials before they expire.",
    )
    on_prem_may_start_runs_in: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="Process pool → the other work pools whose queues its on-prem workers "
        "may send to (a flow calling `run_deployment` for a deployment of that pool). "
        "Default: none, each pool sends only to its own queues.",
    )
    alarm_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    webhook_allowed_hosts: str = ""
    task_modules: tuple[str, ...] = Field(
        default=(),
        description="Modules in the Lambda code bundle whose tasks the Lambda task worker "
        "serves (background tasks, `.delay()`); none: no Lambda task worker.",
    )
    task_worker_memory_mb: int = Field(default=1024, ge=128, le=10240)
    task_worker_timeout_seconds: int = Field(default=900, ge=60, le=900)
    ui: bool = Field(
        default=True,
        description="The web UI (docs/ui.md): the API Lambda behind CloudFront and a Cognito "
        "user pool; false: none of it.",
    )
    ui_web_acl_arn: str | None = Field(
        default=None,
        description="A WAF web ACL (scope CLOUDFRONT, created in us-east-1) for the web UI's "
        "distribution.",
    )
    bundle: bool = Field(
        default=True,
        description="false: the Lambda code asset is the unbundled source (a quick synth "
        "without PyPI; such a template is not for deploying).",
    )

    # Parsing of `-c` strings
    @field_validator("work_pools", mode="before")
    @classmethod
    def _pools(cls, value: Any) -> Any:
        value = _json(value)
        if isinstance(value, Mapping):  # {pool name: pool}, as in stratoflow.yaml
            return tuple(
                {"name": name, **(spec or {})}
                if isinstance(spec, Mapping) or spec is None
                else spec
                for name, spec in value.items()
            )
        return value

    @field_validator("on_prem_may_start_runs_in", mode="before")
    @classmethod
    def _start_runs_in(cls, value: Any) -> Any:
        return _json(value)

    @field_validator("ecs_subnet_ids", "ecs_security_group_ids", "task_modules", mode="before")
    @classmethod
    def _list(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return _json(value)

    @field_validator(
        "table_name",
        "queue_prefix",
        "runs_log_group",
        "results_bucket_name",
        "code_bucket_name",
        "on_prem_principal_arn",
        "on_prem_external_id",
        "alarm_email",
        "ecs_assign_public_ip",
        "ui_web_acl_arn",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("task_modules")
    @classmethod
    def _modules(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not MODULE.match(name):
                raise ValueError(
                    f"{name!r} is not a module name: give dotted Python module names "
                    "(e.g. functions.tasks.etl), comma-separated"
                )
        return value

    @field_validator("stage")
    @classmethod
    def _stage(cls, value: str) -> str:
        if not STAGE.match(value):
            raise ValueError(
                "a stage is 1 to 20 lowercase letters, digits or '-', starting with a letter"
            )
        return value

    @field_validator("ui_web_acl_arn")
    @classmethod
    def _web_acl(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if not WEB_ACL_ARN.match(value):
            raise ValueError(
                "expected the ARN of a web ACL for CloudFront: "
                "arn:aws:wafv2:us-east-1:<account>:global/webacl/<name>/<id>"
            )
        if not info.data.get("ui", True):
            raise ValueError("the web ACL is for the web UI's distribution: drop ui=false")
        return value

    @field_validator("on_prem_principal_arn")
    @classmethod
    def _principal(cls, value: str | None) -> str | None:
        if value is not None and not PRINCIPAL_ARN.match(value):
            raise ValueError(
                "expected an IAM principal ARN: arn:aws:iam::<account>:root, :user/<name> "
                "or :role/<name>"
            )
        return value

    @field_validator("on_prem_external_id")
    @classmethod
    def _external_id(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if not EXTERNAL_ID.match(value):
            raise ValueError(
                "an external id is 2 to 1224 letters, digits or the characters +=,.@:/-_"
            )
        if info.data.get("on_prem_principal_arn") is None:
            raise ValueError(
                "the external id goes in the trust policy of the role that "
                "on_prem_principal_arn creates: set on_prem_principal_arn too (or put the "
                "condition in your own role's trust policy)"
            )
        return value

    # Rules
    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_VALUES:
            raise ValueError(f"CloudWatch Logs accepts one of {list(LOG_RETENTION_VALUES)} days")
        return value

    @field_validator("ecs_cpu")
    @classmethod
    def _cpu(cls, value: int) -> int:
        if value not in FARGATE_CPU:
            raise ValueError(f"Fargate accepts one of {list(FARGATE_CPU)} CPU units")
        return value

    @field_validator("work_pools")
    @classmethod
    def _pool_names(
        cls, value: tuple[WorkPoolSpec, ...], info: ValidationInfo
    ) -> tuple[WorkPoolSpec, ...]:
        if not value:
            raise ValueError("at least one work pool is needed")
        names = [pool.name for pool in value]
        if len(set(names)) != len(names):
            raise ValueError(f"a work pool is listed twice: {names}")
        prefix = info.data.get("queue_prefix") or _base(info.data.get("stage", "dev"))
        for pool in value:
            for queue in pool.queues:
                name = resources.dead_letter_queue_name(prefix, pool.name, queue.name)
                if not SQS_NAME.match(name):
                    raise ValueError(
                        f"work queue {pool.name}/{queue.name} would be the SQS queue {name!r}: "
                        "SQS queue names have at most 80 characters (with the '-dlq' suffix), "
                        "letters, digits, '-' and '_'"
                    )
        # Each process pool has its own on-prem policy output, named from its name.
        process = [pool.name for pool in value if pool.type == "process"]
        for names in outputs.colliding_pools(process):
            raise ValueError(
                f"the process pools {names} would have the same output "
                f"{outputs.on_prem_policy_output(names[0])!r}: rename one"
            )
        # Run ids carry a 32-bit tag of their pool (stratoflow.run_ids), the key of each
        # on-prem pool's write permission: two pools may not share one.
        tags: dict[str, str] = {}
        for pool in value:
            other = tags.setdefault(pool_tag(pool.name), pool.name)
            if other != pool.name:
                raise ValueError(
                    f"the work pools {other!r} and {pool.name!r} have the same run-id tag "
                    f"{pool_tag(pool.name)!r}: rename one"
                )
        return value

    @field_validator("on_prem_may_start_runs_in")
    @classmethod
    def _known_pools(
        cls, value: dict[str, tuple[str, ...]], info: ValidationInfo
    ) -> dict[str, tuple[str, ...]]:
        pools = {pool.name: pool.type for pool in info.data.get("work_pools", ())}
        for pool, others in value.items():
            if pools.get(pool) != "process":
                raise ValueError(f"{pool!r} is not a process pool of work_pools")
            unknown = sorted(set(others) - set(pools))
            if unknown:
                raise ValueError(f"{pool!r} may start runs in {unknown}: not pools of work_pools")
        return value

    @field_validator("ecs_security_group_ids")
    @classmethod
    def _groups_need_subnets(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if value and not info.data.get("ecs_subnet_ids"):
            raise ValueError("security groups are used with your own subnets: set ecs_subnet_ids")
        return value

    # Derived values
    @property
    def stack_name(self) -> str:
        return f"Stratoflow-{self.stage}"

    @property
    def work_queues(self) -> tuple[tuple[str, str], ...]:
        return tuple((pool.name, queue.name) for pool in self.work_pools for queue in pool.queues)

    def pools_of_type(self, kind: str) -> tuple[WorkPoolSpec, ...]:
        return tuple(pool for pool in self.work_pools if pool.type == kind)

    @property
    def names(self) -> resources.ResourceNames:
        """The installation's resource names. Buckets without an explicit name are named
        by CloudFormation (globally unique); these placeholders are what the local
        provisioning of the same model would use."""
        base = _base(self.stage)
        return resources.ResourceNames(
            table=self.table_name or base,
            results_bucket=self.results_bucket_name or f"{base}-results",
            code_bucket=self.code_bucket_name or f"{base}-code",
            runs_log_group=self.runs_log_group or f"/stratoflow/{self.stage}/runs",
            queue_prefix=self.queue_prefix or base,
            work_queues=self.work_queues,
        )


def _base(stage: str) -> str:
    return f"stratoflow-{stage}"


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    return value


def options_from_context(get: Callable[[str], Any]) -> StackOptions:
    """Read every option with `get(key)` (`app.node.try_get_context`); None = default."""
    given = {name: get(name) for name in StackOptions.model_fields}
    return parse_options({k: v for k, v in given.items() if v is not None})


def parse_options(values: Mapping[str, Any]) -> StackOptions:
    try:
        return StackOptions.model_validate(dict(values))
    except ValidationError as exc:
        problems = [_problem(err) for err in exc.errors()]
        raise ContextError(
            "Invalid CDK context for the stratoflow app:\n" + "\n".join(problems)
        ) from None


def _problem(err: Any) -> str:
    location = [str(part) for part in err["loc"]]
    option = location[0] if location else "context"
    where = f" (at {'.'.join(location[1:])})" if len(location) > 1 else ""
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"  -c {option}{where}: {message} (got {err['input']!r})"

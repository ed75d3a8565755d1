"""CDK context options: parsing `-c` strings and clear errors."""

from __future__ import annotations

import pytest

from infra.context import ContextError, StackOptions, options_from_context, parse_options
from stratoflow.deployments.models import WorkPoolSpec, WorkQueueSpec

PRINCIPAL = "arn:aws:iam::123456789012:role/worker"


def test_defaults():
    options = parse_options({})
    assert options.stage == "dev"
    assert options.stack_name == "Stratoflow-dev"
    assert options.work_pools == (WorkPoolSpec(),)
    assert options.work_queues == (("default", "default"),)
    assert (options.on_prem_external_id, options.on_prem_session_hours) == (None, 1)
    names = options.names
    assert (names.table, names.queue_prefix, names.runs_log_group) == (
        "stratoflow-dev",
        "stratoflow-dev",
        "/stratoflow/dev/runs",
    )


def test_work_pools_from_a_json_string():
    options = parse_options(
        {
            "work_pools": '{"default": {"queues": [{"name": "default"}, '
            '{"name": "critical", "priority": 0}]}, "gpu": {"type": "ecs"}}'
        }
    )
    default, gpu = options.work_pools
    assert default.queues == (WorkQueueSpec(), WorkQueueSpec(name="critical", priority=0))
    assert gpu.type == "ecs"
    assert options.pools_of_type("ecs") == (gpu,)


def test_work_pools_as_a_list_and_strings_for_scalars():
    options = parse_options(
        {
            "work_pools": [{"name": "a", "type": "lambda"}],
            "retain_data": "false",
            "lambda_worker_timeout_seconds": "300",
            "ecs_subnet_ids": "subnet-1, subnet-2",
            "log_level": "debug",
        }
    )
    assert options.work_pools[0].name == "a"
    assert options.retain_data is False
    assert options.lambda_worker_timeout_seconds == 300
    assert options.ecs_subnet_ids == ("subnet-1", "subnet-2")
    assert options.log_level == "DEBUG"


def test_reads_every_option_from_the_context_getter():
    given = {"stage": "prod", "ecs_subnet_ids": '["subnet-1"]'}
    options = options_from_context(given.get)
    assert options.stage == "prod"
    assert options.ecs_subnet_ids == ("subnet-1",)
    assert set(StackOptions.model_fields) >= {"stage", "work_pools", "on_prem_principal_arn"}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"stage": "Prod"}, "-c stage: a stage is 1 to 20 lowercase letters"),
        ({"work_pools": "{oops"}, "-c work_pools: not valid JSON"),
        ({"work_pools": {"a": {"type": "k8s"}}}, "-c work_pools (at 0.type): Input should be"),
        ({"work_pools": {"a.b": {}}}, "would be the SQS queue 'stratoflow-dev-a.b-default-dlq'"),
        ({"work_pools": {"p" * 70: {}}}, "at most 80 characters"),
        ({"work_pools": {}}, "at least one work pool"),
        (
            {"work_pools": {"a": {"queues": [{"name": "q"}, {"name": "q"}]}}},
            "lists a queue twice",
        ),
        ({"ecs_cpu": "300"}, "-c ecs_cpu: Fargate accepts one of"),
        ({"log_retention_days": 31}, "-c log_retention_days: CloudWatch Logs accepts"),
        ({"ecs_security_group_ids": "sg-1"}, "set ecs_subnet_ids"),
        ({"on_prem_principal_arn": "bob"}, "expected an IAM principal ARN"),
        (
            {"on_prem_external_id": "abc"},
            "-c on_prem_external_id: the external id goes in the trust policy",
        ),
        (
            {"on_prem_principal_arn": PRINCIPAL, "on_prem_external_id": "a b"},
            "-c on_prem_external_id: an external id is 2 to 1224",
        ),
        ({"on_prem_session_hours": "13"}, "-c on_prem_session_hours: Input should be less"),
        ({"on_prem_session_hours": "0"}, "-c on_prem_session_hours: Input should be greater"),
        ({"lambda_worker_timeout_seconds": 901}, "-c lambda_worker_timeout_seconds:"),
        (
            {"work_pools": {"etl-a": {}, "etl_a": {}}},
            "-c work_pools: the process pools ['etl-a', 'etl_a'] would have the same output "
            "'OnPremWorkerPolicyArnEtlA'",
        ),
        (
            {"on_prem_may_start_runs_in": '{"nope": []}'},
            "-c on_prem_may_start_runs_in: 'nope' is not a process pool",
        ),
        (
            {
                "work_pools": {"default": {}, "f": {"type": "lambda"}},
                "on_prem_may_start_runs_in": {"f": ["default"]},
            },
            "'f' is not a process pool",
        ),
        (
            {"on_prem_may_start_runs_in": {"default": ["gpu"]}},
            "'default' may start runs in ['gpu']: not pools of work_pools",
        ),
        ({"no_such_option": 1}, "-c no_such_option: Extra inputs are not permitted"),
    ],
)
def test_errors_name_the_option(values: dict[str, object], expected: str):
    with pytest.raises(ContextError) as caught:
        parse_options(values)
    assert expected in str(caught.value)
    assert str(caught.value).startswith("Invalid CDK context for the stratoflow app:")


def test_on_prem_may_start_runs_in_from_a_json_string():
    options = parse_options(
        {
            "work_pools": '{"default": {}, "fast": {"type": "lambda"}}',
            "on_prem_may_start_runs_in": '{"default": ["fast"]}',
        }
    )
    assert options.on_prem_may_start_runs_in == {"default": ("fast",)}
    assert parse_options({}).on_prem_may_start_runs_in == {}


def test_all_problems_are_reported_at_once():
    with pytest.raises(ContextError) as caught:
        parse_options({"stage": "X", "ecs_cpu": 1})
    assert str(caught.value).count("\n  -c ") == 2


def test_principal_and_names_are_accepted():
    options = parse_options(
        {
            "on_prem_principal_arn": "arn:aws:iam::123456789012:role/worker",
            "table_name": "runs",
            "queue_prefix": "sf",
        }
    )
    assert options.names.table == "runs"
    assert options.names.queue_prefix == "sf"


WEB_ACL = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/ui/a1b2c3d4-5678-90ab-cdef-1111"


def test_the_web_ui_is_on_by_default_and_off_with_ui_false():
    assert parse_options({}).ui is True
    assert parse_options({"ui": "false"}).ui is False
    assert parse_options({"ui_web_acl_arn": WEB_ACL}).ui_web_acl_arn == WEB_ACL
    assert parse_options({"ui_web_acl_arn": ""}).ui_web_acl_arn is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        # A regional web ACL cannot protect a distribution.
        (
            {
                "ui_web_acl_arn": WEB_ACL.replace("us-east-1:", "eu-west-1:").replace(
                    "global", "regional"
                )
            },
            "-c ui_web_acl_arn: expected the ARN of a web ACL for CloudFront",
        ),
        ({"ui": "false", "ui_web_acl_arn": WEB_ACL}, "-c ui_web_acl_arn: the web ACL is for"),
    ],
)
def test_a_web_acl_must_be_cloudfronts_and_need_the_ui(values: dict[str, str], message: str):
    with pytest.raises(ContextError, match=message):
        parse_options(values)

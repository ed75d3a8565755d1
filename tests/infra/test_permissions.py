"""Least privilege: each role gets the statements of what its code calls, nothing more."""

from __future__ import annotations

from typing import Any

from infra import permissions
from stratoflow.run_ids import pool_tag
from tests.infra._cdk import PRINCIPAL, Synthesized, logical_id, only, resources_of
from tests.infra.test_ecs_runner import policy_statements
from tests.security._iam import resolve


def actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def role_statements(synthesized: Synthesized, template: Any, role: Any) -> dict[str, Any]:
    return policy_statements(template, logical_id(synthesized.full, role))


def test_no_role_gets_admin_wildcards_or_scan(full_template: Any):
    documents = [
        p["Properties"]["PolicyDocument"]
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        for p in resources_of(full_template, kind).values()
    ]
    for document in documents:
        for statement in document["Statement"]:
            for action in actions(statement):
                assert not action.endswith("*"), statement
                assert action != "dynamodb:Scan", statement


def test_functions_have_no_managed_policies(full_template: Any, synthesized: Synthesized):
    keys = synthesized.full.result_keys
    for function in (*synthesized.full.functions.all, keys.handler, keys.framework_function):
        role = full_template.to_json()["Resources"][logical_id(synthesized.full, function.role)]
        assert "ManagedPolicyArns" not in role["Properties"]


def _parameter_arn(domain: str) -> str:
    return f"arn:aws:ssm:us-east-1:123456789012:parameter/stratoflow-full/result-keys/{domain}"


RESULT_KEY_DOMAINS = ["_operators", "_tasks", "default", "fast", "gpu", "etl-nightly"]


def test_the_result_keys_handler_puts_and_deletes_exactly_the_stacks_key_parameters(
    full_template: Any, synthesized: Synthesized
):
    keys = synthesized.full.result_keys
    statements = role_statements(synthesized, full_template, keys.handler_role)
    assert set(statements) == {
        "WriteOwnLogs",
        "PutAndDeleteResultKeys",
        "ReadEarlierResultKeySecrets",
    }
    manage = statements["PutAndDeleteResultKeys"]
    assert actions(manage) == {"ssm:PutParameter", "ssm:DeleteParameter"}
    assert resolve(manage["Resource"]) == [_parameter_arn(d) for d in RESULT_KEY_DOMAINS]
    # The upgrade's copy of each key from the secret of an earlier version: reads only.
    earlier = statements["ReadEarlierResultKeySecrets"]
    assert earlier["Action"] == "secretsmanager:GetSecretValue"
    assert resolve(earlier["Resource"]) == [
        f"arn:aws:secretsmanager:us-east-1:123456789012:secret:stratoflow-full/result-keys/{d}-??????"
        for d in RESULT_KEY_DOMAINS
    ]
    assert resolve(statements["WriteOwnLogs"]["Resource"]) == (
        f"{{{logical_id(synthesized.full, keys.handler_log_group)}.Arn}}"
    )


def test_the_provider_framework_may_only_invoke_the_handler_and_log(
    full_template: Any, synthesized: Synthesized
):
    keys = synthesized.full.result_keys
    statements = list(role_statements(synthesized, full_template, keys.provider_role).values())
    handler = f"{{{logical_id(synthesized.full, keys.handler)}.Arn}}"
    assert {(tuple(sorted(actions(s))), str(resolve(s["Resource"]))) for s in statements} == {
        (
            ("logs:CreateLogStream", "logs:PutLogEvents"),
            f"{{{logical_id(synthesized.full, keys.provider_log_group)}.Arn}}",
        ),
        (("lambda:InvokeFunction",), str([handler, f"{handler}:*"])),
        (("lambda:GetFunction",), handler),
    }


def test_scheduler_reads_and_writes_the_table_and_sends(
    full_template: Any, synthesized: Synthesized
):
    stack = synthesized.full
    statements = role_statements(synthesized, full_template, stack.functions.scheduler.role)
    assert set(statements) == {
        "WriteOwnLogs",
        "ReadStateTable",
        "WriteStateTable",
        "SendToWorkQueues",
        "SendTaskRunRetries",
    }
    assert actions(statements["ReadStateTable"]) == set(permissions.TABLE_READ_ACTIONS)
    assert actions(statements["SendToWorkQueues"]) == {"sqs:SendMessage", "sqs:GetQueueUrl"}
    assert len(statements["SendToWorkQueues"]["Resource"]) == len(stack.work_queues.queues)
    # The background task runs' crash sweep sends a retry to the task queue, not its DLQ.
    assert actions(statements["SendTaskRunRetries"]) == {"sqs:SendMessage", "sqs:GetQueueUrl"}
    assert statements["SendTaskRunRetries"]["Resource"] == {
        "Fn::GetAtt": [logical_id(stack, stack.task_queue.queue), "Arn"]
    }
    table = logical_id(stack, stack.state.table)
    read = statements["ReadStateTable"]["Resource"]
    assert read[0] == {"Fn::GetAtt": [table, "Arn"]}
    # Each index by name, no `index/*`.
    assert [r["Fn::Join"][1][-1] for r in read[1:]] == [
        "/index/by_deployment",
        "/index/by_state",
        "/index/by_time",
    ]


def test_automations_publish_to_the_topic(full_template: Any, synthesized: Synthesized):
    stack = synthesized.full
    statements = role_statements(synthesized, full_template, stack.functions.automations.role)
    publish = statements["PublishNotifications"]
    assert publish["Action"] == "sns:Publish"
    assert publish["Resource"] == {"Ref": logical_id(stack, stack.notifications.topic)}


def test_run_executors_write_only_run_items(full_template: Any, synthesized: Synthesized):
    stack = synthesized.full
    for role in (stack.functions.lambda_worker.role, stack.ecs.task_role):
        statements = role_statements(synthesized, full_template, role)
        write = statements["WriteRunItems"]
        assert write["Condition"] == {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(permissions.RUN_PARTITIONS)}
        }
        assert "WriteStateTable" not in statements
        assert statements["ReadCodeBundles"]["Action"] == "s3:GetObject"
        assert actions(statements["ReadWriteResults"]) == {"s3:GetObject", "s3:PutObject"}
        assert statements["ListResults"]["Condition"] == {
            "StringLike": {"s3:prefix": ["results/*"]}
        }
        assert actions(statements["WriteRunLogs"]) == {"logs:CreateLogStream", "logs:PutLogEvents"}


def test_run_partitions_cover_run_items_but_not_deployments():
    assert "FLOWRUN#*" in permissions.RUN_PARTITIONS
    assert "TASKRUN#*" in permissions.RUN_PARTITIONS
    pool = permissions.pool_run_partitions("etl", ["fast"])
    assert f"FLOWRUN#{pool_tag('etl')}-*" in pool and f"FLOWRUN#{pool_tag('fast')}-*" in pool
    assert "FLOWRUN#*" not in pool and "WORKER#etl" in pool
    for partitions in (permissions.RUN_PARTITIONS, pool):
        assert not any(
            p.startswith(("DEPLOYMENT#", "WORKPOOL#", "AUTOMATION", "CONCURRENCYLIMIT#"))
            for p in partitions
        )


def test_one_on_prem_policy_per_process_pool(full_template: Any, synthesized: Synthesized):
    stack = synthesized.full
    policies = resources_of(full_template, "AWS::IAM::ManagedPolicy")
    assert sorted(p["Properties"]["ManagedPolicyName"] for p in policies.values()) == [
        "stratoflow-full-on-prem-default",
        "stratoflow-full-on-prem-etl-nightly",
    ]
    assert set(stack.on_prem) == {"default", "etl-nightly"}


def test_on_prem_policy_allows_exactly_what_a_worker_of_its_pool_does(
    full_template: Any, synthesized: Synthesized
):
    stack = synthesized.full
    policy = only(
        full_template,
        "AWS::IAM::ManagedPolicy",
        {"ManagedPolicyName": "stratoflow-full-on-prem-default"},
    )
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert set(statements) == {
        "ReadStateTable",
        "WriteRunItems",
        "ReadCodeBundles",
        "ReadWriteResults",
        "ListResults",
        "WriteRunLogs",
        "SendToWorkQueues",
        "ConsumeWorkQueues",
        "ReadOwnPoolResultKey",
        "LoadBlockSecrets",  # docs/blocks.md, tests/security/test_block_grants.py
    }
    # Its own pool's runs (ids with its tag) and heartbeats only (docs/security.md).
    assert statements["WriteRunItems"]["Condition"] == {
        "ForAllValues:StringLike": {
            "dynamodb:LeadingKeys": list(permissions.pool_run_partitions("default"))
        }
    }
    assert statements["ReadOwnPoolResultKey"]["Action"] == "ssm:GetParameter"
    assert resolve(statements["ReadOwnPoolResultKey"]["Resource"]) == (
        "arn:aws:ssm:us-east-1:123456789012:parameter/stratoflow-full/result-keys/default"
    )
    consume = statements["ConsumeWorkQueues"]
    assert actions(consume) == set(permissions.QUEUE_CONSUME_ACTIONS)
    own = [q for q in stack.work_queues.queues if q.pool.name == "default"]
    assert {q.name for q in own} == {"default", "critical"}

    def arns(queues: Any) -> list[Any]:
        return [{"Fn::GetAtt": [logical_id(stack, q), "Arn"]} for q in queues]

    assert consume["Resource"] == arns(q.queue for q in own)
    # Its own queues (sent back with a delay) and their DLQs; no other pool's queue.
    assert statements["SendToWorkQueues"]["Resource"] == [
        *arns(q.queue for q in own),
        *arns(q.dead_letter_queue for q in own),
    ]
    assert all(s["Effect"] == "Allow" for s in statements.values())


def test_on_prem_may_start_runs_in_adds_only_the_send(full_template: Any, synthesized: Synthesized):
    """`on_prem_may_start_runs_in: {"etl-nightly": ["fast"]}`: its workers may also send
    to the lambda pool's queue, never consume it nor dead-letter to its DLQ."""
    stack = synthesized.full
    policy = only(
        full_template,
        "AWS::IAM::ManagedPolicy",
        {"ManagedPolicyName": "stratoflow-full-on-prem-etl-nightly"},
    )
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    by_pool = {q.pool.name: q for q in stack.work_queues.queues}
    own, fast = by_pool["etl-nightly"], by_pool["fast"]

    def arn(queue: Any) -> Any:
        return {"Fn::GetAtt": [logical_id(stack, queue), "Arn"]}

    assert statements["SendToWorkQueues"]["Resource"] == [
        arn(own.queue),
        arn(fast.queue),
        arn(own.dead_letter_queue),
    ]
    assert statements["ConsumeWorkQueues"]["Resource"] == arn(own.queue)  # one: no list


def test_on_prem_role_trusts_the_given_principal(full_template: Any, synthesized: Synthesized):
    stack = synthesized.full
    for access in stack.on_prem.values():
        assert access.role is not None
        role = full_template.to_json()["Resources"][logical_id(stack, access.role)]
        [trust] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Action"] == "sts:AssumeRole"
        assert trust["Principal"] == {"AWS": PRINCIPAL}
        assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": "stratoflow-full"}}
        assert role["Properties"]["MaxSessionDuration"] == 3600  # one hour by default
        assert role["Properties"]["ManagedPolicyArns"] == [
            {"Ref": logical_id(stack, access.policy)}
        ]


def test_on_prem_role_session_length_and_no_external_id():
    """The construct alone, in a small stack of its own (a quick synthesis)."""
    import aws_cdk as cdk
    from aws_cdk import assertions
    from aws_cdk import aws_logs as logs
    from aws_cdk import aws_s3 as s3

    from infra.constructs.on_prem_access import OnPremAccess
    from infra.constructs.state_table import StateTable
    from infra.constructs.work_queues import WorkQueues
    from stratoflow import resources
    from stratoflow.deployments.models import WorkPoolSpec

    stack = cdk.Stack(cdk.App(), "OnPrem")
    access = OnPremAccess(
        stack,
        "OnPremWorker",
        pool="default",
        policy_name="on-prem",
        table=StateTable(stack, "State", spec=resources.TableSpec(name="t"), retain=False),
        code_bucket=s3.Bucket(stack, "Code"),
        results_bucket=s3.Bucket(stack, "Results"),
        runs_log_group=logs.LogGroup(stack, "Runs"),
        work_queues=WorkQueues(
            stack, "Queues", prefix="p", pools=(WorkPoolSpec(),), visibility_seconds={"process": 60}
        ).queues,
        principal_arn=PRINCIPAL,
        session_hours=8,
    )
    assert access.role is not None
    role = only(assertions.Template.from_stack(stack), "AWS::IAM::Role")
    assert role["MaxSessionDuration"] == 8 * 3600
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert "Condition" not in trust and trust["Principal"] == {"AWS": PRINCIPAL}


def test_without_a_principal_only_the_policy_is_created(synthesized: Synthesized):
    [access] = synthesized.default.on_prem.values()
    assert access.role is None
    assert access.policy is not None


def test_worker_policies_change_after_the_keys_exist(full_template: Any, synthesized: Synthesized):
    """An upgrade from the Secrets Manager keys grants the parameters (and deploys the
    code that reads them) only once each parameter holds its secret's key."""
    stack = synthesized.full
    keys = {logical_id(stack, key) for key in stack.result_keys.keys.values()}
    assert len(keys) == len(RESULT_KEY_DOMAINS)
    resources = full_template.to_json()["Resources"]
    assert stack.task_worker is not None
    for grantee in (
        stack.functions.lambda_worker.role,
        stack.ecs.task_role,
        stack.task_worker.role,
        *(access.policy for access in stack.on_prem.values()),
    ):
        assert keys <= set(resources[logical_id(stack, grantee)].get("DependsOn", [])), grantee

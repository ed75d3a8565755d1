"""One SQS queue (+ DLQ) per work queue of the pools given in context."""

from __future__ import annotations

from typing import Any

from stratoflow import resources
from stratoflow.workers.poller import PollerOptions
from tests.infra._cdk import Synthesized, resources_of


def queues_by_name(template: Any) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["QueueName"]: r["Properties"]
        for r in resources_of(template, "AWS::SQS::Queue").values()
        if "QueueName" in r["Properties"]
    }


def test_default_is_the_default_pool_with_its_default_queue(default_template: Any):
    assert set(queues_by_name(default_template)) == {
        "stratoflow-dev-default-default",
        "stratoflow-dev-default-default-dlq",
        # The background task queue (tests/infra/test_task_worker.py).
        "stratoflow-dev-tasks",
        "stratoflow-dev-tasks-dlq",
    }


def test_one_queue_and_dlq_per_work_queue(full_template: Any, synthesized: Synthesized):
    queues = queues_by_name(full_template)
    expected = set()
    for pool, queue in synthesized.full_options.work_queues:
        expected.add(resources.work_queue_name("stratoflow-full", pool, queue))
        expected.add(resources.dead_letter_queue_name("stratoflow-full", pool, queue))
    expected |= {"stratoflow-full-tasks", "stratoflow-full-tasks-dlq"}  # background tasks
    assert set(queues) == expected
    assert "stratoflow-full-default-critical" in queues
    logical = {
        lid: r["Properties"].get("QueueName")
        for lid, r in resources_of(full_template, "AWS::SQS::Queue").items()
    }
    for name, props in queues.items():
        assert props["SqsManagedSseEnabled"] is True
        if name.endswith("-dlq"):
            assert "RedrivePolicy" not in props
            assert props["MessageRetentionPeriod"] == 14 * 24 * 3600
            continue
        redrive = props["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == resources.MAX_RECEIVE_COUNT
        target = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert logical[target] == resources.dead_letter_queue_of(name)


def test_every_queue_enforces_tls(full_template: Any):
    queues = resources_of(full_template, "AWS::SQS::Queue")
    policies = resources_of(full_template, "AWS::SQS::QueuePolicy").values()
    protected = set()
    for policy in policies:
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        if any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        ):
            protected.update(q["Ref"] for q in policy["Properties"]["Queues"])
    assert protected == set(queues)


def test_visibility_timeout_follows_the_consumer(full_template: Any, synthesized: Synthesized):
    queues = queues_by_name(full_template)
    # process pools: the poller's own visibility (it extends it while a run runs)
    assert (
        queues["stratoflow-full-default-default"]["VisibilityTimeout"]
        == PollerOptions(pool="x").visibility_timeout
    )
    # lambda pools: 6 x the Lambda worker's timeout (-c lambda_worker_timeout_seconds=600)
    assert queues["stratoflow-full-fast-default"]["VisibilityTimeout"] == 6 * 600
    # ecs pools: 6 x the dispatcher's timeout
    assert queues["stratoflow-full-gpu-default"]["VisibilityTimeout"] == 6 * 60
    full_template.has_resource_properties(
        "AWS::Lambda::Function",
        {"FunctionName": "stratoflow-full-lambda-worker", "Timeout": 600},
    )

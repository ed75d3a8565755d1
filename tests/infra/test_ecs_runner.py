"""The ECS cluster, the flow-run task definition and its network."""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_ecs as ecs

from infra.constructs.ecs_runner import CONTAINER_NAME, container_image
from infra.context import DEFAULT_ECS_IMAGE
from stratoflow.settings import env_var
from tests.infra._cdk import Synthesized, logical_id, only, resources_of


def test_cluster_has_container_insights(full_template: Any):
    cluster = only(full_template, "AWS::ECS::Cluster")
    assert cluster["ClusterSettings"] == [{"Name": "containerInsights", "Value": "enabled"}]


def test_fargate_task_definition_logs_to_the_runs_log_group(
    full_template: Any, synthesized: Synthesized
):
    stack = synthesized.full
    task = only(full_template, "AWS::ECS::TaskDefinition")
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    assert task["NetworkMode"] == "awsvpc"
    assert (task["Cpu"], task["Memory"]) == ("512", "1024")
    assert task["Family"] == "stratoflow-full-flow-run"
    [container] = task["ContainerDefinitions"]
    assert container["Name"] == CONTAINER_NAME
    assert container["Image"] == DEFAULT_ECS_IMAGE
    log = container["LogConfiguration"]
    assert log["LogDriver"] == "awslogs"
    assert log["Options"]["awslogs-group"] == {"Ref": logical_id(stack, stack.run_logs.log_group)}
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env[env_var("backend")] == "aws"
    assert env[env_var("queue_prefix")] == "stratoflow-full"
    assert env[env_var("table_name")] == {"Ref": logical_id(stack, stack.state.table)}


def test_default_network_is_a_public_vpc_without_nat(full_template: Any):
    resources_of(full_template, "AWS::EC2::VPC")
    assert resources_of(full_template, "AWS::EC2::NatGateway") == {}
    subnets = resources_of(full_template, "AWS::EC2::Subnet")
    assert len(subnets) == 2
    assert all(s["Properties"]["MapPublicIpOnLaunch"] for s in subnets.values())
    group = only(full_template, "AWS::EC2::SecurityGroup")
    assert "SecurityGroupIngress" not in group
    flow_log = only(full_template, "AWS::EC2::FlowLog")
    assert flow_log["TrafficType"] == "REJECT"


def test_tasks_can_run_in_your_subnets(tmp_path: Any):
    """With ecs_subnet_ids no VPC is created (checked without synthesis)."""
    from aws_cdk import App
    from aws_cdk import aws_logs as logs

    from infra.constructs.ecs_runner import EcsRunner

    stack = Stack(App(outdir=str(tmp_path)), "Net")
    runner = EcsRunner(
        stack,
        "Ecs",
        family="f",
        image=DEFAULT_ECS_IMAGE,
        cpu=256,
        memory_mib=512,
        environment={},
        runs_log_group=logs.LogGroup(stack, "Runs"),
        subnet_ids=["subnet-1", "subnet-2"],
        security_group_ids=["sg-1"],
        assign_public_ip=None,
        flow_log_retention_days=30,
    )
    assert runner.vpc is None
    assert runner.subnet_ids == ["subnet-1", "subnet-2"]
    assert runner.security_group_ids == ["sg-1"]
    assert runner.assign_public_ip is False


def test_ecr_images_get_pull_permissions(tmp_path: Any):
    from aws_cdk import App

    stack = Stack(App(outdir=str(tmp_path)), "Images")
    ecr_image = container_image(stack, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/flows:1.2")
    assert isinstance(ecr_image, ecs.EcrImage)
    public = container_image(stack, "ghcr.io/acme/flows:latest")
    assert not isinstance(public, ecs.EcrImage)


def test_dispatcher_may_run_only_this_task_definition(full_template: Any, synthesized: Synthesized):
    stack = synthesized.full
    role = logical_id(stack, stack.functions.ecs_dispatcher.role)
    statements = policy_statements(full_template, role)
    run = statements["RunFlowRunTasks"]
    assert run["Action"] == "ecs:RunTask"
    assert run["Resource"] == {"Ref": logical_id(stack, stack.ecs.task_definition)}
    assert run["Condition"] == {
        "ArnEquals": {"ecs:cluster": {"Fn::GetAtt": [logical_id(stack, stack.ecs.cluster), "Arn"]}}
    }
    passing = statements["PassFlowRunTaskRoles"]
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    assert len(passing["Resource"]) == 2


def policy_statements(template: Any, role_id: str) -> dict[str, dict[str, Any]]:
    """The Sid'd statements of the inline policies attached to a role."""
    found: dict[str, dict[str, Any]] = {}
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                found[statement.get("Sid", f"#{len(found)}")] = statement
    return found

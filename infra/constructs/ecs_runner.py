"""Where ECS work pools run flow runs: a cluster, a Fargate task definition whose
container runs `strato flow-run execute <id>` (the dispatcher overrides the command per
run) and the network its tasks use.

Network: with `ecs_subnet_ids` the tasks run in your subnets (and security groups);
otherwise the stack creates a small VPC with public subnets only (no NAT gateway, so no
hourly cost), a security group without inbound rules, and tasks get a public IP for
their outbound calls to AWS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.constructs.observability import retention

CONTAINER_NAME = "flow-run"
"""The container the dispatcher overrides (stratoflow.workers.ecs.EcsConfig default)."""
ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/"
    r"(?P<repository>[^:@]+)(?::(?P<tag>[^@]+))?$"
)


def container_image(scope: Construct, image: str) -> ecs.ContainerImage:
    """An ECR image gets pull permissions for the execution role; any other image
    (a public registry) is pulled as is."""
    match = ECR_IMAGE.match(image)
    if match is None:
        return ecs.ContainerImage.from_registry(image)
    repository = ecr.Repository.from_repository_attributes(
        scope,
        "ImageRepository",
        repository_arn=f"arn:aws:ecr:{match['region']}:{match['account']}:repository/"
        f"{match['repository']}",
        repository_name=match["repository"],
    )
    return ecs.ContainerImage.from_ecr_repository(repository, match["tag"] or "latest")


class EcsRunner(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        family: str,
        image: str,
        cpu: int,
        memory_mib: int,
        environment: Mapping[str, str],
        runs_log_group: logs.ILogGroup,
        subnet_ids: Sequence[str],
        security_group_ids: Sequence[str],
        assign_public_ip: bool | None,
        flow_log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc: ec2.Vpc | None = None
        if subnet_ids:
            self.subnet_ids = list(subnet_ids)
            self.security_group_ids = list(security_group_ids)
            self.assign_public_ip = bool(assign_public_ip)
        else:
            self.vpc = ec2.Vpc(
                self,
                "Vpc",
                max_azs=2,
                nat_gateways=0,
                subnet_configuration=[
                    ec2.SubnetConfiguration(
                        name="tasks", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                    )
                ],
            )
            flow_logs = logs.LogGroup(
                self, "FlowLogs", retention=retention(flow_log_retention_days)
            )
            self.vpc.add_flow_log(
                "FlowLog",
                destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                traffic_type=ec2.FlowLogTrafficType.REJECT,
            )
            group = ec2.SecurityGroup(
                self,
                "Tasks",
                vpc=self.vpc,
                description="stratoflow flow-run tasks: no inbound, outbound HTTPS to AWS",
                allow_all_outbound=True,
            )
            self.subnet_ids = [subnet.subnet_id for subnet in self.vpc.public_subnets]
            self.security_group_ids = [group.security_group_id]
            self.assign_public_ip = True if assign_public_ip is None else assign_public_ip

        self.cluster = ecs.CfnCluster(
            self,
            "Cluster",
            cluster_settings=[
                ecs.CfnCluster.ClusterSettingsProperty(name="containerInsights", value="enabled")
            ],
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "FlowRun",
            family=family,
            cpu=cpu,
            memory_limit_mib=memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.pulls_from_ecr = ECR_IMAGE.match(image) is not None
        """The image is in ECR: the execution role may pull it (infra.nag)."""
        self.container = self.task_definition.add_container(
            CONTAINER_NAME,
            container_name=CONTAINER_NAME,
            image=container_image(self, image),
            environment=dict(environment),
            logging=ecs.LogDrivers.aws_logs(stream_prefix="ecs", log_group=runs_log_group),
        )

    @property
    def cluster_arn(self) -> str:
        return self.cluster.attr_arn

    @property
    def task_role(self) -> iam.IRole:
        return self.task_definition.task_role

    @property
    def execution_role(self) -> iam.IRole:
        role = self.task_definition.execution_role
        assert role is not None  # a container with awslogs logging creates one
        return role

    def dispatcher_statements(self) -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(
                sid="RunFlowRunTasks",
                actions=["ecs:RunTask"],
                resources=[self.task_definition.task_definition_arn],
                conditions={"ArnEquals": {"ecs:cluster": self.cluster_arn}},
            ),
            iam.PolicyStatement(
                sid="PassFlowRunTaskRoles",
                actions=["iam:PassRole"],
                resources=[self.task_role.role_arn, self.execution_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            ),
        ]

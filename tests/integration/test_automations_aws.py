"""Automations on the AWS backend (moto): the DynamoDB store's idempotency under replay
and concurrent handlers, actions against real (emulated) services, proactive evaluation
on the scheduler tick, and `strato automation`."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber
from typer.testing import CliRunner

from stratoflow import resources
from stratoflow.automations import (
    ActionExecutor,
    Automation,
    AutomationEngine,
    AutomationStore,
    CallWebhook,
    CancelFlowRun,
    ChangeFlowRunState,
    DoNothing,
    DuplicateAutomationName,
    EventTrigger,
    PauseWorkQueue,
    ResumeFlowRun,
    ResumeWorkQueue,
    RunDeployment,
    SendNotification,
    UnknownAutomation,
    create_automation,
    delete_automation,
    list_automations,
    pause_automation,
    read_automation,
    read_automation_record,
    resume_automation,
)
from stratoflow.automations.webhooks import WebhookSender
from stratoflow.backends.aws import AwsBackend, build_aws_services
from stratoflow.backends.aws.items import from_item, to_item
from stratoflow.cli import app
from stratoflow.context import Services, set_process_services
from stratoflow.deployments.deploy import deploy_project
from stratoflow.deployments.runs import schedule_flow_run
from stratoflow.events.models import Event, Resource
from stratoflow.input import create_flow_run_input, keyset_from_base_key
from stratoflow.platform import Platform, build_platform
from stratoflow.resources import provision
from stratoflow.scheduler import Scheduler
from stratoflow.settings import get_settings, load_settings
from stratoflow.states import StateType, Suspended
from tests._time import anchor

# TTLs, schedules or time windows: also run with the clock moved (tests/timeshift.py).
pytestmark = pytest.mark.date_sensitive

FAILED = "stratoflow.flow-run.Failed"
T0 = anchor()


@dataclass
class Aws:
    session: boto3.Session
    services: Services
    platform: Platform

    @property
    def backend(self) -> AwsBackend:
        assert isinstance(self.services.backend, AwsBackend)
        return self.services.backend

    def store(self) -> AutomationStore:
        return AutomationStore(self.backend.dynamodb, self.backend.table)

    def engine(self, **kwargs: Any) -> AutomationEngine:
        return AutomationEngine(self.platform, **kwargs)

    def items(self, automation_id: str) -> list[dict[str, Any]]:
        response = self.backend.dynamodb.query(
            TableName=self.backend.table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues=to_item(
                {":p": resources.automation_partition(automation_id)}
            ),
        )
        return [from_item(item) for item in response["Items"]]


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    """One emulated installation for the module; each test deletes its automations."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "STRATOFLOW_ENDPOINT_URL"):
            env.delenv(name, raising=False)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "STRATOFLOW_BACKEND": "aws",
            "STRATOFLOW_HOME": str(tmp_path_factory.mktemp("home")),
            "STRATOFLOW_LOG_TO_CONSOLE": "false",
            "STRATOFLOW_WEBHOOK_ALLOWED_HOSTS": "hooks.test, *.allowed.example",
        }.items():
            env.setenv(name, value)
        get_settings.cache_clear()
        previous: Services | None = None
        try:
            with mock_aws():
                session = boto3.Session(
                    region_name="us-east-1",
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                )
                provision(session)
                services = build_aws_services(load_settings(), session=session)
                previous = set_process_services(services)
                try:
                    yield Aws(session, services, build_platform(services, load_settings()))
                finally:
                    services.backend.close()  # type: ignore[attr-defined]
                    set_process_services(previous)
        finally:
            get_settings.cache_clear()


@pytest.fixture(autouse=True)
def clean(aws: Aws) -> Iterator[None]:
    yield
    store = aws.store()
    for record in store.list():
        store.delete(record.id)


def failed_event(run_id: str = "r1", *, at: float = 0, **extra: Any) -> Event:
    return Event(
        event=FAILED,
        occurred=T0 + timedelta(seconds=at),
        resource=Resource.of(
            {
                "stratoflow.resource.id": f"stratoflow.flow-run.{run_id}",
                "stratoflow.resource.name": run_id,
            }
        ),
        **extra,
    )


def automation(name: str, *actions: Any, **trigger: Any) -> Automation:
    return Automation(
        name=name,
        trigger=EventTrigger(expect=[FAILED], **trigger),
        actions=list(actions) or [DoNothing()],
    )


# The store


def test_idle_proactive_buckets_leave_the_due_index(aws: Aws):
    made = create_automation(
        Automation(
            name="stuck runs",
            trigger=EventTrigger(
                after=["stratoflow.flow-run.Running"],
                expect=["stratoflow.flow-run.Completed"],
                for_each=["stratoflow.resource.id"],
                posture="Proactive",
                within=600,
            ),
            actions=[DoNothing()],
        )
    )
    assert made.id is not None
    running = [
        Event(
            event="stratoflow.flow-run.Running",
            occurred=T0,
            resource=Resource.of(f"stratoflow.flow-run.{r}"),
        )
        for r in ("a", "b")
    ]
    completed = Event(
        event="stratoflow.flow-run.Completed",
        occurred=T0 + timedelta(seconds=5),
        resource=Resource.of("stratoflow.flow-run.b"),
    )
    assert aws.engine().handle([*running, completed]) == []
    store = aws.store()
    assert [b.key for b in store.due_buckets(made.id, T0 + timedelta(days=1))] == [
        "stratoflow.flow-run.a"
    ]
    assert store.due_buckets(made.id, T0 + timedelta(seconds=599)) == []
    [firing] = aws.engine().evaluate_proactive(T0 + timedelta(seconds=601))
    assert firing.bucket == "stratoflow.flow-run.a" and firing.event is not None
    assert firing.event.id == running[0].id
    assert store.due_buckets(made.id, T0 + timedelta(days=1)) == []


def test_items_unique_names_and_management(aws: Aws):
    created = create_automation(automation("on failure"))
    assert created.id is not None
    [meta] = aws.items(created.id)
    assert meta["sk"] == "META" and meta["name"] == "on failure" and meta["enabled"] is True
    assert (meta["gsi3pk"], meta["gsi3sk"]) == ("AUTOMATIONS", "on failure")
    assert json.loads(meta["definition"])["trigger"]["expect"] == [FAILED]
    with pytest.raises(DuplicateAutomationName, match="'on failure' already exists"):
        create_automation(automation("on failure"))
    create_automation(
        {"name": "second", "trigger": {"expect": FAILED}, "actions": [{"type": "do-nothing"}]}
    )
    assert [a.name for a in list_automations()] == ["on failure", "second"]
    assert read_automation(created.id) == read_automation("on failure")
    assert pause_automation("on failure").enabled is False
    assert read_automation(created.id).enabled is False
    assert resume_automation(created.id).enabled is True
    with pytest.raises(
        UnknownAutomation, match=r"No automation named 'on failur'\. Did you mean 'on failure'"
    ):
        read_automation("on failur")
    delete_automation("second")
    assert [a.name for a in list_automations()] == ["on failure"]
    create_automation(automation("second"))  # the name is free again


def test_replaying_the_same_events_fires_once(aws: Aws):
    made = create_automation(
        automation("twice per run", threshold=2, for_each=["stratoflow.resource.id"])
    )
    assert made.id is not None
    batch = [failed_event("a", at=0), failed_event("a", at=1), failed_event("b", at=2)]
    [firing] = aws.engine().handle(batch)
    assert firing.bucket == "stratoflow.flow-run.a"
    assert aws.engine().handle(batch) == []
    assert aws.engine().handle(batch[1:]) == []
    items = {item["sk"]: item for item in aws.items(made.id)}
    fired = [sk for sk in items if sk.startswith("FIRED#")]
    assert fired == [f"FIRED#stratoflow.flow-run.a#{firing.window}"]
    bucket_b = items["BUCKET#stratoflow.flow-run.b"]
    assert bucket_b["count"] == 1 and bucket_b["event_ids"] == [batch[2].id]
    assert bucket_b["expires_at"] > datetime.now(UTC).timestamp()
    assert items[fired[0]]["expires_at"] > datetime.now(UTC).timestamp()
    record = read_automation_record(made.id)
    assert record.last_fired == firing.fired_at and record.last_error is None


def test_firings_are_listed_latest_first_and_inspect_shows_them(aws: Aws):
    made = create_automation(automation("per run", for_each=["stratoflow.resource.id"]))
    assert made.id is not None
    batch = [failed_event("a", at=0), failed_event("b", at=5)]
    fired = aws.engine().handle(batch)
    assert len(fired) == 2
    [latest, first] = aws.store().list_firings(made.id)
    assert (latest.bucket, first.bucket) == ("stratoflow.flow-run.b", "stratoflow.flow-run.a")
    assert latest.event_id == batch[1].id and latest.state == "triggered"
    # The run the event is about: a flow-run event is derived from it when read.
    assert (latest.event_flow_run_id, first.event_flow_run_id) == ("b", "a")
    assert latest.trigger == "trigger" and latest.fired_at == T0 + timedelta(seconds=5)
    assert aws.store().list_firings(made.id, limit=1) == [latest]

    shown = CliRunner().invoke(app, ["automation", "inspect", "per run", "--json"])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.output)
    assert [f["event_id"] for f in document["recent_firings"]] == [batch[1].id, batch[0].id]


def test_concurrent_handlers_of_the_same_events_fire_once(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
):
    # DynamoDB checks a condition and writes atomically; moto does it in two Python
    # steps, so requests from two threads are serialized here (they still interleave).
    lock = threading.RLock()
    process = BotocoreStubber.process_request

    def atomic(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return process(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", atomic)
    create_automation(automation("threes", threshold=3))
    batch = [failed_event(f"r{i}", at=i) for i in range(3)]
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def handle() -> None:
        engine = aws.engine()
        barrier.wait()
        counts.append(len(engine.handle(batch)))

    threads = [threading.Thread(target=handle) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counts) == [0, 1]


# Actions


PROJECT = {
    "stratoflow.yaml": """
        deployments:
          - name: cleanup
            entrypoint: flows.py:cleanup
    """,
    "flows.py": """
        from stratoflow import flow

        @flow
        def cleanup(failed_run: str, attempt: int = 0) -> str:
            return failed_run
    """,
}


@pytest.fixture(scope="module")
def deployed(aws: Aws, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("project")
    for name, text in PROJECT.items():
        (root / name).write_text(textwrap.dedent(text))
    deploy_project(root, platform=aws.platform)
    return "cleanup"


def test_run_deployment_creates_and_enqueues_a_run(aws: Aws, deployed: str):
    source, _ = schedule_flow_run(
        aws.platform,
        aws.platform.deployments.get(deployed),
        scheduled_time=T0,
        parameters={"failed_run": "x", "attempt": 41},
    )
    create_automation(
        automation(
            "rerun",
            RunDeployment(
                deployment="{{ 'clean' + 'up' }}",
                parameters={
                    "failed_run": "{{ event.resource.id }}",
                    "attempt": "{{ flow_run.parameters.attempt + 1 }}",
                },
                tags=["from-automation"],
            ),
        )
    )
    event = failed_event(source.id)
    [firing] = aws.engine().handle([event])
    assert firing.results[0].ok, firing.results
    runs = [r for r in aws.backend.list_flow_runs_of_deployment(deployed) if r.id != source.id]
    [run] = runs
    assert run.parameters == {"failed_run": f"stratoflow.flow-run.{source.id}", "attempt": 42}
    assert (
        "from-automation" in run.tags
        and run.state is not None
        and run.state.type is StateType.SCHEDULED
    )
    assert run.enqueued_at is not None
    assert aws.engine().handle([event]) == []  # a replay creates no second run


def test_run_deployment_with_mistyped_parameters_is_a_failed_action_and_creates_nothing(
    aws: Aws, deployed: str
):
    made = create_automation(
        automation(
            "bad rerun",
            RunDeployment(deployment=deployed, parameters={"failed_run": "x", "attempt": "one"}),
            DoNothing(),  # the next action still runs
        )
    )
    assert made.id is not None
    before = aws.backend.list_flow_runs_of_deployment(deployed)

    [firing] = aws.engine().handle([failed_event("p1")])  # no exception reaches the stream

    refused, after = firing.results
    expected = "Deployment 'cleanup': parameter attempt: 'one' is not of type 'integer'."
    assert not refused.ok and refused.detail.startswith(expected)
    assert after.ok
    assert aws.backend.list_flow_runs_of_deployment(deployed) == before
    record = read_automation_record(made.id)
    assert record.last_error is not None
    assert record.last_error.startswith(f"actions[0] (run-deployment): {expected}")


def test_flow_run_state_actions(aws: Aws, deployed: str):
    deployment = aws.platform.deployments.get(deployed)
    one, _ = schedule_flow_run(
        aws.platform, deployment, scheduled_time=T0, parameters={"failed_run": "1"}
    )
    two, _ = schedule_flow_run(
        aws.platform, deployment, scheduled_time=T0, parameters={"failed_run": "2"}
    )
    create_automation(
        automation(
            "states",
            CancelFlowRun(),
            ChangeFlowRunState(
                flow_run_id=two.id, state=StateType.FAILED, message="by {{ automation.name }}"
            ),
        )
    )
    [firing] = aws.engine().handle([failed_event(one.id)])
    assert [r.ok for r in firing.results] == [True, True], firing.results
    assert aws.backend.read_flow_run(one.id).state_type == "CANCELLING"
    state = aws.backend.read_flow_run(two.id).state
    assert state is not None and (state.name, state.message) == ("Failed", "by states")


def test_resume_flow_run_action_checks_the_input(aws: Aws, deployed: str):
    deployment = aws.platform.deployments.get(deployed)
    run, _ = schedule_flow_run(
        aws.platform, deployment, scheduled_time=T0, parameters={"failed_run": "1"}
    )
    keyset = keyset_from_base_key("pause-0")
    waiting = Suspended(
        "waiting for input", pause_key="pause-0", pause_reschedule=True, run_input_keyset=keyset
    )
    aws.backend.set_flow_run_state(run.id, waiting, force=True)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    create_flow_run_input(keyset["schema"], schema, flow_run_id=run.id)
    create_automation(
        automation(
            "approvals",
            ResumeFlowRun(flow_run_id=run.id, run_input={"ok": "{{ event.resource.name }}"}),
            ResumeFlowRun(flow_run_id=run.id, run_input={"ok": True}),
        )
    )
    [firing] = aws.engine().handle([failed_event("x")])
    refused, resumed = firing.results
    assert not refused.ok and "ok: 'x' is not of type 'boolean'" in refused.detail
    assert resumed.ok, resumed
    assert aws.backend.read_flow_run(run.id).state_name == "Resuming"


def test_send_notification_publishes_to_sns(aws: Aws):
    sns = aws.session.client("sns")
    sqs = aws.session.client("sqs")
    topic = sns.create_topic(Name="oncall")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="oncall-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    create_automation(
        automation(
            "page me",
            SendNotification(
                topic_arn=topic,
                subject="Run {{ event.resource.name }} failed\nsecond line",
                body="{{ event.event }} on {{ event.resource.id }} ({{ automation.name }})",
            ),
        )
    )
    [firing] = aws.engine().handle([failed_event("r9")])
    assert firing.results[0].ok, firing.results
    [message] = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["Subject"] == "Run r9 failed second line"
    assert envelope["Message"] == f"{FAILED} on stratoflow.flow-run.r9 (page me)"


@pytest.fixture
def webhook_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append({"path": self.path, "headers": dict(self.headers), "body": body})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://hooks.test:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def webhook_engine(aws: Aws, url: str) -> AutomationEngine:
    """An engine whose webhooks reach the local server: `hooks.test` resolves to it, and
    loopback, refused by default (tests/unit/test_automation_webhooks.py), is let
    through; plain http to its port is allowed as the allow-list's opt-in."""
    port = url.rsplit(":", 1)[1]
    settings = aws.platform.settings.model_copy(
        update={"webhook_allowed_hosts": f"http://hooks.test:{port}, *.allowed.example"}
    )
    sender = WebhookSender(resolver=lambda host, port: ["127.0.0.1"], check=lambda a: None)
    store = aws.store()
    return aws.engine(
        store=store,
        actions=ActionExecutor(aws.platform, store, http=sender, settings=settings),
    )


def test_call_webhook_on_an_allowed_host(
    aws: Aws, webhook_server: tuple[str, list[dict[str, Any]]]
):
    url, received = webhook_server
    create_automation(
        automation(
            "hook",
            CallWebhook(
                url=f"{url}/hooks/a", headers={"X-Automation": "{{ automation.name }}"}, timeout=5
            ),
        )
    )
    event = failed_event("r5")
    [firing] = webhook_engine(aws, url).handle([event])
    assert firing.results[0].ok and firing.results[0].detail.endswith("HTTP 204"), firing.results
    [request] = received
    assert request["path"] == "/hooks/a"
    assert request["headers"]["X-Automation"] == "hook"
    assert request["headers"]["Content-Type"] == "application/json"
    payload = json.loads(request["body"])
    assert payload["automation"]["name"] == "hook"
    assert payload["event"]["id"] == event.id and payload["firing"]["state"] == "triggered"


def test_call_webhook_to_a_host_off_the_allow_list_is_refused_and_recorded(
    aws: Aws, webhook_server: tuple[str, list[dict[str, Any]]]
):
    url, received = webhook_server
    made = create_automation(
        automation(
            "leaky",
            CallWebhook(url="https://exfiltrate.example/collect"),
            CallWebhook(url=f"{url}/after"),  # the next action still runs
        )
    )
    assert made.id is not None
    [firing] = webhook_engine(aws, url).handle([failed_event("r6")])
    refused, sent = firing.results
    assert not refused.ok and "'exfiltrate.example' refused" in refused.detail
    port = url.rsplit(":", 1)[1]
    listed = f"STRATOFLOW_WEBHOOK_ALLOWED_HOSTS (http://hooks.test:{port}, *.allowed.example)"
    assert listed in refused.detail
    assert sent.ok and [r["path"] for r in received] == ["/after"]
    record = read_automation_record(made.id)
    assert record.last_error is not None
    assert record.last_error.startswith(
        "actions[0] (call-webhook): call-webhook to 'exfiltrate.example'"
    )
    assert record.last_error_at is not None


def test_pause_and_resume_work_queue(aws: Aws):
    create_automation(automation("pause queue", PauseWorkQueue(work_queue="default")))
    aws.engine().handle([failed_event("q1")])
    assert aws.platform.work_pools.get("default").queue("default").paused is True
    # Inferred from the event's related work queue.
    create_automation(
        Automation(
            name="resume queue",
            trigger=EventTrigger(expect=["stratoflow.work-queue.ready"]),
            actions=[ResumeWorkQueue()],
        )
    )
    ready = Event(
        event="stratoflow.work-queue.ready",
        resource=Resource.of("stratoflow.work-queue.default/default", name="default"),
    )
    [firing] = aws.engine().handle([ready])
    assert firing.results[0].detail == "work queue default/default resumed"
    assert aws.platform.work_pools.get("default").queue("default").paused is False


# Proactive evaluation on the scheduler tick


def test_scheduler_tick_evaluates_proactive_triggers(aws: Aws):
    calls: list[str] = []

    def count(model: Any, params: Any, **_: Any) -> None:
        calls.append(model.name)

    dynamodb = aws.backend.dynamodb
    dynamodb.meta.events.register("before-call.dynamodb.*", count)
    try:
        assert AutomationEngine(aws.platform).evaluate_proactive(T0) == []
        assert calls == ["Query"]  # no automation: one query
    finally:
        dynamodb.meta.events.unregister("before-call.dynamodb.*", count)

    made = create_automation(
        Automation(
            name="heartbeat",
            trigger=EventTrigger(
                expect=["stratoflow.flow-run.Completed"], posture="Proactive", within=60
            ),
            actions=[DoNothing()],
        )
    )
    assert made.id is not None
    scheduler = Scheduler(aws.platform)
    report = scheduler.tick(T0)
    assert not [e for e in report.errors if "automation" in e], report.errors
    assert read_automation_record(made.id).last_fired is None
    [bucket] = [i for i in aws.items(made.id) if i["sk"].startswith("BUCKET#")]
    # In the automation's due index until its window ends.
    assert bucket["gsi2pk"] == f"AUTOMATIONDUE#{made.id}"
    assert bucket["gsi2sk"].startswith(f"{T0:%Y-%m-%d}T10:01:00.000000Z#")
    scheduler.tick(T0 + timedelta(seconds=61))
    assert read_automation_record(made.id).last_fired == T0 + timedelta(seconds=60)
    scheduler.tick(T0 + timedelta(seconds=62))
    assert len([i for i in aws.items(made.id) if i["sk"].startswith("FIRED#")]) == 1


# The CLI


def test_cli(aws: Aws, tmp_path: Path):
    runner = CliRunner()
    good = tmp_path / "automations.yaml"
    good.write_text(
        textwrap.dedent(
            """
            automations:
              - name: cli-one
                trigger: {expect: stratoflow.flow-run.Failed, threshold: 2, within: 600}
                actions: [{type: do-nothing}]
              - name: cli-two
                trigger: {expect: stratoflow.flow-run.Crashed}
                actions: [{type: pause-deployment}]
            """
        )
    )
    result = runner.invoke(app, ["automation", "create", "-f", str(good)])
    assert result.exit_code == 0, result.output
    assert "Created automation cli-one (" in result.output and "cli-two" in result.output

    result = runner.invoke(app, ["automation", "ls", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [d["name"] for d in listed] == ["cli-one", "cli-two"]
    result = runner.invoke(app, ["automation", "ls"])
    assert result.exit_code == 0 and "cli-one" in result.output

    result = runner.invoke(app, ["automation", "inspect", "cli-one", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["definition"]["trigger"]["threshold"] == 2 and document["enabled"] is True
    by_id = runner.invoke(app, ["automation", "inspect", listed[1]["id"], "--json"])
    assert json.loads(by_id.output)["name"] == "cli-two"

    assert runner.invoke(app, ["automation", "pause", "cli-one"]).exit_code == 0
    assert read_automation("cli-one").enabled is False
    assert runner.invoke(app, ["automation", "resume", "cli-one"]).exit_code == 0
    assert read_automation("cli-one").enabled is True

    again = runner.invoke(app, ["automation", "create", "-f", str(good)])
    assert again.exit_code == 2 and "'cli-one' already exists" in again.output

    for command in ("inspect", "pause", "resume", "delete"):
        unknown = runner.invoke(app, ["automation", command, "nope"])
        assert unknown.exit_code == 2, (command, unknown.output)
        assert "No automation named 'nope'" in unknown.output
        assert len(unknown.output.strip().splitlines()) == 1

    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: bad\n  trigger: {threshold: 0}\n  actions: [{type: do-nothing}]\n")
    invalid = runner.invoke(app, ["automation", "create", "-f", str(bad)])
    assert invalid.exit_code == 2
    assert (
        "automations[0].trigger.threshold: Input should be greater than or equal to 1"
        in invalid.output
    )

    result = runner.invoke(app, ["automation", "delete", "cli-two"])
    assert result.exit_code == 0 and "Deleted automation cli-two" in result.output
    assert [a.name for a in list_automations()] == ["cli-one"]

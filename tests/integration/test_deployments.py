"""Deployments against moto: `strato deploy` / `deploy_project`, `run_deployment`, executing
a deployed run, `flow.deploy`, pause and resume, and the error a person sees for each
kind of bad input (docs/deployments.md)."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _deploy_fixtures import (  # noqa: F401 - `installation` is a fixture
    EXAMPLES,
    START,
    Installation,
    installation,
    messages,
    on_time,
)
from typer.testing import CliRunner

from stratoflow import runs
from stratoflow.cli import app
from stratoflow.cli import common as cli_common
from stratoflow.concurrency import read_concurrency_limit
from stratoflow.deployments.config import ConfigError
from stratoflow.deployments.deploy import (
    deploy_project,
    set_deployment_paused,
    set_schedule_active,
)
from stratoflow.deployments.models import UnknownPoolQueue
from stratoflow.deployments.runs import flow_run_id_for, run_deployment
from stratoflow.deployments.store import UnknownDeployment, UnknownWorkPool
from stratoflow.entrypoints import load_flow
from stratoflow.exceptions import ParameterValidationError
from stratoflow.scheduler import Scheduler
from stratoflow.states import StateType
from stratoflow.workers.execute import execute_flow_run
from stratoflow.workers.queues import UnknownWorkQueue

runner = CliRunner()

ADDER = """
from stratoflow import flow


@flow
def add(x: int, y: int = 1) -> int:
    return x + y
"""


def project(root: Path, config: str, files: dict[str, str] | None = None) -> Path:
    """A project directory: stratoflow.yaml plus its flow files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "stratoflow.yaml").write_text(textwrap.dedent(config))
    for name, text in (files if files is not None else {"flows.py": ADDER}).items():
        (root / name).write_text(textwrap.dedent(text))
    return root


def strato(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich tables fit on one line per row (CliRunner's output is not a terminal)."""
    monkeypatch.setattr(cli_common.out, "width", 200)


def bundle_versions(found: Installation) -> list[dict[str, Any]]:
    s3 = found.session.client("s3")
    listing = s3.list_object_versions(Bucket="stratoflow-code", Prefix="bundles/")
    return list(listing.get("Versions", []))


# Deploying


def test_deploy_examples_stores_each_deployment_with_its_flow_bundle_and_parameters(
    installation: Installation,
) -> None:
    results = deploy_project(EXAMPLES)

    assert [r.deployment.name for r in results] == ["nightly-etl", "fan-out", "nightly-report"]
    assert all(r.created and r.bundle_uploaded for r in results)
    stored = {d.name: d for d in installation.platform.deployments.list()}
    assert set(stored) == {"nightly-etl", "fan-out", "nightly-report"}
    assert {name: d.flow_name for name, d in stored.items()} == {
        "nightly-etl": "etl",
        "fan-out": "fan-out",
        "nightly-report": "nightly-report",
    }
    facts = {
        name: (d.parameter_names, d.required_parameters, d.accepts_any_parameter)
        for name, d in stored.items()
    }
    assert facts == {
        "nightly-etl": (("rows",), (), False),
        "fan-out": (("items", "weight"), (), False),
        "nightly-report": (("batch",), (), False),
    }
    etl = stored["nightly-etl"]
    assert etl.parameters == {"rows": 5}
    assert [s.key for s in etl.schedules] == ["nightly", "every-15-minutes"]
    assert etl.tags == ("etl",)
    # One content-addressed bundle holds the whole project, shared by the three.
    bundles = {d.bundle for d in stored.values()}
    assert len(bundles) == 1
    (bundle,) = bundles
    assert bundle.bucket == "stratoflow-code"
    assert bundle.key == f"bundles/{bundle.sha256}.zip"
    assert [v["Key"] for v in bundle_versions(installation)] == [bundle.key]
    # The deployment's concurrency limit exists as a global limit.
    assert read_concurrency_limit("deployment:fan-out").limit == 2


def test_redeploying_unchanged_code_uploads_nothing_and_keeps_created(
    installation: Installation,
) -> None:
    first = deploy_project(EXAMPLES)
    installation.clock.advance(3600)

    again = deploy_project(EXAMPLES)

    assert [r.bundle_uploaded for r in again] == [False, False, False]
    assert [r.created for r in again] == [False, False, False]
    assert len(bundle_versions(installation)) == 1  # versioned bucket: no second PUT
    etl = installation.platform.deployments.get("nightly-etl")
    assert etl.bundle == first[0].deployment.bundle
    assert etl.created == START
    assert etl.updated == START  # nothing changed: the definition is not written again


def test_strato_deploy_prints_the_bundle_and_a_table(
    installation: Installation, wide_console: None
) -> None:
    result = strato("deploy", str(EXAMPLES))

    assert result.exit_code == 0, result.output
    sha = installation.platform.deployments.get("fan-out").bundle.sha256
    assert f"Code bundle {sha[:12]} uploaded" in result.output
    rows = [
        [cell.strip() for cell in line.split("│")[1:6]]
        for line in result.output.splitlines()
        if "│" in line
    ]
    assert rows == [
        ["nightly-etl", "etl", "nightly, every-15-minutes", "default/default", "created"],
        ["fan-out", "fan-out", "-", "default/default", "created"],
        ["nightly-report", "nightly-report", "-", "default/default", "created"],
    ]

    again = strato("deploy", str(EXAMPLES), "--name", "fan-out")
    assert again.exit_code == 0, again.output
    assert f"Code bundle {sha[:12]} unchanged, not uploaded" in again.output
    assert "fan-out" in again.output and "updated" in again.output
    assert "nightly-etl" not in again.output


# Running


def test_run_deployment_creates_a_scheduled_run_and_sends_one_delayed_message(
    installation: Installation,
) -> None:
    deploy_project(EXAMPLES)
    start = START + timedelta(seconds=90)

    run = run_deployment("fan-out", {"items": 3}, scheduled_time=start, tags=["adhoc"], timeout=0)

    assert run.state is not None
    assert (run.state.type, run.state.name) == (StateType.SCHEDULED, "Scheduled")
    assert run.parameters == {"items": 3, "weight": 2}  # the deployment's, overridden
    assert run.deployment_name == "fan-out"
    assert run.flow_name == "fan-out"
    assert (run.work_pool_name, run.work_queue_name) == ("default", "default")
    assert run.expected_start_time == start
    assert run.enqueued_at == START
    assert "adhoc" in run.tags
    # One SendMessage, delayed until the run's start.
    ((_, delay),) = installation.sent_messages()
    assert on_time(delay, 90)
    assert installation.receive(after=85) == []  # not visible before its start
    (message,) = messages(installation.receive(after=91))
    assert (message.flow_run_id, message.deployment, message.attempt) == (run.id, "fan-out", 1)


def test_an_idempotency_key_gives_the_same_run_and_one_message(
    installation: Installation,
) -> None:
    deploy_project(EXAMPLES)

    first = run_deployment("nightly-etl", {"rows": 2}, idempotency_key="order-42", timeout=0)
    second = run_deployment("nightly-etl", {"rows": 2}, idempotency_key="order-42", timeout=0)
    other = run_deployment("nightly-etl", {"rows": 2}, idempotency_key="order-43", timeout=0)

    assert second.id == first.id == flow_run_id_for("nightly-etl", "order-42", pool="default")
    assert other.id != first.id
    assert [m.flow_run_id for m in messages(installation.receive())] == [first.id, other.id]


def test_executing_a_deployed_run_completes_it_with_a_readable_result(
    installation: Installation,
) -> None:
    deploy_project(EXAMPLES)
    run = run_deployment("nightly-etl", {"rows": 3}, timeout=0)
    (message,) = messages(installation.receive())

    state = execute_flow_run(message.flow_run_id)

    assert (state.type, state.name) == (StateType.COMPLETED, "Completed")
    stored = runs.read_flow_run(run.id)
    assert stored.state is not None and stored.state.is_completed()
    # rows 0, 1, 2 -> amounts 0, 10, 20 -> with tax 0, 12, 24
    assert runs.read_result(stored) == 36
    assert [t.name for t in runs.read_task_runs(run.id)] == [
        "extract-0",
        "transform-0",
        "load-0",
    ]


# Bad input: the error a person sees


def test_an_unknown_deployment_suggests_close_names(installation: Installation) -> None:
    deploy_project(EXAMPLES)

    with pytest.raises(UnknownDeployment) as raised:
        run_deployment("nightly-et", timeout=0)
    assert str(raised.value) == (
        "No deployment named 'nightly-et'. Did you mean 'nightly-etl', 'nightly-report'?"
    )
    with pytest.raises(UnknownDeployment) as raised:
        run_deployment("zzz", timeout=0)
    assert str(raised.value) == (
        "No deployment named 'zzz'. Known: fan-out, nightly-etl, nightly-report."
    )

    result = strato("deployment", "run", "nightly-et")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "Error: No deployment named 'nightly-et'. Did you mean 'nightly-etl', 'nightly-report'?"
    )
    assert installation.sent == []


def test_unknown_or_missing_parameters_are_refused_at_run_time_and_create_nothing(
    installation: Installation, tmp_path: Path
) -> None:
    deploy_project(EXAMPLES)
    deploy_project(
        project(
            tmp_path / "adder",
            """
            deployments:
              - name: adder
                entrypoint: flows.py:add
            """,
        )
    )  # x has no default and the deployment gives none: each run must give it

    with pytest.raises(ParameterValidationError) as raised:
        run_deployment("nightly-etl", {"rows": 1, "bogus": 2}, timeout=0)
    assert str(raised.value) == (
        "Deployment 'nightly-etl': unknown parameter(s) bogus; the flow takes rows."
    )
    with pytest.raises(ParameterValidationError) as raised:
        run_deployment("adder", {"y": 2}, timeout=0)
    assert str(raised.value) == "Deployment 'adder': missing required parameter(s) x."

    result = strato("deployment", "run", "adder", "--param", "y=2", "--param", "z=1")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "Error: Deployment 'adder': unknown parameter(s) z; the flow takes x, y; "
        "missing required parameter(s) x."
    )
    backend = installation.services.backend
    assert backend.list_flow_runs_of_deployment("adder") == []
    assert backend.list_flow_runs_of_deployment("nightly-etl") == []
    assert installation.sent == []

    completed = run_deployment("adder", {"x": 41}, timeout=0)
    assert completed.parameters == {"x": 41}


def test_a_parameter_of_the_wrong_type_is_refused_at_deploy_time(
    installation: Installation, tmp_path: Path
) -> None:
    root = project(
        tmp_path / "typed",
        """
        deployments:
          - name: adder
            entrypoint: flows.py:add
            parameters: {x: many}
        """,
    )

    with pytest.raises(ParameterValidationError) as raised:
        deploy_project(root)
    assert str(raised.value) == (
        "Deployment 'adder' (parameters): Flow 'add' received invalid parameters:\n"
        "  - x: Input should be a valid integer, unable to parse string as an integer "
        "(got 'many')"
    )
    with pytest.raises(UnknownDeployment):
        installation.platform.deployments.get("adder")
    assert bundle_versions(installation) == []  # checked before anything is uploaded


def test_a_schedule_whose_runs_would_miss_a_required_parameter_is_refused(
    installation: Installation, tmp_path: Path
) -> None:
    root = project(
        tmp_path / "scheduled",
        """
        deployments:
          - name: adder
            entrypoint: flows.py:add
            schedules:
              - cron: "0 * * * *"
                slug: hourly
        """,
    )

    with pytest.raises(ParameterValidationError) as raised:
        deploy_project(root)
    assert str(raised.value) == (
        "Deployment 'adder' (schedule 'hourly' parameters): missing required parameter(s) x."
    )


def test_an_invalid_stratoflow_yaml_names_the_field(
    installation: Installation, tmp_path: Path
) -> None:
    root = project(
        tmp_path / "bad",
        """
        deployments:
          - name: adder
            entrypoint: flows.py:add
            schedules:
              - cron: "0 9 * * 1-5"
              - cron: "61 * * * *"
          - name: second
            work_queue: fast
        """,
    )
    file = root / "stratoflow.yaml"

    with pytest.raises(ConfigError) as raised:
        deploy_project(root)
    lines = str(raised.value).splitlines()
    assert lines[0] == f"{file} is invalid:"
    assert lines[1].startswith(
        "  - deployments[0] (adder).schedules[1].cron: Value error, invalid cron expression "
        "'61 * * * *': "
    )
    assert lines[1].endswith("; e.g. '0 9 * * 1-5' (09:00 on weekdays) or '@daily'")
    assert lines[2:] == ["  - deployments[1] (second).entrypoint: Field required"]

    result = strato("deploy", str(root))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {file} is invalid:\n  - deployments[0] (adder)")
    assert "Traceback" not in result.output


def test_an_unknown_work_pool_or_queue_is_refused_at_deploy_time(
    installation: Installation, tmp_path: Path
) -> None:
    flows = {"flows.py": ADDER.replace("x: int,", "x: int = 0,")}
    unknown_pool = project(
        tmp_path / "pool",
        """
        deployments:
          - {name: adder, entrypoint: "flows.py:add", work_pool: gpu}
        """,
        flows,
    )
    unknown_queue = project(
        tmp_path / "queue",
        """
        deployments:
          - {name: adder, entrypoint: "flows.py:add", work_queue: fast}
        """,
        flows,
    )
    no_sqs_queue = project(
        tmp_path / "sqs",
        """
        work_pools:
          gpu:
            queues: [{name: fast}]
        deployments:
          - {name: adder, entrypoint: "flows.py:add", work_pool: gpu, work_queue: fast}
        """,
        flows,
    )

    with pytest.raises(UnknownWorkPool) as pool:
        deploy_project(unknown_pool)
    assert str(pool.value) == "No work pool named 'gpu'. Known: default."
    with pytest.raises(UnknownPoolQueue) as queue:
        deploy_project(unknown_queue)
    assert str(queue.value) == "Work pool 'default' has no queue 'fast' (queues: default)."
    with pytest.raises(UnknownWorkQueue) as sqs:
        deploy_project(no_sqs_queue)
    assert str(sqs.value) == (
        "The SQS queue 'stratoflow-gpu-fast' does not exist. Create the work queue "
        "(cdk deploy, or stratoflow.resources.provision for the emulator)."
    )
    result = strato("deploy", str(unknown_queue))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "Error: Work pool 'default' has no queue 'fast' (queues: default)."
    )
    assert installation.platform.deployments.list() == []


def test_an_entrypoint_outside_the_project_is_refused_at_deploy_time(
    installation: Installation, tmp_path: Path
) -> None:
    """A worker confines the entrypoint to the bundle; deploying confines it to the project,
    so such a deployment is never stored."""
    (tmp_path / "outside.py").write_text(textwrap.dedent(ADDER))
    escaping = project(
        tmp_path / "proj",
        """
        deployments:
          - {name: adder, entrypoint: "../outside.py:add"}
        """,
    )

    result = strato("deploy", str(escaping))

    assert result.exit_code == 2
    assert "../outside.py:add" in result.stderr
    assert "Traceback" not in result.output
    assert installation.platform.deployments.list() == []


def test_a_missing_code_bundle_fails_the_run_with_what_to_do(
    installation: Installation,
) -> None:
    (result, *_) = deploy_project(EXAMPLES)
    bundle = result.deployment.bundle
    installation.session.client("s3").delete_object(Bucket=bundle.bucket, Key=bundle.key)
    run = run_deployment("fan-out", timeout=0)

    state = execute_flow_run(run.id)

    expected = (
        "The flow's code could not be loaded: No code bundle at "
        f"s3://stratoflow-code/{bundle.key} (bucket 'stratoflow-code', key '{bundle.key}'): "
        "the deployment's code is missing from the code bucket. Redeploy (`strato deploy`) "
        "to upload it again."
    )
    assert (state.type, state.message) == (StateType.FAILED, expected)
    stored = runs.read_flow_run(run.id)
    assert stored.state is not None
    assert (stored.state.name, stored.state.message) == ("Failed", expected)

    # Redeploying uploads the bundle again; the next run completes.
    assert deploy_project(EXAMPLES)[0].bundle_uploaded
    again = run_deployment("fan-out", {"items": 2}, timeout=0)
    assert execute_flow_run(again.id).is_completed()
    assert runs.read_result(runs.read_flow_run(again.id)) == 2


def test_a_flow_whose_code_raises_at_import_fails_with_the_import_error(
    installation: Installation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = (
        "import os\n\n"
        "if os.environ.get('FEATURE_STORE_DOWN'):\n"
        "    raise RuntimeError('cannot reach the feature store')\n" + ADDER
    )
    deploy_project(
        project(
            tmp_path / "importer",
            """
            deployments:
              - {name: adder, entrypoint: "flows.py:add", parameters: {x: 1}}
            """,
            {"flows.py": code},
        )
    )
    monkeypatch.setenv("FEATURE_STORE_DOWN", "1")  # the worker's environment differs
    run = run_deployment("adder", timeout=0)

    state = execute_flow_run(run.id)

    assert state.type is StateType.FAILED
    assert state.message == (
        "The flow's code could not be loaded: Entrypoint 'flows.py:add': importing flows.py "
        "raised RuntimeError: cannot reach the feature store"
    )
    assert runs.read_flow_run(run.id).state == state


# flow.deploy from Python


def test_flow_deploy_from_python(installation: Installation, tmp_path: Path) -> None:
    root = tmp_path / "py"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "flows.py").write_text(ADDER)
    (root / "README.md").write_text("bundled too\n")
    add = load_flow(f"{root / 'pkg' / 'flows.py'}:add")

    result = add.deploy(
        "py-adder",
        project_dir=root,
        parameters={"x": 1},
        schedules=[{"cron": "*/5 * * * *", "slug": "five", "parameters": {"y": 10}}],
        tags=["python"],
    )

    deployment = installation.platform.deployments.get("py-adder")
    assert result.deployment == deployment
    assert (result.created, result.bundle_uploaded) == (True, True)
    assert deployment.entrypoint == "pkg/flows.py:add"
    assert deployment.flow_name == "add"
    assert (deployment.parameter_names, deployment.required_parameters) == (("x", "y"), ("x",))
    assert [(s.key, s.parameters) for s in deployment.schedules] == [("five", {"y": 10})]
    report = Scheduler(installation.platform).tick(START)
    assert report.created == 3  # 10:00, 10:05, 10:10
    scheduled = installation.services.backend.list_flow_runs_of_deployment("py-adder")
    assert {tuple(sorted(r.parameters.items())) for r in scheduled} == {(("x", 1), ("y", 10))}
    run = run_deployment("py-adder", {"x": 4}, timeout=0)
    assert execute_flow_run(run.id).is_completed()
    assert runs.read_result(runs.read_flow_run(run.id)) == 5

    with pytest.raises(ConfigError) as raised:
        add.deploy("py-adder", project_dir=root, work_pol="gpu")
    assert str(raised.value) == "Deployment 'py-adder': work_pol: Extra inputs are not permitted"
    with pytest.raises(ConfigError, match=r"is defined in .*flows.py, outside project_dir"):
        add.deploy("py-adder", project_dir=tmp_path / "elsewhere")


# Pause and resume


TICKER = """
deployments:
  - name: ticker
    entrypoint: flows.py:add
    parameters: {x: 1}
    schedules:
      - {cron: "*/5 * * * *", slug: every-5}
      - {cron: "0 * * * *", slug: hourly}
"""


def scheduled_ids(found: Installation, name: str = "ticker") -> set[str]:
    backend = found.services.backend
    return {
        r.id
        for r in backend.list_flow_runs_of_deployment(name)
        if r.state is not None and r.state.type is StateType.SCHEDULED
    }


def test_pausing_a_deployment_removes_its_future_runs_until_resumed(
    installation: Installation, tmp_path: Path
) -> None:
    deploy_project(project(tmp_path / "ticker", TICKER))
    scheduler = Scheduler(installation.platform)
    clock = installation.clock
    clock.advance(-60)  # 09:59: every-5 at 10:00, 10:05, 10:10; hourly at 10:00
    assert scheduler.tick(clock.now()).created == 4
    before = scheduled_ids(installation)

    result = strato("deployment", "pause", "ticker")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Paused ticker; removed 4 future run(s)."
    assert scheduled_ids(installation) == set()
    assert installation.platform.deployments.get("ticker").paused
    clock.advance(60)
    sent = len(installation.sent)
    paused_tick = scheduler.tick(clock.now())
    assert (paused_tick.created, scheduled_ids(installation)) == (0, set())
    assert len(installation.sent) == sent

    assert set_deployment_paused("ticker", False) == 0
    assert scheduler.tick(clock.now()).created == 4
    assert scheduled_ids(installation) == before  # the same ids: the same slots


def test_pausing_one_schedule_removes_only_its_future_runs(
    installation: Installation, tmp_path: Path
) -> None:
    deploy_project(project(tmp_path / "ticker", TICKER))
    scheduler = Scheduler(installation.platform)
    installation.clock.advance(-60)
    scheduler.tick(installation.clock.now())
    backend = installation.services.backend
    every_5 = {
        r.id
        for r in backend.list_flow_runs_of_deployment("ticker")
        if (r.idempotency_key or "").startswith("every-5|")
    }
    assert len(every_5) == 3

    result = strato("deployment", "schedule", "pause", "ticker", "every-5")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Paused schedule every-5 of ticker; removed 3 future run(s)."
    remaining = scheduled_ids(installation)
    assert len(remaining) == 1 and not remaining & every_5
    assert scheduler.tick(installation.clock.now()).created == 0
    assert scheduled_ids(installation) == remaining

    assert set_schedule_active("ticker", "every-5", True) == 0
    assert scheduler.tick(installation.clock.now()).created == 3
    assert scheduled_ids(installation) == remaining | every_5

    unknown = strato("deployment", "schedule", "pause", "ticker", "every-6")
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == (
        "Error: Deployment 'ticker' has no schedule 'every-6' (schedules: every-5, hourly)."
    )


# The rest of the CLI


def test_deployment_cli_lists_inspects_runs_and_deletes(
    installation: Installation, tmp_path: Path, wide_console: None
) -> None:
    deploy_project(EXAMPLES)

    listing = strato("deployment", "ls")
    assert listing.exit_code == 0, listing.output
    assert "nightly-etl" in listing.output and "default/default" in listing.output
    inspected = strato("deployment", "inspect", "nightly-etl", "--json")
    assert inspected.exit_code == 0, inspected.output
    assert '"flow_name": "etl"' in inspected.output
    schedules = strato("deployment", "schedule", "ls", "nightly-etl", "--json")
    assert '"key": "every-15-minutes"' in schedules.output

    created = strato("deployment", "run", "fan-out", "--param", "items=3", "--json")
    assert created.exit_code == 0, created.output
    (message,) = messages(installation.receive())
    assert f'"id": "{message.flow_run_id}"' in created.output
    assert runs.read_flow_run(message.flow_run_id).parameters == {"items": 3, "weight": 2}

    # --watch with nobody running the run: waits --timeout seconds, exits 1.
    watched = strato("deployment", "run", "fan-out", "--watch", "--timeout", "5")
    assert watched.exit_code == 1
    assert "is Scheduled" in watched.output

    deleted = strato("deployment", "delete", "nightly-report")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.output.strip() == "Deleted nightly-report; removed 0 future run(s)."
    gone = strato("deployment", "inspect", "nightly-report")
    assert gone.exit_code == 2
    assert gone.stderr.strip() == (
        "Error: No deployment named 'nightly-report'. Did you mean 'nightly-etl'?"
    )

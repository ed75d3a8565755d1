"""`strato deploy` and `strato deployment ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from stratoflow.cli.common import one_line_errors, out, parse_params, print_json
from stratoflow.cli.render import styled_state

deployment_app = typer.Typer(
    help="Inspect, run, pause and resume deployments.", no_args_is_help=True
)
schedule_app = typer.Typer(help="A deployment's schedules.", no_args_is_help=True)
deployment_app.add_typer(schedule_app, name="schedule")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def deploy(
    project_dir: Annotated[Path, typer.Argument(help="Directory with stratoflow.yaml")] = Path("."),
    name: Annotated[
        list[str] | None, typer.Option("--name", "-n", help="Deploy only these deployments.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Bundle the project, upload it if it changed, and store its deployments."""
    from stratoflow.deployments.deploy import deploy_project

    with one_line_errors():
        results = deploy_project(project_dir, names=name or ())
    if as_json:
        print_json(
            [
                {
                    "name": r.deployment.name,
                    "flow": r.deployment.flow_name,
                    "bundle": r.deployment.bundle.model_dump(),
                    "bundle_uploaded": r.bundle_uploaded,
                    "created": r.created,
                    "removed_future_runs": r.removed_future_runs,
                }
                for r in results
            ]
        )
        return
    uploaded = results[0].bundle_uploaded if results else False
    if results:
        sha = results[0].deployment.bundle.sha256[:12]
        out.print(f"Code bundle {sha} " + ("uploaded" if uploaded else "unchanged, not uploaded"))
    table = Table(title="Deployments")
    for column in ("deployment", "flow", "schedules", "work queue", ""):
        table.add_column(column)
    for result in results:
        d = result.deployment
        table.add_row(
            d.name,
            d.flow_name,
            ", ".join(s.key for s in d.schedules) or "-",
            f"{d.work_pool}/{d.work_queue}",
            "created" if result.created else "updated",
        )
    out.print(table)


@deployment_app.command("ls")
def list_deployments(as_json: JsonOption = False) -> None:
    """List deployments."""
    from stratoflow.platform import get_platform

    with one_line_errors():
        deployments = get_platform().deployments.list()
    if as_json:
        print_json([d.model_dump(mode="json") for d in deployments])
        return
    table = Table(title="Deployments")
    for column in ("name", "flow", "schedules", "paused", "work queue", "updated"):
        table.add_column(column)
    for d in deployments:
        table.add_row(
            d.name,
            d.flow_name,
            str(len(d.schedules)),
            "yes" if d.paused else "no",
            f"{d.work_pool}/{d.work_queue}",
            f"{d.updated:%Y-%m-%d %H:%M:%S}",
        )
    out.print(table)


@deployment_app.command("inspect")
def inspect_deployment(name: str, as_json: JsonOption = False) -> None:
    """Show one deployment."""
    from stratoflow.platform import get_platform

    with one_line_errors():
        deployment = get_platform().deployments.get(name)
    document = deployment.model_dump(mode="json")
    if as_json:
        print_json(document)
    else:
        out.print_json(data=document)


@deployment_app.command("run")
def run(
    name: str,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="name=value")] = None,
    params: Annotated[str | None, typer.Option(help="Parameters as a JSON object.")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Wait and show its state.")] = False,
    timeout: Annotated[float | None, typer.Option(help="Seconds to watch at most.")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Run at most once per key.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a run of a deployment; with --watch, wait for it (exit 1 unless Completed)."""
    from stratoflow.deployments.runs import run_deployment, wait_for_flow_run

    parameters = parse_params(param or [], params)
    with one_line_errors():
        flow_run = run_deployment(name, parameters, idempotency_key=idempotency_key, timeout=0)
        if not as_json:
            out.print(f"Created flow run [bold]{flow_run.name}[/] ({flow_run.id})")
        if watch:
            with out.status(f"Waiting for {flow_run.name}...", spinner="dots"):
                flow_run = wait_for_flow_run(flow_run.id, timeout=timeout, poll_interval=0.5)
    if as_json:
        print_json(_run_summary(flow_run))
    elif watch:
        message = f": {flow_run.state.message}" if flow_run.state and flow_run.state.message else ""
        out.print(
            f"Flow run {flow_run.name} is {styled_state(flow_run.state)}{message}", soft_wrap=True
        )
    if watch and not (flow_run.state and flow_run.state.is_completed()):
        raise typer.Exit(1)


def _run_summary(flow_run: Any) -> dict[str, Any]:
    state = flow_run.state
    return {
        "id": flow_run.id,
        "name": flow_run.name,
        "deployment": flow_run.deployment_name,
        "state": None
        if state is None
        else {"type": state.type.value, "name": state.name, "message": state.message},
    }


@deployment_app.command("pause")
def pause(name: str) -> None:
    """Pause a deployment: its schedules stop and its future runs are removed."""
    from stratoflow.deployments.deploy import set_deployment_paused

    with one_line_errors():
        removed = set_deployment_paused(name, True)
    out.print(f"Paused {name}; removed {removed} future run(s).")


@deployment_app.command("resume")
def resume(name: str) -> None:
    """Resume a paused deployment."""
    from stratoflow.deployments.deploy import set_deployment_paused

    with one_line_errors():
        set_deployment_paused(name, False)
    out.print(f"Resumed {name}.")


@deployment_app.command("delete")
def delete(name: str) -> None:
    """Delete a deployment (its past runs are kept) and its future runs."""
    from stratoflow.deployments.deploy import remove_future_runs
    from stratoflow.platform import get_platform

    with one_line_errors():
        platform = get_platform()
        platform.deployments.delete(name)
        removed = remove_future_runs(platform, name)
    out.print(f"Deleted {name}; removed {removed} future run(s).")


@schedule_app.command("ls")
def list_schedules(name: str, as_json: JsonOption = False) -> None:
    """A deployment's schedules, with their keys (slugs)."""
    from stratoflow.platform import get_platform

    with one_line_errors():
        deployment = get_platform().deployments.get(name)
    rows = [
        {
            "key": s.key,
            "active": s.active,
            "schedule": s.schedule.model_dump(mode="json"),
            "parameters": s.parameters,
        }
        for s in deployment.schedules
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Schedules of {name}")
    for column in ("key", "active", "schedule", "parameters"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["key"]),
            "yes" if row["active"] else "no",
            str(row["schedule"]),
            str(row["parameters"] or ""),
        )
    out.print(table)


@schedule_app.command("pause")
def pause_schedule(name: str, key: str) -> None:
    """Pause one schedule of a deployment (its future runs are removed)."""
    from stratoflow.deployments.deploy import set_schedule_active

    with one_line_errors():
        removed = set_schedule_active(name, key, False)
    out.print(f"Paused schedule {key} of {name}; removed {removed} future run(s).")


@schedule_app.command("resume")
def resume_schedule(name: str, key: str) -> None:
    """Resume one schedule of a deployment."""
    from stratoflow.deployments.deploy import set_schedule_active

    with one_line_errors():
        set_schedule_active(name, key, True)
    out.print(f"Resumed schedule {key} of {name}.")

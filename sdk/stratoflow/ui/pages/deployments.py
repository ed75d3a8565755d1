"""Deployments: the list; a deployment's page (its schedules with their next runs, its
upcoming and recent runs, pausing and resuming it and each schedule, as `strato
deployment pause|resume` and `strato deployment schedule pause|resume`); and "Run": a
form made from the flow's parameter schema whose values go to `run_deployment`, the
function `strato deployment run` calls, which checks them before any run exists."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler import Response

from stratoflow import runs
from stratoflow.exceptions import ParameterValidationError
from stratoflow.models import FlowRun
from stratoflow.platform import get_platform
from stratoflow.states import StateType
from stratoflow.ui import forms
from stratoflow.ui.http import (
    deployment_url,
    flow_run_url,
    form_data,
    form_value,
    new_router,
    path_value,
    query_value,
    redirect,
    with_query,
)
from stratoflow.ui.rendering import render
from stratoflow.ui.sessions import require_operator

if TYPE_CHECKING:
    # Types only: the models load the schedules' libraries (see deployment_page).
    from stratoflow.deployments.models import Deployment
    from stratoflow.schedules import DeploymentSchedule

router = new_router()

NEXT_RUNS = 3
"""Next start times shown per schedule."""
NEXT_RUNS_HORIZON = timedelta(days=366)
RUNS_READ = 500
"""The deployment's newest runs read for its page (upcoming and recent)."""
UPCOMING_RUNS = 10
RECENT_RUNS = 20
MAX_RUN_NAME = 200
MAX_TAGS = 20


@dataclass(frozen=True)
class ScheduleView:
    key: str
    kind: str
    """`cron`, `interval` or `rrule`."""
    definition: str
    """The cron expression, the interval in seconds or the RRULE text."""
    timezone: str
    active: bool
    parameters: dict[str, Any]
    next_runs: list[datetime]
    """Empty while the schedule or its deployment is paused."""


def schedule_view(schedule: DeploymentSchedule, now: datetime, *, paused: bool) -> ScheduleView:
    """A schedule as the page shows it, with the next times it fires (the scheduler's own
    `slots`, from now on)."""
    # On use: the deployment read before this loaded the schedules module already.
    from stratoflow.schedules import slots

    spec = schedule.schedule
    kind, definition = _definition(spec)
    upcoming = (
        slots(spec, now, now + NEXT_RUNS_HORIZON, limit=NEXT_RUNS)
        if schedule.active and not paused
        else []
    )
    return ScheduleView(
        key=schedule.key,
        kind=kind,
        definition=definition,
        timezone=spec.timezone,
        active=schedule.active,
        parameters=schedule.parameters,
        next_runs=upcoming,
    )


def _definition(spec: Any) -> tuple[str, str]:
    """(kind, text) of a cron, interval or RRULE schedule (`stratoflow.schedules`)."""
    for kind in ("cron", "rrule"):
        value = getattr(spec, kind, None)
        if isinstance(value, str):
            return kind, value
    interval: timedelta = spec.interval
    return "interval", f"every {interval.total_seconds():g} s"


def split_runs(found: list[FlowRun]) -> tuple[list[FlowRun], list[FlowRun]]:
    """(upcoming: scheduled runs, soonest first; recent: the others, newest first)."""
    upcoming = [
        run for run in found if run.state is not None and run.state.type is StateType.SCHEDULED
    ]
    upcoming.sort(key=_starts)
    scheduled = {run.id for run in upcoming}
    recent = [run for run in found if run.id not in scheduled]
    return upcoming[:UPCOMING_RUNS], recent[:RECENT_RUNS]


def _starts(run: FlowRun) -> float:
    moment = run.expected_start_time or run.created
    return moment.timestamp() if moment is not None else float("inf")


@router.get("/deployments")
def list_deployments() -> Response[str]:
    deployments = get_platform().deployments.list()
    return render("deployments/list.html", active="deployments", deployments=deployments)


@router.get("/deployments/<name>")
def deployment_page(name: str) -> Response[str]:
    name = path_value(name)
    platform = get_platform()
    deployment = platform.deployments.get(name)
    now = platform.services.clock.now()
    upcoming, recent = split_runs(runs.query_flow_runs(deployment=name, limit=RUNS_READ))
    removed = query_value(router.current_event, "removed")
    return render(
        "deployments/page.html",
        active="deployments",
        deployment=deployment,
        schedules=[
            schedule_view(schedule, now, paused=deployment.paused)
            for schedule in deployment.schedules
        ],
        upcoming=upcoming,
        recent=recent,
        schedule_url=schedule_action_url,
        removed=int(removed) if removed is not None and removed.isdigit() else None,
    )


@router.post("/deployments/<name>/pause")
def pause_deployment(name: str) -> Response[str]:
    """`strato deployment pause`: its schedules stop and its future runs are removed."""
    # On use: the deploy machinery is not needed to show pages.
    from stratoflow.deployments.deploy import set_deployment_paused

    name = path_value(name)
    removed = set_deployment_paused(name, True)
    return redirect(with_query(deployment_url(name), {"removed": str(removed)}))


@router.post("/deployments/<name>/resume")
def resume_deployment(name: str) -> Response[str]:
    from stratoflow.deployments.deploy import set_deployment_paused  # see pause_deployment

    name = path_value(name)
    set_deployment_paused(name, False)
    return redirect(deployment_url(name))


@router.post("/deployments/<name>/schedules/<key>/pause")
def pause_schedule(name: str, key: str) -> Response[str]:
    """`strato deployment schedule pause`: the schedule's future runs are removed."""
    from stratoflow.deployments.deploy import set_schedule_active  # see pause_deployment

    name = path_value(name)
    key = path_value(key)
    removed = set_schedule_active(name, key, False)
    return redirect(with_query(deployment_url(name), {"removed": str(removed)}))


@router.post("/deployments/<name>/schedules/<key>/resume")
def resume_schedule(name: str, key: str) -> Response[str]:
    from stratoflow.deployments.deploy import set_schedule_active  # see pause_deployment

    name = path_value(name)
    key = path_value(key)
    set_schedule_active(name, key, True)
    return redirect(deployment_url(name))


# "Run": the parameters form


@dataclass(frozen=True)
class RunForm:
    """What the run form shows: the fields made from the parameter schema (or one JSON
    box when the flow has none), the run's name and tags, the errors of a refused try."""

    fields: list[forms.FormField]
    whole_json: bool
    parameters_json: str
    flow_run_name: str = ""
    tags: str = ""
    idempotency_key: str = ""
    """One per form shown: submitting it twice (a double click, a reload) makes one run."""
    error: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


def new_run_form(deployment: Deployment) -> RunForm:
    fields = forms.form_fields(deployment.parameter_schema, deployment.parameters)
    return RunForm(
        fields=fields,
        whole_json=not fields,
        parameters_json=json.dumps(deployment.parameters, indent=2, default=str),
        idempotency_key=f"ui-{secrets.token_urlsafe(16)}",
    )


def _render_run_form(deployment: Deployment, form: RunForm, status_code: int) -> Response[str]:
    return render(
        "deployments/run.html",
        status_code=status_code,
        active="deployments",
        deployment=deployment,
        form=form,
    )


@router.get("/deployments/<name>/run", middlewares=[require_operator])
def run_form(name: str) -> Response[str]:
    name = path_value(name)
    deployment = get_platform().deployments.get(name)
    return _render_run_form(deployment, new_run_form(deployment), 200)


@router.post("/deployments/<name>/run")
def create_run(name: str) -> Response[str]:
    """Type the form's values (forms.form_values), then create the run with
    `run_deployment`, as `strato deployment run` does: it checks the parameters against
    the deployment's schema before the run exists. A refused value shows the form again
    (422) with the reason, and nothing is created."""
    # On use: the run machinery (and jsonschema) is not needed to show pages.
    from stratoflow.deployments.runs import run_deployment

    name = path_value(name)
    deployment = get_platform().deployments.get(name)
    posted = form_data(router.current_event)
    schema = deployment.parameter_schema
    fields = forms.form_fields(schema)
    if fields:
        parameters, errors = forms.form_values(schema, posted)
    else:
        parameters, errors = _whole_json(form_value(posted, "parameters_json") or "")
    run_name = (form_value(posted, "flow_run_name") or "").strip()
    tags_text = form_value(posted, "tags") or ""
    tags, tag_error = parse_tags(tags_text)
    if tag_error:
        errors["tags"] = tag_error
    if len(run_name) > MAX_RUN_NAME:
        errors["flow_run_name"] = f"At most {MAX_RUN_NAME} characters."
    shown = RunForm(
        fields=forms.form_fields(schema, submitted=posted, errors=errors),
        whole_json=not fields,
        parameters_json=form_value(posted, "parameters_json") or "",
        flow_run_name=run_name,
        tags=tags_text,
        idempotency_key=form_value(posted, "idempotency_key") or "",
        errors=errors,
    )
    if errors:
        return _render_run_form(deployment, shown, 422)
    try:
        run = run_deployment(
            name,
            parameters,
            flow_run_name=run_name or None,
            tags=tags,
            idempotency_key=shown.idempotency_key or None,
            timeout=0,
        )
    except ParameterValidationError as exc:
        return _render_run_form(deployment, replace(shown, error=str(exc)), 422)
    return redirect(flow_run_url(run.id))


def parse_tags(text: str) -> tuple[list[str], str | None]:
    """Comma-separated tags (blanks dropped, each once), or an error."""
    tags = list(dict.fromkeys(tag.strip() for tag in text.split(",") if tag.strip()))
    if len(tags) > MAX_TAGS:
        return [], f"At most {MAX_TAGS} tags."
    return tags, None


def _whole_json(text: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The parameters given as one JSON object (the flow has no parameter schema)."""
    try:
        loaded = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        return {}, {"parameters_json": f"Not valid JSON: {exc.msg} (line {exc.lineno})."}
    if not isinstance(loaded, dict):
        return {}, {"parameters_json": 'The parameters must be a JSON object, e.g. {"n": 5}.'}
    return loaded, {}


def schedule_action_url(deployment: str, key: str, action: str) -> str:
    return deployment_url(deployment, f"/schedules/{quote(key, safe='')}/{action}")

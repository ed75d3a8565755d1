"""One flow run: state timeline, task-run Gantt chart, parameters, result (described,
never loaded), logs with a level filter and a live tail, events, subflows, and the
actions cancel, retry and resume (with a form made from the input's schema)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.event_handler import Response

from stratoflow import runs
from stratoflow.context import get_services
from stratoflow.exceptions import StratoflowError
from stratoflow.models import FlowRun, TaskRun
from stratoflow.ui import forms
from stratoflow.ui.http import (
    flow_run_url,
    form_data,
    form_value,
    new_router,
    path_value,
    query_value,
    redirect,
)
from stratoflow.ui.rendering import render
from stratoflow.ui.run_views import (
    LOG_LEVELS,
    LogCursor,
    advance,
    after_cursor,
    describe_result,
    gantt,
    level_number,
    timeline,
)

router = new_router()

EVENTS_LIMIT = 100
SUBFLOWS_LIMIT = 50
TAIL_SECONDS = 2
"""How often a live tail asks for new lines (while the run is not final)."""
HEAD_SECONDS = 5
"""How often a run's header asks for its state again (while the run is not final)."""


@router.get("/flow-runs/<flow_run_id>")
def flow_run_page(flow_run_id: str) -> Response[str]:
    return _page(runs.read_flow_run(path_value(flow_run_id)))


def _page(
    run: FlowRun,
    *,
    status_code: int = 200,
    resume_errors: dict[str, str] | None = None,
    resume_submitted: dict[str, list[str]] | None = None,
    action_error: str | None = None,
) -> Response[str]:
    services = get_services()
    now = services.clock.now()
    task_runs = sorted(runs.read_task_runs(run.id), key=_started)
    level = _level(query_value(router.current_event, "level"))
    since = (run.created or now) - timedelta(minutes=1)
    # Imported on first use: the derivation of run events is not for the API Lambda's
    # cold start (bench/cold_start.py, tests/unit/test_handler_imports.py).
    from stratoflow.events import on_read

    return render(
        "flow_run/page.html",
        status_code=status_code,
        active="flow-runs",
        run=run,
        steps=timeline(run),
        task_runs=task_runs,
        task_names={t.id: t.name for t in task_runs},
        gantt=gantt(run, task_runs, now),
        result=describe_result(run),
        task_results={t.id: describe_result(t) for t in task_runs},
        events=on_read.flow_run_events(services, run.id, since, limit=EVENTS_LIMIT),
        resume=_resume_form(run, resume_errors, resume_submitted),
        action_error=action_error,
        logs=_log_view(run, level, None),
        levels=LOG_LEVELS,
        head_seconds=HEAD_SECONDS,
    )


@router.get("/flow-runs/<flow_run_id>/head")
def flow_run_head(flow_run_id: str) -> Response[str]:
    """htmx, every HEAD_SECONDS while the run is not final: its header (state, times,
    attempts, the buttons that state allows)."""
    run = runs.read_flow_run(path_value(flow_run_id))
    return render("flow_run/_head.html", run=run, head_seconds=HEAD_SECONDS, action_error=None)


def _started(task_run: TaskRun) -> float:
    """Task runs in the order they started (not started yet: last)."""
    moment = task_run.start_time or task_run.created
    return moment.timestamp() if moment is not None else float("inf")


@router.get("/flow-runs/<flow_run_id>/subflows")
def flow_run_subflows(flow_run_id: str) -> Response[str]:
    """htmx, after the page: the runs this run started as subflows. No index leads from a
    run to its subflows, so this reads the runs created since it was (newest first,
    at most SUBFLOWS_LIMIT), which the page should not wait for."""
    run = runs.read_flow_run(path_value(flow_run_id))
    found = []
    if run.start_time is not None:  # a run that never started made no subflow
        found = runs.query_flow_runs(
            since=run.created,
            where=lambda other: other.parent_flow_run_id == run.id,
            limit=SUBFLOWS_LIMIT,
        )
    return render("flow_run/_subflows.html", run=run, subflows=found)


def _level(text: str | None) -> str:
    chosen = (text or "DEBUG").upper()
    return chosen if chosen in LOG_LEVELS else "DEBUG"


def _log_view(run: FlowRun, level: str, cursor: LogCursor | None) -> dict[str, Any]:
    """The lines after `cursor` at `level` or above, the next cursor, and whether to keep
    polling (until the run is final)."""
    read = runs.read_logs(run.id, since=cursor.since if cursor is not None else None)
    fresh = after_cursor(read, cursor)
    threshold = level_number(level)
    following = advance(cursor, fresh)
    live = run.state is None or not run.state.is_final()
    return {
        "lines": [entry for entry in fresh if entry.level >= threshold],
        "level": level,
        "cursor": following.as_text() if following is not None else "",
        "live": live,
        "tail_seconds": TAIL_SECONDS,
    }


@router.get("/flow-runs/<flow_run_id>/logs")
def flow_run_logs(flow_run_id: str) -> Response[str]:
    """htmx: with `cursor`, the new lines and the next poller (live tail); without, the
    whole log section at `level` (the level filter)."""
    run = runs.read_flow_run(path_value(flow_run_id))
    event = router.current_event
    level = _level(query_value(event, "level"))
    cursor_text = query_value(event, "cursor")
    cursor = LogCursor.parse(cursor_text)
    if cursor_text is not None:
        return render("flow_run/_log_tail.html", run=run, logs=_log_view(run, level, cursor))
    return render(
        "flow_run/_logs.html",
        run=run,
        logs=_log_view(run, level, None),
        levels=LOG_LEVELS,
    )


def _resume_form(
    run: FlowRun,
    errors: dict[str, str] | None,
    submitted: dict[str, list[str]] | None,
) -> dict[str, Any] | None:
    """What the resume form needs when the run is paused; None otherwise."""
    state = run.state
    if state is None or not state.is_paused():
        return None
    schema = _input_schema(run)
    return {
        "expects_input": "run_input_keyset" in state.details,
        "fields": forms.form_fields(schema, submitted=submitted, errors=errors),
        "whole_json": schema is None or not forms.form_fields(schema),
        "submitted_json": form_value(submitted or {}, "input_json") or "",
        "errors": errors or {},
        "deadline": _pause_deadline(state.details.get("pause_timeout")),
    }


def _pause_deadline(value: object) -> datetime | None:
    """When the pause times out: `suspend_flow_run`/`pause_flow_run` store the deadline
    (an ISO timestamp), not the timeout's seconds."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _input_schema(run: FlowRun) -> dict[str, Any] | None:
    # On use: resuming loads the durable-run machinery (~30 ms of the Lambda's cold start).
    from stratoflow.flow_runs import paused_state_schema

    assert run.state is not None
    return paused_state_schema(run.state, run.id)


@router.post("/flow-runs/<flow_run_id>/cancel")
def cancel_flow_run(flow_run_id: str) -> Response[str]:
    """`strato flow-run cancel`: the run becomes Cancelling; its worker stops it."""
    flow_run_id = path_value(flow_run_id)
    runs.cancel_flow_run(flow_run_id)
    return redirect(flow_run_url(flow_run_id))


@router.post("/flow-runs/<flow_run_id>/retry")
def retry_flow_run(flow_run_id: str) -> Response[str]:
    """`strato flow-run retry [--from-scratch]`: a finished deployment run runs again."""
    # On use: the deployments' run machinery is not needed to show pages.
    from stratoflow.deployments.runs import retry_flow_run as retry

    flow_run_id = path_value(flow_run_id)
    form = form_data(router.current_event)
    try:
        retry(flow_run_id, from_scratch=form_value(form, "from_scratch") == "true")
    except StratoflowError as exc:
        return _page(runs.read_flow_run(flow_run_id), status_code=409, action_error=str(exc))
    return redirect(flow_run_url(flow_run_id))


@router.post("/flow-runs/<flow_run_id>/resume")
def resume_flow_run(flow_run_id: str) -> Response[str]:
    """`strato flow-run resume`: the input is typed from the generated form, then checked
    by `resume_flow_run` against the run's input schema, as the CLI's is; a refused input
    shows the form again with the reasons (422) and the run stays paused."""
    from stratoflow.flow_runs import resume_flow_run as resume  # see _input_schema

    flow_run_id = path_value(flow_run_id)
    run = runs.read_flow_run(flow_run_id)
    form = form_data(router.current_event)
    state = run.state
    expects_input = state is not None and "run_input_keyset" in state.details
    run_input: dict[str, Any] | None = None
    if expects_input:
        schema = _input_schema(run)
        if forms.form_fields(schema):
            run_input, errors = forms.form_values(schema, form)
        else:
            run_input, errors = _whole_json(form_value(form, "input_json") or "")
        if errors:
            return _page(run, status_code=422, resume_errors=errors, resume_submitted=form)
    try:
        resume(flow_run_id, run_input=run_input)
    except StratoflowError as exc:
        return _page(
            runs.read_flow_run(flow_run_id),
            status_code=422,
            resume_errors={"": str(exc)},
            resume_submitted=form,
        )
    return redirect(flow_run_url(flow_run_id))


def _whole_json(text: str) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The input given as one JSON object (no schema to make a form from)."""
    try:
        loaded = json.loads(text) if text.strip() else None
    except json.JSONDecodeError as exc:
        return None, {"input_json": f"Not valid JSON: {exc.msg} (line {exc.lineno})."}
    if not isinstance(loaded, dict):
        return None, {"input_json": 'The input must be a JSON object, e.g. {"approved": true}.'}
    return loaded, {}

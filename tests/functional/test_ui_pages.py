"""The dashboard, the flow runs list and a flow run's page, rendered by the API Lambda's
handler (through the dev server's real Function URL events) against an emulated
installation."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape

import pytest

from stratoflow import flow, get_run_logger, runs, task
from stratoflow.automations.api import automation_store, create_automation
from stratoflow.events import emit_event
from stratoflow.events.labels import flow_run_id as flow_run_resource
from stratoflow.models import FlowRun, RunInputRecord
from stratoflow.states import Completed, Crashed, Failed, Late, Pending, Running, Suspended
from stratoflow.workers.messages import FlowRunMessage
from stratoflow.workers.registry import record_heartbeat
from tests.functional._ui import Ui, add_run, installation, ui  # noqa: F401

UPSTREAM = "<b>upstream</b>"


@task
def extract(n: int) -> int:
    get_run_logger().info("extracting %s rows", n)
    return n + 1


@task
def load(rows: int) -> int:
    get_run_logger().warning("loading %s rows", rows)
    return rows * 2


@flow
def pipeline(n: int = 1) -> int:
    emit_event(
        "acme.pipeline.started",
        resource={"stratoflow.resource.id": flow_run_resource(_current_run_id())},
        payload={"n": n},
    )
    # Futures: the engine records `extract` as `load`'s upstream (task_inputs).
    return load.submit(extract.submit(n)).result()


def _current_run_id() -> str:
    from stratoflow.context import FlowRunContext

    ctx = FlowRunContext.get()
    assert ctx is not None
    return ctx.flow_run.id


def _run_pipeline(ui: Ui) -> FlowRun:
    state = pipeline(n=3, return_state=True)
    assert state.is_completed()
    ui.installation.services.backend.flush()
    return runs.read_flow_runs(limit=1)[0]


def _json_block(html: str, block_id: str) -> object:
    found = re.search(
        rf'<script type="application/json" id="{block_id}">(.*?)</script>', html, re.S
    )
    assert found, f"no JSON block {block_id}"
    return json.loads(found.group(1))


def test_dashboard_counts_charts_upcoming_pools_and_firings(ui: Ui) -> None:
    inst = ui.installation
    now = inst.clock.now()
    for name, states in (
        ("failed-one", (Pending(), Running(), Failed())),
        ("failed-two", (Pending(), Running(), Failed())),
        ("crashed-one", (Pending(), Running(), Crashed())),
        ("late-one", (Late(),)),
        ("done-one", (Pending(), Running(), Completed())),
    ):
        add_run(inst, name=name, states=states, created=now - timedelta(hours=1))
    add_run(
        inst,
        name="tomorrow-run",
        states=(),
        expected_start_time=now + timedelta(hours=3),
        deployment_name="nightly",
    )
    record_heartbeat(
        inst.platform,
        pool="default",
        name="poller-1",
        queues=["default"],
        running=0,
        limit=4,
        now=now,
        started=now,
    )
    inst.platform.queues.send("default", "default", FlowRunMessage(flow_run_id="x" * 8))
    automation = create_automation(
        {
            "name": "page-on-failure",
            "trigger": {"expect": "stratoflow.flow-run.Failed"},
            "actions": [{"type": "cancel-flow-run"}],
        },
        store=automation_store(inst.platform),
    )
    assert automation.id is not None
    automation_store(inst.platform).record_outcome(automation.id, fired_at=now, error=None)

    page = ui.browser().get("/")
    assert page.status == 200
    html = page.text
    assert re.search(r'id="count-failed".*?<span class="count">2</span>', html, re.S)
    assert re.search(r'id="count-crashed".*?<span class="count">1</span>', html, re.S)
    assert re.search(r'id="count-late".*?<span class="count">1</span>', html, re.S)
    assert 'href="/flow-runs?state=FAILED&amp;window=24h"' in html
    chart = _json_block(html, "runs-chart-data")
    assert isinstance(chart, dict) and len(chart["labels"]) == 24
    totals = {d["state_type"]: sum(d["counts"]) for d in chart["datasets"]}
    assert totals["FAILED"] == 2 and totals["COMPLETED"] == 1
    assert "tomorrow-run" in html.split('id="upcoming"')[1].split("</section>")[0]
    row = re.search(r'data-pool="default" data-queue="default">(.*?)</tr>', html, re.S)
    assert row is not None
    assert 'data-testid="pool-workers">1<' in row.group(1)
    assert '<td class="num queue-waiting">1</td>' in row.group(1)
    assert "page-on-failure" in html.split('id="firings"')[1]

    week = ui.browser().get("/?window=7d")
    assert len(_json_block(week.text, "runs-chart-data")["labels"]) == 7  # type: ignore[index]


def test_the_runs_list_filters_and_pages(ui: Ui) -> None:
    inst = ui.installation
    now = inst.clock.now()
    add_run(inst, name="alpha-run", flow_name="alpha", tags=("nightly",), deployment_name="a-dep")
    add_run(inst, name="beta-run", flow_name="beta", states=(Pending(), Running(), Failed()))
    add_run(inst, name="gamma-run", flow_name="gamma", pool="gpu")
    add_run(inst, name="old-run", flow_name="old", created=now - timedelta(days=3))
    browser = ui.browser()

    def names(query: str) -> set[str]:
        page = browser.get(f"/flow-runs?{query}")
        assert page.status == 200
        return set(re.findall(r'class="run-link">([^<]+)<', page.text))

    assert names("window=7d") == {"alpha-run", "beta-run", "gamma-run", "old-run"}
    assert names("window=24h") == {"alpha-run", "beta-run", "gamma-run"}
    assert names("state=FAILED") == {"beta-run"}
    assert names("state=failed") == {"beta-run"}
    assert names("deployment=a-dep") == {"alpha-run"}
    assert names("flow=gamma") == {"gamma-run"}
    assert names("tag=nightly") == {"alpha-run"}
    assert names("work_pool=gpu") == {"gamma-run"}
    assert names("flow=nothing-like-it") == set()

    rows = browser.get("/flow-runs?fragment=rows&state=RUNNING")
    assert rows.text.startswith('<div id="runs-results"')
    assert 'hx-trigger="every 5s"' in rows.text and "<html" not in rows.text
    assert "state=RUNNING" in unescape(rows.text.split('hx-get="')[1].split('"')[0])


def test_the_runs_list_pages_by_fifty(ui: Ui) -> None:
    for index in range(52):
        add_run(ui.installation, name=f"run-{index:02d}", states=())
    browser = ui.browser()
    first = browser.get("/flow-runs")
    assert first.text.count('data-testid="run-row"') == 50
    assert 'id="page-next"' in first.text and 'id="page-prev"' not in first.text
    second = browser.get("/flow-runs?page=2")
    assert second.text.count('data-testid="run-row"') == 2
    assert 'id="page-prev"' in second.text and 'id="page-next"' not in second.text


def test_a_runs_page_shows_tasks_gantt_parameters_result_logs_and_events(ui: Ui) -> None:
    run = _run_pipeline(ui)
    page = ui.browser().get(f"/flow-runs/{run.id}")
    assert page.status == 200
    html = page.text
    assert f'data-run-id="{run.id}"' in html
    assert html.count('data-testid="task-run-row"') == 2
    gantt = _json_block(html, "gantt-data")
    assert isinstance(gantt, dict)
    bars = {bar["name"]: bar for bar in gantt["bars"]}
    assert set(bars) == {"extract-0", "load-0"}
    assert bars["load-0"]["upstream"] == [{"id": bars["extract-0"]["id"], "name": "extract-0"}]
    assert bars["load-0"]["state_type"] == "COMPLETED"
    assert f'href="#task-{bars["extract-0"]["id"]}"' in html  # the dependency as a link
    assert "&#34;n&#34;: 3" in html.split('id="parameters-json"')[1].split("</pre>")[0]
    result = html.split('id="result-info"')[1].split("</dl>")[0]
    assert "json (number)" in result
    assert html.count('data-testid="log-line"') == 4
    assert "extracting 3 rows" in html and "loading 4 rows" in html
    assert "acme.pipeline.started" in html  # its own event
    assert "stratoflow.task-run.Completed" in html  # its task runs' events, derived
    assert "stratoflow.flow-run.Completed" in html  # its own state events, derived
    assert 'id="log-end"' in html  # final: no live tail
    assert 'id="cancel-run"' not in html  # final: nothing to cancel


def test_the_log_level_filter_and_live_tail(ui: Ui) -> None:
    run = _run_pipeline(ui)
    browser = ui.browser()
    warnings = browser.get(f"/flow-runs/{run.id}/logs?level=WARNING")
    assert warnings.text.startswith('<section id="logs">')
    assert warnings.text.count('data-testid="log-line"') == 1
    assert "loading 4 rows" in warnings.text

    live = add_run(ui.installation, name="live-run")
    backend = ui.installation.services.backend
    from stratoflow.models import LogEntry

    def log(message: str, level: int = 20) -> None:
        backend.write_logs(
            [
                LogEntry(
                    timestamp=ui.installation.clock.now(),
                    level=level,
                    level_name="INFO" if level == 20 else "DEBUG",
                    logger="stratoflow.flow_runs",
                    message=message,
                    flow_run_id=live.id,
                    flow_run_name=live.name,
                )
            ]
        )
        backend.flush()

    log("first line")
    page = browser.get(f"/flow-runs/{live.id}")
    tail = re.search(r'id="log-tail"[^>]*hx-get="([^"]+)"', page.text)
    assert tail is not None and 'hx-trigger="every 2s"' in page.text
    log("second line")  # the same millisecond as the first (the clock stands still)
    log("a debug line", level=10)
    step = browser.get(unescape(tail.group(1)))
    assert step.status == 200
    assert "first line" not in step.text  # already shown
    assert "second line" in step.text and "a debug line" in step.text
    assert 'id="log-tail"' in step.text  # and the next poller
    nothing_new = browser.get(
        unescape(re.search(r'hx-get="([^"]+)"', step.text).group(1))  # type: ignore[union-attr]
    )
    assert 'data-testid="log-line"' not in nothing_new.text
    info_only = browser.get(unescape(tail.group(1)).replace("level=DEBUG", "level=INFO"))
    assert "second line" in info_only.text and "a debug line" not in info_only.text


def test_a_running_runs_header_refreshes_itself_until_the_run_is_final(ui: Ui) -> None:
    run = add_run(ui.installation, name="busy-heron")  # Pending, then Running
    browser = ui.browser()
    page = browser.get(f"/flow-runs/{run.id}").text
    poll = f'hx-get="/flow-runs/{run.id}/head" hx-trigger="every 5s" hx-swap="outerHTML"'
    assert poll in page
    head = browser.get(f"/flow-runs/{run.id}/head")
    assert head.status == 200 and poll in head.text
    assert 'id="run-state"' in head.text and "Running" in head.text
    assert 'id="cancel-run"' in head.text and 'id="retry-run"' not in head.text

    backend = ui.installation.services.backend
    backend.set_flow_run_state(run.id, Completed(), force=True)
    done = browser.get(f"/flow-runs/{run.id}/head").text
    assert "Completed" in done and 'id="cancel-run"' not in done
    assert "hx-trigger" not in done  # final: the header stops asking
    assert "hx-trigger" not in browser.get(f"/flow-runs/{run.id}").text.split("</header>")[0]
    # A viewer's header has no buttons.
    viewer = ui.browser(role="viewer").get(f"/flow-runs/{run.id}/head").text
    assert 'id="run-actions"' not in viewer
    # A run that does not exist (deleted while its page was open): a 404 that says so.
    gone = browser.get("/flow-runs/no-such-run/head")
    assert gone.status == 404 and "no-such-run" in unescape(gone.text)


def test_a_subflow_links_to_its_parent_and_back(ui: Ui) -> None:
    parent = add_run(ui.installation, name="parent-run")
    ui.installation.services.backend.update_flow_run(
        parent.id, start_time=ui.installation.clock.now()
    )
    child = add_run(ui.installation, name="child-run", parent_flow_run_id=parent.id)
    add_run(ui.installation, name="unrelated-run")
    browser = ui.browser()
    page = browser.get(f"/flow-runs/{parent.id}").text
    assert f'hx-get="/flow-runs/{parent.id}/subflows" hx-trigger="load"' in page
    found = browser.get(f"/flow-runs/{parent.id}/subflows").text
    assert f'href="/flow-runs/{child.id}"' in found and "unrelated-run" not in found
    assert 'data-count="0"' in browser.get(f"/flow-runs/{child.id}/subflows").text
    child_page = browser.get(f"/flow-runs/{child.id}").text
    assert re.search(rf'href="/flow-runs/{parent.id}" id="parent-run"', child_page)


def test_retry_sends_a_finished_deployment_run_again(ui: Ui) -> None:
    run = add_run(
        ui.installation,
        name="failed-report",
        states=(Pending(), Running(), Failed()),
        deployment_name="nightly-report",
    )
    browser = ui.browser()
    page = browser.get(f"/flow-runs/{run.id}")
    assert 'id="retry-run"' in page.text
    answer = browser.post(
        f"/flow-runs/{run.id}/retry", form={"csrf_token": page.csrf_token(), "from_scratch": "true"}
    )
    assert answer.status == 303
    assert runs.read_flow_run(run.id).state_name == "AwaitingRetry"


def test_retry_of_an_unfinished_run_says_why_not(ui: Ui) -> None:
    run = add_run(ui.installation, name="busy-run", deployment_name="nightly-report")
    browser = ui.browser()
    token = browser.get("/").csrf_token()
    answer = browser.post(f"/flow-runs/{run.id}/retry", form={"csrf_token": token})
    assert answer.status == 409
    assert "only a finished run can be retried" in answer.text
    assert runs.read_flow_run(run.id).state_name == "Running"


SCHEMA = {
    "title": "Approval",
    "type": "object",
    "properties": {
        "approved": {"title": "Approved", "type": "boolean"},
        "reviewers": {"title": "Reviewers", "type": "integer", "minimum": 1, "maximum": 5},
        "comment": {"title": "Comment", "type": "string", "default": ""},
    },
    "required": ["approved", "reviewers"],
}


def _suspended_for_input(ui: Ui, schema: dict[str, object] = SCHEMA) -> FlowRun:
    inst = ui.installation
    run = add_run(inst, name="waiting-run", deployment_name="approvals")
    keyset = {
        "description": "pause-0-description",
        "response": "pause-0-response",
        "schema": "pause-0-schema",
    }
    inst.services.backend.run_inputs.create(
        RunInputRecord(
            flow_run_id=run.id,
            key="pause-0-schema",
            value=json.dumps(schema),
            created=inst.clock.now(),
        )
    )
    suspended = Suspended(
        "Suspended at 'pause-0', waiting for input.",
        pause_reschedule=True,
        pause_key="pause-0",
        run_input_keyset=keyset,
    )
    inst.services.backend.set_flow_run_state(run.id, suspended, force=True)
    return runs.read_flow_run(run.id)


def test_a_paused_run_shows_a_form_made_from_its_input_schema(ui: Ui) -> None:
    run = _suspended_for_input(ui)
    html = ui.browser().get(f"/flow-runs/{run.id}").text
    form = html.split('id="resume-form"')[1].split("</form>")[0]
    assert re.search(r'type="checkbox" name="param.approved"', form)
    number = re.search(r'<input name="param.reviewers"[^>]*>', form, re.S)
    assert number is not None
    assert 'type="number"' in number.group(0) and 'min="1"' in number.group(0)
    assert 'max="5"' in number.group(0) and "required" in number.group(0)
    assert 'name="param.comment"' in form


def test_a_bad_input_is_refused_by_the_sdks_check_and_the_run_stays_paused(ui: Ui) -> None:
    run = _suspended_for_input(ui)
    browser = ui.browser()
    token = browser.get(f"/flow-runs/{run.id}").csrf_token()
    # Not a number: refused by the form's typing, shown by the field.
    answer = browser.post(
        f"/flow-runs/{run.id}/resume",
        form={"csrf_token": token, "param.approved": "true", "param.reviewers": "many"},
    )
    assert answer.status == 422
    assert "is not a whole number" in answer.text
    assert 'value="many"' in answer.text  # what was typed comes back
    # Out of bounds: refused by resume_flow_run's schema check, as the CLI's input is.
    answer = browser.post(
        f"/flow-runs/{run.id}/resume",
        form={"csrf_token": token, "param.approved": "true", "param.reviewers": "9"},
    )
    assert answer.status == 422
    assert "stays paused" in answer.text and "reviewers" in answer.text
    assert runs.read_flow_run(run.id).state_name == "Suspended"

    answer = browser.post(
        f"/flow-runs/{run.id}/resume",
        form={"csrf_token": token, "param.approved": "true", "param.reviewers": "2"},
    )
    assert answer.status == 303
    assert runs.read_flow_run(run.id).state_name == "Resuming"
    stored = ui.installation.services.backend.run_inputs.read(run.id, "pause-0-response")
    assert stored is not None
    # The empty comment is left out: the input model's default applies.
    assert json.loads(stored.value) == {"approved": True, "reviewers": 2}


def test_a_viewer_sees_a_paused_run_but_no_resume_form(ui: Ui) -> None:
    run = _suspended_for_input(ui)
    browser = ui.browser(role="viewer")
    html = browser.get(f"/flow-runs/{run.id}").text
    assert 'id="resume"' in html and 'id="resume-form"' not in html
    answer = browser.post(
        f"/flow-runs/{run.id}/resume",
        form={"csrf_token": browser.get("/").csrf_token(), "param.reviewers": "2"},
    )
    assert answer.status == 403
    assert runs.read_flow_run(run.id).state_name == "Suspended"


def test_unknown_runs_are_a_404_page(ui: Ui) -> None:
    page = ui.browser().get("/flow-runs/no-such-run")
    assert page.status == 404 and 'id="error"' in page.text


def test_static_files_are_served_with_long_caching_when_versioned(ui: Ui) -> None:
    from stratoflow.ui.rendering import static_url

    browser = ui.browser(role=None)  # static files need no session
    versioned = browser.get(static_url("app.js"))
    assert versioned.status == 200
    assert versioned.headers["content-type"].startswith("text/javascript")
    assert "immutable" in versioned.headers["cache-control"]
    assert "max-age=300" in browser.get("/static/app.css").headers["cache-control"]
    for path in (
        "/static/../app.py",
        "/static/%2e%2e%2fapp.py",
        "/static/vendor/..%2f..%2fapp.py",
        "/static/.hidden.js",
        "/static/app.py",
        "/static/missing.js",
    ):
        assert browser.get(path).status == 404, path


def test_the_vendored_libraries_are_served_when_installed(ui: Ui) -> None:
    from stratoflow.ui.rendering import static_bytes

    if static_bytes("vendor/htmx.min.js") is None:
        pytest.skip("`make install` copies htmx and Chart.js from ui/node_modules")
    browser = ui.browser(role=None)
    for name in ("htmx.min.js", "chart.umd.min.js"):
        page = browser.get(f"/static/vendor/{name}", headers={"Accept-Encoding": "gzip"})
        assert page.status == 200 and page.headers.get("content-encoding") == "gzip"

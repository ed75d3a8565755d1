"""The deployments pages and their actions (pause/resume, schedules, "Run" with the
parameters form), through the dev server's real Function URL events against an
emulated installation."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from stratoflow import runs
from stratoflow.deployments.models import Deployment
from stratoflow.models import FlowRun
from stratoflow.states import Completed, Pending, Running
from tests.functional._ui import Ui, add_run, installation, ui  # noqa: F401
from tests.integration._deploy_fixtures import make_deployment

SCHEMA: dict[str, Any] = {
    "title": "Parameters",
    "type": "object",
    "properties": {
        "n": {"title": "Rows", "type": "integer", "minimum": 1, "default": 1},
        "label": {"title": "Label", "type": "string", "default": "daily"},
        "mode": {"title": "Mode", "enum": ["full", "delta"], "type": "string"},
    },
    "required": ["n", "mode"],
}


def _deploy(ui: Ui, name: str = "nightly-etl", **fields: Any) -> Deployment:
    values: dict[str, Any] = {
        "flow_name": "etl",
        "parameter_names": ("n", "label", "mode"),
        "required_parameters": ("mode",),
        "parameter_schema": SCHEMA,
        "parameters": {"n": 5},
        "tags": ("etl",),
        "description": "Loads yesterday's ledger.",
        "schedules": [
            {"cron": "*/5 * * * *", "slug": "every-five"},
            {"interval": 3600, "slug": "hourly", "parameters": {"n": 2}},
        ],
        **fields,
    }
    deployment = make_deployment(name, **values)
    ui.installation.platform.deployments.put(deployment)
    return deployment


def _stored(ui: Ui, name: str = "nightly-etl") -> Deployment:
    return ui.installation.platform.deployments.get(name)


def _runs_of(name: str) -> list[FlowRun]:
    return runs.query_flow_runs(deployment=name, limit=None)


def _section(html: str, section_id: str) -> str:
    return html.split(f'id="{section_id}"')[1].split("</section>", maxsplit=1)[0]


def test_the_list_shows_each_deployment(ui: Ui) -> None:
    _deploy(ui)
    _deploy(ui, "paused-one", paused=True, schedules=[])
    page = ui.browser(role="viewer").get("/deployments")
    assert page.status == 200
    rows = re.findall(r'data-testid="deployment-row" data-deployment="([^"]+)"', page.text)
    assert rows == ["nightly-etl", "paused-one"]
    assert 'href="/deployments/nightly-etl"' in page.text
    assert "2 of 2 active" in page.text and "Loads yesterday&#39;s ledger." in page.text
    assert 'id="nav-deployments" class="active"' in page.text


def test_a_deployments_page_shows_schedules_next_runs_and_its_runs(ui: Ui) -> None:
    _deploy(ui)
    now = ui.installation.clock.now()
    add_run(
        ui.installation,
        name="soon-run",
        states=(),
        deployment_name="nightly-etl",
        expected_start_time=now + timedelta(minutes=5),
    )
    add_run(
        ui.installation,
        name="done-run",
        states=(Pending(), Running(), Completed()),
        deployment_name="nightly-etl",
    )
    html = ui.browser(role="viewer").get("/deployments/nightly-etl").text
    rows = re.findall(r'data-testid="schedule-row" data-schedule="([^"]+)"', html)
    assert rows == ["every-five", "hourly"]
    five = _section(html, "schedules").split('data-schedule="every-five"')[1].split("</tr>")[0]
    times = re.findall(r"<time>([^<]+)</time>", five)
    assert times == [
        f"{now + timedelta(minutes=m):%Y-%m-%d %H:%M:%S} UTC" for m in (0, 5, 10)
    ]  # the clock stands on a whole five minutes
    assert "every 3600 s" in html and "*/5 * * * *" in html
    assert "soon-run" in _section(html, "upcoming-runs")
    recent = _section(html, "recent-runs")
    assert "done-run" in recent and "soon-run" not in recent
    assert "&#34;n&#34;: 5" in _section(html, "parameters")
    # A viewer sees no action.
    for action in ('id="run-deployment"', 'id="pause-deployment"', 'data-testid="schedule-pause"'):
        assert action not in html


def test_an_operator_pauses_and_resumes_the_deployment(ui: Ui) -> None:
    _deploy(ui)
    future = add_run(
        ui.installation,
        name="future-run",
        states=(),
        deployment_name="nightly-etl",
        expected_start_time=ui.installation.clock.now() + timedelta(hours=1),
        auto_scheduled=True,
    )
    browser = ui.browser()
    page = browser.get("/deployments/nightly-etl")
    assert 'id="pause-deployment"' in page.text
    answer = browser.post("/deployments/nightly-etl/pause", form={"csrf_token": page.csrf_token()})
    assert answer.status == 303 and answer.location == "/deployments/nightly-etl?removed=1"
    assert _stored(ui).paused
    assert future.id not in {run.id for run in _runs_of("nightly-etl")}
    shown = browser.get(answer.location).text
    assert 'id="removed-notice"' in shown and "deployment paused" in shown
    assert 'id="resume-deployment"' in shown
    answer = browser.post("/deployments/nightly-etl/resume", form={"csrf_token": page.csrf_token()})
    assert answer.status == 303 and not _stored(ui).paused


def test_pausing_is_refused_to_a_viewer_and_without_the_csrf_token(ui: Ui) -> None:
    _deploy(ui)
    viewer = ui.browser(role="viewer")
    token = viewer.get("/deployments/nightly-etl").csrf_token()
    for path in (
        "/deployments/nightly-etl/pause",
        "/deployments/nightly-etl/schedules/every-five/pause",
    ):
        assert viewer.post(path, form={"csrf_token": token}).status == 403
        assert ui.browser().post(path, form={}).status == 403
        assert ui.browser().post(path, form={"csrf_token": "forged"}).status == 403
    stored = _stored(ui)
    assert not stored.paused and all(s.active for s in stored.schedules)


def test_an_operator_pauses_and_resumes_one_schedule(ui: Ui) -> None:
    _deploy(ui)
    browser = ui.browser()
    token = browser.get("/deployments/nightly-etl").csrf_token()
    answer = browser.post(
        "/deployments/nightly-etl/schedules/every-five/pause", form={"csrf_token": token}
    )
    assert answer.status == 303
    assert [s.active for s in _stored(ui).schedules] == [False, True]
    html = browser.get("/deployments/nightly-etl").text
    row = html.split('data-schedule="every-five"')[1].split("</tr>")[0]
    assert 'data-active="false"' in html and "schedule paused" in row
    assert 'id="resume-schedule-every-five"' in row
    answer = browser.post(
        "/deployments/nightly-etl/schedules/every-five/resume", form={"csrf_token": token}
    )
    assert answer.status == 303 and all(s.active for s in _stored(ui).schedules)
    unknown = browser.post(
        "/deployments/nightly-etl/schedules/nope/pause", form={"csrf_token": token}
    )
    assert unknown.status == 404 and "has no schedule &#39;nope&#39;" in unknown.text


def test_the_run_form_is_made_from_the_parameter_schema(ui: Ui) -> None:
    _deploy(ui)
    browser = ui.browser()
    assert 'id="run-deployment"' in browser.get("/deployments/nightly-etl").text
    page = browser.get("/deployments/nightly-etl/run")
    assert page.status == 200
    form = page.text.split('id="run-form"')[1].split("</form>")[0]
    rows = re.search(r'<input name="param.n"[^>]*>', form, re.S)
    assert rows is not None
    # The deployment's value (5) over the schema's default (1), with HTML5 validation.
    for attribute in ('type="number"', 'value="5"', 'min="1"', 'step="1"', "required"):
        assert attribute in rows.group(0)
    assert re.search(r'<select name="param.mode"[^>]*required', form)
    assert 'value="daily"' in form  # the schema's default
    assert 'name="idempotency_key" value="ui-' in form
    assert ui.browser(role="viewer").get("/deployments/nightly-etl/run").status == 403


def _run_form(browser: Any, **fields: str) -> dict[str, str]:
    page = browser.get("/deployments/nightly-etl/run")
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text)
    assert key is not None
    return {"csrf_token": page.csrf_token(), "idempotency_key": key.group(1), **fields}


def test_run_creates_the_run_through_run_deployment_and_opens_its_page(ui: Ui) -> None:
    _deploy(ui)
    browser = ui.browser()
    form = _run_form(
        browser,
        **{
            "param.n": "3",
            "param.label": "ad hoc",
            "param.mode": '"delta"',
            "flow_run_name": "rerun-of-tuesday",
            "tags": "manual, manual, urgent",
        },
    )
    answer = browser.post("/deployments/nightly-etl/run", form=form)
    assert answer.status == 303
    [run] = _runs_of("nightly-etl")
    assert answer.location == f"/flow-runs/{run.id}"
    assert run.name == "rerun-of-tuesday"
    assert run.parameters == {"n": 3, "label": "ad hoc", "mode": "delta"}
    assert run.tags == ("etl", "manual", "urgent")
    assert run.state is not None and run.state.type.value == "SCHEDULED"
    assert [m.flow_run_id for m, _ in ui.installation.sent_messages()] == [run.id]
    # The same form sent again (a double click, a reload) makes no second run.
    again = browser.post("/deployments/nightly-etl/run", form=form)
    assert again.status == 303 and again.location == answer.location
    assert len(_runs_of("nightly-etl")) == 1


def test_a_bad_value_shows_the_form_again_and_creates_nothing(ui: Ui) -> None:
    _deploy(ui)
    browser = ui.browser()
    # Not a number: the form's typing refuses it, by the field.
    answer = browser.post(
        "/deployments/nightly-etl/run",
        form=_run_form(browser, **{"param.n": "many", "param.mode": '"full"'}),
    )
    assert answer.status == 422
    assert "is not a whole number" in answer.text and 'value="many"' in answer.text
    # Below the minimum: refused by the deployment's schema check (run_deployment's).
    answer = browser.post(
        "/deployments/nightly-etl/run",
        form=_run_form(browser, **{"param.n": "0", "param.mode": '"full"'}),
    )
    assert answer.status == 422
    error = answer.text.split('id="run-error"')[1].split("</p>")[0]
    assert "parameter n" in error and "minimum" in error
    # A required choice left out.
    answer = browser.post(
        "/deployments/nightly-etl/run", form=_run_form(browser, **{"param.n": "2"})
    )
    assert answer.status == 422 and "Required." in answer.text
    assert _runs_of("nightly-etl") == []
    assert ui.installation.sent_messages() == []


def test_run_is_refused_to_a_viewer_and_without_the_csrf_token(ui: Ui) -> None:
    _deploy(ui)
    fields = {"param.n": "2", "param.mode": '"full"'}
    viewer = ui.browser(role="viewer")
    token = viewer.get("/deployments/nightly-etl").csrf_token()
    assert (
        viewer.post("/deployments/nightly-etl/run", form={"csrf_token": token, **fields}).status
        == 403
    )
    assert ui.browser().post("/deployments/nightly-etl/run", form=fields).status == 403
    assert _runs_of("nightly-etl") == []


def test_a_flow_without_a_schema_takes_its_parameters_as_json(ui: Ui) -> None:
    _deploy(ui, parameter_schema=None, accepts_any_parameter=True, required_parameters=())
    browser = ui.browser()
    page = browser.get("/deployments/nightly-etl/run")
    assert 'name="parameters_json"' in page.text and "&#34;n&#34;: 5" in page.text
    answer = browser.post(
        "/deployments/nightly-etl/run",
        form=_run_form(browser, parameters_json="[1, 2]"),
    )
    assert answer.status == 422 and "must be a JSON object" in answer.text
    answer = browser.post(
        "/deployments/nightly-etl/run",
        form=_run_form(browser, parameters_json='{"n": 7, "extra": true}'),
    )
    assert answer.status == 303
    [run] = _runs_of("nightly-etl")
    assert run.parameters == {"n": 7, "extra": True}


def test_unknown_deployments_are_a_404_page(ui: Ui) -> None:
    page = ui.browser().get("/deployments/no-such-thing")
    assert page.status == 404 and "No deployment named" in page.text

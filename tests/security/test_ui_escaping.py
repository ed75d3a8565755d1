"""Every string the UI shows is untrusted (a flow's code and its workers write them):
script and HTML put into a flow name, a run name, a parameter, a tag, a state message, a
task run name, a log line, an event payload, an input schema and an automation come back
as text, escaped, on every page that shows them; JSON for the charts cannot close its
`<script>` block. Through real HTTP and Function URL events, against the emulated
installation."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest

from stratoflow.automations.api import automation_store, create_automation
from stratoflow.events.emit import event_store_for
from stratoflow.events.labels import flow_run_id as flow_run_resource
from stratoflow.events.models import Event, Resource
from stratoflow.models import FlowRun, LogEntry, RunInputRecord, TaskRun
from stratoflow.states import Completed, Failed, Pending, Running, Suspended
from tests.functional._ui import Page, Ui, add_run, installation, ui  # noqa: F401

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
PAYLOADS = (SCRIPT, ATTRIBUTE)
ESCAPED = {
    SCRIPT: "&lt;script&gt;alert(1)&lt;/script&gt;",
    ATTRIBUTE: "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;",
}


def assert_only_escaped(page: Page, payload: str, *, expect_escaped: bool = True) -> None:
    """The raw payload (or any executable part of it) is nowhere in the HTML."""
    assert page.status < 500, page.text
    html = page.text
    assert payload not in html
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "onerror=alert(1)>" not in html.replace("onerror=alert(1)&gt;", "")
    if expect_escaped:
        assert ESCAPED[payload] in html, f"{payload!r} is not shown escaped"


def hostile_run(ui: Ui, payload: str) -> FlowRun:
    inst = ui.installation
    run = add_run(
        inst,
        name=f"run {payload}",
        flow_name=f"flow {payload}",
        states=(Pending(), Running(), Failed(f"failed: {payload}")),
        parameters={"p": payload, "nested": {"k": [payload]}},
        tags=(f"tag {payload}",),
        deployment_name=f"dep {payload}",
        created=inst.clock.now() - timedelta(minutes=5),
    )
    backend = inst.services.backend
    for index, name in enumerate((f"task {payload}", "after-it")):
        task = TaskRun(
            id=f"{run.id}-t{index}",
            name=name,
            task_key="k",
            dynamic_key=str(index),
            task_name="k",
            flow_run_id=run.id,
            state=Completed(),
            start_time=inst.clock.now() - timedelta(minutes=4),
            end_time=inst.clock.now() - timedelta(minutes=3),
            task_inputs={"x": [f"{run.id}-t0"]} if index else {},
        )
        backend.create_task_run(task)
    backend.write_logs(
        [
            LogEntry(
                timestamp=inst.clock.now(),
                level=40,
                level_name="ERROR",
                logger="stratoflow.flow_runs",
                message=f"log {payload}",
                flow_run_id=run.id,
                flow_run_name=f"run {payload}",
            )
        ]
    )
    backend.flush()
    event_store_for(inst.services).put(
        Event(
            occurred=inst.clock.now(),
            event="acme.hostile",
            resource=Resource(
                labels={
                    "stratoflow.resource.id": flow_run_resource(run.id),
                    "stratoflow.resource.name": f"res {payload}",
                }
            ),
            payload={"x": payload},
        ),
        derived=False,
    )
    return run


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_runs_own_strings_are_escaped_on_every_page(ui: Ui, payload: str) -> None:
    run = hostile_run(ui, payload)
    browser = ui.browser()
    detail = browser.get(f"/flow-runs/{run.id}")
    assert_only_escaped(detail, payload)
    for shown in (
        f"run {payload}",  # name
        f"flow {payload}",  # flow name
        f"tag {payload}",
        f"failed: {payload}",  # state message
        f"task {payload}",  # task run name
        f"log {payload}",  # log line
        f"res {payload}",  # event resource name
    ):
        assert shown.replace(payload, ESCAPED[payload]) in detail.text, shown
    assert detail.text.count(ESCAPED[payload]) >= 8  # parameters and the event payload too
    # The chart's JSON: `<` is \u003c, so nothing can end the <script> block early.
    block = re.search(r'id="gantt-data">(.*?)</script>', detail.text, re.S)
    assert block is not None and "<" not in block.group(1)
    assert f"task {payload}" in [bar["name"] for bar in json.loads(block.group(1))["bars"]]

    for path in (
        "/",
        "/flow-runs",
        "/flow-runs?fragment=rows",
        f"/flow-runs/{run.id}/logs?level=ERROR",
        f"/flow-runs/{run.id}/head",
        "/flow-runs?" + urlencode({"tag": f"tag {payload}"}),
        "/flow-runs?" + urlencode({"flow": payload, "deployment": payload}),
    ):
        assert_only_escaped(browser.get(path), payload)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_an_input_schema_is_escaped_in_the_resume_form(ui: Ui, payload: str) -> None:
    inst = ui.installation
    run = add_run(inst, name="waiting", deployment_name="approvals")
    schema = {
        "type": "object",
        "properties": {
            "choice": {"title": f"title {payload}", "enum": [payload, "ok"]},
            "note": {"type": "string", "description": payload, "default": payload},
        },
    }
    inst.services.backend.run_inputs.create(
        RunInputRecord(run.id, "pause-0-schema", json.dumps(schema), inst.clock.now())
    )
    keyset = {"description": "d", "response": "pause-0-response", "schema": "pause-0-schema"}
    inst.services.backend.set_flow_run_state(
        run.id, Suspended("waiting", pause_reschedule=True, run_input_keyset=keyset), force=True
    )
    page = ui.browser().get(f"/flow-runs/{run.id}")
    assert_only_escaped(page, payload)
    assert 'id="resume-form"' in page.text


@pytest.mark.parametrize("payload", PAYLOADS)
def test_an_automations_name_and_error_are_escaped_on_the_dashboard(ui: Ui, payload: str) -> None:
    inst = ui.installation
    store = automation_store(inst.platform)
    automation = create_automation(
        {
            "name": f"auto-{len(payload)}",
            "description": payload,
            "trigger": {"expect": "stratoflow.flow-run.Failed"},
            "actions": [{"type": "cancel-flow-run"}],
        },
        store=store,
    )
    assert automation.id is not None
    store.record_outcome(automation.id, fired_at=inst.clock.now(), error=f"boom {payload}")
    assert_only_escaped(ui.browser().get("/"), payload)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_error_pages_escape_what_the_request_carried(ui: Ui, payload: str) -> None:
    browser = ui.browser()
    page = browser.get(f"/flow-runs/{quote(payload, safe='')}")
    assert page.status == 404
    assert_only_escaped(page, payload)
    assert_only_escaped(
        browser.get(f"/no/{quote(payload, safe='')}"), payload, expect_escaped=False
    )

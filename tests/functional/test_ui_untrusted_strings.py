"""Script and HTML in every string the deployments, work pools, automations and events
pages show (a deployment's description and flow name, a parameter's default, a work
pool's description, a worker's name, an automation's name, an event's payload and its
resource's labels) come back as text: escaped, never markup."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlencode

from stratoflow.automations.api import automation_store, create_automation
from stratoflow.automations.buckets import Fire
from stratoflow.deployments.models import WorkPoolSpec, WorkQueueSpec
from stratoflow.events.emit import event_store_for
from stratoflow.events.models import Event, Resource
from stratoflow.workers.registry import record_heartbeat
from tests.functional._ui import Browser, Ui, installation, ui  # noqa: F401
from tests.integration._deploy_fixtures import make_deployment

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
BOTH = f"{SCRIPT} {ATTRIBUTE}"


def assert_escaped(html: str, *, expect_shown: bool = True) -> None:
    """Neither payload is markup; each is there as text."""
    assert SCRIPT not in html and "<script>alert" not in html
    assert "<img src=x" not in html and '"><img' not in html
    if expect_shown:
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html


def _pages(browser: Browser, *paths: str) -> None:
    for path in paths:
        page = browser.get(path)
        assert page.status == 200, (path, page.text[:500])
        assert_escaped(page.text)


def test_deployment_strings_and_parameter_defaults_are_escaped(ui: Ui) -> None:
    schema = {
        "type": "object",
        "properties": {
            "note": {"type": "string", "default": BOTH, "title": BOTH, "description": BOTH},
            "n": {"type": "integer", "minimum": 1},
            "choice": {"enum": [SCRIPT, ATTRIBUTE], "type": "string"},
        },
        "required": ["n"],
    }
    deployment = make_deployment(
        "hostile",
        flow_name=BOTH,
        description=BOTH,
        version=BOTH,
        tags=(BOTH,),
        parameters={"blob": BOTH},
        parameter_names=("note", "n", "choice", "blob"),
        accepts_any_parameter=True,
        parameter_schema=schema,
        schedules=[{"cron": "0 * * * *", "slug": "hourly", "parameters": {"x": BOTH}}],
    )
    ui.installation.platform.deployments.put(deployment)
    browser = ui.browser()
    _pages(browser, "/deployments", "/deployments/hostile", "/deployments/hostile/run")
    run_form = browser.get("/deployments/hostile/run").text
    note = re.search(r'<input name="param.note"[^>]*>', run_form, re.S)
    assert note is not None and 'value="&lt;script&gt;' in note.group(0)
    # A refused submission shows the typed values again: escaped too.
    answer = browser.post(
        "/deployments/hostile/run",
        form={
            "csrf_token": browser.get("/deployments").csrf_token(),
            "param.note": BOTH,
            "param.n": ATTRIBUTE,
            "flow_run_name": BOTH,
            "tags": BOTH,
        },
    )
    assert answer.status == 422
    assert_escaped(answer.text)
    # The run made from them: its page and the lists it shows up in.
    answer = browser.post(
        "/deployments/hostile/run",
        form={
            "csrf_token": browser.get("/deployments").csrf_token(),
            "param.note": BOTH,
            "param.n": "2",
            "flow_run_name": BOTH,
        },
    )
    assert answer.status == 303
    _pages(browser, "/deployments/hostile")


def test_work_pool_and_worker_strings_are_escaped(ui: Ui) -> None:
    inst = ui.installation
    inst.platform.work_pools.put(
        WorkPoolSpec(
            name="default",
            description=BOTH,
            queues=(WorkQueueSpec(name="default", description=BOTH),),
        )
    )
    now = inst.clock.now()
    record_heartbeat(
        inst.platform,
        pool="default",
        name=BOTH,
        queues=[BOTH],
        running=0,
        limit=1,
        now=now,
        started=now,
    )
    _pages(ui.browser(), "/work-pools", "/work-pools/default")


def test_automation_strings_and_firings_are_escaped(ui: Ui) -> None:
    store = automation_store(ui.installation.platform)
    made = create_automation(
        {
            "name": BOTH,
            "description": BOTH,
            "trigger": {"expect": f"acme.{SCRIPT}", "for_each": [ATTRIBUTE]},
            "actions": [{"type": "do-nothing"}],
        },
        store=store,
    )
    assert made.id is not None
    now = ui.installation.clock.now()
    fire = Fire(trigger="trigger", bucket=BOTH, window=BOTH, state="triggered", at=now)
    assert store.claim_firing(made.id, fire, expires_at=int(now.timestamp()) + 86400)
    store.record_outcome(made.id, fired_at=now, error=BOTH)
    _pages(ui.browser(), "/automations", f"/automations/{made.id}")


def test_event_payloads_names_and_resource_labels_are_escaped(ui: Ui) -> None:
    event = Event(
        id="evt-hostile",
        event=f"acme.{SCRIPT}",
        occurred=ui.installation.clock.now() - timedelta(minutes=1),
        resource=Resource(
            labels={
                "stratoflow.resource.id": f"stratoflow.flow-run.{ATTRIBUTE}",
                "stratoflow.resource.name": BOTH,
            }
        ),
        related=(
            Resource(
                labels={
                    "stratoflow.resource.id": f"acme.{SCRIPT}",
                    "stratoflow.resource.role": BOTH,
                    "stratoflow.resource.name": BOTH,
                }
            ),
        ),
        payload={"message": BOTH, BOTH: [BOTH]},
    )
    assert event_store_for(ui.installation.services).put(event, derived=False)
    browser = ui.browser()
    _pages(browser, "/events", "/events/evt-hostile")
    # The payload as a filter echoed back into the form.
    page = browser.get(
        f"/events?{urlencode({'name': f'acme.{SCRIPT}', 'any_resource': ATTRIBUTE})}"
    )
    assert page.status == 200
    assert_escaped(page.text, expect_shown=False)

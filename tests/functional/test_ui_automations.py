"""The automations pages (list, definition, recent firings) and enabling and disabling
one, through the dev server's real Function URL events against an emulated
installation."""

from __future__ import annotations

import re
from datetime import timedelta

from stratoflow.automations import Automation, CallWebhook, EventTrigger
from stratoflow.automations.api import automation_store, create_automation
from stratoflow.automations.buckets import Fire, event_document
from stratoflow.automations.store import AutomationStore
from stratoflow.events.on_read import flow_run_own_events
from stratoflow.states import Failed, Pending, Running
from tests.functional._ui import Ui, add_run, installation, ui  # noqa: F401

FAILED = "stratoflow.flow-run.Failed"


def _automation(ui: Ui, name: str = "page-on-failure") -> str:
    store = automation_store(ui.installation.platform)
    made = create_automation(
        {
            "name": name,
            "description": "Wakes the on-call engineer.",
            "trigger": {
                "expect": FAILED,
                "threshold": 3,
                "within": 600,
                "for_each": ["stratoflow.resource.id"],
            },
            "actions": [{"type": "cancel-flow-run"}, {"type": "do-nothing"}],
        },
        store=store,
    )
    assert made.id is not None
    return made.id


def _fire(ui: Ui, automation_id: str, *, minutes_ago: int, event_id: str) -> None:
    now = ui.installation.clock.now()
    at = now - timedelta(minutes=minutes_ago)
    store = automation_store(ui.installation.platform)
    fire = Fire(
        trigger="trigger",
        bucket=f"stratoflow.flow-run.{event_id}",
        window=at.isoformat(),
        state="triggered",
        at=at,
        event={"id": event_id},
    )
    expires = int((now + timedelta(days=7)).timestamp())
    assert store.claim_firing(automation_id, fire, expires_at=expires)
    store.record_outcome(automation_id, fired_at=at, error=None)


def _enabled(ui: Ui, automation_id: str) -> bool:
    return automation_store(ui.installation.platform).get(automation_id).enabled


def test_the_list_shows_status_trigger_and_last_fired(ui: Ui) -> None:
    automation_id = _automation(ui)
    _fire(ui, automation_id, minutes_ago=5, event_id="evt-1")
    page = ui.browser(role="viewer").get("/automations")
    assert page.status == 200
    row = page.text.split(f'data-automation-id="{automation_id}"')[1].split("</tr>")[0]
    assert 'data-enabled="true"' in page.text
    assert f"Reactive 3 x {FAILED} within 600s per stratoflow.resource.id" in row
    assert "cancel-flow-run, do-nothing" in row
    fired = ui.installation.clock.now() - timedelta(minutes=5)
    assert f"{fired:%Y-%m-%d %H:%M:%S} UTC" in row
    assert f'href="/automations/{automation_id}"' in row


def test_an_automations_page_shows_its_definition_and_firings(ui: Ui) -> None:
    automation_id = _automation(ui)
    _fire(ui, automation_id, minutes_ago=30, event_id="evt-old")
    _fire(ui, automation_id, minutes_ago=2, event_id="evt-new")
    html = ui.browser(role="viewer").get(f"/automations/{automation_id}").text
    definition = html.split('id="definition-yaml"')[1].split("</pre>")[0]
    assert "name: page-on-failure" in definition and "threshold: 3" in definition
    assert "type: cancel-flow-run" in definition
    assert "&#34;threshold&#34;: 3" in html.split('id="definition-json"')[1]
    links = re.findall(r'<a href="(/events/[^"]+)" data-testid="firing-event"', html)
    assert links == ["/events/evt-new", "/events/evt-old"]  # latest first
    assert "Wakes the on-call engineer." in html
    assert 'id="disable-automation"' not in html  # a viewer has no buttons
    # By name too, as the CLI takes it.
    assert ui.browser().get("/automations/page-on-failure").status == 200


def test_a_firing_links_to_the_run_event_it_fired_on_though_it_is_not_stored(ui: Ui) -> None:
    """Flow-run state events are derived from their run when read (not stored by
    default): a firing keeps the run its event is about, so its link finds the event."""
    automation_id = _automation(ui)
    run = add_run(ui.installation, name="sad-heron", states=(Pending(), Running(), Failed()))
    backend = ui.installation.services.backend
    failed = [e for e in flow_run_own_events(backend, run.id) if e.event == FAILED]  # type: ignore[arg-type]
    assert len(failed) == 1
    at = ui.installation.clock.now()
    bucket = f"stratoflow.flow-run.{run.id}"
    fire = Fire("trigger", bucket, at.isoformat(), "triggered", at, event_document(failed[0]))
    store = automation_store(ui.installation.platform)
    assert store.claim_firing(automation_id, fire, expires_at=int(at.timestamp()) + 3600)
    (record,) = store.list_firings(automation_id)
    assert record.event_flow_run_id == run.id

    browser = ui.browser(role="viewer")
    html = browser.get(f"/automations/{automation_id}").text
    (link,) = re.findall(r'<a href="(/events/[^"]+)" data-testid="firing-event"', html)
    assert link == f"/events/{failed[0].id}?flow_run={run.id}"
    page = browser.get(link)
    assert page.status == 200 and FAILED in page.text


def test_an_operator_disables_and_enables_an_automation(ui: Ui) -> None:
    automation_id = _automation(ui)
    browser = ui.browser()
    page = browser.get(f"/automations/{automation_id}")
    answer = browser.post(
        f"/automations/{automation_id}/disable", form={"csrf_token": page.csrf_token()}
    )
    assert answer.status == 303 and answer.location == f"/automations/{automation_id}"
    assert not _enabled(ui, automation_id)
    shown = browser.get(answer.location).text
    assert 'id="enable-automation"' in shown
    assert 'data-enabled="false"' in browser.get("/automations").text
    answer = browser.post(
        f"/automations/{automation_id}/enable", form={"csrf_token": page.csrf_token()}
    )
    assert answer.status == 303 and _enabled(ui, automation_id)


def test_disabling_is_refused_to_a_viewer_and_without_the_csrf_token(ui: Ui) -> None:
    automation_id = _automation(ui)
    viewer = ui.browser(role="viewer")
    token = viewer.get("/automations").csrf_token()
    path = f"/automations/{automation_id}/disable"
    assert viewer.post(path, form={"csrf_token": token}).status == 403
    assert ui.browser().post(path, form={"csrf_token": "forged"}).status == 403
    assert _enabled(ui, automation_id)


def test_webhook_secrets_stored_inline_by_an_earlier_version_are_not_shown(ui: Ui) -> None:
    backend = ui.installation.platform.backend
    legacy = AutomationStore(backend.dynamodb, backend.table)  # no Secrets Manager
    secret_url = "https://hooks.slack.com/services/T000/B000/very-secret-token"
    made = legacy.create(
        Automation(
            name="legacy-webhook",
            trigger=EventTrigger(expect=[FAILED]),
            actions=[CallWebhook(url=secret_url, headers={"Authorization": "Bearer s3cr3t"})],
        )
    )
    browser = ui.browser()
    for path in ("/automations", f"/automations/{made.id}"):
        html = browser.get(path).text
        assert "very-secret-token" not in html and "s3cr3t" not in html
        assert "inline secrets" in html or "inline secret" in html


def test_unknown_automations_are_a_404_page(ui: Ui) -> None:
    page = ui.browser().get("/automations/no-such-automation")
    assert page.status == 404 and "No automation named" in page.text

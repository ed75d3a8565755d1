"""The events pages: filters, paging by cursor, links between resources and one event's
page, through the dev server's real Function URL events against an emulated
installation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

from stratoflow import resources
from stratoflow.backends.aws.items import from_item, to_item
from stratoflow.events import labels
from stratoflow.events.derive import flow_run_state_events
from stratoflow.events.emit import event_store_for
from stratoflow.events.models import Event, Resource
from stratoflow.states import Completed, Pending, Running
from tests.functional._ui import Ui, add_run, installation, ui  # noqa: F401


def _put(ui: Ui, event: Event) -> Event:
    assert event_store_for(ui.installation.services).put(event, derived=False)
    return event


def _event(
    ui: Ui,
    name: str,
    resource: str,
    *,
    minutes_ago: float = 1,
    related: tuple[Resource, ...] = (),
    payload: dict[str, object] | None = None,
    event_id: str | None = None,
    resource_name: str | None = None,
) -> Event:
    labels_of = {"stratoflow.resource.id": resource}
    if resource_name is not None:
        labels_of["stratoflow.resource.name"] = resource_name
    values: dict[str, object] = {
        "event": name,
        "occurred": ui.installation.clock.now() - timedelta(minutes=minutes_ago),
        "resource": Resource(labels=labels_of),
        "related": related,
        "payload": payload or {},
    }
    if event_id is not None:
        values["id"] = event_id
    return _put(ui, Event.model_validate(values))


def _ids(html: str) -> list[str]:
    return re.findall(r'data-testid="event-row" data-event-id="([^"]+)"', html)


def test_events_are_listed_with_links_to_their_resources(ui: Ui) -> None:
    run_id = "default.0123456789abcdef"
    event = _event(
        ui,
        "stratoflow.flow-run.Failed",
        labels.flow_run_id(run_id),
        resource_name="brave-otter",
        related=(labels.deployment("nightly-etl"), labels.work_queue("default", "high")),
        payload={"rows": 12},
    )
    html = ui.browser(role="viewer").get("/events").text
    assert _ids(html) == [event.id]
    row = html.split(f'data-event-id="{event.id}"')[1].split("</tr>")[0]
    assert f'href="/flow-runs/{run_id}" class="resource-page"' in row
    assert ">brave-otter</a>" in row
    assert 'href="/deployments/nightly-etl" class="resource-page"' in row
    assert 'href="/work-pools/default" class="resource-page"' in row
    follow = "/events?any_resource=stratoflow.deployment.nightly-etl"
    assert f'href="{follow}"' in row
    assert "&#34;rows&#34;: 12" in row
    # The link names the run: a state event that was not stored is derived from it.
    assert f'href="/events/{event.id}?flow_run={run_id}"' in row


def test_filters_by_name_resource_related_resource_and_window(ui: Ui) -> None:
    deployment = labels.deployment("nightly-etl")
    failed = _event(
        ui, "stratoflow.flow-run.Failed", "stratoflow.flow-run.a", related=(deployment,)
    )
    done = _event(ui, "stratoflow.flow-run.Completed", "stratoflow.flow-run.b")
    own = _event(ui, "acme.report.sent", "acme.report.42")
    old = _event(ui, "acme.report.sent", "acme.report.41", minutes_ago=2 * 24 * 60)
    browser = ui.browser()

    def shown(query: str) -> set[str]:
        page = browser.get(f"/events?{query}")
        assert page.status == 200
        return set(_ids(page.text))

    assert shown("") == {failed.id, done.id, own.id}
    assert shown("window=7d") == {failed.id, done.id, own.id, old.id}
    assert shown("name=stratoflow.flow-run.") == {failed.id, done.id}
    assert shown("name=stratoflow.flow-run.Failed") == {failed.id}
    assert shown("resource=acme.&window=7d") == {own.id, old.id}
    assert shown("any_resource=stratoflow.deployment.nightly-etl") == {failed.id}
    assert shown("any_resource=stratoflow.flow-run.b") == {done.id}
    assert shown("any_resource=stratoflow.flow-run") == set()  # an id, not a prefix


def test_pages_follow_a_cursor_without_gaps_or_repeats(ui: Ui) -> None:
    made = []
    for index in range(57):
        # Runs of three at the same instant: a page may end in the middle of one.
        made.append(_event(ui, "acme.tick", f"acme.clock.{index}", minutes_ago=10 - index // 3))
    browser = ui.browser()
    first = browser.get("/events")
    assert len(_ids(first.text)) == 50
    assert 'id="page-newest"' not in first.text
    older = re.search(r'href="([^"]+)" id="page-next"', first.text)
    assert older is not None
    second = browser.get(unescape(older.group(1)))
    assert len(_ids(second.text)) == 7 and 'id="page-next"' not in second.text
    assert 'id="page-newest"' in second.text
    seen = _ids(first.text) + _ids(second.text)
    assert sorted(seen) == sorted(e.id for e in made) and len(set(seen)) == 57


def test_an_events_page_shows_it_whole(ui: Ui) -> None:
    before = _event(ui, "acme.step", "acme.job.1", minutes_ago=2, event_id="evt-before")
    event = _event(
        ui,
        "acme.step",
        "acme.job.1",
        payload={"step": "load", "nested": {"ok": True}},
        related=(labels.tag("nightly"),),
    )
    event = _put(ui, event.model_copy(update={"id": "evt-after", "follows": before.id}))
    html = ui.browser(role="viewer").get("/events/evt-after").text
    assert "&#34;step&#34;: &#34;load&#34;" in html.split('id="event-payload"')[1]
    assert 'href="/events/evt-before" id="event-follows"' in html
    assert 'href="/flow-runs?tag=nightly" class="resource-page"' in html
    spaced = _event(ui, "acme.step", "acme.job.2", event_id="an id/with space")
    page = ui.browser().get("/events/an%20id%2Fwith%20space")
    assert page.status == 200 and f'data-event-id="{spaced.id}"' in page.text
    missing = ui.browser().get("/events/no-such-event")
    assert missing.status == 404 and "events are kept 7 days" in missing.text


def test_a_runs_state_events_are_listed_and_shown_without_being_stored(ui: Ui) -> None:
    """Flow-run state events are not stored by default: the pages derive them from the
    run (the same events the stream hands the automations)."""
    states = (Pending(), Running(), Completed())
    for seconds, state in enumerate(states, start=1):  # after its Scheduled state, in order
        state.timestamp = datetime.now(UTC) + timedelta(seconds=seconds)
    run = add_run(ui.installation, name="quiet-heron", states=states)
    _event(ui, "acme.report.sent", "acme.report.42")
    backend = ui.installation.services.backend
    item = backend.dynamodb.get_item(  # type: ignore[attr-defined]
        TableName=backend.table,  # type: ignore[attr-defined]
        Key=to_item(resources.flow_run_key(run.id)),
    )["Item"]
    derived = flow_run_state_events(from_item(item))
    assert [e.event for e in derived] == [
        f"stratoflow.flow-run.{s}" for s in ("Scheduled", "Pending", "Running", "Completed")
    ]
    assert not [e for e in derived if event_store_for(ui.installation.services).get(e.id)]
    browser = ui.browser(role="viewer")

    html = browser.get("/events").text
    listed = _ids(html)
    assert [i for i in listed if i in {e.id for e in derived}] == [e.id for e in reversed(derived)]
    assert len(listed) == len(derived) + 1
    only = _ids(browser.get("/events?name=stratoflow.flow-run.Completed").text)
    assert only == [derived[-1].id]
    involving = _ids(browser.get(f"/events?any_resource={labels.flow_run_id(run.id)}").text)
    assert set(involving) == {e.id for e in derived}

    # An event's page: its link names the run it is derived from.
    link = f"/events/{derived[-1].id}?flow_run={run.id}"
    assert f'href="{link}"' in html
    page = browser.get(link)
    assert page.status == 200
    assert 'id="event-name">stratoflow.flow-run.Completed<' in page.text
    assert f'href="/events/{derived[-2].id}?flow_run={run.id}" id="event-follows"' in page.text
    before = browser.get(f"/events/{derived[-2].id}?flow_run={run.id}")
    assert before.status == 200 and "stratoflow.flow-run.Running" in before.text
    missing = browser.get(f"/events/{derived[-1].id}")  # no run named: nothing to derive from
    assert missing.status == 404 and "from the run" in missing.text

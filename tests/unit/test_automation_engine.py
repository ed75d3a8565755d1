"""The automations engine on a MemoryAutomationStore with fake actions and a FakeClock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from stratoflow.automations import (
    Action,
    ActionContext,
    ActionError,
    ActionExecutor,
    Automation,
    AutomationEngine,
    CallWebhook,
    CompoundTrigger,
    DoNothing,
    EventTrigger,
    MemoryAutomationStore,
    PauseAutomation,
    RunDeployment,
    SendNotification,
    SequenceTrigger,
    WebhookRequest,
)
from stratoflow.automations.buckets import Bucket
from stratoflow.automations.engine import AutomationsFailed
from stratoflow.automations.sandbox import TemplateProblem
from stratoflow.automations.templates import render, render_value
from stratoflow.automations.webhooks import WebhookSender
from stratoflow.clock import FakeClock
from stratoflow.events.models import Event, Resource
from stratoflow.settings import Settings

# TTLs, schedules or time windows: also run with the clock moved (tests/timeshift.py).
pytestmark = pytest.mark.date_sensitive

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FAILED = "stratoflow.flow-run.Failed"
RUNNING = "stratoflow.flow-run.Running"
COMPLETED = "stratoflow.flow-run.Completed"


class Recorder:
    """Records every action it is asked to run; fails those whose label is in `fail`."""

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail
        self._lock = threading.Lock()

    def run(self, action: Action, context: ActionContext, label: str) -> str:
        with self._lock:
            self.calls.append(
                {
                    "automation": context.automation.name,
                    "label": label,
                    "type": action.type,
                    "state": context.fire.state,
                    "event": context.event.id if context.event else None,
                }
            )
        if label in self.fail:
            raise RuntimeError(f"{label} broke")
        return "done"


class Harness:
    def __init__(self) -> None:
        self.clock = FakeClock(START)
        self.store = MemoryAutomationStore(self.clock)
        self.recorder = Recorder()
        self.engine = self.new_engine()
        self._ids = 0

    def new_engine(self) -> AutomationEngine:
        return AutomationEngine(None, store=self.store, actions=self.recorder, clock=self.clock)

    def add(self, trigger: Any, *, name: str = "auto", **actions: Any) -> Automation:
        actions = actions or {"actions": [DoNothing()]}
        return self.store.create(Automation(name=name, trigger=trigger, **actions)).automation

    def event(
        self, name: str, at: float, *, run: str = "r1", deployment: str | None = None
    ) -> Event:
        self._ids += 1
        related = (
            (
                Resource.of(
                    f"stratoflow.deployment.{deployment}", role="deployment", name=deployment
                ),
            )
            if deployment
            else ()
        )
        return Event(
            id=f"e{self._ids}",
            event=name,
            occurred=START + timedelta(seconds=at),
            resource=Resource.of(f"stratoflow.flow-run.{run}"),
            related=related,
        )

    def handle(self, *events: Event) -> list[Any]:
        now = max(e.occurred for e in events)
        return self.engine.handle(events, now=now)

    def tick(self, at: float) -> list[Any]:
        return self.engine.evaluate_proactive(START + timedelta(seconds=at))


@pytest.fixture
def h() -> Harness:
    return Harness()


# Reactive


def test_reactive_threshold_within_a_window(h: Harness):
    h.add(EventTrigger(expect=[FAILED], threshold=3, within=60))
    assert h.handle(h.event(FAILED, 0), h.event(FAILED, 10)) == []
    [firing] = h.handle(h.event(FAILED, 20))
    assert firing.state == "triggered" and firing.trigger == "trigger"
    assert firing.window.startswith(START.isoformat()) and firing.fired_at == START + timedelta(
        seconds=20
    )
    assert [c["type"] for c in h.recorder.calls] == ["do-nothing"]
    assert h.store.get(firing.automation_id).last_fired == firing.fired_at
    # The window closed with the firing: three more are needed.
    assert h.handle(h.event(FAILED, 30), h.event(FAILED, 40)) == []


def test_reactive_events_outside_the_window_start_a_new_one(h: Harness):
    h.add(EventTrigger(expect=[FAILED], threshold=3, within=60))
    assert h.handle(h.event(FAILED, 0), h.event(FAILED, 30), h.event(FAILED, 70)) == []
    assert h.handle(h.event(FAILED, 80)) == []
    assert len(h.handle(h.event(FAILED, 100))) == 1  # 70, 80, 100: within 60 s of 70


def test_reactive_without_window_accumulates(h: Harness):
    h.add(EventTrigger(expect=["stratoflow.flow-run.*"], threshold=2))
    assert h.handle(h.event(FAILED, 0)) == []
    assert h.handle(h.event("stratoflow.deployment.x", 5)) == []  # not expected
    assert len(h.handle(h.event(COMPLETED, 100_000))) == 1


def test_threshold_one_fires_per_event_even_at_the_same_instant(h: Harness):
    h.add(EventTrigger(expect=[FAILED]))
    assert len(h.handle(h.event(FAILED, 0), h.event(FAILED, 0), h.event(FAILED, 0))) == 3


def test_after_then_expect(h: Harness):
    h.add(EventTrigger(after=[RUNNING], expect=[FAILED], for_each=["stratoflow.resource.id"]))
    assert h.handle(h.event(FAILED, 0)) == []  # nothing seen before it
    assert h.handle(h.event(RUNNING, 1)) == []
    [firing] = h.handle(h.event(FAILED, 2))
    assert firing.event is not None and firing.event.event == FAILED
    assert h.handle(h.event(FAILED, 3)) == []  # needs a new `after` event
    assert len(h.handle(h.event(RUNNING, 4), h.event(FAILED, 5))) == 1


def test_after_with_a_window(h: Harness):
    h.add(EventTrigger(after=[RUNNING], expect=[FAILED], within=10))
    assert h.handle(h.event(RUNNING, 0), h.event(FAILED, 11)) == []  # too late
    assert len(h.handle(h.event(RUNNING, 20), h.event(FAILED, 25))) == 1


def test_for_each_counts_per_bucket(h: Harness):
    h.add(EventTrigger(expect=[FAILED], threshold=2, for_each=["stratoflow.resource.id"]))
    events = [h.event(FAILED, 0, run="a"), h.event(FAILED, 1, run="b"), h.event(FAILED, 2, run="a")]
    [firing] = h.handle(*events)
    assert firing.bucket == "stratoflow.flow-run.a"
    assert len(h.handle(h.event(FAILED, 3, run="b"))) == 1


def test_for_each_on_a_related_resource(h: Harness):
    h.add(
        EventTrigger(
            expect=[FAILED],
            threshold=2,
            for_each=["related:deployment:stratoflow.resource.name"],
            match_related={"stratoflow.resource.role": "deployment"},
        )
    )
    events = [
        h.event(FAILED, 0, run="a", deployment="etl"),
        h.event(FAILED, 1, run="b", deployment="ml"),
        h.event(FAILED, 2, run="c"),  # no deployment: not matched
        h.event(FAILED, 3, run="d", deployment="etl"),
    ]
    [firing] = h.handle(*events)
    assert firing.bucket == "etl"


# Exactly once


def test_replaying_the_same_events_fires_once(h: Harness):
    h.add(EventTrigger(expect=[FAILED], threshold=2, for_each=["stratoflow.resource.id"]))
    batch = [h.event(FAILED, 0, run="a"), h.event(FAILED, 1, run="a"), h.event(FAILED, 2, run="b")]
    assert len(h.handle(*batch)) == 1
    assert h.handle(*batch) == []
    assert h.new_engine().handle(batch, now=START) == []
    assert len(h.recorder.calls) == 1
    # The replayed event of run b was not counted again: one more is needed.
    assert len(h.handle(h.event(FAILED, 5, run="b"))) == 1


def test_a_firing_decided_before_a_crash_is_claimed_on_redelivery(
    h: Harness, monkeypatch: pytest.MonkeyPatch
):
    automation = h.add(EventTrigger(expect=[FAILED]))
    event = h.event(FAILED, 0)

    def crash(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("the Lambda died")

    with monkeypatch.context() as patch:
        patch.setattr(h.store, "claim_firing", crash)
        with pytest.raises(AutomationsFailed, match="the Lambda died"):
            h.handle(event)
    assert automation.id is not None
    [bucket] = h.store.list_buckets(automation.id)
    assert len(bucket.pending) == 1 and h.recorder.calls == []
    # The stream delivers the batch again: the event is not counted twice, the firing
    # happens once.
    assert len(h.handle(event)) == 1
    assert h.handle(event) == []
    assert len(h.recorder.calls) == 1
    assert h.store.list_buckets(automation.id)[0].pending == []


def test_concurrent_handlers_of_the_same_events_fire_once(h: Harness):
    h.add(EventTrigger(expect=[FAILED], threshold=3, for_each=["stratoflow.resource.id"]))
    batch = [h.event(FAILED, i, run=f"r{i % 2}") for i in range(6)]
    results: list[int] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        engine = h.new_engine()
        barrier.wait()
        results.append(len(engine.handle(batch, now=START)))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == 2  # one per bucket
    assert len(h.recorder.calls) == 2


# Actions


def test_a_failing_action_does_not_stop_the_others(h: Harness, caplog: pytest.LogCaptureFixture):
    h.recorder.fail = ("actions[0]",)
    automation = h.add(
        EventTrigger(expect=[FAILED]),
        actions=[DoNothing(), DoNothing()],
        actions_on_trigger=[DoNothing()],
    )
    [firing] = h.handle(h.event(FAILED, 0))
    assert [c["label"] for c in h.recorder.calls] == [
        "actions[0]",
        "actions[1]",
        "actions_on_trigger[0]",
    ]
    assert [r.ok for r in firing.results] == [False, True, True]
    assert firing.errors[0].detail == "actions[0] broke"
    assert automation.id is not None
    record = h.store.get(automation.id)
    assert record.last_error == "actions[0] (do-nothing): actions[0] broke"
    assert record.last_error_at == h.clock.now()
    assert "'auto'" in caplog.text and "actions[0]" in caplog.text


def test_paused_automations_neither_count_nor_fire(h: Harness):
    automation = h.add(EventTrigger(expect=[FAILED], threshold=2))
    h.store.set_enabled("auto", False)
    assert h.handle(h.event(FAILED, 0), h.event(FAILED, 1)) == []
    assert automation.id is not None and h.store.list_buckets(automation.id) == []
    h.store.set_enabled(automation.id, True)
    assert h.handle(h.event(FAILED, 2)) == []
    assert len(h.handle(h.event(FAILED, 3))) == 1


def test_an_automation_that_pauses_itself_stops_within_the_batch(h: Harness):
    h.add(EventTrigger(expect=[FAILED]), actions=[PauseAutomation()])

    class Pausing(Recorder):
        def run(self, action: Action, context: ActionContext, label: str) -> str:
            super().run(action, context, label)
            assert context.automation.id is not None
            h.store.set_enabled(context.automation.id, False)
            return "paused"

    h.recorder = Pausing()
    h.engine = h.new_engine()
    assert len(h.handle(h.event(FAILED, 0), h.event(FAILED, 1))) == 1


def test_a_batch_lists_the_automations_once_across_its_records(h: Harness) -> None:
    """The stream hands each record to `handle` on its own, within `engine.batch()`."""
    h.add(EventTrigger(expect=[FAILED], threshold=2))
    h.store.queries = 0
    with h.engine.batch():
        assert h.handle(h.event(FAILED, 0)) == []
        h.add(EventTrigger(expect=[FAILED]), name="late")  # counts from the next batch
        assert len(h.handle(h.event(FAILED, 1))) == 1
    assert h.store.queries == 1
    assert [c["automation"] for c in h.recorder.calls] == ["auto"]
    assert len(h.handle(h.event(FAILED, 2))) == 1  # "late" fires; "auto" starts again
    assert h.store.queries == 2  # outside a batch: a listing per call, as before


def test_an_automation_paused_by_an_action_in_a_batch_is_listed_again(h: Harness) -> None:
    h.add(EventTrigger(expect=[FAILED]), actions=[PauseAutomation()])

    class Pausing(Recorder):
        def run(self, action: Action, context: ActionContext, label: str) -> str:
            super().run(action, context, label)
            assert context.automation.id is not None
            h.store.set_enabled(context.automation.id, False)
            return "paused"

    h.recorder = Pausing()
    h.engine = h.new_engine()
    with h.engine.batch():
        assert len(h.handle(h.event(FAILED, 0))) == 1
        assert h.handle(h.event(FAILED, 1)) == []  # paused: the next record sees it


# Proactive


def test_proactive_after_fires_when_the_expected_event_does_not_come(h: Harness):
    h.add(
        EventTrigger(
            after=[RUNNING],
            expect=[COMPLETED],
            for_each=["stratoflow.resource.id"],
            posture="Proactive",
            within=60,
        ),
        actions=[DoNothing()],
        actions_on_resolve=[DoNothing()],
    )
    running_a, running_b = h.event(RUNNING, 0, run="a"), h.event(RUNNING, 0, run="b")
    assert h.handle(running_a, running_b, h.event(COMPLETED, 30, run="b")) == []
    assert h.tick(59) == []
    [firing] = h.tick(61)
    assert firing.bucket == "stratoflow.flow-run.a" and firing.state == "triggered"
    assert firing.fired_at == START + timedelta(seconds=60)
    assert firing.event is not None and firing.event.id == running_a.id  # the `after` event
    assert h.tick(120) == []  # once per window
    [resolved] = h.handle(h.event(COMPLETED, 130, run="a"))
    assert resolved.state == "resolved" and resolved.window == firing.window
    assert [c["label"] for c in h.recorder.calls] == ["actions[0]", "actions_on_resolve[0]"]
    assert h.tick(1000) == []


def test_only_due_buckets_are_read_by_the_tick(h: Harness):
    automation = h.add(
        EventTrigger(
            after=[RUNNING],
            expect=[COMPLETED],
            for_each=["stratoflow.resource.id"],
            posture="Proactive",
            within=60,
        )
    )
    runs = [f"run{i}" for i in range(20)]
    h.handle(*[h.event(RUNNING, 0, run=run) for run in runs])
    h.handle(*[h.event(COMPLETED, 5, run=run) for run in runs[1:]])
    assert automation.id is not None
    assert len(h.store.list_buckets(automation.id)) == 20
    far = START + timedelta(days=1)
    [due] = h.store.due_buckets(automation.id, far)  # the others are idle
    assert due.key == "stratoflow.flow-run.run0"
    assert h.store.due_buckets(automation.id, START + timedelta(seconds=59)) == []
    assert len(h.tick(61)) == 1
    assert h.store.due_buckets(automation.id, far) == []  # fired, waiting for events only


def test_a_new_after_event_past_the_deadline_fires_the_old_window(h: Harness):
    h.add(EventTrigger(after=[RUNNING], expect=[COMPLETED], posture="Proactive", within=60))
    h.handle(h.event(RUNNING, 0))
    [firing] = h.handle(h.event(RUNNING, 100))
    assert firing.fired_at == START + timedelta(seconds=60)
    assert len(h.tick(161)) == 1  # the second window, opened at 100


def test_proactive_deadline_noticed_by_a_late_event(h: Harness):
    h.add(
        EventTrigger(after=[RUNNING], expect=[COMPLETED], posture="Proactive", within=60),
        actions=[DoNothing()],
        actions_on_resolve=[DoNothing()],
    )
    h.handle(h.event(RUNNING, 0))
    # No tick ran in between: the late event fires the window and resolves it.
    states = [f.state for f in h.handle(h.event(COMPLETED, 90))]
    assert states == ["triggered", "resolved"]
    assert h.tick(200) == []


def test_proactive_without_after_watches_from_the_first_tick(h: Harness):
    automation = h.add(
        EventTrigger(
            expect=[COMPLETED],
            match_related={"stratoflow.resource.name": "etl"},
            posture="Proactive",
            within=3600,
        ),
        actions=[DoNothing()],
        actions_on_resolve=[DoNothing()],
    )
    assert h.tick(0) == []  # watching starts
    assert h.handle(h.event(COMPLETED, 100, deployment="etl")) == []
    assert h.tick(3600) == []  # a completion came in the first hour
    assert h.handle(h.event(COMPLETED, 3700, deployment="other")) == []  # not matched
    [firing] = h.tick(7300)  # none in the second hour
    assert firing.fired_at == START + timedelta(seconds=7200) and firing.event is None
    assert h.tick(7300) == []
    [resolved] = h.handle(h.event(COMPLETED, 7400, deployment="etl"))
    assert resolved.state == "resolved"
    assert automation.id is not None
    assert len(h.store.list_buckets(automation.id)) == 1


def test_proactive_threshold_counts_within_the_window(h: Harness):
    h.add(EventTrigger(expect=[COMPLETED], posture="Proactive", threshold=2, within=60))
    h.tick(0)
    h.handle(h.event(COMPLETED, 10))
    assert len(h.tick(61)) == 1  # one of two


def test_evaluating_with_no_automation_is_one_query(h: Harness):
    h.store.queries = 0
    assert h.tick(0) == []
    assert h.store.queries == 1
    h.add(EventTrigger(expect=[FAILED]))  # reactive only: its buckets are not read
    h.store.queries = 0
    assert h.tick(1) == []
    assert h.store.queries == 1


# Compound and sequence


def _children() -> list[EventTrigger]:
    return [
        EventTrigger(expect=["a.one"]),
        EventTrigger(expect=["a.two"]),
        EventTrigger(expect=["a.three"]),
    ]


@pytest.mark.parametrize(
    ("require", "expected"), [("any", [1, 1, 1]), ("all", [0, 0, 1]), (2, [0, 1, 0])]
)
def test_compound_requires_enough_children(h: Harness, require: Any, expected: list[int]):
    h.add(CompoundTrigger(require=require, triggers=_children(), within=60))
    names = ["a.one", "a.two", "a.three"]
    fired = [len(h.handle(h.event(name, i))) for i, name in enumerate(names)]
    assert fired == expected
    firings = list(h.store.firings.values())
    assert len(firings) == sum(expected)
    assert all(f.trigger == "trigger" and f.bucket == "trigger:*" for f in firings)
    [automation] = h.store.list()
    listed = h.store.list_firings(automation.id)
    assert [f.fired_at for f in listed] == sorted((f.at for f in firings), reverse=True)


def test_compound_children_must_fire_within_the_window(h: Harness):
    h.add(CompoundTrigger(require="all", triggers=_children()[:2], within=60))
    assert h.handle(h.event("a.one", 0), h.event("a.two", 61)) == []
    assert len(h.handle(h.event("a.one", 70))) == 1  # two at 61 and one at 70


def test_compound_does_not_count_a_child_twice(h: Harness):
    h.add(CompoundTrigger(require=2, triggers=_children()))
    assert h.handle(h.event("a.one", 0), h.event("a.one", 1)) == []
    assert len(h.handle(h.event("a.three", 2))) == 1


def test_sequence_fires_only_in_order(h: Harness):
    h.add(SequenceTrigger(triggers=_children(), within=100))
    assert h.handle(h.event("a.two", 0), h.event("a.one", 1), h.event("a.three", 2)) == []
    [firing] = h.handle(h.event("a.two", 3), h.event("a.three", 4))
    assert firing.event is not None and firing.event.event == "a.three"
    assert h.handle(h.event("a.three", 5)) == []  # starts over


def test_sequence_window(h: Harness):
    h.add(SequenceTrigger(triggers=_children()[:2], within=10))
    assert h.handle(h.event("a.one", 0), h.event("a.two", 11)) == []
    assert len(h.handle(h.event("a.one", 20), h.event("a.two", 25))) == 1


def test_nested_triggers_keep_their_own_buckets(h: Harness):
    automation = h.add(
        CompoundTrigger(
            require="all",
            triggers=[
                EventTrigger(expect=[FAILED], threshold=2, for_each=["stratoflow.resource.id"]),
                SequenceTrigger(
                    triggers=[EventTrigger(expect=["x.a"]), EventTrigger(expect=["x.b"])]
                ),
            ],
        )
    )
    assert h.handle(h.event(FAILED, 0, run="a"), h.event("x.a", 1), h.event("x.b", 2)) == []
    [firing] = h.handle(h.event(FAILED, 3, run="a"))
    assert automation.id is not None
    keys = sorted(b.key for b in h.store.list_buckets(automation.id))
    assert keys == [
        "trigger.triggers[0]:stratoflow.flow-run.a",
        "trigger.triggers[1].triggers[0]:",
        "trigger.triggers[1].triggers[1]:",
        "trigger.triggers[1]:*",
        "trigger:*",
    ]
    assert firing.bucket == "trigger:*"


def test_bucket_state_round_trips():
    bucket = Bucket(trigger="trigger", key="k", count=2, window_start=START, event_ids=["a"])
    assert Bucket.from_dict(bucket.to_dict()) == bucket


# The default executor, without AWS


class FakeSns:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> dict[str, str]:
        self.published.append(kwargs)
        return {"MessageId": "m-1"}


def executor_harness(
    allowed: str, automation: Automation
) -> tuple[Harness, list[WebhookRequest], FakeSns]:
    h = Harness()
    sent: list[WebhookRequest] = []
    sns = FakeSns()

    def http(request: WebhookRequest) -> int:
        sent.append(request)
        return 202

    settings = Settings(webhook_allowed_hosts=allowed)
    h.engine = AutomationEngine(
        None,
        store=h.store,
        actions=ActionExecutor(None, h.store, http=http, sns=sns, settings=settings),
        clock=h.clock,
    )
    h.store.create(automation)
    return h, sent, sns


def test_webhook_request_and_allow_list():
    automation = Automation(
        name="hooks",
        trigger=EventTrigger(expect=[FAILED]),
        actions=[
            CallWebhook(
                url="https://api.hooks.example.com/in",
                headers={"X-Run": "{{ event.resource.id }}"},
                body="run {{ event.resource.id }} of {{ automation.name }}",
                method="put",
                timeout=3,
            ),
            CallWebhook(url="https://evil.example/in"),
            CallWebhook(url="https://hooks.example.com.evil.example/in"),
        ],
    )
    h, sent, _ = executor_harness("*.hooks.example.com, other.example", automation)
    [firing] = h.handle(h.event(FAILED, 0))
    ok, refused, lookalike = firing.results
    assert ok.ok and ok.detail == "PUT https://api.hooks.example.com/in: HTTP 202"
    [request] = sent
    assert request.method == "PUT" and request.timeout == 3
    assert request.body == b"run stratoflow.flow-run.r1 of hooks"
    assert request.headers == {
        "X-Run": "stratoflow.flow-run.r1",
        "Content-Type": "text/plain; charset=utf-8",
    }
    assert not refused.ok and "'evil.example' refused" in refused.detail
    assert "(*.hooks.example.com, other.example)" in refused.detail
    assert not lookalike.ok


def test_no_webhook_host_is_allowed_by_default():
    automation = Automation(
        name="hook",
        trigger=EventTrigger(expect=[FAILED]),
        actions=[CallWebhook(url="http://127.0.0.1:9/x")],
    )
    h, sent, _ = executor_harness("", automation)
    [firing] = h.handle(h.event(FAILED, 0))
    assert sent == [] and "empty, so no host is allowed" in firing.results[0].detail


def test_notification_subject_is_one_short_ascii_line():
    automation = Automation(
        name="page",
        trigger=EventTrigger(expect=[FAILED]),
        actions=[
            SendNotification(
                topic_arn="arn:aws:sns:us-east-1:123456789012:oncall",
                subject="Échec de {{ event.resource.id }}\n" + "x" * 200,
            ),
            SendNotification(topic_arn="arn:aws:sns:us-east-1:123456789012:oncall"),
        ],
    )
    h, _, sns = executor_harness("", automation)
    [firing] = h.handle(h.event(FAILED, 0))
    assert [r.ok for r in firing.results] == [True, True]
    custom, default = sns.published
    assert custom["Subject"].startswith("?chec de stratoflow.flow-run.r1 xxx")
    assert len(custom["Subject"]) == 100 and custom["Subject"].isascii()
    assert default["Subject"] == "stratoflow automation page: triggered"
    assert "Event: stratoflow.flow-run.Failed on stratoflow.flow-run.r1" in default["Message"]


def test_actions_needing_aws_fail_clearly_without_it(h: Harness):
    h.engine = AutomationEngine(
        None, store=h.store, actions=ActionExecutor(None, h.store), clock=h.clock
    )
    h.add(EventTrigger(expect=[FAILED]), actions=[RunDeployment(deployment="x"), PauseAutomation()])
    [firing] = h.handle(h.event(FAILED, 0))
    failed, paused = firing.results
    assert failed.detail == "run-deployment needs the AWS backend (STRATOFLOW_BACKEND=aws)."
    assert paused.ok and h.store.find("auto").enabled is False


def test_templates_keep_the_type_of_a_whole_expression():
    scope = {"x": 41, "name": "etl", "flow_run": None}
    assert render_value(
        {"n": "{{ x + 1 }}", "s": "{{ name }}-{{ x }}", "l": ["{{ x }}"]}, scope
    ) == {
        "n": 42,
        "s": "etl-41",
        "l": [41],
    }
    assert render_value("{{ flow_run.name }}", scope) is None
    assert render("{{ flow_run.name }}", scope) == ""
    with pytest.raises(TemplateProblem):
        render("{{ ''.__class__.__mro__ }}", scope)  # the sandbox


def test_webhooks_do_not_follow_redirects():
    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://elsewhere.example/")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # The local server is on loopback, refused by default: the test lets it through.
        sender = WebhookSender(resolver=lambda host, port: ["127.0.0.1"], check=lambda a: None)
        url = f"http://hooks.test:{server.server_address[1]}/"
        with pytest.raises(ActionError, match="answered HTTP 302 Found, a redirect to"):
            sender(WebhookRequest("POST", url, {}, b"{}", 5))
    finally:
        server.shutdown()
        server.server_close()


def test_one_failing_automation_does_not_keep_the_others_from_counting(
    h: Harness, monkeypatch: pytest.MonkeyPatch
):
    broken = h.add(EventTrigger(expect=[FAILED]), name="broken")
    h.add(EventTrigger(expect=[FAILED]), name="fine")
    read = h.store.read_bucket

    def flaky(automation_id: str, key: str) -> Bucket | None:
        if automation_id == broken.id:
            raise RuntimeError("throttled")
        return read(automation_id, key)

    event = h.event(FAILED, 0)
    with monkeypatch.context() as patch:
        patch.setattr(h.store, "read_bucket", flaky)
        with pytest.raises(AutomationsFailed, match="'broken' could not handle the events"):
            h.handle(event)
    assert [c["automation"] for c in h.recorder.calls] == ["fine"]
    # The stream delivers the record again: only the broken one fires now.
    assert [f.automation_name for f in h.handle(event)] == ["broken"]

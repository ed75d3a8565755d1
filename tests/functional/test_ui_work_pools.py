"""The work pools pages (live workers, queue depths, concurrency limits) and pausing and
resuming a queue, through the dev server's real Function URL events against an emulated
installation."""

from __future__ import annotations

import re
from datetime import timedelta

from stratoflow.concurrency import create_concurrency_limit
from stratoflow.deployments.models import WorkPoolSpec, WorkQueueSpec
from stratoflow.workers.messages import FlowRunMessage
from stratoflow.workers.registry import record_heartbeat
from tests.functional._ui import Ui, installation, ui  # noqa: F401


def _setup(ui: Ui) -> None:
    """The default pool with a limit of 4 (2 slots held) and two queues: `default`
    (its SQS queue exists, one run waiting) and `high` (no SQS queue); a live worker and
    a silent one."""
    inst = ui.installation
    pool = WorkPoolSpec(
        name="default",
        description="On-prem runners in the basement.",
        concurrency_limit=4,
        queues=(
            WorkQueueSpec(name="default", priority=2),
            WorkQueueSpec(name="high", priority=0, concurrency_limit=2, description="Urgent."),
        ),
    )
    inst.platform.work_pools.put(pool)
    create_concurrency_limit("work-pool:default", 4)
    now = inst.clock.now()
    inst.services.concurrency.try_acquire(["work-pool:default"], 2, "lease-1", now, 300)
    inst.platform.queues.send("default", "default", FlowRunMessage(flow_run_id="r" * 8))
    for name, seen in (("poller-live", now), ("poller-silent", now - timedelta(minutes=3))):
        record_heartbeat(
            inst.platform,
            pool="default",
            name=name,
            queues=["high", "default"],
            running=1,
            limit=4,
            now=seen,
            started=now - timedelta(hours=1),
        )


def _paused(ui: Ui, queue: str) -> bool:
    return ui.installation.platform.work_pools.get("default").queue(queue).paused


def test_the_list_shows_live_workers_and_queue_depths(ui: Ui) -> None:
    _setup(ui)
    page = ui.browser(role="viewer").get("/work-pools")
    assert page.status == 200
    row = page.text.split('data-pool="default"')[1].split("</tr>")[0]
    assert 'data-testid="pool-live-workers">1<' in row
    assert 'data-testid="pool-waiting">1<' in row
    assert "2 / 4" in row and "On-prem runners in the basement." in row
    # Highest priority first.
    assert re.findall(r'class="queue-name">([^<]+)<', row) == ["high", "default"]
    assert 'href="/work-pools/default"' in row


def test_a_pools_page_shows_queues_limits_and_workers(ui: Ui) -> None:
    _setup(ui)
    html = ui.browser(role="viewer").get("/work-pools/default").text
    assert "2 of 4 slots in use" in html.split('id="pool-limit"')[1].split("</dd>")[0]
    default = html.split('data-queue="default"')[1].split("</tr>")[0]
    assert 'data-testid="queue-waiting">1<' in default
    high = html.split('data-queue="high"')[1].split("</tr>")[0]
    assert "no SQS queue" in high and "Urgent." in high
    assert "\N{EN DASH} of 2 slots in use" in high  # the queue's limit is not stored yet
    workers = re.findall(r'data-testid="worker-row" data-alive="(true|false)"', html)
    assert sorted(workers) == ["false", "true"]
    assert "poller-live" in html and "high, default" in html
    assert 'href="/flow-runs?work_pool=default"' in html
    assert 'data-testid="queue-pause"' not in html  # a viewer has no buttons


def test_an_operator_pauses_and_resumes_a_queue(ui: Ui) -> None:
    _setup(ui)
    browser = ui.browser()
    page = browser.get("/work-pools/default")
    assert 'id="pause-queue-high"' in page.text
    answer = browser.post(
        "/work-pools/default/queues/high/pause", form={"csrf_token": page.csrf_token()}
    )
    assert answer.status == 303 and answer.location == "/work-pools/default"
    assert _paused(ui, "high") and not _paused(ui, "default")
    shown = browser.get("/work-pools/default").text
    assert 'data-queue="high" data-paused="true"' in shown
    assert 'id="resume-queue-high"' in shown
    assert 'data-testid="queue-paused"' in browser.get("/work-pools").text
    answer = browser.post(
        "/work-pools/default/queues/high/resume", form={"csrf_token": page.csrf_token()}
    )
    assert answer.status == 303 and not _paused(ui, "high")


def test_pausing_a_queue_is_refused_to_a_viewer_and_without_the_csrf_token(ui: Ui) -> None:
    _setup(ui)
    viewer = ui.browser(role="viewer")
    token = viewer.get("/work-pools/default").csrf_token()
    path = "/work-pools/default/queues/high/pause"
    answer = viewer.post(path, form={"csrf_token": token})
    assert answer.status == 403 and "viewers cannot" in answer.text
    assert ui.browser().post(path, form={}).status == 403
    assert not _paused(ui, "high")


def test_unknown_pools_and_queues_are_404(ui: Ui) -> None:
    browser = ui.browser()
    assert browser.get("/work-pools/nowhere").status == 404
    token = browser.get("/work-pools").csrf_token()
    answer = browser.post("/work-pools/default/queues/nope/pause", form={"csrf_token": token})
    assert answer.status == 404 and "has no queue" in answer.text

"""An operator's morning in a real browser: the dashboard shows last night's failed run,
its page shows why (the logs), a rerun from the deployment's "Run" form with a changed
parameter completes while the runs list refreshes itself, a schedule is paused, and the
payout waiting for approval is resumed through the form made from its input schema.
Every click goes through the pages' own links, forms and scripts (htmx signs and posts
the forms) to the UI of the embedded stack that `strato dev` runs."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from stratoflow import runs
from stratoflow.deployments.models import Deployment
from tests.browser._browser import RUN_SECONDS, Demo, wait_for_state

WAIT_MS = RUN_SECONDS * 1000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _deployment(demo: Demo, name: str) -> Deployment:
    assert demo.stack.platform is not None
    return demo.stack.platform.deployments.get(name)


def test_the_dashboard_leads_to_the_failed_run_and_its_logs(page: Page, demo: Demo) -> None:
    page.goto(f"{demo.base}/")
    expect(page.locator("h1")).to_have_text("Dashboard")
    expect(page.locator("#count-failed .count")).to_have_text(re.compile(r"[1-9]"))
    # Chart.js drew the runs-over-time chart from the page's JSON block.
    expect(page.locator("canvas[data-chart='runs']")).to_have_attribute("data-drawn", "1")

    page.locator("#count-failed").click()
    expect(page).to_have_url(re.compile(r"/flow-runs\?.*state=FAILED"))
    rows = page.locator("[data-testid='run-row']")
    expect(rows).to_have_count(1)
    rows.get_by_role("link", name=demo.failed.name).click()

    expect(page).to_have_url(f"{demo.base}/flow-runs/{demo.failed.id}")
    expect(page.locator("#run-state")).to_have_text("Failed")
    logs = page.locator("#logs")
    expect(logs).to_contain_text("negative amounts in batch: [-1]")
    expect(logs).to_contain_text("on_failure hook: paging on-call")
    # The level filter swaps the lines in place (htmx): warnings and worse only.
    page.select_option("#log-level", "WARNING")
    expect(logs.locator("[data-testid='log-line']").first).to_be_visible()
    expect(logs).not_to_contain_text("Beginning flow run")
    expect(logs).to_contain_text("on_failure hook: paging on-call")


def test_a_rerun_with_a_changed_parameter_completes(page: Page, demo: Demo) -> None:
    page.goto(f"{demo.base}/flow-runs/{demo.failed.id}")
    page.locator("#run-deployment a").click()
    expect(page).to_have_url(f"{demo.base}/deployments/nightly-report")
    page.locator("#run-deployment").click()

    expect(page.locator("h1")).to_have_text("Run nightly-report")
    page.locator("[name='param.batch']").fill("[3, 1, 4]")
    page.locator("#run-form button[type='submit']").click()
    expect(page).to_have_url(re.compile(rf"{re.escape(demo.base)}/flow-runs/[^/?]+$"))
    rerun_id = page.url.rsplit("/", 1)[1]
    assert rerun_id != demo.failed.id
    assert runs.read_flow_run(rerun_id).parameters == {"batch": [3, 1, 4]}

    # The runs list refreshes itself (htmx, every 5 s): no reload until it shows Completed.
    page.goto(f"{demo.base}/flow-runs?deployment=nightly-report")
    row = page.locator(f"tr[data-run-id='{rerun_id}']")
    expect(row).to_be_visible()
    expect(row.locator(".badge")).to_have_text("Completed", timeout=WAIT_MS)
    assert runs.read_result(runs.read_flow_run(rerun_id)) == 8
    # The failed run is still there, still Failed.
    expect(page.locator(f"tr[data-run-id='{demo.failed.id}'] .badge")).to_have_text("Failed")


def test_a_schedule_is_paused_from_the_deployment_page(page: Page, demo: Demo) -> None:
    page.goto(f"{demo.base}/")
    page.get_by_role("link", name="Deployments", exact=True).click()
    page.get_by_role("link", name="nightly-etl", exact=True).click()
    row = page.locator("tr[data-schedule='every-15-minutes']")
    expect(row).to_have_attribute("data-active", "true")
    row.locator("[data-testid='schedule-pause']").click()

    row = page.locator("tr[data-schedule='every-15-minutes']")
    expect(row).to_have_attribute("data-active", "false")
    expect(row.locator("[data-testid='schedule-next-runs']")).to_have_text("schedule paused")
    expect(row.locator("[data-testid='schedule-resume']")).to_be_visible()
    expect(page.locator("tr[data-schedule='nightly']")).to_have_attribute("data-active", "true")
    schedules = {s.slug: s.active for s in _deployment(demo, "nightly-etl").schedules}
    assert schedules == {"nightly": True, "every-15-minutes": False}


def test_a_paused_run_is_resumed_through_its_input_form(page: Page, demo: Demo) -> None:
    page.goto(f"{demo.base}/flow-runs/{demo.paused.id}")
    expect(page.locator("#run-state")).to_have_text("Suspended")
    # suspend_flow_run(timeout=3600): the deadline, an hour after it paused.
    expect(page.locator("#resume-deadline")).to_have_text(
        re.compile(r"Fails if not resumed by \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\.")
    )
    form = page.locator("#resume-form")
    expect(form).to_be_visible()
    # Made from the Approval input's schema: a checkbox and a required text field.
    form.locator("input[type='checkbox'][name='param.approved']").check()
    approver = form.locator("input[name='param.approver']")
    expect(approver).to_have_attribute("required", "")
    approver.fill("ana")
    form.locator("#resume-run").click()

    expect(page).to_have_url(f"{demo.base}/flow-runs/{demo.paused.id}")
    expect(page.locator("#resume-form")).to_have_count(0)
    done = wait_for_state(demo.paused.id, "Completed")
    assert runs.read_result(done) == "paid 1188 (approved by ana)"
    page.reload()
    expect(page.locator("#run-state")).to_have_text("Completed")

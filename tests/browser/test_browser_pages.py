"""Every page of the UI in a real browser, on the demo's data: it renders (its heading,
its scripts without an error, its charts drawn), nothing overflows the page sideways at
desktop or phone width (390 px: the menu folds behind a toggle, the runs table fits),
and a screenshot of it goes to docs/ui/ for docs/ui.md."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from stratoflow import runs
from tests.browser._browser import RUN_SECONDS, SCREENSHOTS, Demo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MAX_SHOT_HEIGHT = 1800
"""A long page (a run's logs, the events list) is cut at this many CSS pixels."""


@dataclass(frozen=True)
class Shown:
    """A page: the screenshot's name, how to reach it, its heading."""

    name: str
    open: Callable[[Page, Demo], None]
    heading: str


def _go(path: str | Callable[[Demo], str]) -> Callable[[Page, Demo], None]:
    def open_page(page: Page, demo: Demo) -> None:
        target = path(demo) if callable(path) else path
        response = page.goto(f"{demo.base}{target}")
        assert response is not None and response.status == 200, target

    return open_page


def _follow(list_path: str, link: str) -> Callable[[Page, Demo], None]:
    """A detail page, reached from its list by the first link matching `link`."""

    def open_page(page: Page, demo: Demo) -> None:
        _go(list_path)(page, demo)
        page.locator(link).first.click()
        page.wait_for_load_state()

    return open_page


PAGES = [
    Shown("dashboard", _go("/"), "Dashboard"),
    Shown("flow-runs", _go("/flow-runs"), "Flow runs"),
    Shown("flow-run", _go(lambda demo: f"/flow-runs/{demo.completed.id}"), ""),
    Shown("flow-run-failed", _go(lambda demo: f"/flow-runs/{demo.failed.id}"), ""),
    Shown("flow-run-paused", _go(lambda demo: f"/flow-runs/{demo.paused.id}"), ""),
    Shown("deployments", _go("/deployments"), "Deployments"),
    Shown("deployment", _go("/deployments/nightly-etl"), "nightly-etl"),
    Shown("deployment-run", _go("/deployments/fan-out/run"), "Run fan-out"),
    Shown("work-pools", _go("/work-pools"), "Work pools"),
    Shown("work-pool", _go("/work-pools/default"), "default"),
    Shown("automations", _go("/automations"), "Automations"),
    Shown("automation", _follow("/automations", "main a[href^='/automations/']"), ""),
    Shown("events", _go("/events"), "Events"),
    Shown("event", _follow("/events", "main a[href^='/events/']"), ""),
]


@pytest.fixture(scope="module", autouse=True)
def recovered(demo: Demo) -> None:
    """The automation's recovery run (fan-out with items=3, after nightly-report failed)
    is over, so that the dashboard and the automations page show it fired."""
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        found = [
            r
            for r in runs.query_flow_runs(deployment="fan-out", limit=10)
            if r.parameters.get("items") == 3 and r.state is not None and r.state.is_final()
        ]
        if found:
            return
        time.sleep(0.3)
    pytest.fail("the automation's recovery run of fan-out did not finish")


def overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the window (0: no sideways scroll)."""
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )


def screenshot(page: Page, name: str) -> None:
    page.wait_for_load_state("networkidle")
    width = int(page.evaluate("document.documentElement.clientWidth"))
    height = int(page.evaluate("document.documentElement.scrollHeight"))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=SCREENSHOTS / f"{name}.png",
        full_page=True,
        clip={"x": 0, "y": 0, "width": width, "height": min(height, MAX_SHOT_HEIGHT)},
        animations="disabled",
    )


def _rendered(page: Page, shown: Shown) -> None:
    heading = page.locator("main h1").first
    expect(heading).to_be_visible()
    if shown.heading:
        expect(heading).to_contain_text(shown.heading)
    assert page.locator("#error").count() == 0
    for canvas in page.locator("canvas[data-chart]").all():
        expect(canvas).to_have_attribute("data-drawn", "1")


@pytest.mark.parametrize("shown", PAGES, ids=[p.name for p in PAGES])
def test_each_page_renders_and_is_photographed(page: Page, demo: Demo, shown: Shown) -> None:
    shown.open(page, demo)
    _rendered(page, shown)
    assert overflow(page) == 0
    screenshot(page, shown.name)


@pytest.mark.parametrize("shown", PAGES, ids=[p.name for p in PAGES])
def test_no_page_is_wider_than_a_phone(phone: Page, demo: Demo, shown: Shown) -> None:
    shown.open(phone, demo)
    _rendered(phone, shown)
    assert overflow(phone) == 0, f"{shown.name} scrolls sideways at 390 px"


def test_on_a_phone_the_menu_folds_and_the_runs_table_is_usable(phone: Page, demo: Demo) -> None:
    phone.goto(f"{demo.base}/")
    nav = phone.locator("#nav")
    expect(nav).to_be_hidden()
    screenshot(phone, "phone-dashboard")
    phone.locator("label[for='nav-toggle']").click()
    expect(nav).to_be_visible()
    phone.locator("#nav-flow-runs").click()

    expect(phone.locator("main h1")).to_have_text("Flow runs")
    table = phone.locator("#runs-table")
    expect(table).to_be_visible()
    box = table.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    link = phone.locator("#runs-table").get_by_role("link", name=demo.failed.name)
    expect(link).to_be_in_viewport()
    screenshot(phone, "phone-flow-runs")
    link.click()
    expect(phone.locator("#run-state")).to_have_text("Failed")
    assert overflow(phone) == 0

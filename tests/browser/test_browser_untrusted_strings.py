"""Markup in a flow's name, in a run's parameter and in a log line, from a real run of
the embedded stack, shown by a real browser: the markup is on the page as text, no
element was made from it and no script ran (`window.__xss` stays undefined). Escaping
is what is checked: the Content-Security-Policy would also block an inline script, so
the tests look for the text and the elements, not only for the script's effect."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from stratoflow.deployments.deploy import deploy_flow
from stratoflow.deployments.runs import run_deployment, wait_for_flow_run
from stratoflow.entrypoints import load_flow
from stratoflow.models import FlowRun
from tests.browser._browser import RUN_SECONDS, Demo

SCRIPT = "<script>window.__xss=1</script>"
IMAGE = '<img src=x onerror="window.__xss=1">'
HOSTILE = f"{SCRIPT} {IMAGE}"

HOSTILE_FLOW = f"""
    from stratoflow import flow, get_run_logger

    @flow(name={HOSTILE!r})
    def hostile(note: str = "") -> int:
        get_run_logger().info("a log line: %s", note)
        return len(note)
"""

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def hostile_run(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowRun]:
    """A deployment of a flow named with markup, run with markup as its parameter; the
    run logs the parameter."""
    project: Path = tmp_path_factory.mktemp("hostile-project")
    (project / "hostile.py").write_text(textwrap.dedent(HOSTILE_FLOW).lstrip())
    deploy_flow(load_flow("hostile.py:hostile", root=project), "hostile-names", project_dir=project)
    run = run_deployment("hostile-names", {"note": HOSTILE}, timeout=0)
    run = wait_for_flow_run(run.id, timeout=RUN_SECONDS, poll_interval=0.3)
    assert run.state_name == "Completed", run.state
    assert demo.stack.platform is not None
    demo.stack.platform.backend.flush()
    yield run


def assert_inert(page: Page) -> None:
    """Nothing the payloads asked for happened: no image element with their source, no
    script element carrying them, and the script's global is not set."""
    page.wait_for_load_state("networkidle")  # an image's onerror fires once it failed
    assert page.locator("img[src='x']").count() == 0
    scripts = page.eval_on_selector_all(
        "script:not([type='application/json'])", "nodes => nodes.map(n => n.textContent)"
    )
    assert not [text for text in scripts if "__xss" in text]
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_the_run_page_shows_the_flow_name_parameter_and_log_line_as_text(
    page: Page, demo: Demo, hostile_run: FlowRun
) -> None:
    page.goto(f"{demo.base}/flow-runs/{hostile_run.id}")
    expect(page.locator("#run-flow")).to_have_text(HOSTILE)
    parameters = page.locator("#parameters-json")
    expect(parameters).to_contain_text(SCRIPT)
    expect(parameters).to_contain_text('<img src=x onerror=\\"window.__xss=1\\">')  # JSON
    log_line = page.locator("[data-testid='log-line']", has_text="a log line:")
    expect(log_line).to_contain_text(f"a log line: {HOSTILE}")
    assert_inert(page)


@pytest.mark.parametrize(
    "path",
    ["/", "/flow-runs", "/flow-runs?deployment=hostile-names", "/deployments"],
)
def test_lists_show_the_flow_name_as_text(
    page: Page, demo: Demo, hostile_run: FlowRun, path: str
) -> None:
    page.goto(f"{demo.base}{path}")
    expect(page.locator("main")).to_contain_text(HOSTILE)
    assert_inert(page)


def test_the_deployment_page_shows_the_flow_name_as_text(
    page: Page, demo: Demo, hostile_run: FlowRun
) -> None:
    page.goto(f"{demo.base}/deployments/hostile-names")
    expect(page.locator("main")).to_contain_text(HOSTILE)
    assert_inert(page)


def test_events_show_the_parameter_as_text(page: Page, demo: Demo, hostile_run: FlowRun) -> None:
    page.goto(f"{demo.base}/flow-runs/{hostile_run.id}")
    page.locator("#events a", has_text="stratoflow.flow-run.Completed").first.click()
    expect(page.locator("main")).to_contain_text(HOSTILE)  # the related flow
    assert_inert(page)

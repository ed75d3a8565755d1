"""Fixtures of the browser tests: a real headless Chromium (Debian's `chromium`, installed
by `make install`) driven by Playwright, against the web UI of an embedded stack started
as `strato dev` starts it (stratoflow.dev.stack.LocalStack: the emulator, the scheduler
ticking, the stream and an on-prem poller that really runs the flows, and the UI's dev
server on 127.0.0.1 behind its login link), filled with the demo's kind of data."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, StorageState, sync_playwright

from stratoflow.dev.stack import LocalStack
from stratoflow.settings import get_settings
from tests.browser._browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    STACK_ENVIRONMENT,
    Demo,
    fill_with_demo_runs,
    open_page,
    sign_in,
)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """A headless Chromium for a module, with a fresh profile (each test gets a new
    context: its own pages and storage). Module-scoped, so that neither it nor
    Playwright's driver outlives the browser tests in a whole-suite run."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"Chromium is not installed ({CHROMIUM} is missing): `make install` installs "
            "Debian's chromium and chromium-driver packages"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """An embedded stack, as `strato dev --deploy examples` runs it, with the demo's runs
    in it (one module's tests share it; each test leaves the others' runs alone)."""
    home = tmp_path_factory.mktemp("stack") / ".stratoflow-dev"
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("STRATOFLOW_") or name in STACK_ENVIRONMENT:
                patch.delenv(name)
        patch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
        patch.setenv("STRATOFLOW_LOG_TO_CONSOLE", "false")
        get_settings.cache_clear()
        try:
            with LocalStack(home=home, tick_seconds=1.0) as stack:
                yield fill_with_demo_runs(stack)
        finally:
            get_settings.cache_clear()


@pytest.fixture(scope="module")
def signed_in(chromium: Browser, demo: Demo) -> StorageState:
    """The cookies of an operator signed in through `strato dev`'s login link."""
    return sign_in(chromium, demo)


@pytest.fixture
def page(chromium: Browser, signed_in: StorageState) -> Iterator[Page]:
    """A desktop-sized blank page, signed in as an operator."""
    yield from open_page(chromium, signed_in, DESKTOP)


@pytest.fixture
def phone(chromium: Browser, signed_in: StorageState) -> Iterator[Page]:
    """A phone-sized blank page (390 x 844 CSS pixels), signed in as an operator."""
    yield from open_page(chromium, signed_in, PHONE)

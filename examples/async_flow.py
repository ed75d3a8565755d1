"""An async flow: fetch pages concurrently with `asyncio.gather` over async tasks (one
of them flaky, retried), then summarize them in a sync task.

Run it with `python examples/async_flow.py`; it prints the total word count (34).
"""

from __future__ import annotations

import asyncio
from typing import Any

from stratoflow import flow, get_run_logger, task
from stratoflow.runtime import task_run

PAGES = {
    "intro": "stratoflow runs async flows with the same engine as sync ones",
    "retries": "a flaky fetch fails once and succeeds when it is retried",
    "gather": "gathered task runs wait on the network together not one after another",
}


@task(retries=2, retry_delay_seconds=0.1)
async def fetch(page: str) -> str:
    await asyncio.sleep(0.05)  # stands for a network call
    if page == "retries" and task_run.run_count == 1:
        raise ConnectionError(f"{page}: connection reset (first attempt always is, for the demo)")
    return PAGES[page]


@task
def count_words(texts: list[str]) -> int:
    return sum(len(text.split()) for text in texts)


async def announce(flow: Any, flow_run: Any, state: Any) -> None:
    """An async on_completion hook: awaited on the flow's event loop."""
    await asyncio.sleep(0)
    print(f"Flow run {flow_run.name!r} finished: {state.name}")


@flow(on_completion=announce)
async def word_count(pages: list[str] | None = None) -> int:
    texts = await asyncio.gather(*(fetch(page) for page in pages or sorted(PAGES)))
    total = count_words(list(texts))
    get_run_logger().info("Fetched %d pages, %d words", len(texts), total)
    return total


if __name__ == "__main__":
    print(asyncio.run(word_count()))

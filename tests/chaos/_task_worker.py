"""A task worker process for the chaos suite: `strato task-worker start MODULE` (the same
worker and loop) with a 10 s message visibility timeout instead of 120 s and 1 s long
polls, so that a message a SIGKILLed worker had received but not claimed (its long poll
was still open when it died) becomes visible again within seconds.

    python tests/chaos/_task_worker.py MODULE
"""

from __future__ import annotations

import logging
import sys
import threading

from stratoflow._signals import stop_on_signals
from stratoflow.background.loading import load_tasks
from stratoflow.background.polling import build_worker, poll

VISIBILITY_TIMEOUT = 10
LIMIT = 40
"""Runs at once: every run of the test is in its user code when the worker is killed."""


def main() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
    worker = build_worker(load_tasks(sys.argv[1:]))
    stop = threading.Event()
    with stop_on_signals(stop.set):  # as the CLI: SIGINT or SIGTERM, even if inherited ignored
        poll(
            worker,
            limit=LIMIT,
            wait_seconds=1,
            visibility_seconds=VISIBILITY_TIMEOUT,
            stop=stop,
        )


if __name__ == "__main__":
    main()

"""A poller process for the chaos suite: `strato worker start` (same Poller, same fork
server and flow-run processes, same signal handling) with a 10 s message visibility
timeout instead of 90 s, so that a message a SIGKILLed poller had received but not yet
claimed becomes visible again within seconds rather than a minute and a half.

    python tests/chaos/_poller.py POOL NAME
"""

from __future__ import annotations

import logging
import sys

from stratoflow.platform import get_platform
from stratoflow.workers.poller import Poller, PollerOptions

VISIBILITY_TIMEOUT = 10
EXTEND_EVERY = 3.0


def main() -> None:
    pool, name = sys.argv[1], sys.argv[2]
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
    )
    platform = get_platform()
    options = PollerOptions(
        pool=pool,
        name=name,
        limit=4,
        wait_seconds=1,
        visibility_timeout=VISIBILITY_TIMEOUT,
        extend_every=EXTEND_EVERY,
        shutdown_grace=platform.settings.worker_shutdown_grace_seconds,
    )
    poller = Poller(platform, options)
    with poller.signal_handlers():
        poller.run()


if __name__ == "__main__":
    main()

"""Prefect's `prefect.testing.utilities` path: `prefect_test_harness`.

    from stratoflow.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        assert my_flow() == "Done!"

It is `stratoflow_test_harness` under Prefect's name: a private in-memory backend,
result and cache stores and a fake clock for the duration of the block. Prefect starts
a temporary API server; there is no server here, so `server_startup_timeout` is accepted
and unused. The block's value is the `TestHarness` (Prefect's is None).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from stratoflow.testing import TestHarness, stratoflow_test_harness

__all__ = ["TestHarness", "prefect_test_harness", "stratoflow_test_harness"]


@contextlib.contextmanager
def prefect_test_harness(server_startup_timeout: int | None = 30) -> Iterator[TestHarness]:
    """Run flows against fresh, private services; restores the previous ones on exit."""
    with stratoflow_test_harness() as harness:
        yield harness

"""`concurrency()` and `rate_limit()` under Prefect's `prefect.concurrency.sync` path."""

from stratoflow.concurrency.api import concurrency, rate_limit

__all__ = ["concurrency", "rate_limit"]

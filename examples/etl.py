"""A small ETL flow: a flaky extract that succeeds on retry, a cached transform, a load."""

from __future__ import annotations

from datetime import timedelta

from stratoflow import flow, get_run_logger, task
from stratoflow.cache_policies import INPUTS
from stratoflow.runtime import task_run


@task(retries=2, retry_delay_seconds=0.2)
def extract(rows: int) -> list[dict[str, int]]:
    if task_run.run_count == 1:
        raise ConnectionError("source API timed out (first attempt always does, for the demo)")
    return [{"id": i, "amount": i * 10} for i in range(rows)]


@task(cache_policy=INPUTS, cache_expiration=timedelta(hours=1))
def transform(records: list[dict[str, int]]) -> list[dict[str, int]]:
    get_run_logger().info("Transforming %d records", len(records))
    return [{**r, "amount_with_tax": round(r["amount"] * 1.2)} for r in records]


@task
def load(records: list[dict[str, int]]) -> int:
    total = sum(r["amount_with_tax"] for r in records)
    get_run_logger().info("Loaded %d records, total %d", len(records), total)
    return total


@flow(log_prints=True)
def etl(rows: int = 5) -> int:
    records = extract(rows)
    print(f"Extracted {len(records)} records")
    return load(transform(records))


if __name__ == "__main__":
    etl()

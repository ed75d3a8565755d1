"""Cost per million task runs, from the counted API calls and bench/prices.py.

Reads bench/results.json (written by bench.aws_backend and bench.throughput) and prices:
- per task run: the task run's own item writes (bench.aws_backend, 10,000 sequential
  tasks), the events the automations Lambda derives and stores from its stream record
  (bench.aws_backend's sample), and that Lambda's requests and GB-seconds;
- per flow run: everything a deployed run costs from creation to completion, pollers'
  share included (bench.throughput: DynamoDB, SQS, S3, CloudWatch Logs), plus its events;
- per million task runs: task-run costs plus the flow-run costs spread over
  TASKS_PER_FLOW_RUN tasks (10 unless stated; 1 and 100 are shown too).

Assumptions, stated where they are used: the stream is read by Lambda (free reads) in
batches of AUTOMATIONS_BATCH_SIZE; the handler's time per record is the emulator's (its
PutItem takes ~5-10 ms, like DynamoDB in-region); task runs log nothing at the default
level (their lifecycle lines are DEBUG), so log bytes come from flow runs only; no free
tier; storage and data transfer are not counted. The scheduler Lambda is a fixed
monthly cost (one tick a minute), not a per-run one: see docs/performance.md.

`python -m bench.cost` prints the table and merges it into results.json under "cost".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import prices

RESULTS = Path(__file__).with_name("results.json")
TASKS_PER_FLOW_RUN = 10
SPREADS = (1, 10, 100)


def _lambda(records: float, seconds_per_record: float) -> dict[str, float]:
    """Automations Lambda: requests (records arrive in batches) and GB-seconds."""
    return {
        "lambda_requests": records / prices.AUTOMATIONS_BATCH_SIZE * prices.LAMBDA_REQUEST,
        "lambda_gb_seconds": records
        * seconds_per_record
        * prices.AUTOMATIONS_MEMORY_GB
        * prices.LAMBDA_GB_SECOND,
    }


def task_run_costs(aws: dict[str, Any]) -> dict[str, float]:
    events = aws["events"]
    per_task = events["per_task_run"]
    return {
        "dynamodb_writes_task_run_item": aws["wru_per_task_run"]
        * prices.DYNAMODB_WRITE_REQUEST_UNIT,
        "dynamodb_writes_events": per_task["dynamodb_wru"] * prices.DYNAMODB_WRITE_REQUEST_UNIT,
        "dynamodb_reads_events": per_task["dynamodb_rru"] * prices.DYNAMODB_READ_REQUEST_UNIT,
        **_lambda(per_task["stream_records"], events["handler_seconds_per_record"]),
    }


def flow_run_costs(throughput: dict[str, Any]) -> dict[str, float]:
    run = throughput["per_flow_run"]
    events = throughput["events_per_flow_run"]
    return {
        "dynamodb_writes": run["dynamodb_wru"] * prices.DYNAMODB_WRITE_REQUEST_UNIT,
        "dynamodb_reads": run["dynamodb_rru"] * prices.DYNAMODB_READ_REQUEST_UNIT,
        "sqs_requests": run["sqs_requests"] * prices.SQS_REQUEST,
        "s3_requests": run["s3_put_requests"] * prices.S3_PUT_REQUEST
        + run["s3_get_requests"] * prices.S3_GET_REQUEST,
        "cloudwatch_logs_ingestion": run["log_bytes"]
        / prices.GB
        * prices.CLOUDWATCH_LOGS_INGESTION_PER_GB,
        "dynamodb_writes_events": events["dynamodb_wru"] * prices.DYNAMODB_WRITE_REQUEST_UNIT,
        "dynamodb_reads_events": events["dynamodb_rru"] * prices.DYNAMODB_READ_REQUEST_UNIT,
        **_lambda(events["stream_records"], throughput["events_handler_seconds_per_record"]),
    }


def cost(results: dict[str, Any]) -> dict[str, Any]:
    per_task = task_run_costs(results["aws_backend"])
    per_flow = flow_run_costs(results["throughput"])
    million = prices.MILLION

    def per_million(tasks_per_flow: int, *, events: bool = True) -> float:
        task = sum(v for k, v in per_task.items() if events or "event" not in k)
        if not events:
            task -= per_task["lambda_requests"] + per_task["lambda_gb_seconds"]
        flow = sum(v for k, v in per_flow.items() if events or "event" not in k)
        if not events:
            flow -= per_flow["lambda_requests"] + per_flow["lambda_gb_seconds"]
        return round((task + flow / tasks_per_flow) * million, 2)

    breakdown = {f"task run: {k}": round(v * million, 3) for k, v in per_task.items()} | {
        f"flow run / {TASKS_PER_FLOW_RUN}: {k}": round(v * million / TASKS_PER_FLOW_RUN, 3)
        for k, v in per_flow.items()
    }
    return {
        "tasks_per_flow_run": TASKS_PER_FLOW_RUN,
        "usd_per_million_task_runs": per_million(TASKS_PER_FLOW_RUN),
        "usd_per_million_task_runs_by_tasks_per_flow_run": {
            str(n): per_million(n) for n in SPREADS
        },
        "usd_per_million_task_runs_without_stored_events": {
            str(n): per_million(n, events=False) for n in SPREADS
        },
        "usd_per_million_flow_runs": round(sum(per_flow.values()) * million, 2),
        "usd_per_million_task_runs_task_share": round(sum(per_task.values()) * million, 2),
        "breakdown_usd_per_million_task_runs": breakdown,
        "step_functions_standard_usd_per_million_transitions": round(
            prices.STEP_FUNCTIONS_STANDARD_TRANSITION * million, 2
        ),
        "targets": {"usd_per_million_task_runs": prices.TARGET_PER_MILLION_TASK_RUNS},
    }


def print_table(figures: dict[str, Any]) -> None:
    print(f"Cost per million task runs ({figures['tasks_per_flow_run']} tasks per flow run)")
    for line, usd in figures["breakdown_usd_per_million_task_runs"].items():
        print(f"  {line:<52} ${usd:>8.3f}")
    print(f"  {'total':<52} ${figures['usd_per_million_task_runs']:>8.2f}")
    for n, usd in figures["usd_per_million_task_runs_by_tasks_per_flow_run"].items():
        bare = figures["usd_per_million_task_runs_without_stored_events"][n]
        print(f"  {n:>3} tasks per flow run: ${usd:.2f} (without stored events: ${bare:.2f})")


if __name__ == "__main__":
    results = json.loads(RESULTS.read_text())
    figures = cost(results)
    results["cost"] = figures
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print_table(figures)

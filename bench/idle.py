"""What an installation with no runs costs a month (docs/performance.md, "Idle cost").

Two parts, each measured, then priced with bench/prices.py:
- the default stack (cdk.json's context, synthesized in-process, no bundling): how many
  alarms, dashboards, Secrets Manager secrets, result-signing key parameters (SSM
  Parameter Store, standard tier: no charge; made by a custom resource whose Lambda runs
  only when the stack is deployed), SQS queues Lambda polls (event source mappings), and
  the scheduler function's memory;
- an idle scheduler tick on the emulator (no deployment, no run): its API calls, the read
  units they bill, its duration (median of BENCH_IDLE_TICKS, default 7) and the bytes of
  its log line.

Assumptions, stated where they are used: one tick a minute (43,200 a month); Lambda's
SQS pollers make about 15 ReceiveMessage requests a minute per idle queue (five pollers,
20-second long polls: AWS's documented behaviour for an idle event source mapping); the
stream's reads by Lambda are free; no free tier. Merges "idle" into bench/results.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import prices
from bench._emulated import counted_installation
from bench.calls import CallLog

RESULTS = Path(__file__).with_name("results.json")
ROOT = Path(__file__).resolve().parents[1]
TICKS = int(os.environ.get("BENCH_IDLE_TICKS", "7"))
TICKS_A_MONTH = 60 * 24 * 30
IDLE_SQS_REQUESTS_A_MONTH_PER_QUEUE = 15 * 60 * 24 * 30
SECRET_A_MONTH = 0.40
"""Secrets Manager: $0.40 per secret per month (aws.amazon.com/secrets-manager/pricing)."""
STANDARD_PARAMETER_A_MONTH = 0.0
"""SSM Parameter Store: standard parameters at no additional charge (docs.aws.amazon.com/
systems-manager/latest/userguide/parameter-store-advanced-parameters.html); the keys are
put with `Tier=Standard` (stratoflow.backends.aws.result_key_setup)."""
ALARM_A_MONTH = 0.10
"""CloudWatch: $0.10 per standard-resolution metric alarm per month."""
DASHBOARD_A_MONTH = 3.00
"""CloudWatch: $3.00 per dashboard per month (beyond the first three)."""
TARGET_USD = 1.00


def _stack() -> dict[str, Any]:
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    import aws_cdk as cdk

    from infra.app import build_app
    from infra.constructs.result_keys import RESOURCE_TYPE as RESULT_KEY_RESOURCE

    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    outdir = tempfile.mkdtemp(prefix="stratoflow-idle-cdk-")
    app = cdk.App(context={**context, "aws:cdk:bundling-stacks": []}, outdir=outdir)
    build_app(app)
    assembly = app.synth()
    [stack] = [s for s in assembly.stacks if s.stack_name.startswith("Stratoflow-")]
    resources = stack.template["Resources"]
    kinds = Counter(r["Type"] for r in resources.values())
    sqs_mappings = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and "Queue" in json.dumps(r["Properties"].get("EventSourceArn", ""))
    ]
    # The result-keys custom resource's handler and CDK's provider framework: invoked by
    # CloudFormation when the stack is deployed, never at idle (no requests, no GB-seconds).
    deploy_time = [
        name
        for name, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and name.startswith("ResultKeys")
    ]
    scheduler_memory = next(
        r["Properties"].get("MemorySize", 128)
        for name, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and "Scheduler" in name
    )
    return {
        "stack": stack.stack_name,
        "alarms": kinds["AWS::CloudWatch::Alarm"],
        "dashboards": kinds["AWS::CloudWatch::Dashboard"],
        "secrets": kinds["AWS::SecretsManager::Secret"],
        "result_key_parameters": kinds[RESULT_KEY_RESOURCE],
        "deploy_time_functions": len(deploy_time),
        "lambda_polled_queues": len(sqs_mappings),
        "scheduler_memory_mb": scheduler_memory,
        "log_groups": kinds["AWS::Logs::LogGroup"],
    }


def _idle_tick() -> dict[str, Any]:
    with counted_installation(Path(tempfile.mkdtemp(prefix="stratoflow-idle-"))) as counted:
        from stratoflow.scheduler import Scheduler

        router, scratch = counted.router, counted.scratch
        scheduler = Scheduler(counted.platform)
        scheduler.tick()  # warm: connections, imports
        logs, seconds = [], []
        for _ in range(TICKS):
            log = CallLog()
            router.target = log
            started = time.perf_counter()
            report = scheduler.tick()
            seconds.append(time.perf_counter() - started)
            router.target = scratch
            logs.append(log)
        line = json.dumps({"message": "Scheduler tick", "tick": dataclasses.asdict(report)})
    return {
        "api_calls": sum(logs[-1].calls.values()),
        "calls_by_operation": dict(sorted(logs[-1].calls.items())),
        "dynamodb_rru": round(statistics.mean(log.rru for log in logs), 2),
        "seconds_median": round(statistics.median(seconds), 4),
        "log_bytes": len(line) + 300,  # the powertools fields around it
    }


def monthly(stack: dict[str, Any], tick: dict[str, Any]) -> dict[str, float]:
    gb = stack["scheduler_memory_mb"] / 1024
    # A Lambda invocation is billed from its start: the handler's own overhead (~20 ms)
    # is added to the tick's measured time.
    seconds = tick["seconds_median"] + 0.02
    return {
        "scheduler_lambda_requests": TICKS_A_MONTH * prices.LAMBDA_REQUEST,
        "scheduler_lambda_gb_seconds": TICKS_A_MONTH * seconds * gb * prices.LAMBDA_GB_SECOND,
        "scheduler_dynamodb_reads": TICKS_A_MONTH
        * tick["dynamodb_rru"]
        * prices.DYNAMODB_READ_REQUEST_UNIT,
        "scheduler_log_ingestion": TICKS_A_MONTH
        * tick["log_bytes"]
        / prices.GB
        * prices.CLOUDWATCH_LOGS_INGESTION_PER_GB,
        "lambda_sqs_polling": stack["lambda_polled_queues"]
        * IDLE_SQS_REQUESTS_A_MONTH_PER_QUEUE
        * prices.SQS_REQUEST,
        "secrets_manager_secrets": stack["secrets"] * SECRET_A_MONTH,
        "result_signing_key_parameters": stack["result_key_parameters"]
        * STANDARD_PARAMETER_A_MONTH,
    }


def main() -> dict[str, Any]:
    stack = _stack()
    tick = _idle_tick()
    lines = {k: round(v, 3) for k, v in monthly(stack, tick).items()}
    fixed = {
        "alarms": round(stack["alarms"] * ALARM_A_MONTH, 2),
        "dashboards": round(stack["dashboards"] * DASHBOARD_A_MONTH, 2),
    }
    total = round(sum(lines.values()), 2)
    figures = {
        "stack": stack,
        "idle_tick": tick,
        "usd_a_month": lines,
        "usd_a_month_without_dashboard_and_alarms": total,
        "usd_a_month_dashboard_and_alarms": fixed,
        "usd_a_month_total": round(total + sum(fixed.values()), 2),
        "targets": {"usd_a_month_without_dashboard_and_alarms": TARGET_USD},
    }
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["idle"] = figures
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()

"""What signing pickled results costs (docs/security.md, "A pickle is loaded only when its
signature verifies"), on the emulator (moto's server on loopback, real HTTP).

- API calls and wall time of a flow run of BENCH_SIGNING_TASKS tasks (default 200)
  whose results are JSON (no signing), then of the same flow with cloudpickle results
  (opted in; each signed), both with a cold key cache, then once more with the key
  cached (a process's later runs): the difference is the signing's share per run (one
  Parameter Store GetParameter per process and key) and pickling's.
- A pickled cache hit stored in S3: calls per hit (its bytes are verified before use).
- HMAC-SHA256 sign and verify, µs per KB (pure, no I/O).

Merges the figures into bench/results.json under "result_signing".
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import boto3

from bench.calls import CallLog, Router
from stratoflow.emulator import emulator

N_TASKS = int(os.environ.get("BENCH_SIGNING_TASKS", "200"))
RESULTS = Path(__file__).with_name("results.json")


def _hmac_us_per_kb() -> dict[str, float]:
    from stratoflow.result_signing import ResultSigner, ResultVerifier, StaticKeys

    keys = StaticKeys({"pool": b"k" * 64})
    signer, verifier = ResultSigner(keys, "pool"), ResultVerifier(keys)
    data = os.urandom(64 * 1024)
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        signature = signer.sign(serializer="cloudpickle", key="run/flow", data=data)
    sign_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(rounds):
        verifier.verify(signature, serializer="cloudpickle", key="run/flow", data=data, what="r")
    verify_s = time.perf_counter() - started
    per_kb = rounds * len(data) / 1024
    return {
        "sign_us_per_kb": round(sign_s / per_kb * 1e6, 3),
        "verify_us_per_kb": round(verify_s / per_kb * 1e6, 3),
    }


def main() -> dict[str, Any]:
    os.environ.setdefault("STRATOFLOW_LOGGING_LEVEL", "WARNING")
    with emulator() as endpoint:
        from stratoflow import flow, task
        from stratoflow.backends.aws import AwsBackend, build_aws_services
        from stratoflow.cache_policies import INPUTS
        from stratoflow.context import set_process_services
        from stratoflow.resources import provision
        from stratoflow.settings import load_settings

        session = boto3.Session(region_name="us-east-1")
        provision(session, endpoint_url=endpoint)
        os.environ["STRATOFLOW_ENDPOINT_URL"] = endpoint
        scratch = CallLog()
        router = Router(scratch)
        router.register(session.events)
        services = build_aws_services(load_settings(), session=session)
        set_process_services(services)
        backend = services.backend
        assert isinstance(backend, AwsBackend)

        @task
        def as_json(i: int) -> dict[str, int]:
            return {"i": i}

        @task
        def as_pickle(i: int) -> tuple[int, int]:
            return (i, i)

        @flow
        def json_results(n: int) -> int:
            return sum(as_json(i)["i"] for i in range(n))

        @flow(result_serializer="cloudpickle")
        def pickled_results(n: int) -> int:
            return sum(as_pickle(i)[0] for i in range(n))

        big = list(range(20_000))

        @task(cache_policy=INPUTS, result_serializer="cloudpickle")
        def cached(x: int) -> tuple[list[int], int]:
            return (big, x)

        @flow
        def cache_user(x: int) -> int:
            return cached(x)[1]

        json_results(2)  # warm-up: connections, imports
        measured: dict[str, Any] = {}
        runs = (
            ("json", json_results, True),
            ("cloudpickle", pickled_results, True),
            ("cloudpickle_key_cached", pickled_results, False),
        )
        for name, fn, cold in runs:
            if cold:
                backend.result_keys.cache_clear()  # a new process: the key is not read yet
            log = CallLog()
            router.target = log
            started = time.perf_counter()
            fn(N_TASKS)
            seconds = time.perf_counter() - started
            backend.task_runs.flush()  # buffered task runs: their calls are counted
            router.target = scratch
            measured[name] = {
                "calls": sum(log.calls.values()),
                "by_operation": dict(sorted(log.calls.items())),
                "get_parameter": log.calls.get("ssm.GetParameter", 0),
                "seconds": round(seconds, 3),
                "ms_per_task": round(seconds / N_TASKS * 1000, 3),
            }
        cache_user(1)  # writes the entry (an S3 object: over the inline limit)
        hit_log = CallLog()
        router.target = hit_log
        cache_user(1)
        router.target = scratch
        figures = {
            "tasks_per_run": N_TASKS,
            "json": measured["json"],
            "cloudpickle": measured["cloudpickle"],
            "cloudpickle_key_cached": measured["cloudpickle_key_cached"],
            "extra_calls_per_pickled_run": measured["cloudpickle"]["calls"]
            - measured["json"]["calls"],
            "pickled_cache_hit_s3_get_object": hit_log.calls.get("s3.GetObject", 0),
            **_hmac_us_per_kb(),
        }
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["result_signing"] = figures
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()

"""Cold start: how long importing each Lambda handler module takes in a fresh process.

For each `functions/<name>/handler.py`, BENCH_COLD_REPEATS (default 5) fresh interpreters
import the file by path and report the import's duration; the median is the figure (the
Lambda INIT phase runs this import before the first event). The interpreter's own start
(`python -c pass`) is reported apart. One more run with `-X importtime` splits the
import by top-level package (self time of every module, summed per package), so that a
handler over the target shows what it pays for.

Prints a table and merges the figures into bench/results.json under "cold_start".
"""

from __future__ import annotations

import collections
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = sorted(ROOT.glob("functions/*/handler.py"))
REPEATS = int(os.environ.get("BENCH_COLD_REPEATS", "5"))
TARGET_MS = 300
RESULTS = Path(__file__).with_name("results.json")

IMPORT = """
import importlib.util, sys, time
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(time.perf_counter() - started)
"""


def _env() -> dict[str, str]:
    # What a Lambda function has: a region, no console colours; nothing is called at import.
    return {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "PYTHONDONTWRITEBYTECODE": "1"}


def import_seconds(handler: Path) -> float:
    output = subprocess.run(
        [sys.executable, "-c", IMPORT, str(handler)],
        check=True,
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
    ).stdout
    return float(output.strip().splitlines()[-1])


def interpreter_seconds() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, env=_env())
    return time.perf_counter() - started


def by_package(handler: Path) -> dict[str, float]:
    """Self time of the modules the import loads, summed per top-level package, in ms."""
    stderr = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", IMPORT, str(handler)],
        check=True,
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
    ).stderr
    totals: collections.Counter[str] = collections.Counter()
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        package = name.split(".")[0]
        if package in ("botocore", "boto3", "s3transfer", "jmespath", "urllib3", "dateutil"):
            package = "boto3 (with botocore, s3transfer, urllib3)"
        elif package in ("pydantic", "pydantic_core", "pydantic_settings", "typing_extensions"):
            package = "pydantic"
        elif package not in ("stratoflow", "aws_lambda_powertools", "croniter", "yaml"):
            package = "other (stdlib, ...)"
        totals[package] += int(self_us) / 1000
    return {k: round(v, 1) for k, v in totals.most_common()}


def main() -> dict[str, Any]:
    interpreter = statistics.median(interpreter_seconds() for _ in range(REPEATS))
    handlers: dict[str, Any] = {}
    for handler in HANDLERS:
        runs = [import_seconds(handler) for _ in range(REPEATS)]
        median_ms = statistics.median(runs) * 1e3
        handlers[handler.parent.name] = {
            "import_ms_median": round(median_ms, 1),
            "import_ms_min": round(min(runs) * 1e3, 1),
            "import_ms_max": round(max(runs) * 1e3, 1),
            "within_target": median_ms < TARGET_MS,
            "by_package_ms": by_package(handler),
        }
    return {
        "repeats": REPEATS,
        "interpreter_start_ms_median": round(interpreter * 1e3, 1),
        "handlers": handlers,
        "targets": {"import_ms_median": TARGET_MS},
    }


if __name__ == "__main__":
    figures = main()
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["cold_start"] = figures
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")
    print(f"interpreter start (median)  {figures['interpreter_start_ms_median']} ms")
    for name, handler in figures["handlers"].items():
        verdict = "ok" if handler["within_target"] else "over"
        print(
            f"{name:<16} import {handler['import_ms_median']:>6} ms median "
            f"(min {handler['import_ms_min']}, max {handler['import_ms_max']})  "
            f"target < {TARGET_MS} ms: {verdict}"
        )
        top = list(handler["by_package_ms"].items())[:4]
        print("                 " + ", ".join(f"{k} {v} ms" for k, v in top))

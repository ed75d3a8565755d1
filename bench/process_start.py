"""What a flow run's process costs the poller: forked by its fork server, or spawned.

Deploys a trivial flow on the emulator and runs it BENCH_PROCESS_RUNS times (default
10) each way, one run at a time on a quiet poller's behalf (claimed here, as the poller
claims it, then `strato flow-run execute <id>` in a process): forked by a fork server
(`stratoflow.workers.forkserver`), and spawned as a fresh `python -m stratoflow.cli`
(what a warm process is, minus the head start). For each run: the time from asking for
the process to the run's Running state, the run itself, from its end to the process's
exit, and the process's CPU time and private memory (bench/_process_probe.py). Also:
how long the fork server takes to be ready, and its memory.

Merges the figures (medians) into bench/results.json under "process_start".
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from stratoflow.emulator import emulator

RUNS = int(os.environ.get("BENCH_PROCESS_RUNS", "10"))
RESULTS = Path(__file__).with_name("results.json")
ROOT = Path(__file__).resolve().parents[1]

FLOW = """
from stratoflow import flow


@flow
def tick(i: int) -> int:
    return i
"""
CONFIG = """
deployments:
  - name: tick
    entrypoint: flows.py:tick
"""


def _wait(process: Any) -> int:
    while (code := process.poll()) is None:
        time.sleep(0.001)
    return int(code)


def _private_kb(pid: int) -> int:
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    memory = {key: int(value.split()[0]) for key, value in (line.split(":", 1) for line in rollup)}
    return memory["Private_Clean"] + memory["Private_Dirty"]


def _median(samples: list[dict[str, float]], key: str) -> float:
    return round(statistics.median(s[key] for s in samples), 4)


def main() -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="stratoflow-process-start-"))
    project = home / "project"
    project.mkdir()
    (project / "flows.py").write_text(FLOW)
    (project / "stratoflow.yaml").write_text(CONFIG)
    with emulator() as endpoint:
        os.environ.update(
            STRATOFLOW_BACKEND="aws",
            STRATOFLOW_ENDPOINT_URL=endpoint,
            STRATOFLOW_HOME=str(home),
            STRATOFLOW_LOG_TO_CONSOLE="false",
        )
        from stratoflow.deployments.deploy import deploy_project
        from stratoflow.deployments.runs import run_deployment
        from stratoflow.orchestration.claims import claim_flow_run
        from stratoflow.platform import get_platform
        from stratoflow.resources import provision
        from stratoflow.workers.forkspawn import ForkServer

        provision(boto3.Session(region_name="us-east-1"), endpoint_url=endpoint)
        deploy_project(project)
        platform = get_platform()
        backend = platform.backend
        # `bench._process_probe` importable by the processes, wherever this runs from.
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PYTHONPATH": path}
        started = time.monotonic()
        server = ForkServer(env)
        if not server.wait_ready():
            raise RuntimeError(f"the fork server did not start: {server.error}")
        ready_seconds = time.monotonic() - started
        server_private_kb = _private_kb(server.process.pid)
        samples: dict[str, list[dict[str, float]]] = {"forked": [], "spawned": []}
        try:
            for i in range(RUNS):
                for method, taken in samples.items():  # alternating: the same machine
                    run = run_deployment("tick", parameters={"i": i}, timeout=0)
                    claim_flow_run(backend, run.id, worker="bench")
                    out = home / f"{method}-{i}.json"
                    argv = ["-m", "bench._process_probe", str(out), "flow-run", "execute", run.id]
                    asked = datetime.now(UTC)
                    clock = time.monotonic()
                    process: Any = (
                        server.spawn(argv)
                        if method == "forked"
                        else subprocess.Popen([sys.executable, *argv], env=env)
                    )
                    code = _wait(process)
                    total = time.monotonic() - clock
                    if code != 0:
                        raise RuntimeError(f"flow run {run.id} ({method}) exited with {code}")
                    done = backend.read_flow_run(run.id)
                    assert done.start_time is not None and done.end_time is not None
                    probe = json.loads(out.read_text())
                    taken.append(
                        {
                            "total_seconds": total,
                            "to_running_seconds": (done.start_time - asked).total_seconds(),
                            "run_seconds": (done.end_time - done.start_time).total_seconds(),
                            "end_to_exit_seconds": total - (done.end_time - asked).total_seconds(),
                            "cpu_seconds": probe["cpu_seconds"],
                            "private_kb": probe["private_kb"],
                        }
                    )
        finally:
            server.close()
    keys = (
        "total_seconds",
        "to_running_seconds",
        "run_seconds",
        "end_to_exit_seconds",
        "cpu_seconds",
        "private_kb",
    )
    return {
        "runs": RUNS,
        "fork_server_ready_seconds": round(ready_seconds, 3),
        "fork_server_private_kb": server_private_kb,
        **{method: {k: _median(s, k) for k in keys} for method, s in samples.items()},
    }


if __name__ == "__main__":
    figures = main()
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing["process_start"] = figures
    RESULTS.write_text(json.dumps(existing, indent=2, default=str) + "\n")
    print(
        f"fork server ready in {figures['fork_server_ready_seconds']} s, "
        f"{figures['fork_server_private_kb'] // 1024} MiB"
    )
    for method in ("forked", "spawned"):
        row = figures[method]
        print(
            f"{method:<8} total {row['total_seconds']:.3f} s  to Running "
            f"{row['to_running_seconds']:.3f} s  run {row['run_seconds']:.3f} s  end to exit "
            f"{row['end_to_exit_seconds']:.3f} s  CPU {row['cpu_seconds']:.3f} s  private "
            f"{row['private_kb'] // 1024} MiB"
        )

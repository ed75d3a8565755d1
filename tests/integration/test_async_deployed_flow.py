"""A deployed `async def` flow runs to its end through the worker entry point
(`execute_flow_run`, which every worker calls) on the AWS backend (moto): its async
tasks gathered, a retry handed back to its queue and claimed again, its result stored
and readable, its task runs recorded."""

from __future__ import annotations

import textwrap
from pathlib import Path

from _deploy_fixtures import Installation, installation, messages  # noqa: F401

from stratoflow import runs
from stratoflow.deployments.deploy import deploy_project
from stratoflow.deployments.runs import run_deployment
from stratoflow.states import StateType
from stratoflow.workers.execute import execute_flow_run

FLOWS = """
    import asyncio
    from pathlib import Path

    from stratoflow import flow, task


    @task(retries=1)
    async def square(x: int) -> int:
        await asyncio.sleep(0)
        return x * x


    @flow(retries=1, persist_result=True)
    async def squares(n: int, marker: str) -> int:
        # The first attempt fails once, so that the retry goes back through the queue.
        first_attempt = Path(marker)
        if not first_attempt.exists():
            first_attempt.write_text("failed once")
            raise RuntimeError("the first attempt fails")
        return sum(await asyncio.gather(*(square(i) for i in range(n))))
"""

CONFIG = """
    deployments:
      - {name: async-squares, entrypoint: "flows.py:squares"}
"""


def deploy(root: Path) -> None:
    root.mkdir(parents=True)
    (root / "flows.py").write_text(textwrap.dedent(FLOWS).lstrip())
    (root / "stratoflow.yaml").write_text(textwrap.dedent(CONFIG).lstrip())
    deploy_project(root)


def test_a_deployed_async_flow_runs_through_the_worker_entry_point(
    installation: Installation, tmp_path: Path
) -> None:
    deploy(tmp_path / "project")
    marker = tmp_path / "first-attempt"
    run = run_deployment("async-squares", {"n": 4, "marker": str(marker)}, timeout=0)
    (message,) = messages(installation.receive())

    # Attempt 1 fails: the run goes back to its queue for the retry.
    handed_back = execute_flow_run(message.flow_run_id)
    assert (handed_back.type, handed_back.name) == (StateType.SCHEDULED, "AwaitingRetry")
    (retry,) = messages(installation.receive(after=1))
    assert (retry.flow_run_id, retry.attempt) == (run.id, 2)

    # Attempt 2, claimed again by a worker, gathers its async tasks and completes.
    state = execute_flow_run(retry.flow_run_id)

    assert (state.type, state.name) == (StateType.COMPLETED, "Completed")
    stored = runs.read_flow_run(run.id)
    assert stored.state is not None and stored.state.is_completed()
    assert stored.run_count == 2
    assert runs.read_result(stored) == 0 + 1 + 4 + 9
    task_runs = runs.read_task_runs(run.id)
    assert sorted(t.name for t in task_runs) == [f"square-{i}" for i in range(4)]
    assert all(t.state is not None and t.state.is_completed() for t in task_runs)

"""A deployed run signs its pickled results with its work pool's key, and only when its
deployment opted in to cloudpickle results (docs/security.md). On moto, through
`execute_flow_run`, the one path every worker kind runs."""

from __future__ import annotations

from pathlib import Path

from _deploy_fixtures import Installation, deploy_files, installation  # noqa: F401

from stratoflow.deployments.runs import schedule_flow_run
from stratoflow.result_signing import signer_of
from stratoflow.workers.execute import execute_flow_run

PROJECT = {
    "flows.py": """
        from stratoflow import flow

        @flow
        def pair(x: int = 1) -> tuple[int, int]:
            return (x, 2 * x)
    """,
    "stratoflow.yaml": """
        work_pools:
          onprem: {}
          serverless: {type: lambda}
        deployments:
          - {name: opted-in, entrypoint: "flows.py:pair", work_pool: onprem,
             pickle_results: true}
          - {name: serverless-pair, entrypoint: "flows.py:pair", work_pool: serverless,
             pickle_results: true}
          - {name: json-only, entrypoint: "flows.py:pair", work_pool: onprem}
    """,
}


def _deploy(installation: Installation, tmp_path: Path) -> None:
    deploy_files(installation, tmp_path / "project", PROJECT, pools=("onprem", "serverless"))


def _execute(installation: Installation, deployment: str) -> str:
    platform = installation.platform
    run, _ = schedule_flow_run(
        platform,
        platform.deployments.get(deployment),
        scheduled_time=installation.clock.now(),
        parameters={"x": 3},
    )
    state = execute_flow_run(run.id, platform, worker="test")
    assert state.is_completed(), state
    return run.id


def test_a_deployed_run_signs_its_pickled_result_with_its_pools_key(
    installation: Installation, tmp_path: Path
) -> None:
    _deploy(installation, tmp_path)
    backend = installation.new_platform().services.backend  # another process reads it
    for deployment, pool in (("opted-in", "onprem"), ("serverless-pair", "serverless")):
        run = backend.read_flow_run(_execute(installation, deployment))
        record = run.result_record
        assert record is not None and record.serializer == "cloudpickle"
        assert signer_of(record.signature) == pool
        assert record.load() == (3, 6)


def test_without_the_opt_in_a_deployed_runs_pickle_is_not_stored(
    installation: Installation, tmp_path: Path
) -> None:
    _deploy(installation, tmp_path)
    run_id = _execute(installation, "json-only")
    run = installation.new_platform().services.backend.read_flow_run(run_id)
    assert run.state_name == "Completed"
    assert run.result_record is None

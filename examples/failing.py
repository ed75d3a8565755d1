"""A flow that fails: its on_failure hook runs, and the run ends Failed with the reason."""

from __future__ import annotations

from stratoflow import flow, get_run_logger, task
from stratoflow.flows import Flow
from stratoflow.models import FlowRun
from stratoflow.states import State


@task
def validate(batch: list[int]) -> list[int]:
    bad = [x for x in batch if x < 0]
    if bad:
        raise ValueError(f"negative amounts in batch: {bad}")
    return batch


def page_on_call(flow: Flow[..., int], flow_run: FlowRun, state: State) -> None:
    get_run_logger().warning(
        "on_failure hook: paging on-call, %r ended %s: %s", flow_run.name, state.name, state.message
    )


@flow(on_failure=[page_on_call])
def nightly_report(batch: list[int] | None = None) -> int:
    return sum(validate(batch if batch is not None else [3, -1, 4]))


if __name__ == "__main__":
    nightly_report()

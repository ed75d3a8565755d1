"""A durable flow: it prepares a payout, suspends until a person approves it (holding no
process while it waits), sleeps without compute, then pays. Resume it with

    strato flow-run resume <flow run id> --input approved=true --input approver=ana

Its next attempt replays `prepare` (it does not run again) and goes on from the pause.
"""

from __future__ import annotations

import stratoflow
from stratoflow import flow, get_run_logger, task
from stratoflow.flow_runs import suspend_flow_run
from stratoflow.input import RunInput


class Approval(RunInput):
    approved: bool
    approver: str


@task
def prepare(amount: int) -> dict[str, int]:
    get_run_logger().info("Prepared a payout of %d", amount)
    return {"amount": amount, "fee": amount // 100}


@task
def pay(payout: dict[str, int], approver: str) -> str:
    return f"paid {payout['amount'] - payout['fee']} (approved by {approver})"


@flow(log_prints=True)
def payout(amount: int = 1200) -> str:
    prepared = prepare(amount)
    answer = suspend_flow_run(wait_for_input=Approval, timeout=3600)
    if not answer.approved:
        return "rejected"
    stratoflow.sleep(2)  # a cooling-off period, without a process
    return pay(prepared, answer.approver)

"""Deployments: definitions, code bundles, storage and runs.

`run_deployment` is importable from here, as from Prefect's `prefect.deployments`.
"""

from stratoflow.deployments.runs import run_deployment

__all__ = ["run_deployment"]

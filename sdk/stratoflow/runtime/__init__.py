"""Read the current run from anywhere inside it, as in Prefect:

    from stratoflow.runtime import deployment, flow_run, task_run
    flow_run.id, flow_run.name, flow_run.parameters, task_run.run_count, deployment.name

Outside a run, ids and names are None and parameters are empty.
"""

from stratoflow.runtime import deployment, flow_run, task_run

__all__ = ["deployment", "flow_run", "task_run"]

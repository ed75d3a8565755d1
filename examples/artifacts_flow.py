"""Artifacts, variables and a secret, as in Prefect 3: a report flow reads its threshold
from a variable (with a default when the variable is not set), publishes a table of
regions from a task and a markdown summary from the flow, both keyed so that each run
adds a new version, and "publishes" the summary with a token kept in a `Secret` block
(Secrets Manager with the AWS backend; never logged).

    python examples/artifacts_flow.py                # saves the secret, then runs
    strato run examples/artifacts_flow.py:regional_report
    strato variable set report_threshold 50          # then run again
    strato artifact inspect regional-summary
"""

from __future__ import annotations

from stratoflow import flow, get_run_logger, task
from stratoflow.artifacts import create_markdown_artifact, create_table_artifact
from stratoflow.blocks import Secret
from stratoflow.variables import Variable

DEFAULT_THRESHOLD = 100
TOKEN_BLOCK = "report-publish-token"
"""The Secret block holding the publishing token: saved by an operator, loaded by runs."""


@task
def count_rows() -> list[dict[str, object]]:
    rows = [
        {"region": "eu-west-1", "rows": 120},
        {"region": "us-east-1", "rows": 80},
        {"region": "ap-south-1", "rows": 45},
    ]
    create_table_artifact(rows, key="regional-rows", description="Rows loaded per region")
    return rows


@flow
def regional_report() -> list[str]:
    threshold = Variable.get("report_threshold", default=DEFAULT_THRESHOLD)
    rows = count_rows()
    below = [str(r["region"]) for r in rows if int(str(r["rows"])) < threshold]
    lines = [f"- {region}" for region in below] or ["- none"]
    summary = f"# Regional report\n\nRegions below {threshold} rows:\n\n" + "\n".join(lines)
    create_markdown_artifact(summary, key="regional-summary")
    publish(summary)
    get_run_logger().info("%d region(s) below %s rows", len(below), threshold)
    return below


@task
def publish(summary: str) -> int:
    token = Secret.load(TOKEN_BLOCK).get()
    # Stands for an authenticated HTTP call; the token itself is never logged.
    get_run_logger().info(
        "Published the summary (%d characters) with a %d-character token",
        len(summary),
        len(token),
    )
    return len(summary)


if __name__ == "__main__":
    Secret(value="example-token-1234").save(TOKEN_BLOCK, overwrite=True)  # an operator's step
    print(regional_report())

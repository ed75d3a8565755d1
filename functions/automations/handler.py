"""Automations Lambda: the state table's DynamoDB stream (NEW_AND_OLD_IMAGES).

Per record: derive the events it stands for (flow run and task run state changes,
deployment and work queue changes, events written by `emit_event`), store the derived
ones (idempotent), and pass the record's events to the automations engine.

A record that raises is reported in `batchItemFailures` (powertools BatchProcessor);
the event source mapping (CDK: `ReportBatchItemFailures`, bisect on error, a bounded
`retryAttempts` and `maxRecordAge`, an SQS on-failure destination) retries it and, once
the retries are used up, sends its description to the failure destination.
"""

from __future__ import annotations

from typing import Any

# Imported before pydantic is (any stratoflow module imports it): powertools' batch
# utility, imported after pydantic, also loads its parser's event models, ~30 ms of the
# cold start (aws_lambda_powertools/utilities/batch/types.py). The stream processing
# (stratoflow.events.stream) uses it.
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from stratoflow.automations.engine import AutomationEngine
from stratoflow.events.stream import process_stream_batch
from stratoflow.platform import get_platform

logger = Logger(service="stratoflow-automations")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    response = process_stream_batch(records, get_platform(), engine_factory=AutomationEngine)
    failures = response.get("batchItemFailures") or []
    logger.info("Stream batch", extra={"records": len(records), "failed": len(failures)})
    if failures:
        logger.warning("Stream records failed", extra={"batch_item_failures": failures})
    return response

"""What a poller hands the flow run process it starts: the run it has just claimed and
the run's deployment, so that the process does not read them again (two strongly
consistent reads per run, docs/workers.md "What a run costs").

Trust: the process is the poller's own child, started with its environment and its
credentials; what its parent hands it is no less trusted than what it would read itself.
The run item is worker-written either way, and is rebuilt here exactly as a read rebuilds
it (`flow_run_from_item`, with the process's own result verifier). The deployment is the
poller's read of the table, made after the run's message was received (so after the run
was created, as the process's own read would be). The process checks that a handoff is
about its run and its run's deployment; one it cannot use is ignored with a warning and
the process reads the run as before.

The handoff travels as a command-line option only where no other user can read it: in
the fork server's request (the forked child's `sys.argv`; the kernel shows the server's
command line) and on a warm process's stdin. A fresh process gets its command line
without it (`without_handoff`): a run's parameters are not for `ps`.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from stratoflow.backends.aws.items import flow_run_from_item, flow_run_to_item
from stratoflow.backends.aws.result_refs import ResultRefs
from stratoflow.deployments.models import Deployment
from stratoflow.models import FlowRun

logger = logging.getLogger("stratoflow.workers")

MAX_HANDOFF_CHARS = 256 * 1024
"""A run item is at most 400 KB; one this large is read by its process instead."""
FORMAT = 1


@dataclass(frozen=True)
class Handoff:
    run: FlowRun
    """The run as its poller claimed (and wrote) it."""
    deployment: Deployment | None
    """The run's deployment, read by the poller after it received the run's message."""


def encode_handoff(run: FlowRun, deployment: Deployment | None) -> str | None:
    """One line of JSON; None when the run is too large to travel this way (its process
    reads it)."""
    text = json.dumps(
        {
            "format": FORMAT,
            "flow_run": {k: _to_wire(v) for k, v in flow_run_to_item(run).items()},
            "deployment": deployment.model_dump(mode="json") if deployment else None,
        },
        separators=(",", ":"),
    )
    return text if len(text) <= MAX_HANDOFF_CHARS else None


def decode_handoff(text: str, flow_run_id: str, refs: ResultRefs) -> Handoff | None:
    """The handoff in `text` if it is about `flow_run_id`; None (and a warning) if not."""
    try:
        loaded = json.loads(text)
        if not isinstance(loaded, dict) or loaded.get("format") != FORMAT:
            raise ValueError(f"not a format {FORMAT} handoff")
        run = flow_run_from_item({k: _from_wire(v) for k, v in loaded["flow_run"].items()}, refs)
        raw = loaded.get("deployment")
        deployment = Deployment.model_validate(raw) if raw is not None else None
    except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
        logger.warning("Ignoring the worker's handoff of flow run %s: %s", flow_run_id, exc)
        return None
    if run.id != flow_run_id:
        logger.warning("Ignoring a handoff of flow run %s given for %s", run.id, flow_run_id)
        return None
    if deployment is not None and deployment.name != run.deployment_name:
        deployment = None
    return Handoff(run, deployment)


def _to_wire(value: dict[str, Any]) -> dict[str, Any]:
    """A low-level attribute value as DynamoDB's JSON wire format has it (binary values,
    a compressed state history, in base64)."""
    ((kind, raw),) = value.items()
    if kind == "B":
        return {"B": base64.b64encode(raw).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(b).decode() for b in raw]}
    if kind == "M":
        return {"M": {k: _to_wire(v) for k, v in raw.items()}}
    if kind == "L":
        return {"L": [_to_wire(v) for v in raw]}
    return value


def _from_wire(value: dict[str, Any]) -> dict[str, Any]:
    ((kind, raw),) = value.items()
    if kind == "B":
        return {"B": base64.b64decode(raw, validate=True)}
    if kind == "BS":
        return {"BS": [base64.b64decode(b, validate=True) for b in raw]}
    if kind == "M":
        return {"M": {k: _from_wire(v) for k, v in raw.items()}}
    if kind == "L":
        return {"L": [_from_wire(v) for v in raw]}
    return value

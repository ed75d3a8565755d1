"""What each Lambda handler module may import at load time (its cold start).

Importing a handler is the Lambda INIT phase; `make bench` times it (bench/cold_start.py,
target under 300 ms). This pins the structure behind that figure, which timing on a
shared machine cannot: heavy modules of features a handler does not use at start are
loaded on first use, never at import. Each handler is imported in a fresh interpreter, as
Lambda does, and its `sys.modules` is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

EVERY_HANDLER_AVOIDS = (
    "stratoflow.cli",  # the CLI and its libraries
    "typer",
    "rich",
    "jsonschema",  # parameter schemas: checked when a run is created
    "stratoflow.records",  # artifacts and variables: built on first use
    "stratoflow.artifacts",
    "stratoflow.variables",
    "stratoflow.blocks",
    "jinja2",  # action templates: loaded by the first template (automations/sandbox.py)
    "yaml",  # automation and deployment definitions: read by the CLI
    "stratoflow.automations.loading",
    "pathspec",  # building a code bundle (deploy); workers only check bundles out
    "stratoflow.deployments.bundle_build",
    # Every AWS event model (~30-70 ms): powertools' batch utility loads them when it is
    # imported after pydantic, so each handler imports it (or its stream) first.
    "aws_lambda_powertools.utilities.parser",
)
AVOIDS = {
    # The control plane runs no flow: no engine; proactive automations load on the tick.
    # The sweep resumes timed-out event waits without the event models.
    "scheduler": (
        "stratoflow.engine.flow_engine",
        "stratoflow.automations",
        "stratoflow.events.models",
    ),
    # Starting a task and marking a run Crashed: no sweep (crashes.py), no events, no
    # background tasks.
    "ecs_dispatcher": (
        "stratoflow.engine.flow_engine",
        "stratoflow.automations",
        "stratoflow.sweeps",
        "stratoflow.background",
        "stratoflow.events",
        "stratoflow.durable",
    ),
    # The engine and the stream: not the API, the in-memory store, the Jinja sandbox.
    "automations": (
        "stratoflow.engine.flow_engine",
        "stratoflow.automations.api",
        "stratoflow.automations.memory",
        "stratoflow.automations.sandbox",
    ),
    # The Lambda worker runs flows (the engine is its job) but no automation; asset
    # events load the event models when a run materializes an asset.
    "lambda_worker": (
        "stratoflow.automations",
        "stratoflow.events.models",
        "stratoflow.background",
        # A poller's handoff (and the AWS item codec it loads): never given to a Lambda.
        "stratoflow.workers.handoff",
    ),
    # The task worker runs background tasks (the engine), no flow run and no automation;
    # it submits none (`Task.delay` loads the submission).
    "task_worker": (
        "stratoflow.engine.flow_engine",
        "stratoflow.automations",
        "stratoflow.events.models",
        "stratoflow.background.submit",
    ),
    # The UI renders what the SDK reads: no engine, no automation, no parser models.
    "api": (
        "stratoflow.engine.flow_engine",
        "stratoflow.automations.engine",
        "aws_lambda_powertools.utilities.parser",
        # Run events derived on read: loaded by the events and flow-run pages.
        "stratoflow.events.on_read",
        "stratoflow.events.run_events",
    ),
    # The result-keys custom resource (at deploy time) makes parameters: no run, no engine.
    "result_keys": (
        "stratoflow.engine.flow_engine",
        "stratoflow.automations.engine",
        "stratoflow.platform",
        "jinja2",
    ),
}

MAY_LOAD = {
    # Rendering pages is the UI's every request: its templates' engine loads with it.
    "api": ("jinja2",),
}
"""Exceptions to EVERY_HANDLER_AVOIDS: what a handler's first request needs anyway."""

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("handler", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(handler: str) -> set[str]:
    output = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "functions" / handler / "handler.py")],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"},
    ).stdout
    return set(json.loads(output.strip().splitlines()[-1]))


@pytest.mark.parametrize("handler", sorted(AVOIDS))
def test_a_handler_loads_only_what_its_start_needs(handler: str) -> None:
    loaded = _loaded(handler)
    assert "stratoflow.settings" in loaded  # the probe saw the real import
    heavy = {
        module
        for module in (*EVERY_HANDLER_AVOIDS, *AVOIDS[handler])
        if module not in MAY_LOAD.get(handler, ())
        and (module in loaded or any(m.startswith(f"{module}.") for m in loaded))
    }
    assert heavy == set(), f"{handler} imports {sorted(heavy)} at load time: load them lazily"


def test_every_handler_is_pinned() -> None:
    assert {p.parent.name for p in ROOT.glob("functions/*/handler.py")} == set(AVOIDS)

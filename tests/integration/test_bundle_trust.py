"""Security finding 5 (docs/security.md, "Code bundles are verified on every use"): a flow
run cannot plant code that a later run executes, and a deployment item's bundle location
and entrypoint are checked before any of its code runs.

The attacks are performed as a flow would: through deployed flows run by the worker
(`execute_flow_run`), against the same bundle cache under `$STRATOFLOW_HOME/bundles`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _deploy_fixtures import Installation, installation  # noqa: F401 - a fixture

from stratoflow import runs
from stratoflow.deployments.deploy import deploy_project
from stratoflow.deployments.models import BundleInfo, Deployment
from stratoflow.deployments.runs import run_deployment
from stratoflow.states import StateType
from stratoflow.workers.execute import execute_flow_run

VICTIM = """
from stratoflow import flow


@flow
def victim() -> str:
    return "genuine"
"""

# The planted module: importing it is enough to leave the marker.
PLANTED = """
import os
from pathlib import Path

from stratoflow import flow

Path(os.environ["PLANTED_MARKER"]).write_text("planted code ran")


@flow
def victim() -> str:
    return "planted"
"""

# A hostile flow: it knows the victim's bundle sha (deployment items are readable) and
# writes everything it can into the worker's bundle cache, old and new layouts alike.
EVIL = """
import io
import os
import zipfile
from pathlib import Path

from stratoflow import flow

PLANTED = {planted!r}


@flow
def plant(target: str) -> str:
    cache = Path(os.environ["STRATOFLOW_HOME"]) / "bundles"
    cache.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("flows.py", PLANTED)
    (cache / f"{{target}}.zip").write_bytes(buffer.getvalue())  # the cached zip
    old = cache / target  # the extracted directory earlier versions ran from
    old.mkdir(exist_ok=True)
    (old / "flows.py").write_text(PLANTED)
    # Its own checkout too: a later run of the same bundle must not see this.
    Path(__file__).write_text(PLANTED)
    (Path(__file__).parent / "sitecustomize.py").write_text(PLANTED)
    return "planted"
"""


def project(root: Path, name: str, entrypoint: str, code: str) -> Path:
    root.mkdir(parents=True)
    (root / "stratoflow.yaml").write_text(
        textwrap.dedent(
            f"""
            deployments:
              - {{name: {name}, entrypoint: "{entrypoint}"}}
            """
        )
    )
    (root / "flows.py").write_text(textwrap.dedent(code))
    return root


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "planted-code-ran"
    monkeypatch.setenv("PLANTED_MARKER", str(path))
    return path


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    # Listen on the logger itself: the `stratoflow` logger does not propagate to the root
    # once a run has set up logging.
    logger = logging.getLogger("stratoflow.deployments")
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


@pytest.fixture
def victim(installation: Installation, tmp_path: Path) -> Deployment:
    (result,) = deploy_project(project(tmp_path / "victim", "victim", "flows.py:victim", VICTIM))
    return result.deployment


def downloads(installation: Installation) -> list[str]:
    """The S3 paths the worker's bundle store downloads from here on."""
    paths: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:  # a value would replace the call
        paths.append(params["url_path"])

    installation.platform.bundles.client.meta.events.register("before-call.s3.GetObject", record)
    return paths


def run(name: str, parameters: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """Run a deployment as the worker does: its final state and result (None if failed)."""
    flow_run = run_deployment(name, parameters, timeout=0)
    state = execute_flow_run(flow_run.id)
    stored = runs.read_flow_run(flow_run.id)
    return state, runs.read_result(stored) if state.is_completed() else None


def test_code_planted_in_the_cache_by_a_flow_never_runs_in_a_later_run(
    installation: Installation,
    victim: Deployment,
    marker: Path,
    tmp_path: Path,
    warnings: pytest.LogCaptureFixture,
) -> None:
    gets = downloads(installation)
    state, result = run("victim")  # downloads and caches the genuine bundle
    assert (state.type, result) == (StateType.COMPLETED, "genuine")
    evil_code = EVIL.format(planted=PLANTED)
    deploy_project(project(tmp_path / "evil", "evil", "flows.py:plant", evil_code))

    state, result = run("evil", {"target": victim.bundle.sha256})
    assert (state.type, result) == (StateType.COMPLETED, "planted")
    cache = tmp_path / "home" / "bundles"
    planted = (cache / f"{victim.bundle.sha256}.zip").read_bytes()
    assert hashlib.sha256(planted).hexdigest() != victim.bundle.sha256  # the plant is there

    state, result = run("victim")

    assert (state.type, result) == (StateType.COMPLETED, "genuine")
    assert not marker.exists()
    assert gets.count(f"/{victim.bundle.key}") == 2  # the tampered copy was downloaded again
    assert "does not match its address" in warnings.text
    cached = (cache / f"{victim.bundle.sha256}.zip").read_bytes()
    assert hashlib.sha256(cached).hexdigest() == victim.bundle.sha256  # healed
    # The evil flow's own changes to its checkout died with its run.
    state, result = run("evil", {"target": victim.bundle.sha256})
    assert (state.type, result) == (StateType.COMPLETED, "planted")
    assert not marker.exists()
    assert list((cache / "runs").iterdir()) == []


def test_a_tampered_bundle_that_cannot_be_healed_fails_the_run_and_never_runs(
    installation: Installation, victim: Deployment, marker: Path, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("flows.py", PLANTED)
    cache = tmp_path / "home" / "bundles"
    cache.mkdir(parents=True)
    (cache / f"{victim.bundle.sha256}.zip").write_bytes(buffer.getvalue())
    s3 = installation.session.client("s3")
    s3.put_object(Bucket=victim.bundle.bucket, Key=victim.bundle.key, Body=buffer.getvalue())

    state, _ = run("victim")

    assert state.type is StateType.FAILED
    assert state.message is not None
    assert state.message.startswith(
        f"The flow's code could not be loaded: The code bundle at "
        f"s3://stratoflow-code/{victim.bundle.key} does not match its address: its sha256 is "
    )
    assert state.message.endswith(
        "Delete the object and redeploy (`strato deploy`) to upload it again."
    )
    assert "\n" not in state.message
    assert not marker.exists()


OTHER_SHA = "ab" * 32


@pytest.mark.parametrize(
    ("bundle", "expected"),
    [
        pytest.param(
            {"bucket": "someone-elses-code"},
            "The deployment's code bundle is in bucket 'someone-elses-code', not this "
            "installation's code bucket 'stratoflow-code': refusing to run code from another "
            "bucket. Redeploy it (`strato deploy`) to record its code bundle again. If "
            "'stratoflow-code' is wrong, set STRATOFLOW_CODE_BUCKET on the worker to the "
            "installation's code bucket.",
            id="foreign-bucket",
        ),
        pytest.param(
            {"key": "bundles/latest.zip"},
            "The deployment's code bundle key 'bundles/latest.zip' is not the content address "
            "of its sha256 (expected 'bundles/{sha}.zip'): refusing it. Redeploy it "
            "(`strato deploy`) to record its code bundle again.",
            id="not-a-content-address",
        ),
        pytest.param(
            {"key": f"bundles/{OTHER_SHA}.zip"},
            f"The deployment's code bundle key 'bundles/{OTHER_SHA}.zip' is not the content "
            "address of its sha256 (expected 'bundles/{sha}.zip'): refusing it. Redeploy it "
            "(`strato deploy`) to record its code bundle again.",
            id="key-of-another-sha",
        ),
        pytest.param(
            {"sha256": "../../etc"},
            "The deployment's code bundle sha256 '../../etc' is not 64 hexadecimal digits: "
            "refusing it. Redeploy it (`strato deploy`) to record its code bundle again.",
            id="not-a-sha",
        ),
    ],
)
def test_a_deployment_bundle_outside_the_code_bucket_content_address_is_refused(
    installation: Installation, victim: Deployment, bundle: dict[str, str], expected: str
) -> None:
    gets = downloads(installation)
    recorded = victim.bundle.model_dump()
    installation.platform.deployments.put(
        victim.model_copy(update={"bundle": BundleInfo(**{**recorded, **bundle})})
    )

    state, _ = run("victim")

    message = "The flow's code could not be loaded: " + expected.format(sha=victim.bundle.sha256)
    assert (state.type, state.message) == (StateType.FAILED, message)
    assert gets == []  # refused before anything is downloaded
    # Nothing else is lost: the worker goes on, and the repaired deployment runs.
    installation.platform.deployments.put(victim)
    assert run("victim")[1] == "genuine"


@pytest.mark.parametrize(
    ("entrypoint", "refusal"),
    [
        ("{outside}:victim", "absolute paths are refused"),
        ("../outside.py:victim", "'..' is refused"),
        ("sub/../../outside.py:victim", "'..' is refused"),
    ],
)
def test_an_entrypoint_outside_the_bundle_is_refused(
    installation: Installation,
    victim: Deployment,
    marker: Path,
    tmp_path: Path,
    entrypoint: str,
    refusal: str,
) -> None:
    # Real files where the entrypoints point, so a refusal is not just a missing file.
    outside = tmp_path / "outside.py"
    outside.write_text(PLANTED)
    runs_dir = tmp_path / "home" / "bundles" / "runs"
    runs_dir.mkdir(parents=True)
    (runs_dir / "outside.py").write_text(PLANTED)
    (runs_dir.parent / "outside.py").write_text(PLANTED)
    given = entrypoint.format(outside=outside)
    installation.platform.deployments.put(victim.model_copy(update={"entrypoint": given}))

    state, _ = run("victim")

    assert state.type is StateType.FAILED
    assert state.message == (
        f"The flow's code could not be loaded: Entrypoint {given!r}: {refusal}, the file must "
        "be inside the deployment's code bundle. Redeploy with an entrypoint relative to the "
        "project, like 'flows/etl.py:etl'."
    )
    assert not marker.exists()
    installation.platform.deployments.put(victim)
    assert run("victim")[1] == "genuine"

"""A background task run's parameters as stored: JSON, or signed cloudpickle when opted in.

The parameters are untrusted input to the task worker (anyone who may send to the task
queue and write `TASKRUN#` items could have written them), so a pickle is loaded only
when its signature verifies under the `_tasks` key (stratoflow.result_signing), exactly
like a pickled result. JSON decoding runs no code.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stratoflow.exceptions import OptionError, ResultRefused
from stratoflow.resources import TASKS_SIGNING_DOMAIN
from stratoflow.result_signing import KeyUnavailable, ResultSigner, ResultVerifier
from stratoflow.results import AutoSerializer, PickleSerializer, load_pickle

MAX_PARAMETER_BYTES = 300_000
"""Stored in one DynamoDB item (400 KB at most, with room for its key and attributes)."""


class ParametersNotStorable(OptionError):
    """Parameters that cannot be sent to a task worker as they are."""


class StoredParameters(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    serializer: Literal["json", "cloudpickle"]
    data: str = Field(max_length=2 * MAX_PARAMETER_BYTES)
    """JSON text, or the base64 of the pickle."""
    signature: str | None = Field(default=None, max_length=256)
    wait_for: tuple[str, ...] = ()
    """Background task runs that must be final first (their ids)."""


def signed_key(task_run_id: str) -> str:
    """What a pickle's signature binds it to: this task run's parameters, nothing else."""
    return f"task-runs/{task_run_id}/parameters"


def encode_parameters(
    parameters: dict[str, Any],
    *,
    task_run_id: str,
    task_name: str,
    pickle_allowed: bool,
    signer: ResultSigner | None,
    wait_for: tuple[str, ...] = (),
) -> StoredParameters:
    """JSON when it holds the parameters unchanged; else signed cloudpickle, when
    `pickle_allowed`; else ParametersNotStorable saying how to fix it."""
    if AutoSerializer.choose(parameters).name == "json":
        text = json.dumps(parameters, separators=(",", ":"), allow_nan=False)
        _check_size(len(text.encode()), task_name)
        return StoredParameters(serializer="json", data=text, wait_for=wait_for)
    if not pickle_allowed:
        raise ParametersNotStorable(
            f"The parameters of {task_name}.delay(...) are not JSON (dict, list, str, int, "
            "float, bool, None), and a task worker runs them elsewhere. Pass JSON values "
            "(for a large or rich object, the S3 key or id where it is stored), or opt in "
            "to cloudpickle: result_serializer='cloudpickle' on the task or "
            "STRATOFLOW_PICKLE_RESULTS=true (docs/background-tasks.md)."
        )
    if signer is None:
        raise ParametersNotStorable(
            f"The parameters of {task_name}.delay(...) need cloudpickle, but this process "
            "has no result signer to sign them with; pass JSON values instead."
        )
    data = PickleSerializer().dumps(parameters)
    _check_size(len(data), task_name)
    try:
        signature = signer.for_domain(TASKS_SIGNING_DOMAIN).sign(
            serializer=PickleSerializer.name, key=signed_key(task_run_id), data=data
        )
    except KeyUnavailable as exc:
        raise ParametersNotStorable(
            f"The pickled parameters of {task_name}.delay(...) could not be signed ({exc}): "
            f"only holders of the {TASKS_SIGNING_DOMAIN!r} key (operators and task workers) "
            "may send pickled parameters. Pass JSON values instead."
        ) from None
    return StoredParameters(
        serializer="cloudpickle",
        data=base64.b64encode(data).decode(),
        signature=signature,
        wait_for=wait_for,
    )


def decode_parameters(
    stored: StoredParameters, *, task_run_id: str, verifier: ResultVerifier | None
) -> dict[str, Any]:
    """The parameters; raises ResultRefused for a pickle whose signature does not verify
    as the `_tasks` domain (or when there is nothing to verify it with)."""
    if stored.serializer == "json":
        try:
            value = json.loads(stored.data)
        except ValueError:
            raise ResultRefused(f"Task run {task_run_id}: its parameters are not JSON") from None
        if not isinstance(value, dict):
            raise ResultRefused(f"Task run {task_run_id}: its parameters are not a JSON object")
        return value
    what = f"Task run {task_run_id}'s parameters"
    if verifier is None:
        raise ResultRefused(f"{what}: pickled parameters need a verifier (the AWS backend)")
    try:
        data = base64.b64decode(stored.data, validate=True)
    except binascii.Error:
        raise ResultRefused(f"{what}: not base64") from None
    domain = verifier.verify(
        stored.signature,
        serializer=PickleSerializer.name,
        key=signed_key(task_run_id),
        data=data,
        what=what,
    )
    if domain != TASKS_SIGNING_DOMAIN:
        raise ResultRefused(
            f"{what}: signed as {domain!r}, not {TASKS_SIGNING_DOMAIN!r}; they were not loaded."
        )
    value = load_pickle(data)  # verified above
    if not isinstance(value, dict):
        raise ResultRefused(f"{what}: not a mapping of parameter names")
    return value


def _check_size(size: int, task_name: str) -> None:
    if size > MAX_PARAMETER_BYTES:
        raise ParametersNotStorable(
            f"The parameters of {task_name}.delay(...) are {size} bytes, over "
            f"{MAX_PARAMETER_BYTES}: store the data (in S3, say) and pass its key."
        )

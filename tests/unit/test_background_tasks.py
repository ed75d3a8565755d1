"""Background tasks without I/O: messages, stored parameters (JSON, signed pickles),
admission decisions, `.delay` on the memory backend (a background thread), loading."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import cloudpickle
import pytest

from stratoflow import task
from stratoflow.background.admission import (
    Abandoned,
    Drop,
    Ready,
    Refuse,
    admit,
    upstream_problem,
)
from stratoflow.background.futures import BackgroundTaskFuture
from stratoflow.background.loading import load_tasks
from stratoflow.background.messages import TaskRunMessage, parse_task_message
from stratoflow.background.parameters import (
    MAX_PARAMETER_BYTES,
    ParametersNotStorable,
    decode_parameters,
    encode_parameters,
)
from stratoflow.background.submit import new_task_run
from stratoflow.context import get_services
from stratoflow.exceptions import OptionError, ResultRefused
from stratoflow.resources import TASKS_SIGNING_DOMAIN, task_queue_name
from stratoflow.result_signing import ResultSigner, ResultVerifier, StaticKeys
from stratoflow.states import Cancelled, Completed, Running, StateType
from stratoflow.testing import stratoflow_test_harness
from stratoflow.workers.messages import MalformedMessage

KEYS = StaticKeys({TASKS_SIGNING_DOMAIN: b"t" * 64, "_operators": b"o" * 64, "etl": b"e" * 64})
LOADED: list[str] = []


def acts() -> None:
    LOADED.append("acted")


class Acts:
    def __reduce__(self) -> tuple[Any, ...]:
        return (acts, ())


@task
def double(x: int) -> int:
    return 2 * x


@task
def explode(x: int) -> int:
    raise ValueError(f"no {x}")


@pytest.fixture(autouse=True)
def harness():  # type: ignore[no-untyped-def]
    LOADED.clear()
    with stratoflow_test_harness() as found:
        yield found


# Messages


def test_a_message_round_trips_and_junk_is_malformed() -> None:
    message = TaskRunMessage(task_run_id="r1", task_key="double-1234abcd")
    assert parse_task_message(message.body()) == message
    for body in ("", "not json", '{"kind": "flow-run", "flow_run_id": "x"}', "x" * 20_000):
        with pytest.raises(MalformedMessage):
            parse_task_message(body)


def test_the_task_queue_cannot_be_a_work_queue() -> None:
    # Work queues are `<prefix>-<pool>-<queue>`: two dashes after the prefix.
    assert task_queue_name("sf") == "sf-tasks"


# Parameters


def test_json_parameters_are_stored_as_json() -> None:
    stored = encode_parameters(
        {"a": [1, 2], "b": None}, task_run_id="r", task_name="t", pickle_allowed=False, signer=None
    )
    assert stored.serializer == "json" and stored.signature is None
    assert decode_parameters(stored, task_run_id="r", verifier=None) == {"a": [1, 2], "b": None}


def test_other_parameters_are_refused_without_the_opt_in_naming_it() -> None:
    with pytest.raises(ParametersNotStorable, match="STRATOFLOW_PICKLE_RESULTS"):
        encode_parameters(
            {"a": (1, 2)}, task_run_id="r", task_name="t", pickle_allowed=False, signer=None
        )
    with pytest.raises(ParametersNotStorable, match="no result signer"):
        encode_parameters(
            {"a": (1, 2)}, task_run_id="r", task_name="t", pickle_allowed=True, signer=None
        )


def test_too_large_parameters_are_refused() -> None:
    with pytest.raises(ParametersNotStorable, match="pass its key"):
        encode_parameters(
            {"a": "x" * MAX_PARAMETER_BYTES},
            task_run_id="r",
            task_name="t",
            pickle_allowed=False,
            signer=None,
        )


def signed(value: dict[str, Any], run_id: str = "r", keys: StaticKeys = KEYS) -> Any:
    return encode_parameters(
        value,
        task_run_id=run_id,
        task_name="t",
        pickle_allowed=True,
        signer=ResultSigner(keys, "_operators"),
    )


def test_pickled_parameters_are_signed_as_tasks_and_verified() -> None:
    stored = signed({"a": (1, 2)})
    assert stored.signature is not None and stored.signature.startswith("v1:_tasks:")
    verifier = ResultVerifier(KEYS)
    assert decode_parameters(stored, task_run_id="r", verifier=verifier) == {"a": (1, 2)}


def test_a_caller_without_the_tasks_key_cannot_send_pickles() -> None:
    with pytest.raises(ParametersNotStorable, match="only holders of the '_tasks' key"):
        signed({"a": (1,)}, keys=StaticKeys({"etl": b"e" * 64}))


@pytest.mark.parametrize("change", ["bytes", "run", "unsigned", "other-domain", "not-base64"])
def test_tampered_pickled_parameters_are_refused_and_never_loaded(change: str) -> None:
    stored = signed({"a": (1,)})
    evil = base64.b64encode(cloudpickle.dumps({"a": Acts()})).decode()
    run_id = "r"
    if change == "bytes":
        stored = stored.model_copy(update={"data": evil})
    elif change == "run":
        run_id = "another-run"  # a genuine pickle replayed onto another run
    elif change == "unsigned":
        stored = stored.model_copy(update={"data": evil, "signature": None})
    elif change == "other-domain":
        data = base64.b64decode(evil)
        signature = ResultSigner(KEYS, "etl").sign(
            serializer="cloudpickle", key=f"task-runs/{run_id}/parameters", data=data
        )
        stored = stored.model_copy(update={"data": evil, "signature": signature})
    else:
        stored = stored.model_copy(update={"data": "%%%"})
    with pytest.raises(ResultRefused):
        decode_parameters(stored, task_run_id=run_id, verifier=ResultVerifier(KEYS))
    assert LOADED == []


def test_a_pickle_without_a_verifier_is_refused() -> None:
    with pytest.raises(ResultRefused, match="need a verifier"):
        decode_parameters(signed({"a": (1,)}), task_run_id="r", verifier=None)


# Admission (the memory backend holds the runs)


def stored_run(harness: Any, task_: Any = double) -> Any:
    run = new_task_run(task_, get_services())
    harness.services.backend.create_task_run(run)
    return run


def body(run_id: str, key: str) -> str:
    return TaskRunMessage(task_run_id=run_id, task_key=key).body()


def test_admission_decisions(harness: Any) -> None:
    backend = harness.services.backend
    now = harness.clock.now()
    served = {double.task_key: double}
    run = stored_run(harness)
    assert isinstance(admit(backend, body(run.id, double.task_key), served, now), Ready)
    refused = admit(backend, body(run.id, explode.task_key), served, now)
    assert isinstance(refused, Refuse) and "does not serve" in refused.reason
    other = stored_run(harness, explode)
    refused = admit(backend, body(other.id, double.task_key), served, now)
    assert isinstance(refused, Refuse) and "its message names task" in refused.reason
    assert isinstance(admit(backend, "junk", served, now), Refuse)
    gone = admit(backend, body("nope", double.task_key), served, now)
    assert type(gone) is Drop
    backend.set_task_run_state(run.id, Completed(), force=True)
    duplicate = admit(backend, body(run.id, double.task_key), served, now)
    assert type(duplicate) is Drop and "duplicate" in duplicate.reason


def test_admission_of_held_and_cancelled_runs(harness: Any) -> None:
    backend = harness.services.backend
    now = harness.clock.now()
    served = {double.task_key: double}
    held = stored_run(harness)
    backend.set_task_run_state(held.id, Running())
    held.heartbeat, held.sweep_due = now, now + timedelta(seconds=90)
    live = admit(backend, body(held.id, double.task_key), served, now)
    assert type(live) is Drop and "held by a live task worker" in live.reason
    # Its worker stopped renewing the lease: whoever gets the message settles it.
    later = now + timedelta(seconds=91)
    abandoned = admit(backend, body(held.id, double.task_key), served, later)
    assert isinstance(abandoned, Abandoned) and abandoned.run is held
    cancelled = stored_run(harness)
    backend.set_task_run_state(cancelled.id, Cancelled("by an operator"))
    dropped = admit(backend, body(cancelled.id, double.task_key), served, now)
    assert type(dropped) is Drop and "was cancelled" in dropped.reason


def test_upstream_problems(harness: Any) -> None:
    backend = harness.services.backend
    run = stored_run(harness)
    assert upstream_problem(backend, (run.id,)) == (False, None)
    backend.set_task_run_state(run.id, Completed(), force=True)
    assert upstream_problem(backend, (run.id,)) == (True, None)
    ready, failure = upstream_problem(backend, ("missing",))
    assert ready and failure is not None and "does not exist" in failure


# .delay on the memory backend


def test_delay_on_the_memory_backend_runs_in_a_background_thread() -> None:
    future = double.delay(21)
    assert isinstance(future, BackgroundTaskFuture)
    assert future.result(timeout=10) == 42
    assert future.state.type is StateType.COMPLETED
    history = [s.name for s in future.task_run.state_history]
    assert history[0] == "Scheduled"


def test_apply_async_waits_for_its_upstream_and_failures_raise() -> None:
    first = double.delay(1)
    second = double.apply_async(kwargs={"x": 5}, wait_for=[first])
    assert second.result(timeout=10) == 10
    failed = explode.apply_async((3,))
    with pytest.raises(ValueError, match="no 3"):
        failed.result(timeout=10)
    blocked = double.apply_async((2,), wait_for=[failed])
    blocked.wait(timeout=10)
    assert blocked.state.name == "NotReady"
    with pytest.raises(OptionError, match="takes the futures of other background"):
        double.apply_async((1,), wait_for=["not a future"])


def test_result_times_out_with_a_hint(harness: Any) -> None:
    run = stored_run(harness)  # nobody runs it
    future: BackgroundTaskFuture[int] = BackgroundTaskFuture(run.id, harness.services)
    with pytest.raises(TimeoutError, match="strato task-worker start"):
        future.result(timeout=0.2)


# Loading


def test_loading_names_what_is_wrong() -> None:
    assert [t.name for t in load_tasks([f"{__name__}:double"])] == ["double"]
    assert {t.name for t in load_tasks([__name__])} == {"double", "explode"}
    with pytest.raises(OptionError, match="not a task"):
        load_tasks([f"{__name__}:KEYS"])
    with pytest.raises(OptionError, match="was not found"):
        load_tasks(["no_such_module_anywhere:x"])
    with pytest.raises(OptionError, match="no file"):
        load_tasks(["/nonexistent/tasks.py:x"])


def test_json_is_what_is_stored() -> None:
    stored = encode_parameters(
        {"k": "v"}, task_run_id="r", task_name="t", pickle_allowed=True, signer=None
    )
    assert json.loads(stored.data) == {"k": "v"}

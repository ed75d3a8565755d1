"""The SQS message that asks a worker to run a flow run: JSON, never pickles."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stratoflow.exceptions import StratoflowError

MAX_BODY_BYTES = 16_384
"""A work message is a few hundred bytes; anything far larger is not ours."""


class MalformedMessage(StratoflowError):
    """A message body that is not a flow run message; it goes to the dead-letter queue."""


class FlowRunMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["flow-run"] = "flow-run"
    version: Literal[1] = 1
    flow_run_id: str = Field(min_length=1, max_length=64)
    deployment: str | None = None
    attempt: int = Field(default=1, ge=1)
    work_pool: str | None = Field(default=None, max_length=128)
    """The pool and queue the sender meant (set by WorkQueues.send); a worker refuses a
    message whose pool or queue is not its run's (stratoflow.workers.ownership)."""
    work_queue: str | None = Field(default=None, max_length=128)

    def body(self) -> str:
        return self.model_dump_json()


def parse_message(body: str | bytes) -> FlowRunMessage:
    """The message in `body`, or MalformedMessage saying what is wrong with it."""
    size = len(body.encode() if isinstance(body, str) else body)
    if size > MAX_BODY_BYTES:
        raise MalformedMessage(f"message body is {size} bytes, over {MAX_BODY_BYTES}")
    try:
        return FlowRunMessage.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()
        )
        raise MalformedMessage(f"not a flow run message ({problems})") from None

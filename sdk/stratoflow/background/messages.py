"""The SQS message that asks a task worker to run a background task run: JSON only."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stratoflow.workers.messages import MAX_BODY_BYTES, MalformedMessage


class TaskRunMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["task-run"] = "task-run"
    version: Literal[1] = 1
    task_run_id: str = Field(min_length=1, max_length=64)
    task_key: str = Field(min_length=1, max_length=256)
    """The task the sender meant; a task worker refuses a message for a task it does not
    serve, or whose run's stored task key is another (stratoflow.background.admission)."""

    def body(self) -> str:
        return self.model_dump_json()


def parse_task_message(body: str | bytes) -> TaskRunMessage:
    """The message in `body`, or MalformedMessage saying what is wrong with it."""
    size = len(body.encode() if isinstance(body, str) else body)
    if size > MAX_BODY_BYTES:
        raise MalformedMessage(f"message body is {size} bytes, over {MAX_BODY_BYTES}")
    try:
        return TaskRunMessage.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()
        )
        raise MalformedMessage(f"not a task run message ({problems})") from None

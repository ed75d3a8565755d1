"""`Secret`: one secret value, a string or JSON (Prefect 3's `prefect.blocks.system.Secret`).

    from stratoflow.blocks.system import Secret

    Secret(value="sk-1234567890").save("openai-key", overwrite=True)   # an operator
    Secret.load("openai-key").get()                                      # a flow

The whole value is secret: with the AWS backend it is kept in AWS Secrets Manager, never
in the state table (docs/blocks.md). `repr` and `str` show `**********`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Generic, TypeVar

from pydantic import Field, JsonValue, SecretStr, StrictStr, field_validator
from pydantic import Secret as PydanticSecret

from stratoflow.blocks.core import Block

_SecretValue = (
    Annotated[StrictStr, Field(title="string")] | Annotated[JsonValue, Field(title="JSON")]
)
T = TypeVar("T", bound=_SecretValue)


class Secret(Block, Generic[T]):
    """A block that represents a secret value (a string or a JSON value)."""

    _description = "A secret value: a string or JSON, kept in AWS Secrets Manager."

    value: SecretStr | PydanticSecret[T] = Field(
        default=..., description="A value that should be kept secret."
    )

    @field_validator("value", mode="before")
    @classmethod
    def _wrap(cls, value: Any) -> Any:
        if isinstance(value, SecretStr | PydanticSecret):
            return value
        json.dumps(value)  # a TypeError for a value JSON cannot hold, as Prefect's
        return PydanticSecret[type(value)](value)  # type: ignore[misc,operator]

    def get(self) -> Any:
        """The value: a string that is JSON is returned parsed (as Prefect does)."""
        value = self.value.get_secret_value()
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value

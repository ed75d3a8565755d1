"""Field types of stratoflow's models (Prefect 3's `prefect.types`)."""

from __future__ import annotations

from typing import Any

import pydantic


class SecretDict(pydantic.Secret[dict[str, Any]]):
    """A dict whose values are secret: a block field of this type is kept with the
    block's secrets (AWS Secrets Manager), and shows as `**********`."""


__all__ = ["SecretDict"]

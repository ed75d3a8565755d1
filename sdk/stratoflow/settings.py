"""Configuration from the environment (prefix `STRATOFLOW_`), read once and cached."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stratoflow.exceptions import StratoflowError

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    """Everything stratoflow reads from the environment.

    Each field is read from `STRATOFLOW_<FIELD>` (for example `STRATOFLOW_HOME`).
    """

    model_config = SettingsConfigDict(env_prefix="STRATOFLOW_", extra="ignore", frozen=True)

    home: Path = Field(
        default=Path("~/.stratoflow"),
        description="Directory for local results and the local task cache.",
    )
    logging_level: LogLevel = Field(
        default="INFO", description="Level of run loggers printed to the console."
    )
    log_to_console: bool = Field(default=True, description="Print run logs to stderr.")
    thread_pool_max_workers: int | None = Field(
        default=None,
        ge=1,
        description="Threads of the default ThreadPoolTaskRunner (default: min(32, cpus + 4)).",
    )

    @field_validator("logging_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def storage_path(self) -> Path:
        return self.home.expanduser() / "storage"

    @property
    def cache_path(self) -> Path:
        return self.home.expanduser() / "cache"


class SettingsError(StratoflowError):
    """A `STRATOFLOW_*` environment variable holds a value that cannot be used."""


def load_settings() -> Settings:
    """Read settings from the environment, turning pydantic's report into one clear line each."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"STRATOFLOW_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"Invalid stratoflow configuration: {problems}") from None


@functools.cache
def get_settings() -> Settings:
    return load_settings()

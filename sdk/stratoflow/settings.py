"""Configuration from the environment (prefix `STRATOFLOW_`), read once and cached."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
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

    backend: Literal["memory", "aws"] = Field(
        default="memory",
        description="Where runs, states, results and logs live: 'memory' (this process) or "
        "'aws' (DynamoDB, S3 and CloudWatch Logs).",
    )
    region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("STRATOFLOW_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
        description="AWS region (STRATOFLOW_REGION, else AWS_REGION / AWS_DEFAULT_REGION).",
    )
    endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("STRATOFLOW_ENDPOINT_URL", "AWS_ENDPOINT_URL"),
        description="AWS endpoint override, e.g. the local emulator http://127.0.0.1:5000.",
    )
    table_name: str = Field(default="stratoflow", min_length=3, max_length=255)
    results_bucket: str = Field(default="stratoflow-results", min_length=3, max_length=63)
    code_bucket: str = Field(default="stratoflow-code", min_length=3, max_length=63)
    runs_log_group: str = Field(default="/stratoflow/runs", min_length=1, max_length=512)
    queue_prefix: str = Field(default="stratoflow", min_length=1, max_length=40)
    inline_result_max_bytes: int = Field(
        default=4096,
        ge=0,
        le=65536,
        description="Results up to this size are stored in the run's item, larger ones in S3.",
    )
    aws_retry_mode: Literal["standard", "adaptive", "legacy"] = Field(
        default="standard", description="botocore retry mode for every AWS call."
    )
    aws_max_attempts: int = Field(default=8, ge=1, le=20)
    task_run_flush_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Task run state changes are batched and written at most this late.",
    )
    log_flush_seconds: float = Field(default=2.0, gt=0)
    log_buffer_max_lines: int = Field(
        default=10000, ge=100, description="Log lines kept while CloudWatch is unreachable."
    )
    heartbeat_seconds: float = Field(
        default=10.0, gt=0, description="How often a running flow run records a heartbeat."
    )
    zombie_after_seconds: float = Field(
        default=90.0,
        gt=0,
        description="A Running flow run whose heartbeat is older than this is marked Crashed.",
    )
    pending_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        description="A claimed run not started within this is rescheduled (its worker died).",
    )
    cancelling_grace_seconds: float = Field(
        default=60.0, gt=0, description="A run stuck in Cancelling this long becomes Cancelled."
    )
    concurrency_lease_seconds: float = Field(
        default=30.0, gt=1, description="A concurrency slot's lease; its holder renews it."
    )
    worker_shutdown_grace_seconds: float = Field(
        default=30.0,
        ge=0,
        description="On SIGTERM, how long `strato worker` lets running flow runs finish before "
        "it stops them and hands them back to their queue.",
    )
    worker_start_method: Literal["forkserver", "spawn"] = Field(
        default="forkserver",
        description="How `strato worker start` starts each flow run's process: "
        "'forkserver' forks it from a process that imported stratoflow once (Linux; "
        "elsewhere 'spawn'), 'spawn' starts a fresh Python process (kept warm in advance).",
    )
    lambda_worker_min_remaining_seconds: float = Field(
        default=60.0,
        ge=0,
        description="The Lambda worker hands a message back to its queue instead of starting "
        "a run when less time than this is left in the invocation.",
    )
    lambda_worker_handback_seconds: float = Field(
        default=60.0,
        ge=0,
        description="A flow run on the Lambda worker hands itself back to its queue, at a "
        "task boundary, when less time than this (or than the next task's timeout_seconds) "
        "is left in the invocation; the next invocation replays what it did "
        "(docs/durability.md). Make it longer than your longest task.",
    )
    task_modules: str = Field(
        default="",
        description="The Lambda task worker: comma-separated modules (in its code bundle) "
        "whose tasks it serves (docs/background-tasks.md).",
    )
    webhook_allowed_hosts: str = Field(
        default="",
        description="Comma-separated hosts the call-webhook action of automations may call: "
        "`host` (https, port 443), `*.example.com` (subdomains), `host:8443` (another port), "
        "`http://host[:port]` (plain http, an opt-in); empty: none. Their addresses must be "
        "public.",
    )
    pickle_results: bool = Field(
        default=False,
        description="AWS backend: let results that JSON cannot hold be stored with "
        "cloudpickle (signed; docs/security.md) for every run of this process. Per flow or "
        "task: result_serializer='cloudpickle'; per deployment: `pickle_results: true`.",
    )
    store_flow_run_events: bool = Field(
        default=False,
        description="Store the `stratoflow.flow-run.<State>` events derived from flow runs' "
        "state changes. Off (the default): automations and `wait_for_event` still see them "
        "as they happen, and `strato events ls` and the UI derive them from the flow runs on "
        "read; storing them costs ~$5 per million deployed flow runs (docs/events.md). Set it "
        "alike for the automations function and for the processes that read events.",
    )
    store_task_run_events: bool = Field(
        default=False,
        description="Store the `stratoflow.task-run.*` events derived from task runs' state "
        "changes. Off (the default): automations and "
        "`wait_for_event` still see them as they happen, and `strato events ls --flow-run "
        "<id>` derives them from the task runs on read; storing them costs ~$7.50 per "
        "million task runs (docs/performance.md).",
    )
    store_heartbeat_events: bool = Field(
        default=False,
        description="Store the `stratoflow.flow-run.heartbeat` events (one per running flow "
        "run every `heartbeat_seconds`). Off (the default): automations still see them as "
        "they happen; storing them costs two write units per beat (docs/performance.md).",
    )
    event_retention_days: int = Field(
        default=7,
        ge=1,
        le=3650,
        description="Events (`strato events ls`) are kept this many days after they occurred "
        "(DynamoDB TTL).",
    )

    # The web UI (stratoflow.ui, docs/ui.md)
    ui_login_token: SecretStr | None = Field(
        default=None,
        description="Local UI (`strato dev`): the token of the login link that opens an "
        "operator session (`/login?token=...`). Unset: no token login (AWS uses Cognito).",
    )
    ui_viewer_token: SecretStr | None = Field(
        default=None,
        description="Local UI: a second token whose login link opens a read-only (viewer) session.",
    )
    ui_session_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="How long a UI session lasts."
    )
    ui_secure_cookies: bool = Field(
        default=True,
        description="Mark the UI's cookies Secure (HTTPS only); `strato dev` turns it off "
        "for its http://127.0.0.1 server.",
    )
    ui_public_url: str | None = Field(
        default=None,
        description="The UI's origin as browsers see it (the CloudFront URL, "
        "https://d123.cloudfront.net): the Cognito redirect URI and the Origin that "
        "state-changing requests must carry. Unset: the request's own Host.",
    )
    ui_cognito_domain: str | None = Field(
        default=None,
        description="The Cognito hosted login's base URL "
        "(https://<prefix>.auth.<region>.amazoncognito.com).",
    )
    ui_cognito_client_id: str | None = Field(
        default=None, description="The user pool's public app client (no secret; PKCE)."
    )
    ui_cognito_user_pool_id: str | None = Field(
        default=None,
        description="The user pool (us-east-1_AbC...): the ID token's issuer is "
        "https://cognito-idp.<region>.amazonaws.com/<pool id>.",
    )
    ui_operators_group: str = Field(
        default="operators",
        min_length=1,
        description="Members of this Cognito group get operator sessions (run, cancel, "
        "pause); everyone else signed in is a viewer (see ui_viewers_group).",
    )
    ui_viewers_group: str | None = Field(
        default=None,
        description="With STRATOFLOW_UI_COGNITO_*: only members of this Cognito group (and "
        "operators) may sign in, as viewers. Unset: every user of the pool may.",
    )
    ui_sign_in_parameter: str | None = Field(
        default=None,
        description="In a stack: the SSM parameter holding the UI's Cognito sign-in "
        "settings (JSON), which the stack writes; read at first use. "
        "STRATOFLOW_UI_COGNITO_* take precedence.",
    )

    @field_validator("logging_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def webhook_hosts(self) -> tuple[str, ...]:
        """`webhook_allowed_hosts` as a list of lowercase host names."""
        return tuple(h.strip().lower() for h in self.webhook_allowed_hosts.split(",") if h.strip())

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
            f"{_variable(err['loc'])}: {err['msg']} (got {err['input']!r})" for err in exc.errors()
        )
        raise SettingsError(f"Invalid stratoflow configuration: {problems}") from None


def _variable(location: tuple[int | str, ...]) -> str:
    name = str(location[0]) if location else "settings"
    if name.isupper():  # already an environment variable name (an alias)
        return name
    return f"STRATOFLOW_{name.upper()}"


@functools.cache
def get_settings() -> Settings:
    return load_settings()


def env_var(field: str) -> str:
    """The environment variable that sets the `Settings` field `field`:
    `env_var("table_name") == "STRATOFLOW_TABLE_NAME"`. Raises ValueError for a name that
    is not a field, so a typo fails where the variable is named (the CDK app, the CLI),
    not silently at run time."""
    if field not in Settings.model_fields:
        known = ", ".join(sorted(Settings.model_fields))
        raise ValueError(f"{field!r} is not a stratoflow setting (settings: {known})")
    return f"{Settings.model_config.get('env_prefix', '')}{field.upper()}"

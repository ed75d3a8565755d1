"""Where the UI's Cognito sign-in settings come from (stratoflow.ui.cognito signs in with
them): `STRATOFLOW_UI_COGNITO_*`, else, in a stack, the SSM parameter that
`STRATOFLOW_UI_SIGN_IN_PARAMETER` names, else none (the local login link only).

The stack writes the parameter (infra/constructs/web_ui.py, a `SignInParameter` as JSON)
and gives the API function only its name: the app client's callback URL names the
CloudFront distribution, whose origin is this function's URL, so the values cannot be
in the function's own environment without a dependency cycle. The function reads the
parameter at first use and again after CACHE_SECONDS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from stratoflow.exceptions import StratoflowError
from stratoflow.platform import Platform, get_platform
from stratoflow.resources import UI_OPERATORS_GROUP
from stratoflow.settings import Settings, env_var, get_settings

CALLBACK_PATH = "/auth/callback"
SIGNED_OUT_PATH = "/auth/signed-out"
"""The UI's paths the app client registers: Cognito sends the browser back to the public
URL's callback after signing in, and to its signed-out page after signing out."""
CACHE_SECONDS = 300.0
"""How long a function instance keeps the parameter's settings (a replaced app client
takes effect within this, without a new deployment of the function)."""


class SignInSettingsError(StratoflowError):
    """The sign-in settings are incomplete or not valid: the message says what to set."""


@dataclass(frozen=True)
class CognitoConfig:
    """What the UI needs to know of the user pool and its app client."""

    domain: str
    """The hosted login's base URL: https://<prefix>.auth.<region>.amazoncognito.com."""
    client_id: str
    issuer: str
    """The ID token's `iss`: https://cognito-idp.<region>.amazonaws.com/<user pool id>."""
    operators_group: str
    public_url: str | None = None
    """The UI's origin as browsers see it (the CloudFront URL), when not the request's."""
    viewers_group: str | None = None
    """Members get viewer sessions, and nobody outside it and the operators group signs
    in; None: every signed-in user who is no operator is a viewer."""

    @classmethod
    def from_settings(cls, settings: Settings) -> CognitoConfig | None:
        """From `STRATOFLOW_UI_COGNITO_*`; None when none of them is set."""
        given = {
            "ui_cognito_domain": settings.ui_cognito_domain,
            "ui_cognito_client_id": settings.ui_cognito_client_id,
            "ui_cognito_user_pool_id": settings.ui_cognito_user_pool_id,
        }
        if not any(given.values()):
            return None
        missing = [env_var(name) for name, value in given.items() if not value]
        if missing:
            raise SignInSettingsError(
                f"The UI's Cognito sign-in is configured in part: set {', '.join(missing)} "
                f"too (or unset the others and set {env_var('ui_sign_in_parameter')})."
            )
        pool = str(settings.ui_cognito_user_pool_id)
        region = pool.split("_", 1)[0]  # us-east-1_AbC123: the pool's region
        return cls(
            domain=str(settings.ui_cognito_domain).rstrip("/"),
            client_id=str(settings.ui_cognito_client_id),
            issuer=f"https://cognito-idp.{region}.amazonaws.com/{pool}",
            operators_group=settings.ui_operators_group,
            public_url=settings.ui_public_url,
            viewers_group=settings.ui_viewers_group,
        )


class SignInParameter(BaseModel):
    """The SSM parameter's document: what the stack knows once the user pool, its app
    client and the distribution exist. The stack builds it with this model (tokens as
    values), so both sides read one definition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    domain: str
    client_id: str
    issuer: str
    public_url: str
    operators_group: str = UI_OPERATORS_GROUP
    viewers_group: str | None = None

    def config(self) -> CognitoConfig:
        return CognitoConfig(
            domain=self.domain.rstrip("/"),
            client_id=self.client_id,
            issuer=self.issuer,
            operators_group=self.operators_group,
            public_url=self.public_url,
            viewers_group=self.viewers_group,
        )


def parse_parameter(text: str, *, name: str) -> CognitoConfig:
    try:
        return SignInParameter.model_validate_json(text).config()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SignInSettingsError(
            f"The UI's sign-in settings in the SSM parameter {name} are not valid "
            f"({problems}): deploy the stack again, which writes them."
        ) from None


class ConfigSource:
    """The sign-in settings in effect for one set of settings."""

    def __init__(
        self,
        settings: Settings,
        ssm: Callable[[], Any],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._ssm = ssm
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: tuple[float, CognitoConfig] | None = None

    def get(self) -> CognitoConfig | None:
        from_env = CognitoConfig.from_settings(self._settings)
        name = self._settings.ui_sign_in_parameter
        if from_env is not None or not name:
            return from_env
        with self._lock:
            now = self._monotonic()
            if self._cached is None or now - self._cached[0] >= CACHE_SECONDS:
                value = self._ssm().get_parameter(Name=name)["Parameter"]["Value"]
                self._cached = (now, parse_parameter(value, name=name))
            return self._cached[1]


_source: tuple[Platform, Settings, ConfigSource] | None = None


def cognito_config() -> CognitoConfig | None:
    """The Cognito sign-in settings in effect, None without Cognito (`strato dev`)."""
    global _source
    platform, settings = get_platform(), get_settings()
    if _source is None or _source[0] is not platform or _source[1] is not settings:
        backend: Any = platform.backend
        _source = (platform, settings, ConfigSource(settings, lambda: backend.clients.ssm))
    return _source[2].get()


def public_url() -> str | None:
    """The UI's origin as browsers see it: STRATOFLOW_UI_PUBLIC_URL, else the one the
    stack wrote with the sign-in settings (CloudFront's URL; the function itself sees its
    Function URL's host), else None (the request's own Host)."""
    configured = get_settings().ui_public_url
    if configured:
        return configured
    config = cognito_config()
    return config.public_url if config is not None else None

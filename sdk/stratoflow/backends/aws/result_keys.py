"""The keys that sign pickled results, read from SSM Parameter Store: one SecureString
parameter per signing domain, `/<queue prefix>/result-keys/<domain>`
(`stratoflow.resources.result_key_parameter_name`).

The stack creates one per work pool, one for operators (`_operators`) and one for
background tasks (`_tasks`), and grants each worker principal `ssm:GetParameter` on its
own pools' parameters only (docs/security.md). A key is read once per process and kept
`ttl` seconds; nothing is read until a pickled result is written or loaded, so runs
whose results are JSON never call Parameter Store.

A rotation is a new version of the parameter (`aws ssm put-parameter --overwrite`): the
latest version signs, and the version before it still verifies (read as
`<name>:<version>`), so a rotation breaks no reader.

Upgrading from a version that kept each key in a Secrets Manager secret
(`result_key_secret_name`): when the parameter cannot be read because it does not exist,
or because the principal's policy grants no `ssm:GetParameter` yet (IAM answers
AccessDenied before Parameter Store looks for the name), the secret is read instead, its
AWSCURRENT and AWSPREVIOUS stages as before. New workers therefore keep working against
a stack that is not deployed yet; the stack's deploy copies each secret into its
parameter (`result_key_setup`), so both give the same key.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from stratoflow.resources import result_key_parameter_name, result_key_secret_name
from stratoflow.result_signing import KeyUnavailable

logger = logging.getLogger(__name__)

CACHE_SECONDS = 3600.0
"""A rotated key is used for signing within the hour; until then signatures under the
previous version keep verifying, so a rotation breaks no reader."""
MIN_KEY_CHARACTERS = 32
FALLS_BACK_ON = frozenset({"ParameterNotFound", "AccessDeniedException"})
"""GetParameter errors after which the Secrets Manager secret of an earlier version is
read instead (see the module's docstring); any other error is the answer."""
_NO_VERSION = frozenset({"ParameterVersionNotFound", "ParameterNotFound"})
_WHERE = (
    "the stack (or `strato dev`) creates one per work pool, readable by that pool's "
    "workers and by operators"
)


@dataclass(frozen=True, slots=True)
class _Key:
    value: bytes
    version: int | None
    """The parameter version it is; None: read from the secret of an earlier version."""
    expires: float


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "error"))


class ParameterStoreResultKeys:
    """A KeySource (stratoflow.result_signing) over SSM Parameter Store, falling back to
    the Secrets Manager secrets of earlier versions."""

    def __init__(
        self,
        ssm: Any,
        secretsmanager: Any,
        prefix: str,
        *,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ssm = ssm
        self.secretsmanager = secretsmanager
        self.prefix = prefix
        self.ttl = ttl
        self.clock = clock
        self._current: dict[str, _Key] = {}
        self._previous: dict[str, tuple[_Key, bytes | None]] = {}
        """Per domain: the current key it was read for, and the key before that one."""
        self._lock = threading.Lock()

    def current(self, domain: str) -> bytes:
        return self._read_current(domain).value

    def previous(self, domain: str) -> bytes | None:
        key = self._read_current(domain)
        with self._lock:
            cached = self._previous.get(domain)
        if cached is not None and cached[0] is key:
            return cached[1]
        if key.version is None:
            value = self._secret_stage(domain, "AWSPREVIOUS")
        else:
            value = self._version(domain, key.version - 1)
        with self._lock:
            self._previous[domain] = (key, value)
        return value

    def cache_clear(self) -> None:
        """Forget every key read: the next use reads them again (as a new process would)."""
        with self._lock:
            self._current.clear()
            self._previous.clear()

    def _read_current(self, domain: str) -> _Key:
        now = self.clock()
        with self._lock:
            cached = self._current.get(domain)
        if cached is not None and cached.expires > now:
            return cached
        name = result_key_parameter_name(self.prefix, domain)
        try:
            parameter = self.ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
        except ClientError as exc:
            code = _code(exc)
            if code not in FALLS_BACK_ON:
                raise KeyUnavailable(
                    f"the parameter {name!r} could not be read ({code}): {_WHERE}"
                ) from None
            key = _Key(self._from_secret(domain, name, code), None, now + self.ttl)
        else:
            value = _checked(parameter.get("Value"), f"the parameter {name!r}")
            key = _Key(value, int(parameter["Version"]), now + self.ttl)
        with self._lock:
            self._current[domain] = key
        return key

    def _from_secret(self, domain: str, parameter: str, parameter_code: str) -> bytes:
        secret = result_key_secret_name(self.prefix, domain)
        try:
            response = self.secretsmanager.get_secret_value(
                SecretId=secret, VersionStage="AWSCURRENT"
            )
        except ClientError as exc:
            raise KeyUnavailable(
                f"the parameter {parameter!r} could not be read ({parameter_code}), nor the "
                f"secret {secret!r} of earlier versions ({_code(exc)}): {_WHERE}"
            ) from None
        logger.warning(
            "The key that signs the pickled results of %r was read from the Secrets Manager "
            "secret %r of an earlier version: the parameter %r could not be read (%s). "
            "Deploy the stack of this version, which creates the parameter "
            "(docs/security.md, 'Upgrading from Secrets Manager').",
            domain,
            secret,
            parameter,
            parameter_code,
        )
        return _checked(response.get("SecretString"), f"the secret {secret!r}")

    def _secret_stage(self, domain: str, stage: str) -> bytes | None:
        secret = result_key_secret_name(self.prefix, domain)
        try:
            response = self.secretsmanager.get_secret_value(SecretId=secret, VersionStage=stage)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None  # never rotated: there is no previous key
            raise KeyUnavailable(
                f"the secret {secret!r} could not be read ({_code(exc)}): {_WHERE}"
            ) from None
        return _checked(response.get("SecretString"), f"the secret {secret!r}")

    def _version(self, domain: str, version: int) -> bytes | None:
        if version < 1:
            return None  # never rotated: there is no previous key
        name = result_key_parameter_name(self.prefix, domain)
        try:
            parameter = self.ssm.get_parameter(Name=f"{name}:{version}", WithDecryption=True)
        except ClientError as exc:
            if _code(exc) in _NO_VERSION:
                return None  # past Parameter Store's 100 versions, or deleted since
            raise KeyUnavailable(
                f"the parameter {name!r} (version {version}) could not be read "
                f"({_code(exc)}): {_WHERE}"
            ) from None
        return _checked(parameter["Parameter"].get("Value"), f"the parameter {name!r}")


def _checked(text: object, where: str) -> bytes:
    if not isinstance(text, str) or len(text) < MIN_KEY_CHARACTERS:
        raise KeyUnavailable(f"{where} holds no key of at least {MIN_KEY_CHARACTERS} characters")
    return text.encode()

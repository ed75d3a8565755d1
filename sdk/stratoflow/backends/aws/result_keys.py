"""The keys that sign pickled results, read from Secrets Manager
(`<queue prefix>/result-keys/<pool>`, `stratoflow.resources.result_key_secret_name`).

The stack creates one per work pool and one for operators (`_operators`), and grants each
worker principal GetSecretValue on its own pools' keys only (docs/security.md). A key is
read once per process and kept `ttl` seconds; nothing is read until a pickled result is
written or loaded, so runs whose results are JSON never call Secrets Manager.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from stratoflow.resources import result_key_secret_name
from stratoflow.result_signing import KeyUnavailable

CACHE_SECONDS = 3600.0
"""A rotated key is used for signing within the hour; until then signatures under the
previous key keep verifying (AWSPREVIOUS), so a rotation breaks no reader."""
MIN_KEY_CHARACTERS = 32


class SecretsManagerResultKeys:
    """A KeySource (stratoflow.result_signing) over Secrets Manager."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        *,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, bytes | None]] = {}
        self._lock = threading.Lock()

    def current(self, domain: str) -> bytes:
        key = self._read(domain, "AWSCURRENT")
        if key is None:
            raise KeyUnavailable(f"the secret {self._name(domain)!r} has no current value")
        return key

    def previous(self, domain: str) -> bytes | None:
        return self._read(domain, "AWSPREVIOUS")

    def _name(self, domain: str) -> str:
        return result_key_secret_name(self.prefix, domain)

    def _read(self, domain: str, stage: str) -> bytes | None:
        now = self.clock()
        with self._lock:
            cached = self._cache.get((domain, stage))
        if cached is not None and cached[0] > now:
            return cached[1]
        name = self._name(domain)
        try:
            response = self.client.get_secret_value(SecretId=name, VersionStage=stage)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            if stage != "AWSCURRENT" and code == "ResourceNotFoundException":
                value = None  # never rotated: there is no previous key
            else:
                raise KeyUnavailable(
                    f"the secret {name!r} could not be read ({code}): the stack (or `strato "
                    "dev`) creates one per work pool, readable by that pool's workers and "
                    "by operators"
                ) from None
        else:
            text = response.get("SecretString")
            if not isinstance(text, str) or len(text) < MIN_KEY_CHARACTERS:
                raise KeyUnavailable(
                    f"the secret {name!r} holds no key of at least {MIN_KEY_CHARACTERS} characters"
                )
            value = text.encode()
        with self._lock:
            self._cache[(domain, stage)] = (now + self.ttl, value)
        return value


def create_result_key(client: Any, prefix: str, domain: str) -> bool:
    """Create a domain's key with a random value (Secrets Manager's GetRandomPassword);
    False when it exists already. For the embedded stack; the CDK stack creates its own."""
    name = result_key_secret_name(prefix, domain)
    value = client.get_random_password(PasswordLength=64, ExcludePunctuation=True)
    try:
        client.create_secret(
            Name=name,
            SecretString=value["RandomPassword"],
            Description=f"stratoflow: signs the pickled results of {domain}",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceExistsException":
            return False
        raise
    return True

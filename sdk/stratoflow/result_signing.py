"""Signatures of pickled results: a pickle is loaded only when a key its reader trusts
signed it.

Loading a cloudpickle payload runs code chosen by whoever wrote it, and result records
and cache entries live where every worker principal may write (docs/security.md). So
each pickled result is signed when it is written, with HMAC-SHA256 under the key of the
*signing domain* of the process that wrote it (the work pool whose run it executes, or
`_operators` for runs no worker ran), and verified before it is loaded.

Why an HMAC with one key per pool, held in Secrets Manager: the stack lets each worker
principal read only the keys of the pools it serves (an on-prem pool's policy its own
pool's; the Lambda worker role the Lambda pools'; the ECS task role the ECS pools') and
operators read every key. A flow of pool A can therefore sign only as pool A: a pickle it
plants in a run of pool B, in a cache entry that pool B reads, or for an operator, fails
to verify or names pool A as its signer. One key read per process (cached) keeps the cost
off the per-run path, where KMS `GenerateMac`/`VerifyMac` would be one call per result.

What is signed binds the payload to where it is stored: the domain, the serializer, the
record's key and the bytes. A signature is `v1:<domain>:<hex digest>`. Keys rotate by
putting a new secret value: a signature under the previous value still verifies (the
secret's `AWSPREVIOUS` version) until the next rotation.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Protocol

from stratoflow.exceptions import ResultRefused, StratoflowError

SIGNATURE_VERSION = "v1"
_DOMAIN = re.compile(r"_operators|_tasks|[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
"""A pool's name, `_operators` or `_tasks` (background tasks: stratoflow.background)."""


class KeyUnavailable(StratoflowError):
    """A signing key could not be read (missing, or not this principal's to read)."""


class KeySource(Protocol):
    """Where signing keys come from (Secrets Manager in AWS; a dict in tests)."""

    def current(self, domain: str) -> bytes:
        """The key that signs now; raises KeyUnavailable."""

    def previous(self, domain: str) -> bytes | None:
        """The key before the last rotation, if there is one; raises KeyUnavailable."""


def _message(domain: str, serializer: str, key: str, data: bytes) -> bytes:
    header = "\x00".join(("stratoflow-result", SIGNATURE_VERSION, domain, serializer, key))
    return header.encode() + b"\x00" + data


def _digest(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def signer_of(signature: str | None) -> str | None:
    """The domain a signature claims (unverified), or None when it is not one."""
    if not signature:
        return None
    parts = signature.split(":")
    if len(parts) != 3 or parts[0] != SIGNATURE_VERSION or not _DOMAIN.fullmatch(parts[1]):
        return None  # the domain names a secret: a pool, `_operators` or `_tasks`
    return parts[1]


@dataclass(frozen=True, slots=True)
class ResultSigner:
    """Signs what this process writes, under its signing domain's key."""

    keys: KeySource
    domain: str

    def sign(self, *, serializer: str, key: str, data: bytes) -> str:
        secret = self.keys.current(self.domain)
        digest = _digest(secret, _message(self.domain, serializer, key, data))
        return f"{SIGNATURE_VERSION}:{self.domain}:{digest}"

    def for_domain(self, domain: str) -> ResultSigner:
        return ResultSigner(self.keys, domain)


@dataclass(frozen=True, slots=True)
class ResultVerifier:
    """Verifies a stored pickle's signature before it is loaded."""

    keys: KeySource

    def verify(
        self, signature: str | None, *, serializer: str, key: str, data: bytes, what: str
    ) -> str:
        """The domain that signed `data`; raises ResultRefused (naming `what`) when the
        signature is missing, malformed, under a key this process cannot read, or wrong."""
        domain = signer_of(signature)
        if domain is None or signature is None:
            raise ResultRefused(
                f"{what}: its pickled result is not signed"
                + (f" (signature {signature[:80]!r} is malformed)" if signature else "")
                + ". It was not loaded: a pickle runs code when loaded, and only signed ones "
                "are trusted. Results pickled before signing existed, or written by "
                "something other than a stratoflow worker, read this way; run the flow "
                "again to store its result anew."
            )
        try:
            current = self.keys.current(domain)
        except KeyUnavailable as exc:
            raise ResultRefused(
                f"{what}: its pickled result is signed by {domain!r}, whose key this "
                f"process cannot read ({exc}). It was not loaded. A worker reads only its "
                "own pools' keys: a result signed by another pool is not its to load."
            ) from None
        message = _message(domain, str(serializer), key, data)
        # As bytes: compare_digest refuses str with non-ASCII (the writer chose it).
        claimed = signature.rsplit(":", 1)[-1].encode("utf-8", "replace")
        if hmac.compare_digest(_digest(current, message).encode(), claimed):
            return domain
        previous = self.keys.previous(domain)
        if previous is not None and hmac.compare_digest(
            _digest(previous, message).encode(), claimed
        ):
            return domain
        raise ResultRefused(
            f"{what}: the signature of its pickled result does not match its bytes (signed "
            f"as {domain!r}). It was not loaded: the stored bytes or the record were "
            "changed after they were written. Run the flow again to store its result anew, "
            "and check who can write this installation's table and results bucket."
        )


class StaticKeys:
    """Keys held in memory: for tests, and for a process handed its key by its parent."""

    def __init__(self, keys: dict[str, bytes], previous: dict[str, bytes] | None = None) -> None:
        self._keys = dict(keys)
        self._previous = dict(previous or {})

    def current(self, domain: str) -> bytes:
        try:
            return self._keys[domain]
        except KeyError:
            raise KeyUnavailable(f"no key for {domain!r}") from None

    def previous(self, domain: str) -> bytes | None:
        return self._previous.get(domain)

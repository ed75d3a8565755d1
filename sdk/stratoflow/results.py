"""Results: serializers, result stores and records that point at a stored result.

Values that JSON can represent are stored as JSON; anything else with cloudpickle.
Stores are pluggable: a local filesystem store here, S3 with the AWS backend.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cloudpickle

from stratoflow.exceptions import ObjectNotFound, OptionError, ResultRefused
from stratoflow.result_signing import ResultSigner, ResultVerifier

__all__ = ["ResultRefused"]  # re-exported: it was defined here before


class PickleNotAllowed(OptionError):
    """A value only cloudpickle can store, where cloudpickle was not opted in."""


def load_pickle(data: bytes) -> Any:
    """Every persisted cloudpickle payload is loaded here, and only here.

    Loading a pickle runs code chosen by whoever wrote it. Callers check before: a record
    read from a shared store (stratoflow.backends.aws.result_refs) points into the
    configured store at a key its owner may write, and its signature verifies
    (ResultRecord.load, stratoflow.result_signing); a local store's files are the user's.
    """
    return cloudpickle.loads(data)


class Serializer(Protocol):
    name: str

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class JSONSerializer:
    name = "json"

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


class PickleSerializer:
    """cloudpickle. Only ever load data from stores your own deployers write."""

    name = "cloudpickle"

    def dumps(self, value: Any) -> bytes:
        return bytes(cloudpickle.dumps(value))

    def loads(self, data: bytes) -> Any:
        return load_pickle(data)  # after ResultRecord.load verified a stored payload


_JSON_SCALARS = (str, int, float, bool, type(None))


def _is_plain_json(value: Any, depth: int = 0) -> bool:
    """True when JSON round-trips `value` unchanged (no tuples, no non-str keys)."""
    if depth > 64:
        return False
    if isinstance(value, _JSON_SCALARS):
        return not (isinstance(value, float) and not math.isfinite(value))
    if type(value) is list:
        return all(_is_plain_json(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(type(k) is str and _is_plain_json(v, depth + 1) for k, v in value.items())
    return False


class AutoSerializer:
    """JSON when the value round-trips through JSON unchanged, cloudpickle otherwise."""

    name = "auto"

    def dumps(self, value: Any) -> bytes:
        raise NotImplementedError("AutoSerializer picks a concrete serializer; use choose()")

    def loads(self, data: bytes) -> Any:
        raise NotImplementedError("AutoSerializer picks a concrete serializer; use choose()")

    @staticmethod
    def choose(value: Any) -> Serializer:
        return _SERIALIZERS["json"] if _is_plain_json(value) else _SERIALIZERS["cloudpickle"]


_SERIALIZERS: dict[str, Serializer] = {"json": JSONSerializer(), "cloudpickle": PickleSerializer()}
STORED_SERIALIZERS = frozenset(_SERIALIZERS)
"""The serializer names a stored record may carry; anything else is refused on read."""


def serializer_for(name: str) -> Serializer:
    try:
        return _SERIALIZERS[name]
    except KeyError:
        raise OptionError(
            f"Unknown result serializer {name!r}: use 'json', 'cloudpickle' or 'auto'."
        ) from None


PICKLE_OPT_IN = (
    "Return a JSON value (dict, list, str, int, float, bool, None), or opt in to "
    "cloudpickle results: result_serializer='cloudpickle' on the flow or task, "
    "`pickle_results: true` on the deployment, or STRATOFLOW_PICKLE_RESULTS=true "
    '(docs/security.md, "Results and cache entries").'
)


def serialize(
    value: Any, serializer: str = "auto", *, pickle_allowed: bool = True
) -> tuple[str, bytes]:
    """Serialize `value`; returns the name of the serializer used and the bytes.

    With `pickle_allowed` False, 'auto' stores JSON values only: anything else raises
    PickleNotAllowed (an explicit 'cloudpickle' is the opt-in itself)."""
    chosen = AutoSerializer.choose(value) if serializer == "auto" else serializer_for(serializer)
    if serializer == "auto" and chosen.name == "cloudpickle" and not pickle_allowed:
        raise PickleNotAllowed(
            f"A {type(value).__name__} result needs cloudpickle, which is opt-in for "
            f"results stored in a shared store. {PICKLE_OPT_IN}"
        )
    return chosen.name, chosen.dumps(value)


CACHE_RESULTS = "cache/"
"""Where cached task results live in a store (`cache/<cache key>`), apart from the runs'
own folders (`<flow run id>/...`), so that a record's key tells whose it is."""


def cache_result_key(cache_key: str) -> str:
    """The default key of a cached task's result."""
    return f"{CACHE_RESULTS}{cache_key}"


class ResultStore(ABC):
    """Where persisted results live. Keys are relative paths such as `ab12.../result`."""

    @abstractmethod
    def write(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def read(self, key: str) -> bytes:
        """The bytes under `key`; raises ObjectNotFound when there are none."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def uri(self, key: str) -> str: ...

    def size(self, key: str) -> int:
        """How many bytes are stored under `key` (stores override this to avoid a read)."""
        return len(self.read(key))


class LocalFileSystemResultStore(ResultStore):
    def __init__(self, basepath: str | os.PathLike[str]) -> None:
        self.basepath = Path(basepath).expanduser()

    def _path(self, key: str) -> Path:
        path = (self.basepath / key).resolve()
        if not path.is_relative_to(self.basepath.resolve()):
            raise ValueError(f"Result key {key!r} escapes the store at {self.basepath}")
        return path

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename so a reader never sees half a result.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(f"No result at {self.uri(key)}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFound(f"No result at {self.uri(key)}") from None

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def __repr__(self) -> str:
        return f"LocalFileSystemResultStore({str(self.basepath)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalFileSystemResultStore) and other.basepath == self.basepath

    def __hash__(self) -> int:
        return hash(self.basepath)


@dataclass(frozen=True, slots=True)
class ResultRecord:
    """A persisted result: its bytes inline (small results), or a store and a key.

    `refused` is set (and nothing else is trusted) when the stored record was not
    accepted; loading it raises ResultRefused with that explanation, and it never exists.

    `signature` signs a pickled payload (stratoflow.result_signing). A record read from a
    shared store carries the `verifier` that must accept it before it is unpickled, and
    `owner`, who it belongs to (for messages); records of a local store have neither.
    """

    store: ResultStore | None
    key: str
    serializer: str
    inline: bytes | None = None
    refused: str | None = None
    signature: str | None = None
    verifier: ResultVerifier | None = field(default=None, compare=False, repr=False)
    owner: str = field(default="", compare=False)

    def load(self) -> Any:
        data = self.raw_bytes()  # first: a refused record says why, whatever it names
        if self.serializer == PickleSerializer.name and self.verifier is not None:
            self.verify(data)
        return serializer_for(self.serializer).loads(data)

    def verify(self, data: bytes | None = None) -> str:
        """The domain that signed this pickled record; raises ResultRefused."""
        if self.verifier is None:
            raise ResultRefused(f"{self.owner or 'Result'}: nothing to verify it with")
        return self.verifier.verify(
            self.signature,
            serializer=self.serializer,
            key=self.key,
            data=self.raw_bytes() if data is None else data,
            what=self.owner or "Result",
        )

    def raw_bytes(self) -> bytes:
        """The stored bytes, not deserialized (reading them runs nothing)."""
        if self.refused is not None:
            raise ResultRefused(self.refused)
        if self.inline is not None:
            return self.inline
        if self.store is None:
            raise ObjectNotFound(f"Result {self.key!r} has neither inline data nor a store")
        return self.store.read(self.key)

    def size(self) -> int:
        """The size of the stored bytes, without reading an S3 object."""
        if self.refused is None and self.inline is None and self.store is not None:
            return self.store.size(self.key)
        return len(self.raw_bytes())

    def exists(self) -> bool:
        if self.refused is not None:
            return False
        return self.inline is not None or (self.store is not None and self.store.exists(self.key))

    @property
    def uri(self) -> str:
        if self.refused is not None:
            return "refused"
        if self.inline is not None or self.store is None:
            return "inline"
        return self.store.uri(self.key)


def refused_record(reason: str) -> ResultRecord:
    """A record standing for a stored one that was not accepted (see ResultRecord)."""
    return ResultRecord(store=None, key="", serializer="", refused=reason)


def persist(
    value: Any,
    store: ResultStore,
    *,
    key: str | None = None,
    serializer: str = "auto",
    inline_max_bytes: int = 0,
    pickle_allowed: bool = True,
    signer: ResultSigner | None = None,
) -> ResultRecord:
    """Serialize `value`; keep it inline when it is at most `inline_max_bytes`, else
    write it to `store` under `key` (a random key when None). A pickled payload is signed
    by `signer` when one is given (shared stores: see ResultRecord)."""
    name, data = serialize(value, serializer, pickle_allowed=pickle_allowed)
    key = key or uuid.uuid4().hex
    signature = None
    if signer is not None and name == PickleSerializer.name:
        signature = signer.sign(serializer=name, key=key, data=data)
    if len(data) <= inline_max_bytes:
        return ResultRecord(store=None, key=key, serializer=name, inline=data, signature=signature)
    record = ResultRecord(store=store, key=key, serializer=name, signature=signature)
    store.write(record.key, data)
    return record


def coerce_result_store(value: ResultStore | str | os.PathLike[str] | None) -> ResultStore | None:
    """Accept a store, or a directory path for a local store."""
    if value is None or isinstance(value, ResultStore):
        return value
    if isinstance(value, str | os.PathLike):
        return LocalFileSystemResultStore(value)
    raise OptionError(
        f"result_storage must be a ResultStore or a directory path, got {type(value).__name__}. "
        "Example: @task(persist_result=True, result_storage='./results')"
    )


def stable_hash(*parts: Any) -> str:
    """A hex digest of the given parts.

    Plain JSON values hash as sorted JSON (stable across processes); anything JSON would
    blur (tuples vs lists, non-string keys) or cannot express hashes as cloudpickle, under
    a different prefix so that the two never collide.
    """
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        if _is_plain_json(part):
            digest.update(b"j")
            digest.update(json.dumps(part, sort_keys=True).encode())
        else:
            digest.update(b"p")
            digest.update(bytes(cloudpickle.dumps(part)))
        digest.update(b"\x00")
    return digest.hexdigest()

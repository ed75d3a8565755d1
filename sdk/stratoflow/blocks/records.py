"""What the backends store for a block: its document (non-secret fields) and its secret
fields, kept apart from the start so a secret value never reaches the state table, a log
line or an exception message.

The names follow Prefect 3: a block type's slug is its name slugified (`S3 Bucket` →
`s3-bucket`, a class `MyBlock` → `myblock`), a block document's name is lowercase
letters, numbers and dashes.
"""

from __future__ import annotations

import re
import types
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from typing import Any, get_args, get_origin
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, Secret, SecretBytes, SecretStr
from pydantic_core import to_jsonable_python

from stratoflow.exceptions import ObjectNotFound, StratoflowError

NAME_MAX_LENGTH = 128
"""Names and slugs: a secret's name (`<prefix>/blocks/<scope>/<slug>/<name>`) stays far
below Secrets Manager's 512 characters."""
_NAME = re.compile(r"^[a-z0-9-]+$")
MASK = "********"
"""How the CLI shows a secret field."""


class BlockError(StratoflowError, ValueError):
    """A block could not be saved, loaded or deleted (never holds a secret value)."""


class BlockNotFound(BlockError, ObjectNotFound):
    """No block document of that type and name (a ValueError, as Prefect's)."""


class BlockAlreadyExists(BlockError):
    """`save` without `overwrite` of a name in use."""


class BlockSaveDenied(BlockError, PermissionError):
    """This process may not save (or delete) blocks: a deployed worker's role."""


class BlockSecretsUnavailable(BlockError):
    """The block's secret fields could not be read from where they are kept."""


def already_exists_message(slug: str) -> str:
    return (
        f"A block {slug!r} already exists: you are attempting to save values with a name "
        "that is already in use for this block type. To overwrite the saved values, save "
        "with `overwrite=True`."
    )


def slugify(text: str) -> str:
    """Lowercase ASCII words joined by dashes (what Prefect's slugify gives for the
    names of block types)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def validate_block_name(name: Any, what: str = "Block document name") -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > NAME_MAX_LENGTH:
        shown = repr(name)[:80]
        raise BlockError(
            f"{what} {shown} is not valid: it must only contain lowercase letters, "
            f"numbers, and dashes (at most {NAME_MAX_LENGTH} characters), e.g. 'my-token'."
        )
    return name


def split_slug(text: str) -> tuple[str, str]:
    """`<block type slug>/<block document name>` → (slug, name), both checked."""
    slug, sep, name = text.partition("/")
    if not sep:
        raise BlockError(
            f"{text[:80]!r} names no block type: write TYPE/NAME, e.g. 'secret/my-token' "
            "(`strato block ls` lists them)."
        )
    return validate_block_name(slug, "Block type slug"), validate_block_name(name)


def is_secret_type(annotation: Any, _seen: frozenset[type] = frozenset()) -> bool:
    """Whether a field of this type holds a secret anywhere: SecretStr, SecretBytes,
    pydantic's Secret[...] (so SecretDict), or a model, union or container of them."""
    origin = get_origin(annotation)
    if origin is Secret:
        return True
    if isinstance(annotation, type):
        if issubclass(annotation, SecretStr | SecretBytes | Secret):
            return True
        if issubclass(annotation, BaseModel) and annotation not in _seen:
            seen = _seen | {annotation}
            return any(is_secret_type(f.annotation, seen) for f in annotation.model_fields.values())
        return False
    if origin is not None or isinstance(annotation, types.UnionType):
        return any(is_secret_type(arg, _seen) for arg in get_args(annotation))
    return False


def reveal(value: Any) -> Any:
    """`value` (a field's Python value) as JSON with every secret's real value: what is
    stored in Secrets Manager. pydantic's own JSON would store `**********`."""
    if isinstance(value, SecretBytes):
        return value.get_secret_value().decode()
    if isinstance(value, SecretStr | Secret):
        return reveal(value.get_secret_value())
    if isinstance(value, BaseModel):
        return {name: reveal(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, dict):
        return {str(k): reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [reveal(v) for v in value]
    return to_jsonable_python(value)


class BlockDocument(BaseModel):
    """A saved block: its type, name and non-secret fields (as JSON), the names of its
    secret fields (whose values are elsewhere) and the pools whose workers may read them
    (None: every pool's)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID
    block_type_slug: str
    block_type_name: str
    name: str
    data: dict[str, Any] = Field(default_factory=dict)
    secret_fields: tuple[str, ...] = ()
    pools: tuple[str, ...] | None = None
    created: datetime
    updated: datetime

    @property
    def slug(self) -> str:
        return f"{self.block_type_slug}/{self.name}"


class BlockSecrets:
    """The values of a block's secret fields, in a wrapper whose repr, str and pickling
    never show them (a traceback's locals or a debug log print `BlockSecrets(****)`)."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = dict(values)

    def values(self) -> dict[str, Any]:
        return dict(self._values)

    def __bool__(self) -> bool:
        return bool(self._values)

    def __repr__(self) -> str:
        return f"BlockSecrets({', '.join(f'{k}={MASK}' for k in self._values)})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("BlockSecrets cannot be pickled (they would leave Secrets Manager)")


def check_pools(pools: Iterable[str] | None) -> tuple[str, ...] | None:
    """Sorted, distinct pool names (None: every pool). Pool names follow deployments'
    rule (a letter or digit first, then letters, digits, `_.-`)."""
    if pools is None:
        return None
    if isinstance(pools, str):
        pools = [pools]
    chosen = tuple(sorted(set(pools)))
    bad = [p for p in chosen if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", str(p))]
    if bad or not chosen:
        raise BlockError(
            f"pools must name one or more work pools (got {list(chosen)[:5]!r}); leave it "
            "out (None) to let every pool's workers read the block's secret fields."
        )
    return chosen

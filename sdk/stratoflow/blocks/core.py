"""`Block`: typed, named configuration that operators save and flows load (Prefect 3's
`prefect.blocks.core.Block`).

    from pydantic import SecretStr
    from stratoflow.blocks.core import Block

    class Warehouse(Block):
        host: str
        password: SecretStr

    Warehouse(host="db.internal", password="...").save("prod")     # an operator
    Warehouse.load("prod").password.get_secret_value()              # a flow

A block type's slug is its `_block_type_slug`, else its `_block_type_name`, else its class
name, slugified; `Block.load("warehouse/prod")` loads by `<slug>/<name>` when the class is
imported. Fields typed SecretStr, SecretBytes, pydantic's Secret[...] or SecretDict (or
models holding them) are secret: with the AWS backend their values are kept in AWS Secrets
Manager, the other fields in the state table (docs/blocks.md). Saving and deleting need
operator credentials: a deployed worker's `save` fails with `BlockSaveDenied`.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
import warnings
from collections.abc import Iterable
from typing import Any, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, PrivateAttr, TypeAdapter, ValidationError

from stratoflow._async_dispatch import async_dispatch
from stratoflow.blocks.records import (
    BlockAlreadyExists,
    BlockDocument,
    BlockError,
    BlockNotFound,
    BlockSecrets,
    check_pools,
    is_secret_type,
    reveal,
    slugify,
    split_slug,
    validate_block_name,
)
from stratoflow.context import flow_run_context, get_services

_registry: dict[str, type[Block]] = {}
_registry_lock = threading.Lock()


def block_class(slug: str) -> type[Block]:
    """The imported Block subclass of a block type slug."""
    with _registry_lock:
        found = _registry.get(slug)
    if found is None:
        raise BlockError(
            f"No block class of type {slug!r} is imported: import the module that defines "
            "it (or load with its class: `MyBlock.load(NAME)`)."
        )
    return found


class Block(BaseModel):
    """Base class of blocks: subclass it with the fields of your configuration."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    _block_type_name: ClassVar[str | None] = None
    _block_type_slug: ClassVar[str | None] = None
    _description: ClassVar[str | None] = None
    _logo_url: ClassVar[str | None] = None
    _documentation_url: ClassVar[str | None] = None

    _block_document_id: UUID | None = PrivateAttr(None)
    _block_document_name: str | None = PrivateAttr(None)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__pydantic_generic_metadata__.get("origin") is not None:
            return  # `Secret[str]`: the same block type as `Secret`
        slug = cls.get_block_type_slug()
        if slug:
            with _registry_lock:
                _registry[slug] = cls

    def __str__(self) -> str:
        return self.__repr__()  # as Prefect's: secret fields show as `**********`

    # Block type

    @classmethod
    def _origin(cls) -> type[Block]:
        origin = cls.__pydantic_generic_metadata__.get("origin")
        return origin if isinstance(origin, type) and issubclass(origin, Block) else cls

    @classmethod
    def get_block_type_name(cls) -> str:
        origin = cls._origin()
        return origin._block_type_name or origin.__name__

    @classmethod
    def get_block_type_slug(cls) -> str:
        return slugify(cls._origin()._block_type_slug or cls.get_block_type_name())

    @classmethod
    def get_description(cls) -> str | None:
        doc = cls._description or cls._origin().__doc__
        return doc.strip().splitlines()[0] if doc and doc.strip() else None

    @classmethod
    def secret_field_names(cls) -> tuple[str, ...]:
        """Fields whose values are secret (kept apart from the others)."""
        return tuple(
            name for name, info in cls.model_fields.items() if is_secret_type(info.annotation)
        )

    def _split(self) -> tuple[dict[str, Any], BlockSecrets]:
        secret_names = set(self.secret_field_names())
        public: dict[str, Any] = {}
        secrets: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = reveal(getattr(self, name))
            (secrets if name in secret_names else public)[name] = value
        return public, BlockSecrets(secrets)

    # Save

    def _save(self, name: str | None, overwrite: bool, pools: Iterable[str] | None) -> UUID:
        name = name if name is not None else self._block_document_name
        if name is None:
            raise BlockError(
                "You're attempting to save a block document without a name: call "
                "`save` with one, e.g. `block.save('my-block')`."
            )
        validate_block_name(name)
        slug = self.get_block_type_slug()
        validate_block_name(slug, "Block type slug")
        public, secrets = self._split()
        services = get_services()
        now = services.clock.now()
        document = BlockDocument(
            id=uuid.uuid4(),
            block_type_slug=slug,
            block_type_name=self.get_block_type_name(),
            name=name,
            data=public,
            secret_fields=self.secret_field_names(),
            pools=check_pools(pools),
            created=now,
            updated=now,
        )
        stored = services.backend.blocks.write(document, secrets, overwrite=overwrite)
        self._block_document_id = stored.id
        self._block_document_name = stored.name
        return stored.id

    async def asave(
        self,
        name: str | None = None,
        overwrite: bool = False,
        *,
        pools: Iterable[str] | None = None,
    ) -> UUID:
        """Save this block as `name`; see `save`."""
        return await asyncio.to_thread(self._save, name, overwrite, pools)

    @async_dispatch(asave)
    def save(
        self,
        name: str | None = None,
        overwrite: bool = False,
        *,
        pools: Iterable[str] | None = None,
    ) -> UUID:
        """Save this block as `name` (lowercase letters, numbers, dashes); returns its id.

        A name in use raises BlockAlreadyExists (a ValueError) unless `overwrite`.
        `pools` (stratoflow's addition) names the work pools whose workers may read its
        secret fields; None lets every pool's. Needs operator credentials.
        """
        return self._save(name, overwrite, pools)

    # Load

    @classmethod
    def _names(cls, name: str) -> tuple[str, str]:
        """(type slug, document name): on `Block` itself from `'<slug>/<name>'`."""
        if cls._origin() is Block:
            return split_slug(name)
        return cls.get_block_type_slug(), validate_block_name(name)

    @classmethod
    def _load(cls, name: str, validate: bool) -> Any:
        slug, document_name = cls._names(name)
        target = block_class(slug) if cls._origin() is Block else cls
        blocks = get_services().backend.blocks
        document = blocks.read(slug, document_name)
        if document is None:
            raise BlockNotFound(
                f"Unable to find block document named {document_name} for block type {slug}"
                " (`strato block ls` lists the saved blocks)."
            )
        values = dict(document.data)
        if document.secret_fields:
            context = flow_run_context.get()
            pool = context.flow_run.work_pool_name if context is not None else None
            values.update(blocks.read_secrets(document, pool=pool).values())
        known = {k: v for k, v in values.items() if k in target.model_fields}
        try:
            block = target.model_validate(known)
        except ValidationError as exc:
            if validate:
                fields = sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]})
                raise BlockError(
                    f"Unable to load {document_name!r} of block type {slug!r}: the fields "
                    f"{fields} do not validate against {target.__name__} (input values are "
                    "not shown). Save it again with the current class, or load with "
                    "`validate=False`."
                ) from None
            block = _construct(
                target, known, fields=sorted(str(e["loc"][0]) for e in exc.errors() if e["loc"])
            )
        block._block_document_id = document.id
        block._block_document_name = document.name
        return block

    @classmethod
    async def aload(cls, name: str, validate: bool = True) -> Any:
        """Load a saved block; see `load`."""
        return await asyncio.to_thread(cls._load, name, validate)

    @classmethod
    @async_dispatch(aload)
    def load(cls, name: str, validate: bool = True) -> Any:
        """The block saved as `name` (on `Block` itself: `'<type slug>/<name>'`).

        Raises BlockNotFound (a ValueError) when there is none.
        """
        return cls._load(name, validate)

    # Delete

    @classmethod
    def _delete(cls, name: str) -> None:
        slug, document_name = cls._names(name)
        if not get_services().backend.blocks.delete(slug, document_name):
            raise BlockNotFound(
                f"Unable to find block document named {document_name} for block type {slug}"
            )

    @classmethod
    async def adelete(cls, name: str) -> None:
        """Delete a saved block; see `delete`."""
        await asyncio.to_thread(cls._delete, name)

    @classmethod
    @async_dispatch(adelete)
    def delete(cls, name: str) -> None:
        """Delete the block saved as `name` (its secret is scheduled for deletion).
        Needs operator credentials."""
        cls._delete(name)


def _construct(target: type[Block], values: dict[str, Any], *, fields: list[str]) -> Block:
    """`load(validate=False)`: each field validated alone, kept as stored when it does not
    validate (as Prefect, with a warning naming the fields, never their values)."""
    warnings.warn(
        f"Could not fully load a block of type {target.get_block_type_slug()!r}: the fields "
        f"{fields} do not validate against {target.__name__}; set them, then save the block "
        "again with `overwrite=True`.",
        stacklevel=4,
    )
    checked: dict[str, Any] = {}
    for name, value in values.items():
        try:
            checked[name] = TypeAdapter(
                target.model_fields[name].annotation or Any
            ).validate_python(value)
        except ValidationError:
            checked[name] = value
    return target.model_construct(**checked)


__all__ = ["Block", "BlockAlreadyExists", "BlockError", "BlockNotFound", "block_class"]

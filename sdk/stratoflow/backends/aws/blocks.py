"""Blocks with the AWS backend: the document in the state table, the secret fields in
AWS Secrets Manager.

- `BLOCK#<type slug>/<name>` / `META`: the document (type, name, non-secret fields as
  JSON, the names of the secret fields, the pools that may read them, times), listed by
  the `by_time` index under `BLOCKS` / `<type slug>/<name>`. No worker role may write
  this partition, so a listing keeps only items whose own key is their document's
  (`own_keys.OwnItems`) and a read by key needs no check.
- `<queue prefix>/blocks/<scope>/<type slug>/<name>`: one secret per block and scope, a
  JSON object of its secret fields. The scope is `_all` (every worker principal may read
  it) or, for a block saved with `pools=[...]`, each of those pools (only that pool's
  workers may read it): IAM decides who reads what (docs/blocks.md).

Saving and deleting use the caller's credentials: an operator's. A worker's role is
denied (no write on `BLOCK#`, no CreateSecret or PutSecretValue): the error says that
blocks are saved by operators. Secret values are never logged nor put in a message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from stratoflow import resources
from stratoflow.backends.aws.items import to_attribute, to_item
from stratoflow.backends.aws.own_keys import OwnItems, string_attribute
from stratoflow.blocks.records import (
    BlockAlreadyExists,
    BlockDocument,
    BlockError,
    BlockSaveDenied,
    BlockSecrets,
    BlockSecretsUnavailable,
    already_exists_message,
)
from stratoflow.records import compact_json

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)
ENTITY = "block"
SECRET_MAX_BYTES = 65536
"""Secrets Manager's limit on a SecretString."""
DOCUMENT_MAX_BYTES = 350_000
"""Below DynamoDB's 400 KB item limit, with room for the keys and times."""
DELETION_RECOVERY_DAYS = 7
"""A deleted block's secret can be restored for a week (`aws secretsmanager
restore-secret`); saving the block again within it restores and overwrites it."""
DENIED = {"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "error"))


def _denied(slug: str, action: str, code: str) -> BlockSaveDenied:
    return BlockSaveDenied(
        f"Saving or deleting block {slug!r} was denied ({code} on {action}): blocks are "
        "configuration saved by operators, not by flows on deployed workers (their roles "
        "may only load blocks). Save it with operator credentials: a local script calling "
        "`.save(...)` with STRATOFLOW_BACKEND=aws, and check with `strato block ls`."
    )


def _own_key(item: Mapping[str, Any]) -> Mapping[str, str]:
    document = BlockDocument.model_validate_json(string_attribute(item, "document"))
    return resources.block_key(document.block_type_slug, document.name)


def secret_scopes(document: BlockDocument) -> tuple[str, ...]:
    """Where `document`'s secret fields are kept: one secret per scope (none without
    secret fields)."""
    if not document.secret_fields:
        return ()
    return document.pools or (resources.BLOCK_SECRETS_ALL_POOLS,)


class DynamoBlockStore:
    def __init__(
        self, dynamodb: DynamoDBClient, secretsmanager: Any, table: str, prefix: str
    ) -> None:
        self.dynamodb = dynamodb
        self.secretsmanager = secretsmanager
        self.table = table
        self.prefix = prefix

    def secret_name(self, document: BlockDocument, scope: str) -> str:
        return resources.block_secret_name(
            self.prefix, scope, document.block_type_slug, document.name
        )

    # Documents

    def read(self, block_type_slug: str, name: str) -> BlockDocument | None:
        key = to_item(resources.block_key(block_type_slug, name))
        response = self.dynamodb.get_item(TableName=self.table, Key=key, ConsistentRead=True)
        item = response.get("Item")
        if item is None:
            return None
        try:
            return BlockDocument.model_validate_json(string_attribute(item, "document"))
        except (KeyError, ValueError):
            raise BlockError(
                f"The stored block {block_type_slug}/{name} is not a valid block document: "
                f"save it again with `overwrite=True` (or `strato block delete "
                f"{block_type_slug}/{name}`)."
            ) from None

    def list_blocks(
        self, *, block_type_slug: str | None = None, limit: int | None = None
    ) -> list[BlockDocument]:
        index = resources.BY_TIME
        condition = "#p = :p"
        values = {":p": to_attribute(resources.BLOCKS_PARTITION)}
        if block_type_slug is not None:
            condition += " AND begins_with(#s, :s)"
            values[":s"] = to_attribute(f"{block_type_slug}/")
        found: list[BlockDocument] = []
        pages = self.dynamodb.get_paginator("query").paginate(
            TableName=self.table,
            IndexName=index.name,
            KeyConditionExpression=condition,
            ExpressionAttributeNames={
                "#p": index.partition_key,
                **({"#s": index.sort_key} if block_type_slug is not None else {}),
            },
            ExpressionAttributeValues=values,
        )
        with OwnItems("block", _own_key) as own:
            for item in (item for page in pages for item in own(page["Items"])):
                if limit is not None and len(found) >= limit:
                    break
                found.append(BlockDocument.model_validate_json(string_attribute(item, "document")))
        return found

    def write(
        self, document: BlockDocument, secrets: BlockSecrets, *, overwrite: bool
    ) -> BlockDocument:
        existing = self.read(document.block_type_slug, document.name)
        if existing is not None and not overwrite:
            raise BlockAlreadyExists(already_exists_message(document.slug))
        if existing is not None:
            document = document.model_copy(update={"id": existing.id, "created": existing.created})
        text = document.model_dump_json()
        if len(text.encode()) > DOCUMENT_MAX_BYTES:
            raise BlockError(
                f"The non-secret fields of block {document.slug!r} take more than "
                f"{DOCUMENT_MAX_BYTES} bytes as JSON: keep large data in S3 and save its key."
            )
        for scope in secret_scopes(document):
            self._put_secret(document, scope, secrets)
        item = to_item(
            {
                **resources.block_key(document.block_type_slug, document.name),
                "entity": ENTITY,
                "document": text,
                resources.BY_TIME.partition_key: resources.BLOCKS_PARTITION,
                resources.BY_TIME.sort_key: document.slug,
            }
        )
        condition = {} if overwrite else {"ConditionExpression": "attribute_not_exists(pk)"}
        try:
            self.dynamodb.put_item(TableName=self.table, Item=item, **condition)  # type: ignore[arg-type]
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise BlockAlreadyExists(already_exists_message(document.slug)) from None
            if _code(exc) in DENIED:
                raise _denied(document.slug, "dynamodb:PutItem", _code(exc)) from None
            raise
        if existing is not None:  # scopes no longer listed lose their copy
            for scope in set(secret_scopes(existing)) - set(secret_scopes(document)):
                self._delete_secret(self.secret_name(existing, scope), document.slug)
        return document

    def delete(self, block_type_slug: str, name: str) -> bool:
        existing = self.read(block_type_slug, name)
        if existing is None:
            return False
        try:
            self.dynamodb.delete_item(
                TableName=self.table, Key=to_item(resources.block_key(block_type_slug, name))
            )
        except ClientError as exc:
            if _code(exc) in DENIED:
                raise _denied(existing.slug, "dynamodb:DeleteItem", _code(exc)) from None
            raise
        for scope in secret_scopes(existing):
            self._delete_secret(self.secret_name(existing, scope), existing.slug)
        return True

    # Secrets

    def _put_secret(self, document: BlockDocument, scope: str, secrets: BlockSecrets) -> None:
        name = self.secret_name(document, scope)
        text = compact_json(secrets.values())
        if len(text.encode()) > SECRET_MAX_BYTES:
            raise BlockError(
                f"The secret fields of block {document.slug!r} take more than "
                f"{SECRET_MAX_BYTES} bytes as JSON (Secrets Manager's limit): store less."
            )
        client = self.secretsmanager
        try:
            try:
                client.create_secret(
                    Name=name,
                    SecretString=text,
                    Description=f"stratoflow block {document.slug}: its secret fields",
                )
                return
            except ClientError as exc:
                if _code(exc) not in ("ResourceExistsException", "InvalidRequestException"):
                    raise
            if client.describe_secret(SecretId=name).get("DeletedDate") is not None:
                # The block was deleted (its secret is scheduled for deletion): bring the
                # secret back to overwrite it.
                client.restore_secret(SecretId=name)
            client.put_secret_value(SecretId=name, SecretString=text)
        except ClientError as exc:
            if _code(exc) in DENIED:
                raise _denied(document.slug, "secretsmanager:CreateSecret", _code(exc)) from None
            raise BlockError(
                f"Could not store the secret fields of block {document.slug!r} in Secrets "
                f"Manager as {name!r} ({_code(exc)}): operators need "
                f"secretsmanager:CreateSecret, PutSecretValue, DescribeSecret and RestoreSecret on "
                f"{self.prefix}/blocks/*."
            ) from None

    def _delete_secret(self, name: str, slug: str) -> None:
        try:
            self.secretsmanager.delete_secret(
                SecretId=name, RecoveryWindowInDays=DELETION_RECOVERY_DAYS
            )
        except ClientError as exc:
            if _code(exc) in ("ResourceNotFoundException", "InvalidRequestException"):
                return  # gone, or already scheduled for deletion
            raise BlockError(
                f"The block {slug!r} was saved or deleted, but its old secret {name!r} could "
                f"not be deleted ({_code(exc)}): delete it with `aws secretsmanager "
                f"delete-secret --secret-id {name}`."
            ) from None

    def read_secrets(self, document: BlockDocument, *, pool: str | None) -> BlockSecrets:
        scopes = list(secret_scopes(document))
        if pool in scopes:  # this run's own pool first: the one its role may read
            scopes.remove(pool)
            scopes.insert(0, pool)
        refused: list[str] = []
        for scope in scopes:
            name = self.secret_name(document, scope)
            try:
                response = self.secretsmanager.get_secret_value(SecretId=name)
            except ClientError as exc:
                if _code(exc) in (*DENIED, "ResourceNotFoundException"):
                    refused.append(f"{name} ({_code(exc)})")
                    continue
                raise BlockSecretsUnavailable(
                    f"The secret fields of block {document.slug!r} could not be read from "
                    f"{name!r} ({_code(exc)})."
                ) from None
            return self._parse(document, name, response.get("SecretString"))
        readers = "every pool's workers" if document.pools is None else f"pools {document.pools}"
        raise BlockSecretsUnavailable(
            f"The secret fields of block {document.slug!r} could not be read: "
            f"{'; '.join(refused)}. The block is readable by {readers} and by operators; "
            "to let this process's pool read it, an operator saves it again with `pools` "
            "naming that pool (or pools=None), with `overwrite=True`."
        )

    def _parse(self, document: BlockDocument, name: str, text: Any) -> BlockSecrets:
        try:
            values = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            values = None
        if not isinstance(values, dict) or not set(document.secret_fields) <= set(values):
            raise BlockSecretsUnavailable(
                f"The secret {name!r} does not hold the secret fields of block "
                f"{document.slug!r} ({list(document.secret_fields)}) as a JSON object: save "
                "the block again with `overwrite=True`."
            )
        return BlockSecrets(values)

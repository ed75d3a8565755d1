"""Deployments and work pools in the state table."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from stratoflow import resources
from stratoflow.backends.aws.items import to_attribute, to_item
from stratoflow.backends.aws.own_keys import OwnItems, string_attribute
from stratoflow.deployments.models import Deployment, WorkPoolSpec
from stratoflow.exceptions import ObjectNotFound

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class UnknownDeployment(ObjectNotFound):
    """No deployment has that name."""


class UnknownWorkPool(ObjectNotFound):
    """No work pool has that name."""


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    if close:
        return f" Did you mean {', '.join(repr(c) for c in close)}?"
    return f" Known: {', '.join(sorted(known)[:10])}." if known else " None is deployed yet."


class _DefinitionStore:
    """Items holding one pydantic definition as JSON, listed through the by_time index."""

    partition: str
    kind: str
    key_of_name: Callable[[str], dict[str, str]]
    """The item key of a definition, from its name (`resources.deployment_key`, ...)."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self.client = client
        self.table = table

    def _put(self, key: dict[str, str], name: str, definition: str, **extra: Any) -> None:
        index = resources.BY_TIME
        self.client.put_item(
            TableName=self.table,
            Item=to_item(
                {
                    **key,
                    "name": name,
                    "definition": definition,
                    index.partition_key: self.partition,
                    index.sort_key: name,
                    **extra,
                }
            ),
        )

    def _get(self, key: dict[str, str]) -> str | None:
        item = self.client.get_item(
            TableName=self.table, Key=to_item(key), ConsistentRead=True
        ).get("Item")
        return None if item is None else str(item["definition"]["S"])

    def _pages(self, page_size: int) -> Iterator[list[str]]:
        for page, _ in self._pages_from(None, page_size):
            yield page

    def _pages_from(
        self, start: dict[str, Any] | None, page_size: int
    ) -> Iterator[tuple[list[str], dict[str, Any] | None]]:
        """Pages from `start` (a page's `next` key; None: the first page), each with the
        key the page after it starts from (None after the last)."""
        index = resources.BY_TIME
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": index.name,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": index.partition_key},
            "ExpressionAttributeValues": {":p": to_attribute(self.partition)},
            "Limit": page_size,
        }
        if start is not None:
            query["ExclusiveStartKey"] = start
        # Any item may carry this index partition (a worker's run item too): only the
        # definition items themselves are used (own_keys.py).
        with OwnItems(self.kind, self._own_key) as own:
            while True:
                response = self.client.query(**query)
                last = response.get("LastEvaluatedKey")
                yield [str(item["definition"]["S"]) for item in own(response["Items"])], last
                if not last:
                    return
                query["ExclusiveStartKey"] = last

    def _own_key(self, item: Mapping[str, Any]) -> Mapping[str, str]:
        # From the definition's own name: that document is what the caller acts on.
        return self.key_of_name(_name_of(string_attribute(item, "definition")))

    def _names(self) -> list[str]:
        return [
            name
            for page in self._pages(500)
            for name in (_name_of(definition) for definition in page)
        ]


def _name_of(definition: str) -> str:
    return str(json.loads(definition)["name"])


class DeploymentStore(_DefinitionStore):
    partition = resources.DEPLOYMENTS_PARTITION
    kind = "deployment"
    key_of_name = staticmethod(resources.deployment_key)

    def put(self, deployment: Deployment) -> None:
        self._put(
            resources.deployment_key(deployment.name),
            deployment.name,
            deployment.model_dump_json(),
            paused=deployment.paused,
        )

    def get(self, name: str) -> Deployment:
        definition = self._get(resources.deployment_key(name))
        if definition is None:
            raise UnknownDeployment(
                f"No deployment named {name!r}.{_did_you_mean(name, self._names())}"
            )
        return Deployment.model_validate_json(definition)

    def pages(self, page_size: int = 100) -> Iterator[list[Deployment]]:
        """Every deployment, a page (one DynamoDB query) at a time, by name."""
        for page in self._pages(page_size):
            yield [Deployment.model_validate_json(d) for d in page]

    def pages_from(
        self, start: dict[str, Any] | None, page_size: int = 100
    ) -> Iterator[tuple[list[Deployment], dict[str, Any] | None]]:
        """As `pages`, from where an earlier listing stopped (`start`: the `next` key it
        gave), each page with the key the next one starts from (None after the last)."""
        for page, following in self._pages_from(start, page_size):
            yield [Deployment.model_validate_json(d) for d in page], following

    def list(self) -> list[Deployment]:
        return [deployment for page in self.pages() for deployment in page]

    def delete(self, name: str) -> None:
        self.get(name)  # a clear error for an unknown name
        self.client.delete_item(TableName=self.table, Key=to_item(resources.deployment_key(name)))


class WorkPoolStore(_DefinitionStore):
    partition = resources.WORK_POOLS_PARTITION
    kind = "work pool"
    key_of_name = staticmethod(resources.work_pool_key)

    def put(self, pool: WorkPoolSpec) -> None:
        self._put(resources.work_pool_key(pool.name), pool.name, pool.model_dump_json())

    def get(self, name: str) -> WorkPoolSpec:
        definition = self._get(resources.work_pool_key(name))
        if definition is not None:
            return WorkPoolSpec.model_validate_json(definition)
        if name == resources.DEFAULT_WORK_POOL:
            return WorkPoolSpec()  # the default pool exists without being declared
        known = sorted({*self._names(), resources.DEFAULT_WORK_POOL})  # default: always there
        raise UnknownWorkPool(f"No work pool named {name!r}.{_did_you_mean(name, known)}")

    def list(self) -> list[WorkPoolSpec]:
        pools = [WorkPoolSpec.model_validate_json(d) for page in self._pages(100) for d in page]
        if not any(p.name == resources.DEFAULT_WORK_POOL for p in pools):
            pools.insert(0, WorkPoolSpec())
        return pools

    def set_queue_paused(self, pool_name: str, queue_name: str, paused: bool) -> WorkPoolSpec:
        pool = self.get(pool_name)
        queue = pool.queue(queue_name)
        queues = tuple(
            q.model_copy(update={"paused": paused}) if q is queue else q for q in pool.queues
        )
        updated = pool.model_copy(update={"queues": queues})
        self.put(updated)
        return updated

"""S3 result storage: `s3://<results bucket>/results/<key>`.

Only ever built from settings: a stored record names a key, never a store (see
stratoflow.backends.aws.result_refs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from stratoflow.exceptions import ObjectNotFound
from stratoflow.resources import RESULTS_PREFIX
from stratoflow.results import ResultStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING = ("NoSuchKey", "404", "NotFound")


class S3ResultStore(ResultStore):
    def __init__(self, client: S3Client, bucket: str, prefix: str = RESULTS_PREFIX) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"

    def _key(self, key: str) -> str:
        if ".." in key.split("/"):
            raise ValueError(f"Result key {key!r} must not contain '..'")
        return f"{self.prefix}{key}"

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def read(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                raise ObjectNotFound(f"No result at {self.uri(key)}") from None
            raise
        return response["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                return False
            raise
        return True

    def size(self, key: str) -> int:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                raise ObjectNotFound(f"No result at {self.uri(key)}") from None
            raise
        return int(response["ContentLength"])

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def __repr__(self) -> str:
        return f"S3ResultStore({self.uri('')!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, S3ResultStore) and (other.bucket, other.prefix) == (
            self.bucket,
            self.prefix,
        )

    def __hash__(self) -> int:
        return hash((self.bucket, self.prefix))

    def __reduce__(self) -> tuple[object, ...]:
        # Sent to worker processes without the client; they build their own.
        return (_s3_store_in_new_process, (self.bucket, self.prefix))


def _s3_store_in_new_process(bucket: str, prefix: str) -> S3ResultStore:
    from stratoflow.backends.aws.clients import AwsClients, AwsConfig
    from stratoflow.settings import get_settings

    clients = AwsClients(config=AwsConfig.from_settings(get_settings()))
    return S3ResultStore(clients.s3, bucket, prefix)

"""Object storage for the tasks: the local folder (``core.storage``) or S3 through prefect-aws.

The S3 adapter lives here rather than in ``core`` because prefect-aws is a Prefect package.
"""

from __future__ import annotations

import asyncio
import os
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlparse

from core.errors import ConfigError, StorageError
from core.storage import LocalObjectStore, ObjectStore, safe_key


class S3ObjectStore:
    """An S3 bucket (and optional prefix) through a prefect-aws ``S3Bucket`` block.

    The endpoint comes from the standard ``AWS_ENDPOINT_URL`` (MinIO, moto), credentials
    from the standard AWS chain; neither is ever logged.
    """

    def __init__(self, bucket: str, prefix: str = "") -> None:
        from prefect_aws import AwsCredentials
        from prefect_aws.client_parameters import AwsClientParameters
        from prefect_aws.s3 import S3Bucket

        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        credentials = AwsCredentials(
            region_name=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            aws_client_parameters=AwsClientParameters(endpoint_url=endpoint),
        )
        self._bucket = S3Bucket(bucket_name=bucket, bucket_folder=prefix, credentials=credentials)
        self._client = credentials.get_s3_client()
        self._name = bucket
        self._prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self._prefix}".rstrip("/")

    def _full(self, key: str) -> str:
        key = safe_key(key)
        return f"{self._prefix}/{key}" if self._prefix else key

    async def put_bytes(self, key: str, data: bytes) -> str:
        try:
            await self._bucket.awrite_path(safe_key(key), data)
        except Exception as exc:  # botocore raises many unrelated types
            raise StorageError(f"cannot upload {key} to {self.url}: {exc}") from exc
        return key

    async def get_bytes(self, key: str) -> bytes:
        try:
            return await self._bucket.aread_path(safe_key(key))
        except Exception as exc:
            raise StorageError(f"cannot read {key} from {self.url}: {exc}") from exc

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._client.delete_object, Bucket=self._name, Key=self._full(key))

    async def list_keys(self, prefix: str) -> list[str]:
        """Keys starting with ``prefix`` (relative to this store's prefix), sorted."""
        full = f"{self._prefix}/{prefix}" if self._prefix else prefix
        keys: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            pages = await asyncio.to_thread(lambda: list(paginator.paginate(Bucket=self._name, Prefix=full)))
        except Exception as exc:  # botocore raises many unrelated types
            raise StorageError(f"cannot list {prefix} in {self.url}: {exc}") from exc
        for page in pages:
            keys += [o["Key"][len(self._prefix) + 1:] if self._prefix else o["Key"] for o in page.get("Contents", [])]
        return sorted(keys)


@lru_cache(maxsize=8)
def open_store(url: str) -> ObjectStore:
    """The store for ``file:///path`` or ``s3://bucket/prefix``."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalObjectStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3" and parsed.netloc:
        return S3ObjectStore(parsed.netloc, parsed.path.strip("/"))
    raise ConfigError(f"storage.url (env STORAGE_URL): unsupported {url!r}")

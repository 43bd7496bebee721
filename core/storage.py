"""Object storage for JSON documents: the interface, and the local-folder store (the default).

The S3 store goes through prefect-aws, so it lives in ``tasks.storage`` (``core`` has no Prefect);
``tasks.storage.open_store(url)`` picks one of the two.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from core.errors import StorageError


def safe_key(key: str) -> str:
    path = PurePosixPath(key)
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
        raise StorageError(f"unsafe object key {key!r}")
    return str(path)


def dump_json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


class ObjectStore(Protocol):
    """Where raw and cleaned documents go. Keys are relative, '/'-separated."""

    url: str

    async def put_bytes(self, key: str, data: bytes) -> str: ...

    async def get_bytes(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    async def list_keys(self, prefix: str) -> list[str]: ...


class LocalObjectStore:
    """Files under a root folder; each write is atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / safe_key(key)

    def _write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put_bytes(self, key: str, data: bytes) -> str:
        try:
            # Small files: a thread hop costs more than the write itself.
            self._write(key, data)
        except OSError as exc:
            raise StorageError(f"cannot write {key}: {exc}") from exc
        return key

    async def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {key}: {exc}") from exc

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    async def list_keys(self, prefix: str) -> list[str]:
        """Keys starting with ``prefix`` (e.g. ``profiles/<urn>-``), sorted."""
        folder, _, start = prefix.rpartition("/")
        base = self.root / safe_key(folder) if folder else self.root
        if not base.is_dir():
            return []
        return sorted(f"{folder}/{p.name}" if folder else p.name for p in base.iterdir()
                      if p.is_file() and p.name.startswith(start) and not p.name.startswith(".tmp-"))

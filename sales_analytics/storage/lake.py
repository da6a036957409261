"""Object storage for the landing zone and the lake: a local directory or ``s3://bucket/prefix``.

Both back-ends share one key layout (``landing/...``, ``raw/...``, ``clean/...``) so that a lake
written on a laptop looks exactly like the S3 one. Every write is atomic: a reader sees the old
object or the new one, never a partial one.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from botocore.exceptions import ClientError
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

# Any printable text but backslashes: senders name files "Umsätze (März).csv". What a key must not
# do is leave its folder: no empty, "." or ".." segment, no leading "/".
_SAFE_KEY = re.compile(r"^[^\x00-\x1f\x7f\\]+$")
_TMP_MARK = ".tmp-"
SYNC_THREADS = 8


def _sync_files(paths: list[Path]) -> None:
    """Every file's data on disk. Concurrent syncs share the file system's journal commits."""
    if len(paths) == 1:
        _sync_file(paths[0])
    elif paths:
        with ThreadPoolExecutor(max_workers=min(len(paths), SYNC_THREADS)) as pool:
            list(pool.map(_sync_file, paths))


def _sync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class UnsafeKeyError(ValueError):
    """A key that could escape the lake root (absolute, ``..``, odd characters)."""


def is_safe_key(key: str) -> bool:
    return bool(_SAFE_KEY.match(key)) and not any(p in ("", ".", "..") for p in key.split("/"))


def validate_key(key: str) -> str:
    if not is_safe_key(key):
        raise UnsafeKeyError(f"unsafe object key {key!r}")
    return key


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    version: str  # ETag on S3, mtime+size locally: changes whenever the content is replaced
    modified: dt.datetime  # when it landed (S3 LastModified, file mtime): orders deliveries of a source


def _local_info(key: str, stat: os.stat_result) -> ObjectInfo:
    modified = dt.datetime.fromtimestamp(stat.st_mtime_ns / 1e9, dt.UTC)
    return ObjectInfo(key, stat.st_size, f"{stat.st_mtime_ns}-{stat.st_size}", modified)


class LakeResource(dg.ConfigurableResource):
    """The lake's object store. ``root`` is a directory path or ``s3://bucket[/prefix]``."""

    root: str
    s3: S3Resource

    _client: Any = PrivateAttr(default=None)

    # -- layout -----------------------------------------------------------------------------
    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    @property
    def bucket(self) -> str:
        return self.root.removeprefix("s3://").split("/", 1)[0]

    @property
    def _s3_prefix(self) -> str:
        rest = self.root.removeprefix("s3://").split("/", 1)
        return rest[1].strip("/") + "/" if len(rest) > 1 and rest[1].strip("/") else ""

    def uri(self, key: str) -> str:
        validate_key(key)
        if self.is_s3:
            return f"s3://{self.bucket}/{self._s3_prefix}{key}"
        return str(self._path(key))

    def _path(self, key: str) -> Path:
        return Path(self.root).resolve() / validate_key(key)

    def _s3_key(self, key: str) -> str:
        return self._s3_prefix + validate_key(key)

    def _s3_client(self) -> Any:
        if self._client is None:
            self._client = self.s3.get_client()
        return self._client

    # -- operations -------------------------------------------------------------------------
    def ensure_bucket(self) -> None:
        """Create the bucket when missing (local/stack); on AWS the bucket is provisioned."""
        if not self.is_s3:
            Path(self.root).mkdir(parents=True, exist_ok=True)
            return
        client = self._s3_client()
        try:
            client.head_bucket(Bucket=self.bucket)
        except ClientError:
            client.create_bucket(Bucket=self.bucket)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.put_objects({key: data})

    def put_objects(self, objects: Mapping[str, bytes]) -> None:
        """Each object written atomically, as one put would. Locally each is on disk before its name appears,
        and a batch's files are synced together: a backfill writes thousands of small files, and syncing each
        before the next is written cost a fifth of it."""
        if self.is_s3:
            # A single PutObject is atomic: readers see the previous object until it completes.
            for key, data in objects.items():
                self._s3_client().put_object(Bucket=self.bucket, Key=self._s3_key(key), Body=data)
            return
        staged: list[tuple[Path, Path]] = []
        try:
            for key, data in objects.items():
                path = self._path(key)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f"{_TMP_MARK}{path.name}.{uuid.uuid4().hex}")
                staged.append((tmp, path))  # before the write: a half-written temp is removed too
                tmp.write_bytes(data)
            _sync_files([tmp for tmp, _ in staged])
            for tmp, path in staged:
                os.replace(tmp, path)
        finally:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)

    def get_bytes(self, key: str) -> bytes:
        if self.is_s3:
            response = self._s3_client().get_object(Bucket=self.bucket, Key=self._s3_key(key))
            return response["Body"].read()
        return self._path(key).read_bytes()

    def info(self, key: str) -> ObjectInfo | None:
        """The object's size and version, or None when it does not exist."""
        if self.is_s3:
            try:
                head = self._s3_client().head_object(Bucket=self.bucket, Key=self._s3_key(key))
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
            return ObjectInfo(key, head["ContentLength"], head["ETag"].strip('"'), head["LastModified"])
        path = self._path(key)
        if not path.is_file():
            return None
        stat = path.stat()
        return _local_info(key, stat)

    def exists(self, key: str) -> bool:
        return self.info(key) is not None

    def delete(self, key: str) -> None:
        if self.is_s3:
            self._s3_client().delete_object(Bucket=self.bucket, Key=self._s3_key(key))
        else:
            self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` (a folder-like key ending in ``/``), in key order."""
        if not prefix.endswith("/"):
            raise ValueError(f"list() takes a folder prefix ending in '/', got {prefix!r}")
        validate_key(prefix.rstrip("/"))
        if self.is_s3:
            yield from self._list_s3(prefix)
        else:
            yield from self._list_local(prefix)

    def folders(self, prefix: str) -> list[str]:
        """Names of the folders directly under ``prefix`` (ending in ``/``), sorted: one listing per
        thousand folders on S3, however many objects they hold."""
        if not prefix.endswith("/"):
            raise ValueError(f"folders() takes a folder prefix ending in '/', got {prefix!r}")
        validate_key(prefix.rstrip("/"))
        if not self.is_s3:
            folder = self._path(prefix.rstrip("/"))
            return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        paginator = self._s3_client().get_paginator("list_objects_v2")
        start = self._s3_key(prefix.rstrip("/")) + "/"
        names = [common["Prefix"][len(start):].rstrip("/")
                 for page in paginator.paginate(Bucket=self.bucket, Prefix=start, Delimiter="/")
                 for common in page.get("CommonPrefixes", [])]
        return sorted(name for name in names if is_safe_key(name))

    def _list_s3(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self._s3_client().get_paginator("list_objects_v2")
        strip = len(self._s3_prefix)
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._s3_key(prefix.rstrip("/")) + "/"):
            for obj in page.get("Contents", []):
                key = obj["Key"][strip:]
                if not is_safe_key(key):
                    # S3 takes any key; a sender's "../" or backslash is never read, and said so, once per listing.
                    dg.get_dagster_logger().warning(f"skipped object {key!r} under {prefix}: unsafe key (empty, '.' or "
                                                    "'..' segment, control character or backslash); rename it to ingest it")
                    continue
                yield ObjectInfo(key, obj["Size"], obj["ETag"].strip('"'), obj["LastModified"])

    def _list_local(self, prefix: str) -> Iterator[ObjectInfo]:
        base = Path(self.root).resolve()
        folder = self._path(prefix.rstrip("/"))
        if not folder.is_dir():
            return
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if path.name.startswith(_TMP_MARK):
                continue
            yield _local_info(path.relative_to(base).as_posix(), path.stat())

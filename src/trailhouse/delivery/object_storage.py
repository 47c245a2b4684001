"""Where a trail's OSS files go: a directory of buckets (the embedded default) or an S3 endpoint.

ActionTrail writes to Alibaba Cloud OSS. A self-hosted deployment has either nothing (then a
directory whose sub-directories are the buckets, ``TRAILHOUSE_OSS_DIR``) or an S3-compatible
service (``TRAILHOUSE_OSS_ENDPOINT``: Alibaba OSS's S3 API, MinIO, Ceph), reached through boto3
with its usual credential chain. Both answer the same four questions: is the bucket there and
ours to write (``bucket_status``), put, get and list objects.

Buckets are never created here on a trail's behalf: CreateTrail refuses a bucket that does not
exist (BucketDoesNotExistException), as ActionTrail does. ``create_bucket`` is for operators,
the demo and tests.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from ..settings import Settings

__all__ = [
    "BucketDoesNotExist",
    "BucketStatus",
    "DirectoryStorage",
    "InsufficientBucketPolicy",
    "ObjectStorage",
    "ObjectStorageError",
    "ObjectStorageUnavailable",
    "S3Storage",
    "open_object_storage",
]

#: OSS bucket names: 3-63 lower-case letters, digits and hyphens, not starting or ending with '-'.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


class BucketStatus(enum.StrEnum):
    """What GetTrailStatus' OssBucketStatus reports: the bucket can be written, is gone, or refuses us."""

    OK = "ok"
    MISSING = "missing"
    REFUSED = "refused"


class ObjectStorageError(Exception):
    """A put, get or list that failed; the message says which bucket and why (never a credential)."""


class BucketDoesNotExist(ObjectStorageError):
    """The bucket is not there (ActionTrail: BucketDoesNotExistException, 404)."""


class InsufficientBucketPolicy(ObjectStorageError):
    """The bucket is there but refuses us (ActionTrail: InsufficientBucketPolicyException, 403)."""


class ObjectStorageUnavailable(ObjectStorageError):
    """The endpoint cannot be reached or failed on its side: try again later."""


class ObjectStorage(Protocol):
    """A set of buckets holding objects by key."""

    #: Where the buckets are, for messages and the demo's snippet (a directory path or an endpoint URL).
    location: str

    def bucket_status(self, bucket: str) -> BucketStatus: ...

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Store ``data`` at ``key``, replacing what was there; complete or absent, never partial."""
        ...

    def get(self, bucket: str, key: str) -> bytes: ...

    def list(self, bucket: str, prefix: str = "") -> Iterator[str]:
        """The keys under ``prefix``, in lexicographic order."""
        ...

    def create_bucket(self, bucket: str) -> None: ...


def _check_bucket_name(bucket: str) -> None:
    # A name from the wire becomes a path segment: refuse anything but a valid OSS bucket name.
    if not _BUCKET.match(bucket):
        raise BucketDoesNotExist(f"bucket {bucket!r}: not a valid bucket name")


def _check_key(key: str) -> list[str]:
    parts = key.split("/")
    if not key or any(p in ("", ".", "..") for p in parts):
        raise ObjectStorageError(f"object key {key!r}: empty, '.' or '..' segments are not allowed")
    return parts


class DirectoryStorage:
    """Buckets as sub-directories of ``root``; an object is a file at its key's path.

    A put writes a temporary file in the target directory, fsyncs it and renames it over the
    key, so a reader (or a crash) sees the whole object or none of it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def _bucket_dir(self, bucket: str) -> Path:
        _check_bucket_name(bucket)
        return self.root / bucket

    def bucket_status(self, bucket: str) -> BucketStatus:
        try:
            path = self._bucket_dir(bucket)
        except BucketDoesNotExist:
            return BucketStatus.MISSING
        if not path.is_dir():
            return BucketStatus.MISSING
        if not os.access(path, os.W_OK | os.X_OK):
            return BucketStatus.REFUSED
        return BucketStatus.OK

    def _require(self, bucket: str) -> Path:
        status = self.bucket_status(bucket)
        if status is BucketStatus.MISSING:
            raise BucketDoesNotExist(f"bucket {bucket!r} does not exist in {self.root}")
        if status is BucketStatus.REFUSED:
            raise InsufficientBucketPolicy(f"bucket {bucket!r} in {self.root} is not writable")
        return self._bucket_dir(bucket)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        base = self._require(bucket)
        target = base.joinpath(*_check_key(key))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except PermissionError as exc:
            raise InsufficientBucketPolicy(f"bucket {bucket!r}: {exc.strerror}") from None
        except OSError as exc:
            raise ObjectStorageUnavailable(f"bucket {bucket!r}: {exc.strerror or exc}") from None

    def get(self, bucket: str, key: str) -> bytes:
        base = self._require(bucket)
        try:
            return base.joinpath(*_check_key(key)).read_bytes()
        except FileNotFoundError:
            raise ObjectStorageError(f"bucket {bucket!r} has no object {key!r}") from None
        except OSError as exc:
            raise ObjectStorageUnavailable(f"bucket {bucket!r}: {exc.strerror or exc}") from None

    def list(self, bucket: str, prefix: str = "") -> Iterator[str]:
        base = self._require(bucket)
        keys = []
        for dirpath, _dirs, files in os.walk(base):
            rel = Path(dirpath).relative_to(base).as_posix()
            for name in files:
                if name.startswith(".tmp-"):
                    continue  # a put in progress (or one a crash interrupted): not an object
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)

    def create_bucket(self, bucket: str) -> None:
        self._bucket_dir(bucket).mkdir(parents=True, exist_ok=True)


class S3Storage:
    """An S3-compatible endpoint through boto3; credentials and region come from boto3's chain."""

    def __init__(self, endpoint: str, *, client: Any = None) -> None:
        import boto3
        from botocore.config import Config

        self.location = endpoint
        self._client = client or boto3.client(
            "s3",
            endpoint_url=endpoint,
            # Path-style addressing: MinIO, Ceph and test servers do not serve bucket subdomains.
            # Short timeouts and few retries: the delivery engine has its own backoff.
            config=Config(
                s3={"addressing_style": "path"},
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 2, "mode": "standard"},
            ),
        )

    def _fail(self, bucket: str, exc: Exception) -> ObjectStorageError:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in ("NoSuchBucket", "404", "NotFound") and status in (404, 0):
                return BucketDoesNotExist(f"bucket {bucket!r} does not exist at {self.location}")
            if status == 403 or code in ("AccessDenied", "403", "Forbidden"):
                return InsufficientBucketPolicy(
                    f"bucket {bucket!r} at {self.location}: access denied ({code})"
                )
            if code in ("NoSuchKey",):
                return ObjectStorageError(f"bucket {bucket!r}: no such object")
            if status >= 500:
                return ObjectStorageUnavailable(f"bucket {bucket!r} at {self.location}: {code} ({status})")
            return ObjectStorageError(f"bucket {bucket!r} at {self.location}: {code} ({status})")
        return ObjectStorageUnavailable(f"{self.location}: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        """Release the client's pooled connections (a server shutting down)."""
        self._client.close()

    def bucket_status(self, bucket: str) -> BucketStatus:
        if not _BUCKET.match(bucket):
            return BucketStatus.MISSING
        try:
            self._client.head_bucket(Bucket=bucket)
        except Exception as exc:  # noqa: BLE001 - botocore raises many types; _fail sorts them
            err = self._fail(bucket, exc)
            if isinstance(err, BucketDoesNotExist):
                return BucketStatus.MISSING
            if isinstance(err, InsufficientBucketPolicy):
                return BucketStatus.REFUSED
            raise err from None
        return BucketStatus.OK

    def put(self, bucket: str, key: str, data: bytes) -> None:
        _check_bucket_name(bucket)
        _check_key(key)
        try:
            self._client.put_object(Bucket=bucket, Key=key, Body=data)
        except Exception as exc:  # noqa: BLE001
            raise self._fail(bucket, exc) from None

    def get(self, bucket: str, key: str) -> bytes:
        _check_bucket_name(bucket)
        try:
            body = self._client.get_object(Bucket=bucket, Key=key)["Body"]
            return bytes(body.read())
        except Exception as exc:  # noqa: BLE001
            raise self._fail(bucket, exc) from None

    def list(self, bucket: str, prefix: str = "") -> Iterator[str]:
        _check_bucket_name(bucket)
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            keys = [str(obj["Key"]) for page in pages for obj in page.get("Contents", [])]
        except Exception as exc:  # noqa: BLE001
            raise self._fail(bucket, exc) from None
        yield from sorted(keys)

    def create_bucket(self, bucket: str) -> None:
        _check_bucket_name(bucket)
        try:
            self._client.create_bucket(Bucket=bucket)
        except Exception as exc:  # noqa: BLE001
            err = self._fail(bucket, exc)
            if "BucketAlreadyOwnedByYou" not in str(err):
                raise err from None


def open_object_storage(settings: Settings) -> ObjectStorage:
    """The S3 endpoint when TRAILHOUSE_OSS_ENDPOINT is set, else the directory of buckets."""
    if settings.oss_endpoint:
        return S3Storage(settings.oss_endpoint)
    return DirectoryStorage(settings.resolved_oss_dir())

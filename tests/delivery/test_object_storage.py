"""Object storage on a directory of buckets and on a real S3 endpoint (a moto server process)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import boto3
import pytest

from trailhouse.delivery.object_storage import (
    BucketDoesNotExist,
    BucketStatus,
    DirectoryStorage,
    InsufficientBucketPolicy,
    ObjectStorage,
    ObjectStorageError,
    S3Storage,
    open_object_storage,
)
from trailhouse.settings import Settings, SettingsError


@pytest.fixture(params=["directory", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStorage:
    if request.param == "directory":
        return DirectoryStorage(tmp_path / "oss")
    endpoint = request.getfixturevalue("moto_endpoint")
    return S3Storage(endpoint)


def _bucket() -> str:
    return "b-" + uuid.uuid4().hex[:12]


def test_put_get_list_round_trip(storage: ObjectStorage) -> None:
    bucket = _bucket()
    assert storage.bucket_status(bucket) is BucketStatus.MISSING
    storage.create_bucket(bucket)
    assert storage.bucket_status(bucket) is BucketStatus.OK
    storage.put(bucket, "p/AliyunLogs/b.gz", b"\x1f\x8b two")
    storage.put(bucket, "p/AliyunLogs/a.gz", b"one")
    storage.put(bucket, "q/c.gz", b"three")
    storage.put(bucket, "p/AliyunLogs/a.gz", b"one again")  # replaced, not duplicated
    assert list(storage.list(bucket, "p/")) == ["p/AliyunLogs/a.gz", "p/AliyunLogs/b.gz"]
    assert list(storage.list(bucket)) == ["p/AliyunLogs/a.gz", "p/AliyunLogs/b.gz", "q/c.gz"]
    assert storage.get(bucket, "p/AliyunLogs/a.gz") == b"one again"
    assert storage.get(bucket, "p/AliyunLogs/b.gz") == b"\x1f\x8b two"
    with pytest.raises(ObjectStorageError):
        storage.get(bucket, "p/none.gz")


def test_missing_bucket_is_named(storage: ObjectStorage) -> None:
    with pytest.raises(BucketDoesNotExist):
        storage.put(_bucket(), "k", b"x")
    with pytest.raises(BucketDoesNotExist):
        list(storage.list(_bucket()))
    # Not a bucket name: never a path outside the root, always "does not exist".
    assert storage.bucket_status("../etc") is BucketStatus.MISSING
    with pytest.raises(BucketDoesNotExist):
        storage.put("../etc", "k", b"x")


def test_key_cannot_escape_the_bucket(storage: ObjectStorage) -> None:
    bucket = _bucket()
    storage.create_bucket(bucket)
    for key in ("../x", "a/../../x", "", "a//b"):
        with pytest.raises(ObjectStorageError):
            storage.put(bucket, key, b"x")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to any directory")
def test_directory_bucket_refusing_writes(tmp_path: Path) -> None:
    storage = DirectoryStorage(tmp_path)
    storage.create_bucket("locked-bucket")
    (tmp_path / "locked-bucket").chmod(0o500)
    try:
        assert storage.bucket_status("locked-bucket") is BucketStatus.REFUSED
        with pytest.raises(InsufficientBucketPolicy):
            storage.put("locked-bucket", "k", b"x")
    finally:
        (tmp_path / "locked-bucket").chmod(0o700)


def test_s3_bucket_refusing_us_is_insufficient_policy(moto_endpoint: str) -> None:
    """A bucket policy that denies our writes: moto enforces policies only with auth on, so the
    refusal is checked as boto3 reports it from a real 403 answer of the server."""
    storage = S3Storage(moto_endpoint)
    bucket = _bucket()
    storage.create_bucket(bucket)
    client = boto3.client("s3", endpoint_url=moto_endpoint)
    from botocore.exceptions import ClientError

    err = ClientError(
        {"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutObject"
    )
    assert isinstance(storage._fail(bucket, err), InsufficientBucketPolicy)
    client.delete_bucket(Bucket=bucket)
    assert storage.bucket_status(bucket) is BucketStatus.MISSING


def test_s3_endpoint_down_is_unavailable() -> None:
    from trailhouse.delivery.object_storage import ObjectStorageUnavailable

    from .conftest import free_port

    storage = S3Storage(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ObjectStorageUnavailable):
        storage.bucket_status("some-bucket")
    with pytest.raises(ObjectStorageUnavailable):
        storage.put("some-bucket", "k", b"x")


def test_settings_choose_the_storage(tmp_path: Path, moto_endpoint: str) -> None:
    s = Settings(db_url=f"sqlite:///{tmp_path}/t.db")
    store = open_object_storage(s)
    assert isinstance(store, DirectoryStorage) and store.root == tmp_path / "oss"
    s = Settings(db_url=f"sqlite:///{tmp_path}/t.db", oss_dir=str(tmp_path / "b"))
    assert open_object_storage(s).location == str(tmp_path / "b")
    s = Settings(oss_endpoint=moto_endpoint)
    assert isinstance(open_object_storage(s), S3Storage)


def test_settings_refuse_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    for env, value in [
        ("TRAILHOUSE_OSS_ENDPOINT", "ftp://x"),
        ("TRAILHOUSE_NATS_URL", "http://x"),
        ("TRAILHOUSE_DELIVERY_WINDOW_S", "0"),
    ]:
        monkeypatch.setenv(env, value)
        with pytest.raises(SettingsError, match=env):
            Settings.from_env()
        monkeypatch.delenv(env)
    monkeypatch.setenv("TRAILHOUSE_DELIVERY_WINDOW_S", "0.5")
    monkeypatch.setenv("TRAILHOUSE_NATS_URL", "nats://127.0.0.1:4222")
    s = Settings.from_env()
    assert s.delivery_window_s == 0.5 and s.nats_url == "nats://127.0.0.1:4222"

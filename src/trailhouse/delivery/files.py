"""ActionTrail's OSS file layout: object keys, file names and the gzip JSON inside.

``<prefix>/AliyunLogs/Actiontrail/<region>/YYYY/MM/DD/
Actiontrail_<region>_<YYYYMMDDHHMMSS>_1002_<count>_<bytes>_<md5>.gz`` (UTC), where ``<count>``
is the number of events, ``<bytes>`` the size of the .gz and ``<md5>`` its MD5 in hex. An
organization (multi-account) trail inserts ``<rd_id>/<accountId>/`` after ``Actiontrail``.

The content is one JSON array of the events as they were ingested (the stored text, byte for
byte, joined with commas): the documentation says only "GZIP-compressed JSON", and an array is
what a JSON reader and ``trailhouse ingest`` take back. The gzip header carries no name and
mtime 0, so the same window always yields the same bytes, hence the same key.

Insight records go under ``Actiontrail-Insight`` instead of ``Actiontrail``, in files named and
built the same way (ActionTrail's documented path differs only in that folder).
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["EVENT_TYPE", "INSIGHT_TYPE", "FileGroup", "OssFile", "build_file", "object_key"]

EVENT_TYPE = "Actiontrail"
#: The folder of Insights files (the file names still start ``Actiontrail_``, as documented).
INSIGHT_TYPE = "Actiontrail-Insight"
#: The constant of ActionTrail's file names (unexplained in its documentation; kept as seen).
FILE_CONSTANT = "1002"


@dataclass(frozen=True, slots=True)
class FileGroup:
    """The events of one window that go into one file: one account (organization trails) and region."""

    account_id: str
    region: str


@dataclass(frozen=True, slots=True)
class OssFile:
    key: str
    data: bytes
    count: int
    #: Whose events the file holds (an organization trail writes one file per account).
    account_id: str = ""
    #: The events in the file (stored bodies, in file order), for hooks that hash them (digests).
    events: tuple[bytes, ...] = field(default=(), repr=False, compare=False)


def gzip_json_array(bodies: list[bytes]) -> bytes:
    raw = b"[" + b",".join(bodies) + b"]"
    # mtime=0 and no file name: deterministic bytes for the same events.
    return gzip.compress(raw, compresslevel=6, mtime=0)


def object_key(
    *,
    prefix: str,
    region: str,
    window_ms: int,
    count: int,
    data: bytes,
    organization_id: str = "",
    account_id: str = "",
    event_type: str = EVENT_TYPE,
) -> str:
    t = datetime.fromtimestamp(window_ms // 1000, UTC)
    stamp = f"{t.year:04d}{t.month:02d}{t.day:02d}{t.hour:02d}{t.minute:02d}{t.second:02d}"
    digest = hashlib.md5(data).hexdigest()
    name = f"{EVENT_TYPE}_{region}_{stamp}_{FILE_CONSTANT}_{count}_{len(data)}_{digest}.gz"
    parts = [prefix.strip("/")] if prefix.strip("/") else []
    parts += ["AliyunLogs", event_type]
    if organization_id:
        parts += [organization_id, account_id]
    parts += [region, f"{t.year:04d}", f"{t.month:02d}", f"{t.day:02d}", name]
    return "/".join(parts)


def build_file(
    *,
    prefix: str,
    group: FileGroup,
    window_ms: int,
    bodies: list[bytes],
    organization_id: str = "",
    event_type: str = EVENT_TYPE,
) -> OssFile:
    data = gzip_json_array(bodies)
    key = object_key(
        prefix=prefix,
        region=group.region,
        window_ms=window_ms,
        count=len(bodies),
        data=data,
        organization_id=organization_id,
        account_id=group.account_id,
        event_type=event_type,
    )
    return OssFile(key, data, len(bodies), group.account_id, tuple(bodies))

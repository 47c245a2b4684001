"""The digest a trail delivers beside each OSS window's files (docs/integrity.md, "Digests").

``<prefix>/AliyunLogs/Actiontrail-Digest/<home region>/YYYY/MM/DD/
<accountId>_Actiontrail-Digest_<home region>_<trail>_<YYYYMMDDTHHMMSSZ>.json.gz``, in the trail's
bucket, the time being the window's (the same as its files' names). An organization trail
delivers one digest per account that has a file in the window: each account has its own log.

``DigestWriter`` is an ``after_window`` hook of the engine. It must give the same key and bytes
when a window is written again (after a failure or a ``kill -9``), so:

* the digest is pinned to the tree as it was at the window's last event (the number of the
  account's leaves up to the window's last seq), not to the log's head, and its checkpoint is
  signed for that tree (Ed25519 signatures are deterministic);
* the previous digest of the chain is read from the bucket (the last one of this trail and account
  whose time is before the window's), so a restart continues the chain, and a window written
  again never takes itself for its previous. Once seen it is remembered in memory; then only the
  day folders since it are listed, in case another node delivered windows meanwhile.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ..service.integrity.digest import DeliveredFile, build_digest, digest_bytes
from ..service.integrity.note import Signer
from ..service.integrity.verify import split_events
from ..storage.base import EventStore
from .object_storage import ObjectStorageError
from .runs import WindowDelivered

__all__ = ["DIGEST_TYPE", "DigestNotReady", "DigestWriter", "digest_folder", "digest_key"]

DIGEST_TYPE = "Actiontrail-Digest"
#: How long a window waits for the sequencer to log its last event (it does so within a second).
WAIT_S = 10.0
_STAMP = re.compile(r"[0-9]{8}T[0-9]{6}Z")


class DigestNotReady(Exception):
    """The log has not taken the window's events in yet: the window is written again later."""


def _stamp(window_ms: int) -> str:
    return datetime.fromtimestamp(window_ms // 1000, UTC).strftime("%Y%m%dT%H%M%SZ")


def digest_folder(prefix: str, region: str) -> str:
    parts = [prefix.strip("/")] if prefix.strip("/") else []
    return "/".join([*parts, "AliyunLogs", DIGEST_TYPE, region]) + "/"


def _name_start(account_id: str, region: str, trail_name: str) -> str:
    return f"{account_id}_{DIGEST_TYPE}_{region}_{trail_name}_"


def digest_key(*, prefix: str, region: str, account_id: str, trail_name: str, window_ms: int) -> str:
    t = datetime.fromtimestamp(window_ms // 1000, UTC)
    name = f"{_name_start(account_id, region, trail_name)}{_stamp(window_ms)}.json.gz"
    return f"{digest_folder(prefix, region)}{t.year:04d}/{t.month:02d}/{t.day:02d}/{name}"


class DigestWriter:
    """An ``after_window`` hook: one digest per account with files in the window."""

    def __init__(
        self,
        store: EventStore,
        signer: Signer,
        *,
        wait_s: float = WAIT_S,
        poll_s: float = 0.1,
        catch_up: Callable[[], int] | None = None,
    ) -> None:
        self.store, self.signer = store, signer
        self.wait_s, self.poll_s = wait_s, poll_s
        #: Sequences the log itself while waiting (``trails deliver --once`` runs without serve).
        self.catch_up = catch_up
        #: (bucket, key prefix, account, trail) → (window time, that window's digest, its previous).
        self._last: dict[tuple[str, str, str, str], tuple[int, dict[str, Any], dict[str, Any] | None]] = {}
        self.written = 0

    async def __call__(self, window: WindowDelivered) -> None:
        by_account: dict[str, list[DeliveredFile]] = {}
        for f in window.files:
            account = f.account_id or window.trail.account_id
            # The engine hands the bodies it wrote; else split them from the file (off the event loop).
            events = list(f.events) or await asyncio.to_thread(_split, f.data)
            by_account.setdefault(account, []).append(DeliveredFile(f.key, f.data, events))
        if not by_account:
            return
        await self._wait_for_log(window.last_seq)
        for account in sorted(by_account):
            await self._deliver(window, account, by_account[account])

    async def _wait_for_log(self, seq: int) -> None:
        deadline = time.monotonic() + self.wait_s
        while True:
            if self.catch_up is not None and await asyncio.to_thread(self.catch_up) > 0:
                deadline = time.monotonic() + self.wait_s  # progress: a long backlog is no failure
            if await asyncio.to_thread(self.store.log_watermark) >= seq:
                return
            if time.monotonic() >= deadline:
                raise DigestNotReady(f"the log has not reached seq {seq} after {self.wait_s:g}s")
            await asyncio.sleep(self.poll_s)

    async def _deliver(self, window: WindowDelivered, account: str, files: list[DeliveredFile]) -> None:
        trail = window.trail
        region = trail.home_region
        key = digest_key(
            prefix=trail.oss_key_prefix,
            region=region,
            account_id=account,
            trail_name=trail.name,
            window_ms=window.window_ms,
        )
        previous = await self._previous(window, account)
        old = int(previous["treeSize"]) if previous else 0
        size = await asyncio.to_thread(self._tree_size_at, account, window.last_seq, old)
        start = previous["digestEndTime"] if previous else _iso(window.window_ms)
        digest = await asyncio.to_thread(
            lambda: build_digest(
                self.store,
                account_id=account,
                files=files,
                window_start=start,
                window_end=_iso(window.window_ms),
                previous=previous,
                tree_size=size,
                signer=self.signer,
            )
        )
        data = await asyncio.to_thread(digest_bytes, digest)
        try:
            await asyncio.to_thread(window.storage.put, window.bucket, key, data)
        except ObjectStorageError as exc:
            raise DigestNotReady(f"cannot write digest {key}: {exc}") from None
        self._last[self._chain(window, account)] = (window.window_ms, digest, previous)
        self.written += 1

    def _tree_size_at(self, account: str, seq: int, old: int) -> int:
        """How many leaves the account's log has up to ``seq`` (leaves are in seq order)."""
        head = self.store.log_head(account_id=account)
        lo, hi = old, head.size if head else 0
        while lo < hi:
            mid = (lo + hi) // 2
            found = self.store.log_leaf_seqs(account_id=account, start=mid, end=mid + 1)
            if found and found[0] <= seq:
                lo = mid + 1
            else:
                hi = mid
        return lo

    @staticmethod
    def _chain(window: WindowDelivered, account: str) -> tuple[str, str, str, str]:
        return (window.bucket, window.trail.oss_key_prefix, account, window.trail.name)

    async def _previous(self, window: WindowDelivered, account: str) -> dict[str, Any] | None:
        """The digest of the chain's window before this one (None: this is the first)."""
        known = self._last.get(self._chain(window, account))
        if known is not None and known[0] == window.window_ms:
            return known[2]  # this window again: the same previous as the first time
        if known is not None and known[0] < window.window_ms:
            # Another node may have delivered windows since (it held the trail's lease for a while):
            # look at the days from the remembered digest's to this window's for a later one.
            days = _days(known[0], window.window_ms)
            found = await asyncio.to_thread(self._last_in_bucket, window, account, days)
            if found is None or found[0] <= _stamp(known[0]):
                return known[1]
            return await asyncio.to_thread(self._read, window, found[1])
        found = await asyncio.to_thread(self._last_in_bucket, window, account, [""])
        return None if found is None else await asyncio.to_thread(self._read, window, found[1])

    def _last_in_bucket(
        self, window: WindowDelivered, account: str, days: list[str]
    ) -> tuple[str, str] | None:
        """(time stamp, key) of the chain's last digest before the window, under the day folders
        given (``YYYY/MM/DD/``; ``""``: all of them)."""
        trail = window.trail
        folder = digest_folder(trail.oss_key_prefix, trail.home_region)
        start = _name_start(account, trail.home_region, trail.name)
        mine = _stamp(window.window_ms)
        best: tuple[str, str] | None = None
        try:
            for day in days:
                for key in window.storage.list(window.bucket, folder + day):
                    name = key.rsplit("/", 1)[-1]
                    if not (name.startswith(start) and name.endswith(".json.gz")):
                        continue
                    stamp = name[len(start) : -len(".json.gz")]
                    if _STAMP.fullmatch(stamp) and stamp < mine and (best is None or stamp > best[0]):
                        best = (stamp, key)
        except ObjectStorageError as exc:
            raise DigestNotReady(f"cannot list the digests: {exc}") from None
        return best

    @staticmethod
    def _read(window: WindowDelivered, key: str) -> dict[str, Any]:
        try:
            found: dict[str, Any] = orjson.loads(gzip.decompress(window.storage.get(window.bucket, key)))
        except ObjectStorageError as exc:
            raise DigestNotReady(f"cannot read the previous digest {key}: {exc}") from None
        return found


def _days(from_ms: int, to_ms: int) -> list[str]:
    """The day folders (``YYYY/MM/DD/``) from one time's UTC day to another's, both included."""
    day = datetime.fromtimestamp(from_ms // 1000, UTC).date()
    last = datetime.fromtimestamp(to_ms // 1000, UTC).date()
    out = []
    while day <= last:
        out.append(f"{day.year:04d}/{day.month:02d}/{day.day:02d}/")
        day += timedelta(days=1)
    return out


def _split(data: bytes) -> list[bytes]:
    return split_events(gzip.decompress(data))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

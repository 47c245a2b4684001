"""Copy one store into another (SQLite to PostgreSQL, typically), safely re-runnable.

Trails, their data event selectors and organizations travel too (``_copy_trails``).

Events travel in the source's log order, each body re-validated on the way and appended
verbatim; the target's dedupe on (account, eventId) makes a second run copy nothing twice, so an
interrupted copy is simply run again. AccessKey usage is rebuilt by the target from the events
it stores. Credentials travel as they are: AccessKey secrets stay sealed with the master key, so
the target deployment needs the same master key. The page-token key travels too, and the target
numbers events 1, 2, … in log order, so when an empty target receives a source whose seqs have no
gaps (SQLite's never do), NextTokens issued before the move stay valid after it.

Run it against a source that is not taking writes, or run it again once writes have stopped:
the final counts are checked and a shortfall is an error.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from ..model.event import EventInvalid, EventRecord
from ..model.event_text import event_from_json
from .base import EventStore, LogEntry, StoreError

__all__ = ["CopyError", "CopyResult", "copy_store"]

#: The meta entries that belong to the data and travel with it.
META_NAMES = ("page_token_key",)


class CopyError(StoreError):
    """The target does not hold what the source does after a copy."""


@dataclass(frozen=True, slots=True)
class CopyResult:
    copied: int  # events the target stored during this run
    duplicates: int  # events the target already held (an earlier, perhaps interrupted, run)
    source_count: int
    target_count: int
    #: Source events that no longer pass validation, as (seq, reason); they are not copied.
    invalid: tuple[tuple[int, str], ...] = ()
    #: Meta entries the target already held with a different value (kept: the target wins).
    meta_conflicts: tuple[str, ...] = ()


def copy_store(
    source: EventStore,
    target: EventStore,
    *,
    batch: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> CopyResult:
    """Copy every event, credential and shared setting of ``source`` into ``target``.

    ``progress`` is called after each batch with the number of source events handled so far.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    meta_conflicts = _copy_meta(source, target)
    _copy_credentials(source, target)
    _copy_trails(source, target)
    copied = duplicates = handled = 0
    invalid: list[tuple[int, str]] = []
    after_seq = 0
    while page := source.read_log(after_seq=after_seq, limit=batch):
        records: list[EventRecord] = []
        for entry in page:
            try:
                records.append(_revalidated(entry))
            except EventInvalid as exc:
                invalid.append((entry.seq, str(exc)))
        if records:
            result = target.append(records)
            copied += len(result.accepted)
            duplicates += len(result.duplicates)
        handled += len(page)
        after_seq = page[-1].seq
        if progress is not None:
            progress(handled)
    source_count = _count(source)
    target_count = _count(target)
    if target_count < source_count - len(invalid):
        raise CopyError(
            f"the target holds {target_count} events but the source {source_count}"
            f" ({len(invalid)} invalid): was the source written to during the copy? Run the copy again."
        )
    return CopyResult(copied, duplicates, source_count, target_count, tuple(invalid), meta_conflicts)


def _copy_trails(source: EventStore, target: EventStore) -> None:
    """Organizations, trails and their data event selectors, each unless the target has it.

    Delivery-history jobs and delivery progress stay behind: they belong to the source's
    deliverers, and the target's start from its own log.
    """
    for organization in source.list_organizations():
        for member in organization.member_account_ids:
            if target.organization_of(member) is None:
                target.add_organization_member(
                    management_account_id=organization.management_account_id,
                    member_account_id=member,
                    organization_id=organization.organization_id,
                    now_ms=organization.created_ms,
                )
    trails = source.list_all_trails()
    for trail in trails:
        if target.get_trail(account_id=trail.account_id, name=trail.name) is None:
            # The source already held its limits; a copy must not drop a trail over them.
            target.create_trail(trail, max_per_region=len(trails) + 1, max_organization=len(trails) + 1)
    for account_id in sorted({t.account_id for t in trails}):
        for selector in source.list_data_event_selectors(account_id=account_id):
            if target.get_data_event_selector(account_id=account_id, trail_name=selector.trail_name) is None:
                target.put_data_event_selector(selector)


def _revalidated(entry: LogEntry) -> EventRecord:
    """The event of a log entry as a record, validated anew; its body bytes are kept verbatim."""
    record = event_from_json(entry.event.body)
    # The eventId half compares validation's reading of the body with the store's (event_id_of):
    # two parsers that must agree, or the dedupe would not find what ingest indexed.
    if (record.account_id, record.event_id) != (entry.account_id, entry.event.event_id):
        raise EventInvalid("the body does not match the account and eventId it is stored under")
    # Validation re-serialises the JSON; the stored bytes are what a client sent, keep those.
    return dataclasses.replace(record, body=entry.event.body)


def _copy_credentials(source: EventStore, target: EventStore) -> None:
    for key in source.list_all_access_keys():
        existing = target.get_access_key(key.access_key_id)
        if existing is None:
            target.save_access_key(key)
        elif existing.status != key.status:
            target.set_access_key_status(key.access_key_id, key.status)
    for token in source.list_tokens():
        if target.find_token(token.token_hash) is None:
            target.save_token(token)


def _copy_meta(source: EventStore, target: EventStore) -> tuple[str, ...]:
    conflicts = []
    for name in META_NAMES:
        # The protocol only offers get-or-set: a fresh source gets a value here, which it would
        # have generated on first use anyway, and the target then gets the same one.
        value = source.meta_get_or_set(name, secrets.token_bytes(32))
        if target.meta_get_or_set(name, value) != value:
            conflicts.append(name)
    return tuple(conflicts)


def _count(store: EventStore) -> int:
    return store.count_events()

"""Usage reads across every service page completely even when rows tie on time and item."""

from __future__ import annotations

from trailhouse.model.event import event_from_mapping
from trailhouse.model.query import UsageKind, UsagePosition
from trailhouse.storage.base import EventStore


def test_all_service_paging_breaks_ties_on_service(store: EventStore) -> None:
    events = [
        event_from_mapping(
            {
                "eventId": f"tie-{service}",
                "eventTime": "2026-11-20T10:00:00Z",
                "eventName": "Describe",
                "serviceName": service,
                "sourceIpAddress": "10.1.1.1",
                "userIdentity": {"accountId": "77", "accessKeyId": "LTAItie"},
            }
        )
        for service in ("Ecs", "Oss", "Ram", "Vpc")
    ]
    store.append(events)
    seen: list[str] = []
    after: UsagePosition | None = None
    while True:
        page = store.usage(
            account_id="77",
            access_key_id="LTAItie",
            kind=UsageKind.IP,
            service_name=None,
            since_ms=0,
            after=after,
            limit=1,
        )
        if not page:
            break
        seen += [e.service_name for e in page]
        after = page[-1].position
    assert sorted(seen) == ["Ecs", "Oss", "Ram", "Vpc"]


def test_second_migration_recorded(store: EventStore) -> None:
    assert "0002_usage_service_tiebreak" in store.applied_migrations()  # type: ignore[attr-defined]

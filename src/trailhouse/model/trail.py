"""Trails and what hangs off them: data event selectors, delivery-history jobs, organizations.

A trail is one account's standing order to deliver its events (those matching EventRW and
TrailRegion) to a destination: an OSS bucket and prefix, an SLS project, or both. Its fields are
the ones DescribeTrails returns, kept as the wire spells them ("" for a field never set), plus the
times as epoch milliseconds. ``Status`` goes Fresh (created, never started) → Enable ↔ Disable.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

__all__ = [
    "ALL_REGIONS",
    "DataEventSelector",
    "EventRW",
    "HistoryJob",
    "HistoryJobStatus",
    "Organization",
    "Trail",
    "TrailStatus",
]

#: TrailRegion's value for "every region" (the default).
ALL_REGIONS = "All"


class TrailStatus(enum.StrEnum):
    FRESH = "Fresh"  # created, never started
    ENABLE = "Enable"
    DISABLE = "Disable"


class EventRW(enum.StrEnum):
    READ = "Read"
    WRITE = "Write"
    ALL = "All"


@dataclass(frozen=True, slots=True)
class Trail:
    """One trail of one account, as DescribeTrails shows it."""

    account_id: str
    name: str
    home_region: str
    trail_region: str  # "All" or comma-separated region ids
    event_rw: EventRW
    status: TrailStatus
    oss_bucket_name: str = ""
    oss_bucket_location: str = ""
    oss_key_prefix: str = ""
    oss_write_role_arn: str = ""
    sls_project_arn: str = ""
    sls_write_role_arn: str = ""
    max_compute_project_arn: str = ""
    max_compute_write_role_arn: str = ""
    #: The 2017-12-04 version's parameters, kept so that a 2017 client reads back what it wrote.
    role_name: str = ""
    mns_topic_arn: str = ""
    is_organization_trail: bool = False
    #: The organization (resource directory) id of an organization trail, else "".
    organization_id: str = ""
    create_ms: int = 0
    update_ms: int = 0
    start_logging_ms: int | None = None
    stop_logging_ms: int | None = None

    @property
    def is_logging(self) -> bool:
        return self.status is TrailStatus.ENABLE

    @property
    def trail_arn(self) -> str:
        return f"acs:actiontrail:{self.home_region}:{self.account_id}:trail/{self.name}"

    @property
    def regions(self) -> tuple[str, ...] | None:
        """The regions whose events the trail delivers; None means every region."""
        if self.trail_region == ALL_REGIONS:
            return None
        return tuple(r for r in self.trail_region.split(",") if r)

    def covers(self, *, acs_region: str, event_rw: str) -> bool:
        """Whether an event with this acsRegion and eventRW is in the trail's scope."""
        regions = self.regions
        if regions is not None and acs_region not in regions:
            return False
        return self.event_rw is EventRW.ALL or event_rw == self.event_rw.value

    def with_status(self, status: TrailStatus, now_ms: int) -> Trail:
        if status is TrailStatus.ENABLE:
            return replace(self, status=status, start_logging_ms=now_ms)
        return replace(self, status=status, stop_logging_ms=now_ms)


@dataclass(frozen=True, slots=True)
class DataEventSelector:
    """Which data events (e.g. OSS object reads) a trail delivers; at most one per trail.

    ``event_selectors`` is the JSON text PutDataEventSelector was given, kept as sent.
    """

    account_id: str
    trail_name: str
    event_selectors: str
    is_trail_all_region: bool
    trail_region_ids: tuple[str, ...]
    create_ms: int
    update_ms: int


class HistoryJobStatus(enum.IntEnum):
    """A delivery-history job's state, with ActionTrail's numbers."""

    INITIALIZING = 0  # stored, no deliverer has picked it up yet
    DELIVERING = 1  # a deliverer is replaying the window into the trail
    COMPLETE = 2
    FAILED = 3


@dataclass(frozen=True, slots=True)
class HistoryJob:
    """A request to deliver a trail's past events (the 90 days before it was made) into the trail.

    The delivery engine picks up jobs in INITIALIZING or DELIVERING, replays the events of
    ``[window_start_ms, window_end_ms)`` in the trail's scope, and records its progress in
    ``checkpoint`` (an opaque text of its own: a job taken over after a crash resumes from it),
    moving the job to DELIVERING, then COMPLETE or FAILED (``error`` says why).
    """

    job_id: int  # 0 until stored
    account_id: str
    trail_name: str
    home_region: str
    status: HistoryJobStatus
    window_start_ms: int
    window_end_ms: int
    client_token: str
    created_ms: int
    updated_ms: int
    started_ms: int | None = None
    finished_ms: int | None = None
    checkpoint: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class Organization:
    """A management account and its member accounts (a resource directory, in Alibaba's terms).

    The management account's organization trails deliver every member's events. An account is
    in at most one organization, as its management account or as a member.
    """

    organization_id: str  # "rd-…"
    management_account_id: str
    member_account_ids: tuple[str, ...]
    created_ms: int

    @property
    def account_ids(self) -> tuple[str, ...]:
        """The management account and every member: whose events an organization trail delivers."""
        return (self.management_account_id, *self.member_account_ids)

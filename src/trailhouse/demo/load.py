"""The demo: a realistic dataset with a leaked-AccessKey story, and credentials to explore it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..model.credentials import TokenScope
from ..model.insights import INSIGHT_TYPES
from ..model.times import DAY_MS, parse_wire_time
from ..model.trail import EventRW, HistoryJob, HistoryJobStatus, Trail, TrailStatus
from ..service.credentials import create_access_key, create_token
from ..service.ingest import ingest_items
from ..service.insights.config import Thresholds
from ..service.insights.detector import Detector
from ..service.secrets import Sealer
from ..storage.base import EventStore
from .story import DEMO_ACCOUNT, demo_events, demo_story_facts

__all__ = ["DemoLoad", "load_demo"]

DEMO_SEED = 7


@dataclass(frozen=True, slots=True)
class DemoLoad:
    accepted: int
    duplicates: int
    account_id: str
    access_key_id: str
    access_key_secret: str
    read_token: str
    leaked_key: str
    attacker_ips: tuple[str, ...]
    #: The demo trail's bucket, and where its files appear ("" when no trail was asked for).
    trail_name: str = ""
    trail_files: str = ""
    #: Insight records the demo's detector pass raised (0 when it was not asked for, or had run before).
    insights: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "Accepted": self.accepted,
            "Duplicates": self.duplicates,
            "AccountId": self.account_id,
            "AccessKeyId": self.access_key_id,
            "AccessKeySecret": self.access_key_secret,
            "ReadToken": self.read_token,
            "LeakedAccessKeyId": self.leaked_key,
            "AttackerIps": list(self.attacker_ips),
            "TrailName": self.trail_name,
            "TrailFiles": self.trail_files,
            "Insights": self.insights,
        }

    def instructions(self, port: int) -> str:
        endpoint = f"127.0.0.1:{port}"
        return f"""\
Demo data: {self.accepted:,} events stored ({self.duplicates:,} were already there).

Endpoint:        http://{endpoint}  (ActionTrail OpenAPI at /, native API at /api/v1)
Web console:     http://{endpoint}/console  (sign in with the AccessKey pair or the token below)
AccountId:       {self.account_id}
AccessKeyId:     {self.access_key_id}
AccessKeySecret: {self.access_key_secret}
Token:           {self.read_token}  (read and ingest: GET and POST /api/v1/events)

The story: AccessKey {self.leaked_key} leaked; it was used from {", ".join(self.attacker_ips)}.

Python (pip install alibabacloud-actiontrail20200706):

    from alibabacloud_tea_openapi.models import Config
    from alibabacloud_actiontrail20200706.client import Client
    from alibabacloud_actiontrail20200706 import models
    client = Client(Config(access_key_id='{self.access_key_id}',
                           access_key_secret='{self.access_key_secret}',
                           endpoint='{endpoint}', protocol='http'))
    ips = client.get_access_key_last_used_ips(models.GetAccessKeyLastUsedIpsRequest(
        access_key='{self.leaked_key}', service_name='Ecs'))
    print(ips.body.to_map())
    events = client.lookup_events(models.LookupEventsRequest(lookup_attribute=[
        models.LookupEventsRequestLookupAttribute(key='EventAccessKeyId', value='{self.leaked_key}')]))
    print(len(events.body.events), 'events')

Native API:

    curl -H 'Authorization: Bearer {self.read_token}' \\
      'http://{endpoint}/api/v1/events?EventAccessKeyId={self.leaked_key}&limit=5'
    curl -H 'Authorization: Bearer {self.read_token}' \\
      'http://{endpoint}/api/v1/access-keys/{self.leaked_key}/report?format=html' > report.html
    trailhouse access-key report {self.leaked_key} --account {self.account_id}
{self._insights_text()}{self._trail_text()}"""

    def _insights_text(self) -> str:
        if not self.insights:
            return ""
        return f"""
Insights are on for the account: the story raised {self.insights} insight record(s) (the attacker's new
addresses, the policy attached to the new user). In the console: /console/insights, or

    trailhouse insights list --account {self.account_id}
"""

    def _trail_text(self) -> str:
        if not self.trail_name:
            return ""
        return f"""
Trail "{self.trail_name}" delivers the account's events as ActionTrail's gzip files (a backfill of
the demo data first, then every new event a minute after it arrives), into:

    {self.trail_files}/AliyunLogs/Actiontrail/<region>/YYYY/MM/DD/Actiontrail_*.gz

    trailhouse trails status {self.trail_name} --account {self.account_id}
    find {self.trail_files} -name '*.gz' | head
    trailhouse ingest --db sqlite:///copy.db {self.trail_files}    # the files restore the events
"""


DEMO_TRAIL = "demo-trail"


def _demo_trail(store: EventStore, bucket: str, now: int) -> None:
    """A trail delivering the demo account to ``bucket``, and a history job that backfills the demo
    data into it (both idempotent: a trail of that name, a job of that client token, stay)."""
    trail = Trail(
        DEMO_ACCOUNT,
        DEMO_TRAIL,
        "cn-hangzhou",
        "All",
        EventRW.ALL,
        TrailStatus.ENABLE,
        oss_bucket_name=bucket,
        create_ms=now,
        update_ms=now,
        start_logging_ms=now,
    )
    store.create_trail(trail, max_per_region=5, max_organization=1)  # a conflict: it is there already
    job = HistoryJob(
        0,
        DEMO_ACCOUNT,
        DEMO_TRAIL,
        "cn-hangzhou",
        HistoryJobStatus.INITIALIZING,
        now - 90 * DAY_MS,
        now,
        "demo-backfill",
        now,
        now,
    )
    store.create_history_job(job, max_open_per_account=1)


def _detect(store: EventStore, thresholds: Thresholds) -> int:
    """Run the detector until it has read the log; the records it stored.

    Its lease lasts a second: a ``serve`` started right after takes detection over at once instead
    of standing by for a lease left behind (the commit checks the owner, so an overlap is safe).
    """
    detector = Detector(store, thresholds, owner="trailhouse-demo", lease_ms=1000)
    stored = 0
    while True:
        result = detector.step()
        stored += result.stored
        if not result.leader or result.processed == 0:
            return stored


def _store(store: EventStore, events: list[dict[str, Any]]) -> tuple[int, int]:
    accepted = duplicates = 0
    items = list(enumerate(events))
    for start in range(0, len(items), 5000):
        report = ingest_items(store, items[start : start + 5000], may_write=lambda _account: True)
        if report.rejected:
            raise RuntimeError(f"demo data rejected: {report.rejected[0].reason}")
        accepted += report.accepted
        duplicates += report.duplicates
    return accepted, duplicates


def load_demo(
    store: EventStore,
    sealer: Sealer,
    *,
    count: int,
    now: int,
    seed: int = DEMO_SEED,
    trail_bucket: str = "",
    trail_files: str = "",
    insights: Thresholds | None = None,
) -> DemoLoad:
    """Store the demo events (idempotent: event ids are fixed by the seed) and make fresh credentials.

    With ``trail_bucket`` (an existing bucket), also a trail delivering the demo account into it.
    With ``insights`` (the thresholds), Insights are on for the demo account and the story raises
    them as it would live: the history before the attack is stored first and read by the detector
    as the baseline, then the rest arrives and the detector reads it.
    """
    events = list(demo_events(end_ms=now, seed=seed, count=count))
    facts = demo_story_facts(end_ms=now, seed=seed)
    raised = 0
    if insights is None:
        accepted, duplicates = _store(store, events)
    else:
        attack = facts.first_malicious_ms
        before = [e for e in events if parse_wire_time(e["eventTime"]) < attack]
        accepted, duplicates = _store(store, before)
        for kind in INSIGHT_TYPES:
            store.set_insight_type(account_id=DEMO_ACCOUNT, insight_type=kind, enabled=True, now_ms=now)
        raised = _detect(store, insights)
        later = _store(store, [e for e in events if parse_wire_time(e["eventTime"]) >= attack])
        accepted, duplicates = accepted + later[0], duplicates + later[1]
        raised += _detect(store, insights)
    key = create_access_key(store, sealer, account_id=DEMO_ACCOUNT, user_name="demo-analyst")
    token = create_token(
        store, account_ids=(DEMO_ACCOUNT,), all_accounts=False, scopes=(TokenScope.READ, TokenScope.INGEST)
    )
    if trail_bucket:
        _demo_trail(store, trail_bucket, now)
    return DemoLoad(
        accepted=accepted,
        duplicates=duplicates,
        account_id=DEMO_ACCOUNT,
        access_key_id=key.key.access_key_id,
        access_key_secret=key.secret,
        read_token=token.secret,
        leaked_key=facts.leaked_key_id,
        attacker_ips=tuple(facts.attacker_ips),
        trail_name=DEMO_TRAIL if trail_bucket else "",
        trail_files=trail_files if trail_bucket else "",
        insights=raised,
    )

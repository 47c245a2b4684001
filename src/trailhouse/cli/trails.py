"""``trailhouse trails list``: every trail's configuration, for operators (the tenants' view is
DescribeTrails). ``trails status`` and ``trails deliver`` are in cli/trails_status.py.

Like every listing, a table through ``RowWriter`` (whole ids, tab-separated in a pipe) and camelCase
JSON keys (docs/cli.md "Output")."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ..model.times import format_wire_time
from ..model.trail import Trail
from ..render.table import Column
from .common import DbOption, JsonOption, load_settings, note, note_hidden, opened, row_writer, write_json

__all__ = ["TRAIL_COLUMNS", "trails_list"]

#: The account and the name identify a trail (``trails status NAME --account ID`` takes them): they
#: stay whole and are the last to go. A destination is an address to copy (a bucket and prefix, a
#: project's ARN), so it stays whole too, and a narrow terminal leaves out the organization, the
#: event and region filters, then the SLS project, before it.
TRAIL_COLUMNS = (
    Column("AccountId", whole=True),
    Column("Name", whole=True),
    Column("Status", whole=True, priority=1),
    Column("OSS", whole=True, priority=2),
    Column("SLS", whole=True, priority=3),
    Column("EventRW", whole=True, priority=4),
    Column("TrailRegion", whole=True, priority=4),
    Column("OrganizationId", whole=True, priority=5),
)


def _row(t: Trail) -> dict[str, Any]:
    return {
        "accountId": t.account_id,
        "name": t.name,
        "status": t.status.value,
        "homeRegion": t.home_region,
        "trailRegion": t.trail_region,
        "eventRW": t.event_rw.value,
        "ossBucketName": t.oss_bucket_name,
        "ossKeyPrefix": t.oss_key_prefix,
        "slsProjectArn": t.sls_project_arn,
        "isOrganizationTrail": t.is_organization_trail,
        "organizationId": t.organization_id,
        "trailArn": t.trail_arn,
        "createTime": format_wire_time(t.create_ms),
        "updateTime": format_wire_time(t.update_ms),
        "startLoggingTime": format_wire_time(t.start_logging_ms) if t.start_logging_ms is not None else "",
        "stopLoggingTime": format_wire_time(t.stop_logging_ms) if t.stop_logging_ms is not None else "",
    }


def _oss(r: dict[str, Any]) -> str:
    return f"oss://{r['ossBucketName']}/{r['ossKeyPrefix']}".rstrip("/") if r["ossBucketName"] else ""


def trails_list(
    account: Annotated[str | None, typer.Option("--account", help="Only this account's trails.")] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Every trail (or one account's): status, scope and destinations."""
    with opened(load_settings(db), create=False) as store:
        trails = store.list_all_trails() if account is None else store.list_trails(account_id=account)
    rows = [_row(t) for t in trails]
    if json_out:
        write_json(rows)
        return
    if not rows:
        note("no trails" + (f" in account {account}" if account else ""))
        return
    table = row_writer(TRAIL_COLUMNS)
    table.write_all(
        [
            r["accountId"],
            r["name"],
            r["status"],
            _oss(r),
            r["slsProjectArn"],
            r["eventRW"],
            r["trailRegion"],
            r["organizationId"] if r["isOrganizationTrail"] else "",
        ]
        for r in rows
    )
    note_hidden(table)

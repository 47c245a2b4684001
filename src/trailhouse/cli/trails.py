"""``trailhouse trails list``: every trail's configuration, for operators (the tenants' view is
DescribeTrails). ``trails status`` and ``trails deliver`` are in cli/trails_status.py."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from ..model.times import format_wire_time
from ..model.trail import Trail
from .common import DbOption, JsonOption, load_settings, opened, out

__all__ = ["trails_list"]


def _row(t: Trail) -> dict[str, Any]:
    return {
        "AccountId": t.account_id,
        "Name": t.name,
        "Status": t.status.value,
        "HomeRegion": t.home_region,
        "TrailRegion": t.trail_region,
        "EventRW": t.event_rw.value,
        "OssBucketName": t.oss_bucket_name,
        "OssKeyPrefix": t.oss_key_prefix,
        "SlsProjectArn": t.sls_project_arn,
        "IsOrganizationTrail": t.is_organization_trail,
        "OrganizationId": t.organization_id,
        "TrailArn": t.trail_arn,
        "CreateTime": format_wire_time(t.create_ms),
        "UpdateTime": format_wire_time(t.update_ms),
        "StartLoggingTime": format_wire_time(t.start_logging_ms) if t.start_logging_ms is not None else "",
        "StopLoggingTime": format_wire_time(t.stop_logging_ms) if t.stop_logging_ms is not None else "",
    }


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
        out.print(json.dumps(rows))
        return
    table = Table("Account", "Name", "Status", "EventRW", "TrailRegion", "Destinations", "Org")
    for r in rows:
        destinations = []
        if r["OssBucketName"]:
            destinations.append(f"oss://{r['OssBucketName']}/{r['OssKeyPrefix']}".rstrip("/"))
        if r["SlsProjectArn"]:
            destinations.append(r["SlsProjectArn"])
        table.add_row(
            r["AccountId"],
            r["Name"],
            r["Status"],
            r["EventRW"],
            r["TrailRegion"],
            "\n".join(destinations),
            r["OrganizationId"] if r["IsOrganizationTrail"] else "",
        )
    out.print(table)

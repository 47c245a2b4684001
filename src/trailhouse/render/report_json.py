"""The leaked-key report as plain JSON-ready data (the native API's answer and ``--format json``)."""

from __future__ import annotations

from typing import Any

from ..service.access_key_report import REPORT_LIST_LIMIT, AccessKeyReport
from ..service.report.types import BulkRead, CreatedEntity, LeakTime, ReportEvent
from .report_sections import iso

__all__ = ["report_to_json"]


def _event_json(e: ReportEvent) -> dict[str, Any]:
    out: dict[str, Any] = {
        "eventTime": iso(e.event_time_ms),
        "eventTimeMs": e.event_time_ms,
        "eventId": e.event_id,
        "eventName": e.event_name,
        "serviceName": e.service_name,
        "sourceIpAddress": e.source_ip,
        "userAgent": e.user_agent,
        "userName": e.user_name,
        "errorCode": e.error_code,
        "errorMessage": e.error_message,
        "resources": list(e.resources),
    }
    if e.reason:
        out["reason"] = e.reason
    return out


def _span(first_ms: int, last_ms: int, calls: int, failed: int) -> dict[str, Any]:
    return {
        "firstSeen": iso(first_ms),
        "firstSeenMs": first_ms,
        "lastSeen": iso(last_ms),
        "lastSeenMs": last_ms,
        "calls": calls,
        "failedCalls": failed,
    }


def _maybe_event(e: ReportEvent | None) -> dict[str, Any] | None:
    return _event_json(e) if e is not None else None


def _maybe_time(ms: int | None) -> str | None:
    return iso(ms) if ms is not None else None


def _leak_json(leak: LeakTime | None) -> dict[str, Any] | None:
    if leak is None:
        return None
    return {
        "time": _maybe_time(leak.time_ms),
        "timeMs": leak.time_ms,
        "derived": leak.derived,
        "basis": leak.basis,
        "caveat": leak.caveat,
        "trigger": _maybe_event(leak.trigger),
        "baselineUntil": _maybe_time(leak.baseline_until_ms),
        "baselineUntilMs": leak.baseline_until_ms,
        "baselineIps": list(leak.baseline_ips),
        "baselineIpCount": leak.baseline_ip_count,
        "baselineNetworks": list(leak.baseline_networks),
    }


def _bulk_json(b: BulkRead) -> dict[str, Any]:
    return {
        "kind": b.kind,
        "sourceIpAddress": b.source_ip,
        "newIp": b.new_ip,
        "routine": b.routine,
        "start": iso(b.start_ms),
        "startMs": b.start_ms,
        "end": iso(b.end_ms),
        "endMs": b.end_ms,
        "calls": b.calls,
        "failedCalls": b.failed_calls,
        "eventNames": [{"eventName": n, "calls": c} for n, c in b.event_names],
        "resourceCount": b.resource_count,
        "sampleResources": list(b.sample_resources),
    }


def _created_json(c: CreatedEntity) -> dict[str, Any]:
    a = c.activity
    return {
        "kind": c.kind,
        "name": c.name,
        "owner": c.owner,
        "created": _event_json(c.created),
        "changes": [_event_json(e) for e in c.changes],
        "activity": {
            "what": a.how,
            "calls": a.calls,
            "failedCalls": a.failed_calls,
            "firstUse": _maybe_time(a.first_ms),
            "firstUseMs": a.first_ms,
            "lastUse": _maybe_time(a.last_ms),
            "lastUseMs": a.last_ms,
            "ips": [{"ip": i.ip, "calls": i.calls, "known": i.known} for i in a.ips],
            "eventNames": [{"eventName": n, "calls": k} for n, k in a.event_names],
            "events": [_event_json(e) for e in a.events],
            "dangerous": [_event_json(e) for e in a.dangerous],
            "bulkReads": [_bulk_json(b) for b in a.bulk_reads],
        },
    }


def report_to_json(report: AccessKeyReport) -> dict[str, Any]:
    """The report as plain JSON-ready data: times as ``yyyy-MM-ddTHH:mm:ssZ`` plus epoch ms."""
    return {
        "accountId": report.account_id,
        "accessKeyId": report.access_key_id,
        # found is False when the account holds no event of this key at all (an unknown key or an
        # empty account); notice says in words why the report is empty ("" when it is not).
        "found": report.found,
        "notice": report.notice,
        # since: where the findings start (the leak time, or the window's start without one).
        "since": iso(report.since_ms),
        "sinceMs": report.since_ms,
        "until": iso(report.until_ms),
        "untilMs": report.until_ms,
        "leakTime": _leak_json(report.leak),
        "windowStart": iso(report.window_start_ms),
        "windowStartMs": report.window_start_ms,
        "windowCalls": report.window_calls,
        "totalCalls": report.total_calls,
        "failedCalls": report.failed_calls,
        "firstUse": _maybe_event(report.first_use),
        "lastUse": _maybe_event(report.last_use),
        "firstUseFromNewIp": _maybe_event(report.first_use_from_new_ip),
        "newIps": [a.ip for a in report.new_ips],
        "identities": list(report.identities),
        "created": [_created_json(c) for c in report.created],
        "createdTotal": report.created_total,
        "bulkReads": [_bulk_json(b) for b in report.bulk_reads],
        "bulkReadsTotal": report.bulk_reads_total,
        "ips": [
            {
                "ip": a.ip,
                **_span(a.first_seen_ms, a.last_seen_ms, a.calls, a.failed_calls),
                "callsSinceLeak": a.calls_since_leak,
                "firstSeenEver": iso(a.first_seen_ever_ms),
                "firstSeenEverMs": a.first_seen_ever_ms,
                "new": a.new,
                "knownNetwork": a.known_network,
                "services": list(a.services),
                "userAgents": list(a.user_agents),
            }
            for a in report.ips
        ],
        "services": [
            {
                "serviceName": s.service_name,
                "serviceNameCn": s.service_name_cn,
                "serviceNameEn": s.service_name_en,
                **_span(s.first_seen_ms, s.last_seen_ms, s.calls, s.failed_calls),
            }
            for s in report.services
        ],
        "resources": [
            {
                "resourceType": r.resource_type,
                "resourceName": r.resource_name,
                **_span(r.first_seen_ms, r.last_seen_ms, r.calls, r.failed_calls),
                "routine": r.routine,
            }
            for r in report.resources
        ],
        "eventNames": [
            {
                "serviceName": n.service_name,
                "eventName": n.event_name,
                **_span(n.first_seen_ms, n.last_seen_ms, n.calls, n.failed_calls),
            }
            for n in report.event_names
        ],
        "failed": [_event_json(e) for e in report.failed],
        "failedListed": len(report.failed),
        "dangerous": [_event_json(e) for e in report.dangerous],
        "dangerousTotal": report.dangerous_total,
        "listLimit": REPORT_LIST_LIMIT,
        "hourly": [
            {"ip": h.ip, "counts": [{"hour": iso(hour), "hourMs": hour, "calls": n} for hour, n in h.counts]}
            for h in report.hourly
        ],
    }

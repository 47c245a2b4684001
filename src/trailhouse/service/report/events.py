"""One call as a report shows it, and which calls are dangerous."""

from __future__ import annotations

from typing import Any

from ...model.event import EventInvalid, EventRecord, event_from_mapping, fast_record, id_text
from ...model.event_text import parse_body
from .types import ReportEvent

__all__ = ["DANGEROUS_ACTIONS", "read_event", "report_event"]

#: Actions an attacker uses to persist, escalate, evade or spend, with the reason shown in reports.
DANGEROUS_ACTIONS: dict[str, str] = {
    "CreateAccessKey": "new credential (persistence)",
    "UpdateAccessKey": "credential state changed",
    "CreateUser": "new identity (persistence)",
    "CreateLoginProfile": "console password for a user (persistence)",
    "UpdateLoginProfile": "console password changed",
    "AddUserToGroup": "group membership (privilege escalation)",
    "AttachPolicyToUser": "permissions granted (privilege escalation)",
    "AttachPolicyToRole": "permissions granted (privilege escalation)",
    "AttachPolicyToGroup": "permissions granted (privilege escalation)",
    "CreatePolicy": "new policy (privilege escalation)",
    "CreatePolicyVersion": "policy rewritten (privilege escalation)",
    "SetDefaultPolicyVersion": "policy version switched (privilege escalation)",
    "CreateRole": "new role (persistence)",
    "UpdateRole": "role trust policy changed (persistence)",
    "AssumeRole": "role assumed (lateral movement)",
    "PutBucketPolicy": "bucket policy changed (data exposure)",
    "PutBucketAcl": "bucket ACL changed (data exposure)",
    "AuthorizeSecurityGroup": "inbound network rule opened",
    "ImportKeyPair": "SSH key pair imported (access to instances)",
    "AttachKeyPair": "SSH key pair attached (access to instances)",
    "RunInstances": "instances created (resource abuse)",
    "CreateInstance": "instance created (resource abuse)",
    "StopLogging": "audit trail stopped (defense evasion)",
    "DeleteTrail": "audit trail deleted (defense evasion)",
    "UpdateTrail": "audit trail changed (defense evasion)",
}


def _text(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    return value if isinstance(value, str) else ""


def report_event(
    doc: dict[str, Any], resources: tuple[tuple[str, str], ...], t: int, reason: str = ""
) -> ReportEvent:
    identity = doc.get("userIdentity")
    identity = identity if isinstance(identity, dict) else {}
    return ReportEvent(
        event_time_ms=t,
        event_id=id_text(doc.get("eventId")),
        event_name=_text(doc, "eventName"),
        service_name=_text(doc, "serviceName"),
        source_ip=_text(doc, "sourceIpAddress"),
        user_agent=_text(doc, "userAgent"),
        user_name=_text(identity, "userName"),
        error_code=_text(doc, "errorCode"),
        error_message=_text(doc, "errorMessage"),
        resources=tuple(f"{rtype} {rname}".strip() for rtype, rname in resources),
        reason=reason,
    )


def read_event(body: bytes) -> tuple[dict[str, Any], EventRecord] | None:
    """A stored event's document and record: the C decode of ingest's fast path, else the checks.

    None for an event the checks refuse (stored events were validated at ingest; a report never
    stops on one).
    """
    doc = parse_body(body)
    rec = fast_record(body)
    if rec is not None:
        return doc, rec
    try:
        return doc, event_from_mapping(doc, body=body)
    except EventInvalid:
        return None

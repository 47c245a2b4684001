"""Seeded, deterministic generator of realistic ActionTrail events.

Used by ``trailhouse demo`` (a few thousand events plus the leaked-key story in ``demo.story``) and by
the benchmarks (millions of events). Everything is derived from ``seed`` and ``end_ms`` (no global random
state, no clock), so the same parameters always give byte-identical output. The timestamps come from a
stream of their own: the content of the n-th event, its ID included, is the same whatever ``end_ms``.

The shape of the traffic is what matters for an audit store, so the generator models it:

* a small world per call: accounts, RAM users, AccessKeys, roles and sessions, an IP pool, and
  resource pools per (account, region, kind), all sized from ``count``;
* Zipf-like skew: a few AccessKeys carry most of the calls, a long tail of cold keys; each key has
  its own client (userAgent), home region, handful of APIs and slice of the IP pool;
* a daily rhythm (Beijing office hours, quieter weekends) over ``days`` days ending at ``end_ms``;
  events come out in ascending time order;
* a few percent of failed calls, console sign-ins and operations, STS sessions, service events.

The hot loop only picks from precomputed tables and fills a dict; strings are built once and cached.
"""

from __future__ import annotations

import base64
import bisect
import gzip as gzip_module
import hashlib
import itertools
import random
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from .events import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    api_event,
    event_id_for,
    gateway_params,
    guid,
    host_for,
    signin_id,
    wire_time,
)
from .operations import GLOBAL_REGION, KINDS, Op, errors_for, op
from .vocabulary import HOURLY, P_AK, P_CONSOLE, P_SIGNIN, P_STS, SECONDS, WEEKEND
from .world import Actor, World

__all__ = ["generate_events", "write_ndjson"]

# --------------------------------------------------------------------------------------------------
# Timeline
# --------------------------------------------------------------------------------------------------


def _slots(rng: random.Random, count: int, end_ms: int, days: int) -> list[tuple[int, int, int]]:
    """(start, end, events) per UTC hour of the window, the counts following the daily rhythm.

    Largest-remainder allocation makes the counts sum to exactly ``count``.
    """
    start = end_ms - days * DAY_MS
    edges = [start, *range((start // HOUR_MS + 1) * HOUR_MS, end_ms, HOUR_MS), end_ms]
    bounds = list(itertools.pairwise(edges))
    weights = []
    for lo, hi in bounds:
        local = lo + 8 * HOUR_MS  # Beijing time
        weekday = (local // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        w = HOURLY[(local // HOUR_MS) % 24] * (WEEKEND if weekday >= 5 else 1.0)
        weights.append(w * (hi - lo) / HOUR_MS * rng.uniform(0.8, 1.2))
    total = sum(weights)
    exact = [count * w / total for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: count - sum(counts)]:
        counts[i] += 1
    return [(lo, hi, k) for (lo, hi), k in zip(bounds, counts, strict=True) if k]


# --------------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------------

_SERVICE_EVENTS = (  # what Alibaba Cloud itself does to your resources (AliyunServiceEvent)
    ("Ecs", "CreateSnapshot", "ecs_disk"),
    ("Ecs", "RenewInstance", "ecs_instance"),
    ("Rds", "CreateBackup", "rds"),
    ("Kms", "PutSecretValue", "kms_secret"),
)


def _sts_token(seed: int, session: int, issued_ms: int) -> str:
    """The STS AccessKey ID of a session's token issued at ``issued_ms``.

    Hashed rather than drawn from the generator's stream, which must not depend on the time slots.
    """
    digest = hashlib.blake2b(f"{seed}:{session}:{issued_ms}".encode(), digest_size=18).digest()
    return "STS.NU" + base64.b64encode(digest, altchars=b"xZ").decode()[:23]


def _account_ids(rng: random.Random, accounts: int, account_ids: Sequence[str] | None) -> list[str]:
    if account_ids is not None:
        return list(account_ids)
    ids: list[str] = []
    while len(ids) < accounts:
        candidate = str(rng.randrange(10**15, 2 * 10**15))
        if candidate not in ids:
            ids.append(candidate)
    return ids


def generate_events(
    *,
    seed: int,
    count: int,
    end_ms: int,
    days: int = 30,
    accounts: int = 3,
    account_ids: Sequence[str] | None = None,
    error_rate: float = 0.03,
) -> Iterator[dict[str, Any]]:
    """Yield ``count`` realistic events in ascending eventTime within ``[end_ms - days, end_ms)``.

    ``account_ids`` fixes the account IDs (its length then wins over ``accounts``). ``error_rate``
    scales the share of failed calls (the default gives about 3-4 %).
    """
    if count < 0 or days <= 0:
        raise ValueError("count must be >= 0 and days > 0")
    rng = random.Random(seed)
    world = World(rng, seed, count, _account_ids(rng, accounts, account_ids))
    # Times come from their own stream, so the content of the n-th event (its ID included) does not
    # depend on end_ms: loading the demo again later finds duplicates instead of doubling the data.
    clock = random.Random(f"trailhouse-times:{seed}")
    return _events(world, _slots(clock, count, end_ms, days), error_rate / 0.03, clock)


def _events(
    world: World, slots: list[tuple[int, int, int]], error_scale: float, clock: random.Random
) -> Iterator[dict[str, Any]]:
    """The hot loop: pick who calls (an AccessKey, a role session or a console user), then build the call."""
    rng = world.rng
    random_, id_bits, bisect_right = rng.random, rng.getrandbits, bisect.bisect_right
    keys, key_cum, key_total = world.keys, world.key_cum, world.key_cum[-1]
    sessions, session_cum, session_total = world.sessions, world.session_cum, world.session_cum[-1]
    humans, human_cum, human_total = world.humans, world.human_cum, world.human_cum[-1]
    ips, ip_count = world.ips, world.ip_count
    build = _CallBuilder(world, error_scale)
    minute, prefix = -1, ""
    for lo, hi, k in slots:
        times = sorted([lo + int(clock.random() * (hi - lo)) for _ in range(k)])
        slot_time = wire_time(lo)  # creationDate of the STS tokens and console sessions of this hour
        sts_tokens: dict[int, str] = {}  # STS tokens last an hour: one per session per slot
        for t in times:
            m = t // MINUTE_MS
            if m != minute:
                minute, prefix = m, time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(m * 60))
            event_time = prefix + SECONDS[(t // 1000) % 60]
            bits = id_bits(128)
            r = random_()
            if r < P_AK:
                actor = keys[bisect_right(key_cum, random_() * key_total)]
                u = random_()
                ip = ips[(actor.ip_off + int(u * u * actor.ip_span)) % ip_count]
                yield build(actor, actor.identity.copy(), ip, actor.user_agent, "ApiCall", event_time, bits)
            elif r < P_STS:
                index = bisect_right(session_cum, random_() * session_total)
                actor = sessions[index]
                token = sts_tokens.get(index)
                if token is None:
                    token = sts_tokens[index] = _sts_token(world.seed, index, lo)
                identity = actor.identity.copy()
                identity["accessKeyId"] = token
                identity["sessionContext"] = _session(False, slot_time)
                u = random_()
                ip = ips[(actor.ip_off + int(u * u * actor.ip_span)) % ip_count]
                yield build(actor, identity, ip, actor.user_agent, "ApiCall", event_time, bits)
            elif r < P_CONSOLE:
                actor = humans[bisect_right(human_cum, random_() * human_total)]
                identity = actor.identity.copy()
                identity["sessionContext"] = _session(actor.mfa, slot_time)
                # Most console pages call the same OpenAPI; buy pages and a few consoles log ConsoleOperation.
                event_type = "ConsoleOperation" if random_() < 0.3 else "ApiCall"
                yield build(actor, identity, ips[actor.ip_off], None, event_type, event_time, bits)
            elif r < P_SIGNIN:
                actor = humans[bisect_right(human_cum, random_() * human_total)]
                yield _signin_event(world, actor, t, event_time, bits)
            else:
                yield _service_event(world, event_time, bits)


# (eventSource, base requestParameters, acsRegion, possible errors) of an operation in a region
_Context = tuple[str, dict[str, Any], str, tuple[tuple[str, str], ...]]


def _session(mfa: bool, created: str) -> dict[str, Any]:
    """userIdentity.sessionContext of console sessions and STS tokens, as ActionTrail records it."""
    return {"attributes": {"mfaAuthenticated": "true" if mfa else "false", "creationDate": created}}


class _CallBuilder:
    """Builds the event of one API call; per (operation, region) strings and dicts are made once."""

    def __init__(self, world: World, error_scale: float) -> None:
        self.world = world
        self.error_scale = error_scale
        self.contexts: dict[tuple[Op, str], _Context] = {}

    def _context(self, operation: Op, region: str) -> _Context:
        svc = operation.service
        acs_region = GLOBAL_REGION if svc.is_global else region
        host = host_for(svc, acs_region)
        base = {"AcsHost": host, "HostId": host, "AcsProduct": svc.name, "RegionId": region}
        base.update(operation.args)
        ctx = self.contexts[(operation, region)] = (host, base, acs_region, errors_for(operation))
        return ctx

    def __call__(
        self,
        actor: Actor,
        identity: dict[str, Any],
        ip: str,
        user_agent: str | None,
        event_type: str,
        event_time: str,
        bits: int,
    ) -> dict[str, Any]:
        world = self.world
        random_ = world.rng.random
        operation = actor.ops[bisect.bisect_right(actor.op_cum, random_() * actor.op_cum[-1])]
        svc = operation.service
        region = actor.region
        if random_() >= 0.85:
            region = world.regions[bisect.bisect_right(world.region_cum, random_() * world.region_cum[-1])]
        ctx = self.contexts.get((operation, region)) or self._context(operation, region)
        host, base, acs_region, errors = ctx
        acct = actor.account
        event_id = event_id_for(svc.name, bits)
        params = base.copy()
        params["RequestId"] = event_id
        if identity["type"] == "assumed-role":
            params["stsTokenPrincipalName"] = identity["userName"].split(":", 1)[1]
        event: dict[str, Any] = {
            "eventId": event_id,
            "eventVersion": 1,
            "eventTime": event_time,
            "eventName": operation.name,
            "eventSource": host,
            "eventType": event_type,
            "eventRW": operation.rw,
            "eventCategory": operation.category,
            "serviceName": svc.name,
            "apiVersion": svc.api_version,
            "acsRegion": acs_region,
            "isGlobal": svc.is_global,
            "requestId": event_id,
            "requestParameters": params,
        }
        if not svc.api_version:
            del event["apiVersion"]
        failed = random_() < actor.error_rate * self.error_scale
        response: dict[str, Any] | None = None
        if operation.rw == "Write" and not failed:
            response = {"RequestId": event_id}
        kinds = operation.kinds
        if kinds:
            refs: dict[str, list[str]] = {}
            for i, kind in enumerate(kinds):
                name = world.resource(acct, acs_region, kind)
                spec = KINDS[kind]
                if i == 0 and operation.creates:  # a new resource: its ID is in the response
                    if response is not None:
                        response[spec.param] = name
                else:
                    params[spec.param] = name
                refs.setdefault(spec.acs_type, []).append(name)
            if kinds[0] == "oss_object":
                bucket, _, obj = refs["ACS::OSS::Object"][0].partition("/")
                params["BucketName"], params["ObjectName"] = bucket, obj
                event["eventSource"] = params["HostId"] = f"{bucket}.{host}"
            elif kinds[0] == "oss_bucket":
                event["eventSource"] = params["HostId"] = f"{params['BucketName']}.{host}"
            if not (operation.creates and failed):  # a failed creation references nothing
                event["referencedResources"] = refs
                if len(kinds) == 1:
                    event["resourceType"] = KINDS[kinds[0]].acs_type
                    event["resourceName"] = name
        if response is not None:
            event["responseElements"] = response
        if failed:
            event["errorCode"], event["errorMessage"] = errors[int(random_() * len(errors))]
        event["sourceIpAddress"] = ip
        event["userAgent"] = user_agent or svc.console
        event["userIdentity"] = identity
        if ip[:3] == "10." or ip[:4] == "172.":  # callers inside a VPC are recorded with it
            event["vpcId"] = world.resource(acct, acs_region, "vpc")
        event["recipientAccountId"] = acct.account_id
        event["additionalEventData"] = {"Scheme": "https", "CallerBid": "26842"}
        return event


def _signin_event(world: World, actor: Actor, t: int, event_time: str, bits: int) -> dict[str, Any]:
    rng = world.rng
    signout = rng.random() < 0.1
    name = "ConsoleSignout" if signout else "ConsoleSignin"
    request_id = signin_id(bits, t)
    identity = actor.identity
    event: dict[str, Any] = {
        "eventId": request_id,
        "eventVersion": 1,
        "eventTime": event_time,
        "eventName": name,
        "eventSource": "signin.aliyun.com",
        "eventType": name,
        "eventRW": "Write",
        "eventCategory": "Management",
        "serviceName": "AasSub",
        "acsRegion": GLOBAL_REGION,
        "isGlobal": True,
        "requestId": request_id,
        "errorMessage": "success",
        "sourceIpAddress": world.ips[actor.ip_off],
        "userAgent": actor.user_agent,
        "userIdentity": identity.copy(),
        "recipientAccountId": actor.account.account_id,
    }
    if not signout:
        login = f"{identity['userName']}@{actor.account.alias}.onaliyun.com"
        if identity["type"] == "root-account":
            login = f"ops@{actor.account.alias}.com"
        mfa = "true" if actor.mfa else "false"
        event["additionalEventData"] = {
            "loginAccount": login,
            "isMFAChecked": mfa,
            "mfaChecked": mfa,
            "callbackUrl": "https://home.console.aliyun.com/",
        }
    return event


def _service_event(world: World, event_time: str, bits: int) -> dict[str, Any]:
    rng = world.rng
    acct = world.accounts[rng.randrange(len(world.accounts))]
    svc_name, name, kind = _SERVICE_EVENTS[rng.randrange(len(_SERVICE_EVENTS))]
    operation = op(svc_name, name)
    region = acct.region
    event_id = guid(bits)
    resource_name = world.resource(acct, region, kind)
    params = gateway_params(operation, region, event_id)
    params[KINDS[kind].param] = resource_name
    # Alibaba Cloud acting on its own: "system" identity and "Internal" source, as ActionTrail records it.
    identity = {
        "type": "system",
        "accountId": acct.account_id,
        "principalId": acct.account_id,
        "userName": "AliyunServiceEvent",
    }
    return api_event(
        event_id=event_id,
        event_time=event_time,
        operation=operation,
        region=region,
        params=params,
        identity=identity,
        ip="Internal",
        user_agent=host_for(operation.service, region),
        resources=((kind, resource_name),),
        event_type="AliyunServiceEvent",
    )


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


def write_ndjson(path: str | Path, events: Iterable[Mapping[str, Any]], gzip: bool = False) -> int:
    """Write one compact JSON event per line (gzip-compressed if asked); return the event count.

    The gzip header carries no timestamp or file name, so equal events give equal bytes.
    """
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    written = 0
    with open(path, "wb") as raw:
        sink: Any = (
            gzip_module.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
            if gzip
            else raw
        )
        try:
            batch: list[bytes] = []
            for event in events:
                batch.append(dumps(event, option=newline))
                if len(batch) == 4096:
                    sink.write(b"".join(batch))
                    written += len(batch)
                    batch.clear()
            sink.write(b"".join(batch))
            written += len(batch)
        finally:
            if gzip:
                sink.close()
    return written

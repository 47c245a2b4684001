"""The demo's leaked-AccessKey story, and the demo data set (background traffic plus the story).

RAM user ``ci-deploy`` of the main account has used its AccessKey from the CI runners for weeks
(ECS and OSS calls of a deploy pipeline). About three days before ``end_ms`` the same key shows up
from two foreign VPN/TOR-exit addresses with another client: reconnaissance across regions, a few
denied calls (one of them an attempt to stop the trail), a new RAM user ``backup-admin`` with an
AccessKey and AdministratorAccess, GPU instances in a region the company never uses, and a burst of
object downloads from the customer-data bucket. Meanwhile an ordinary colleague signs in to the
console from the office, for contrast.

``demo_story_facts`` returns what a detection should find; ``demo_story`` yields the events; both are
deterministic for (end_ms, seed).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .events import (
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    api_event,
    event_id_for,
    gateway_params,
    host_for,
    random_key_id,
    signin_id,
    wire_time,
)
from .generate import generate_events
from .operations import ERROR_NO_PERMISSION, REGION_CODES, op
from .vocabulary import ALNUM, BROWSER_AGENTS

__all__ = [
    "DEMO_ACCOUNT",
    "DEMO_ACCOUNT_IDS",
    "MAIN_ACCOUNT_ID",
    "DemoStory",
    "demo_events",
    "demo_story",
    "demo_story_facts",
]

MAIN_ACCOUNT_ID = "1234567890123456"
DEMO_ACCOUNT = MAIN_ACCOUNT_ID  # the account the demo's credentials belong to
DEMO_ACCOUNT_IDS: tuple[str, ...] = (MAIN_ACCOUNT_ID, "1876543210987654", "1357924680135792")

_LEAKED_KEY = "LTAI5tLeakedDemoKey0001A"
_OWNER = "ci-deploy"
_OWNER_PRINCIPAL = "208765432101234567"
_CI_IPS = ("47.96.183.21", "47.96.183.22", "47.96.190.7")
_CI_AGENT = "Aliyun-CLI-V3.0.190"
_ATTACKER_IPS = ("185.220.101.47", "45.155.205.233")
_ATTACKER_AGENT = "AlibabaCloud (Linux; x86_64) Python/3.9.2 Core/2.13.36 python-requests/2.25.1"
_NEW_USER = "backup-admin"
_POLICY = "AdministratorAccess"
_UNUSUAL_REGION = "me-east-1"
_DATA_BUCKET = "acme-customer-data"
_ARTIFACT_BUCKET = "acme-ci-artifacts"
_CONTRAST_USER = "mei.chen"
_CONTRAST_PRINCIPAL = "276543210987654321"
_CONTRAST_IP = "42.120.75.88"
_HOME = "cn-hangzhou"
_RECON_REGIONS = (
    "cn-hangzhou",
    "cn-shanghai",
    "cn-beijing",
    "cn-shenzhen",
    "cn-hongkong",
    "ap-southeast-1",
    "us-west-1",
    "eu-central-1",
)
_DANGEROUS = (
    "CreateUser",
    "CreateAccessKey",
    "AttachPolicyToUser",
    "AuthorizeSecurityGroup",
    "RunInstances",
    "CreateInstance",
    "GetObject",
)
_DENIED = ("DescribeDBInstances", "ListSecrets", "StopLogging")


@dataclass(frozen=True, slots=True)
class DemoStory:
    """The key facts of the leaked-key story, as a detection should reconstruct them."""

    account_id: str
    owner_user_name: str
    owner_principal_id: str
    leaked_key_id: str
    ci_ips: tuple[str, ...]
    ci_user_agent: str
    attacker_ips: tuple[str, ...]
    attacker_user_agent: str
    first_malicious_ms: int  # the attacker's first call (GetCallerIdentity), whole seconds
    first_malicious_time: str  # the same as an eventTime
    last_malicious_ms: int
    created_user_name: str
    created_access_key_id: str
    attached_policy: str
    unusual_region: str
    launched_instance_ids: tuple[str, ...]
    exfiltrated_bucket: str
    exfiltrated_object_count: int
    dangerous_actions: tuple[str, ...]  # successful, in order of first occurrence
    denied_actions: tuple[str, ...]  # attempted by the attacker, failed with NoPermission
    contrast_user_name: str
    contrast_ip: str


def demo_story_facts(*, end_ms: int, seed: int = 7) -> DemoStory:
    """The facts of the story that ``demo_story(end_ms=end_ms, seed=seed)`` yields."""
    return _Story(end_ms, seed).facts


def demo_story(*, end_ms: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """The story's events (CI history, attack, contrast), sorted by eventTime, all before ``end_ms``."""
    return iter(_Story(end_ms, seed).events)


def demo_events(*, end_ms: int, seed: int = 7, count: int = 5000) -> Iterator[dict[str, Any]]:
    """``count`` background events over 30 days for the three demo accounts, merged with the story."""
    background = generate_events(seed=seed, count=count, end_ms=end_ms, days=30, account_ids=DEMO_ACCOUNT_IDS)
    # eventTime strings sort chronologically; on ties the background comes first (heapq.merge is stable).
    return heapq.merge(background, demo_story(end_ms=end_ms, seed=seed), key=lambda e: e["eventTime"])


@dataclass(frozen=True, slots=True)
class _Caller:
    """Who makes a call of the story: the identity it is recorded under, its address and client."""

    identity: dict[str, Any]
    ip: str
    agent: str


class _Story:
    def __init__(self, end_ms: int, seed: int) -> None:
        # A string seed is hashed with SHA-512 by random.seed: stable across processes and versions.
        self.rng = random.Random(f"trailhouse-demo-story:{seed}")
        # Event IDs from their own stream, as in generate_events: stable for a seed whatever end_ms is.
        self.ids = random.Random(f"trailhouse-demo-story-ids:{seed}")
        self.end_ms = end_ms
        self.timed: list[tuple[int, int, dict[str, Any]]] = []
        self.owner = {
            "type": "ram-user",
            "accountId": MAIN_ACCOUNT_ID,
            "principalId": _OWNER_PRINCIPAL,
            "userName": _OWNER,
            "accessKeyId": _LEAKED_KEY,
        }
        self.instances = [self._id("i-", _HOME) for _ in range(4)]

        # Late at night Beijing time, about three days before the end.
        day = (end_ms - 3 * DAY_MS) // DAY_MS * DAY_MS
        self.t0 = t0 = day + 18 * HOUR_MS + self.rng.randrange(90) * MINUTE_MS + self.rng.randrange(60) * 1000

        # The attack first: its content and event IDs then do not depend on how many CI runs fit the window.
        new_key, launched, last = self._attack()
        self._contrast()
        self._ci_history()
        self.timed.sort(key=lambda x: (x[0], x[1]))
        self.events = [e for _, _, e in self.timed]
        exfiltrated = sum(
            1 for e in self.events if e["eventName"] == "GetObject" and e["sourceIpAddress"] in _ATTACKER_IPS
        )
        self.facts = DemoStory(
            account_id=MAIN_ACCOUNT_ID,
            owner_user_name=_OWNER,
            owner_principal_id=_OWNER_PRINCIPAL,
            leaked_key_id=_LEAKED_KEY,
            ci_ips=_CI_IPS,
            ci_user_agent=_CI_AGENT,
            attacker_ips=_ATTACKER_IPS,
            attacker_user_agent=_ATTACKER_AGENT,
            first_malicious_ms=t0,
            first_malicious_time=wire_time(t0),
            last_malicious_ms=last,
            created_user_name=_NEW_USER,
            created_access_key_id=new_key,
            attached_policy=_POLICY,
            unusual_region=_UNUSUAL_REGION,
            launched_instance_ids=tuple(launched),
            exfiltrated_bucket=_DATA_BUCKET,
            exfiltrated_object_count=exfiltrated,
            dangerous_actions=_DANGEROUS,
            denied_actions=_DENIED,
            contrast_user_name=_CONTRAST_USER,
            contrast_ip=_CONTRAST_IP,
        )

    # -- building blocks ---------------------------------------------------------------------------

    def _id(self, prefix: str, region: str) -> str:
        return prefix + REGION_CODES[region] + "".join(self.rng.choices(ALNUM, k=17))

    def _add(self, t: int, event: dict[str, Any]) -> None:
        if self.end_ms - 30 * DAY_MS <= t < self.end_ms:  # never in the future, never outside the window
            self.timed.append((t, len(self.timed), event))

    def _call(
        self,
        t: int,
        service: str,
        name: str,
        *,
        caller: _Caller,
        region: str = _HOME,
        args: dict[str, Any] | None = None,
        resources: Sequence[tuple[str, str]] = (),
        response: dict[str, Any] | None = None,
        error: tuple[str, str] | None = None,
        bucket: str | None = None,
    ) -> None:
        operation = op(service, name)
        event_id = event_id_for(service, self.ids.getrandbits(128))
        source = f"{bucket}.{host_for(operation.service, region)}" if bucket else None
        params = gateway_params(operation, region, event_id, source)
        params.update(args or {})
        if operation.rw == "Write" and error is None:
            response = {"RequestId": event_id, **(response or {})}
        self._add(
            t,
            api_event(
                event_id=event_id,
                event_time=wire_time(t),
                operation=operation,
                region=region,
                params=params,
                identity=dict(caller.identity),
                ip=caller.ip,
                user_agent=caller.agent,
                resources=resources,
                error=error,
                response=response,
                source=source,
            ),
        )

    # -- chapters ----------------------------------------------------------------------------------

    def _ci_history(self) -> None:
        """Weeks of ordinary deploys: a few pipeline runs per working day from the CI runners."""
        rng = self.rng
        first_day = (self.end_ms - 28 * DAY_MS) // DAY_MS * DAY_MS
        for day in range(first_day, self.end_ms, DAY_MS):
            weekend = ((day + 8 * HOUR_MS) // DAY_MS + 3) % 7 >= 5
            for _ in range(rng.randint(0, 1) if weekend else rng.randint(2, 5)):
                # Beijing 09:00-19:00 is 01:00-11:00 UTC.
                self._pipeline_run(day + HOUR_MS + rng.randrange(10 * HOUR_MS))

    def _pipeline_run(self, t: int) -> None:
        rng = self.rng
        ip = rng.choice(_CI_IPS)
        call = _Caller(self.owner, ip, _CI_AGENT)
        instance = rng.choice(self.instances)
        build = f"build-{rng.randrange(10000, 99999)}"
        self._call(t, "Ecs", "DescribeInstances", caller=call, args={"PageSize": "100", "Tag.1.Key": "app"})
        t += rng.randrange(2000, 8000)
        for part in ("app.tar.gz", "manifest.json", "checksums.txt")[: rng.randint(1, 3)]:
            obj = f"releases/{build}/{part}"
            self._call(
                t,
                "Oss",
                "PutObject",
                caller=call,
                bucket=_ARTIFACT_BUCKET,
                args={"BucketName": _ARTIFACT_BUCKET, "ObjectName": obj},
                resources=(("oss_object", f"{_ARTIFACT_BUCKET}/{obj}"),),
            )
            t += rng.randrange(1000, 20000)
        self._call(
            t,
            "Ecs",
            "DescribeInstanceAttribute",
            caller=call,
            args={"InstanceId": instance},
            resources=(("ecs_instance", instance),),
        )
        t += rng.randrange(1000, 5000)
        if rng.random() < 0.5:
            self._call(
                t,
                "Ecs",
                "RebootInstance",
                caller=call,
                args={"InstanceId": instance, "ForceStop": "false"},
                resources=(("ecs_instance", instance),),
            )
            t += rng.randrange(30000, 90000)
        self._call(t, "Ecs", "DescribeInstanceStatus", caller=call, args={"PageSize": "50"})

    def _contrast(self) -> None:
        """A colleague's ordinary console sign-ins from the office, one around the attack."""
        rng = self.rng
        identity = {
            "type": "ram-user",
            "accountId": MAIN_ACCOUNT_ID,
            "principalId": _CONTRAST_PRINCIPAL,
            "userName": _CONTRAST_USER,
        }
        days = [self.t0 // DAY_MS * DAY_MS + d * DAY_MS for d in range(-6, 3)]
        for day in days:
            t = day + HOUR_MS + rng.randrange(2 * HOUR_MS)
            request_id = signin_id(self.ids.getrandbits(128), t)
            self._add(
                t,
                {
                    "eventId": request_id,
                    "eventVersion": 1,
                    "eventTime": wire_time(t),
                    "eventName": "ConsoleSignin",
                    "eventSource": "signin.aliyun.com",
                    "eventType": "ConsoleSignin",
                    "eventRW": "Write",
                    "eventCategory": "Management",
                    "serviceName": "AasSub",
                    "acsRegion": _HOME,
                    "isGlobal": True,
                    "requestId": request_id,
                    "errorMessage": "success",
                    "sourceIpAddress": _CONTRAST_IP,
                    "userAgent": BROWSER_AGENTS[1],
                    "userIdentity": dict(identity),
                    "recipientAccountId": MAIN_ACCOUNT_ID,
                    "additionalEventData": {
                        "loginAccount": f"{_CONTRAST_USER}@acme.onaliyun.com",
                        "isMFAChecked": "true",
                        "mfaChecked": "true",
                        "callbackUrl": "https://home.console.aliyun.com/",
                    },
                },
            )
            session = dict(
                identity,
                sessionContext={"attributes": {"mfaAuthenticated": "true", "creationDate": wire_time(t)}},
            )
            self._call(
                t + rng.randrange(20000, 120000),
                "Ecs",
                "DescribeInstances",
                caller=_Caller(session, _CONTRAST_IP, "ecs.console.aliyun.com"),
                args={"PageSize": "10"},
            )

    def _attack(self) -> tuple[str, list[str], int]:
        rng, t = self.rng, self.t0
        a = _Caller(self.owner, _ATTACKER_IPS[0], _ATTACKER_AGENT)
        b = _Caller(self.owner, _ATTACKER_IPS[1], _ATTACKER_AGENT)

        def step(low_s: int, high_s: int) -> int:
            nonlocal t
            t += rng.randrange(low_s * 1000, high_s * 1000) // 1000 * 1000
            return t

        # Reconnaissance: who am I, what is there, in every region.
        self._call(t, "Sts", "GetCallerIdentity", caller=a)
        self._call(step(20, 90), "Ecs", "DescribeRegions", caller=a, args={"AcceptLanguage": "en-US"})
        for region in _RECON_REGIONS:
            self._call(
                step(5, 30), "Ecs", "DescribeInstances", caller=a, region=region, args={"PageSize": "100"}
            )
        self._call(step(10, 60), "Oss", "ListBuckets", caller=a, args={"max-keys": "1000"})
        for bucket in (_DATA_BUCKET, _ARTIFACT_BUCKET):
            self._call(
                step(5, 20),
                "Oss",
                "GetBucketInfo",
                caller=a,
                bucket=bucket,
                args={"BucketName": bucket},
                resources=(("oss_bucket", bucket),),
            )
        self._call(step(30, 120), "Ram", "ListUsers", caller=a, args={"MaxItems": "100"})
        self._call(
            step(5, 30),
            "Ram",
            "ListPoliciesForUser",
            caller=a,
            args={"UserName": _OWNER},
            resources=(("ram_user", _OWNER),),
        )
        self._call(
            step(10, 60),
            "Rds",
            "DescribeDBInstances",
            caller=a,
            args={"PageSize": "30"},
            error=ERROR_NO_PERMISSION,
        )
        self._call(
            step(10, 60), "Kms", "ListSecrets", caller=a, args={"PageSize": "100"}, error=ERROR_NO_PERMISSION
        )
        self._call(step(10, 60), "Actiontrail", "DescribeTrails", caller=a)
        self._call(
            step(10, 40),
            "Actiontrail",
            "StopLogging",
            caller=a,
            args={"Name": "acme-audit"},
            resources=(("trail", "acme-audit"),),
            error=ERROR_NO_PERMISSION,
        )

        # Persistence from the second address: a backdoor administrator with its own key.
        t += 35 * MINUTE_MS
        user_id = "2" + "".join(rng.choices("0123456789", k=17))
        new_key = random_key_id(rng)
        self._call(
            step(1, 60),
            "Ram",
            "CreateUser",
            caller=b,
            args={"UserName": _NEW_USER, "DisplayName": _NEW_USER, "Comments": "backup service"},
            resources=(("ram_user", _NEW_USER),),
            response={"User": {"UserName": _NEW_USER, "UserId": user_id, "CreateDate": wire_time(t)}},
        )
        self._call(
            step(5, 20),
            "Ram",
            "CreateAccessKey",
            caller=b,
            args={"UserName": _NEW_USER},
            resources=(("ram_user", _NEW_USER),),
            response={"AccessKey": {"AccessKeyId": new_key, "Status": "Active", "CreateDate": wire_time(t)}},
        )
        self._call(
            step(5, 20),
            "Ram",
            "AttachPolicyToUser",
            caller=b,
            args={"PolicyType": "System", "PolicyName": _POLICY, "UserName": _NEW_USER},
            resources=(("ram_policy", _POLICY), ("ram_user", _NEW_USER)),
        )
        backdoor = {
            "type": "ram-user",
            "accountId": MAIN_ACCOUNT_ID,
            "principalId": user_id,
            "userName": _NEW_USER,
            "accessKeyId": new_key,
        }
        self._call(
            step(60, 300),
            "Sts",
            "GetCallerIdentity",
            caller=_Caller(backdoor, _ATTACKER_IPS[1], _ATTACKER_AGENT),
        )
        self._call(
            step(10, 60),
            "Oss",
            "ListBuckets",
            caller=_Caller(backdoor, _ATTACKER_IPS[1], _ATTACKER_AGENT),
            args={"max-keys": "1000"},
        )

        # Impact, hours later: GPU instances in a region the company never uses, reachable over SSH.
        t += 4 * HOUR_MS
        region = _UNUSUAL_REGION
        group = self._id("sg-", region)
        launched = [self._id("i-", region) for _ in range(5)]
        self._call(
            step(1, 60), "Ecs", "DescribeZones", caller=a, region=region, args={"AcceptLanguage": "en-US"}
        )
        self._call(
            step(10, 40),
            "Ecs",
            "AuthorizeSecurityGroup",
            caller=a,
            region=region,
            args={
                "SecurityGroupId": group,
                "IpProtocol": "tcp",
                "PortRange": "22/22",
                "SourceCidrIp": "0.0.0.0/0",
                "Policy": "accept",
            },
            resources=(("ecs_sg", group),),
        )
        self._call(
            step(10, 60),
            "Ecs",
            "RunInstances",
            caller=a,
            region=region,
            args={
                "InstanceType": "ecs.gn6i-c24g1.12xlarge",
                "Amount": "4",
                "SecurityGroupId": group,
                "ImageId": "ubuntu_22_04_x64_20G_alibase_20231221.vhd",
                "InternetMaxBandwidthOut": "100",
                "InstanceChargeType": "PostPaid",
            },
            resources=tuple(("ecs_instance", i) for i in launched[:4]),
            response={"InstanceIdSets": {"InstanceIdSet": launched[:4]}},
        )
        self._call(
            step(30, 120),
            "Ecs",
            "CreateInstance",
            caller=a,
            region=region,
            args={
                "InstanceType": "ecs.gn6v-c8g1.16xlarge",
                "SecurityGroupId": group,
                "ImageId": "ubuntu_22_04_x64_20G_alibase_20231221.vhd",
            },
            resources=(("ecs_instance", launched[4]),),
            response={"InstanceId": launched[4]},
        )
        self._call(
            step(10, 30),
            "Ecs",
            "StartInstance",
            caller=a,
            region=region,
            args={"InstanceId": launched[4]},
            resources=(("ecs_instance", launched[4]),),
        )

        # Exfiltration the next night: list the customer-data bucket, then download it object by object.
        t += 18 * HOUR_MS
        self._call(
            step(1, 600),
            "Oss",
            "ListObjects",
            caller=b,
            bucket=_DATA_BUCKET,
            args={"BucketName": _DATA_BUCKET, "prefix": "exports/", "max-keys": "1000"},
            resources=(("oss_bucket", _DATA_BUCKET),),
        )
        for i in range(rng.randint(40, 60)):
            obj = f"exports/customers-{2021 + i // 12}-{i % 12 + 1:02d}.csv.gz"
            self._call(
                step(1, 4),
                "Oss",
                "GetObject",
                caller=b,
                bucket=_DATA_BUCKET,
                args={"BucketName": _DATA_BUCKET, "ObjectName": obj},
                resources=(("oss_object", f"{_DATA_BUCKET}/{obj}"),),
            )
        return new_key, launched, t

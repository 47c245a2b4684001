"""The world one ``generate_events`` call draws from: accounts, principals, AccessKeys, role
sessions, an IP pool and resource pools, all built from the seed and sized from the event count."""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .events import random_key_id
from .operations import OPS, REGION_CODES, REGIONS, SERVICES, Op, Service
from .vocabulary import (
    ALIASES,
    ALNUM,
    BROWSER_AGENTS,
    ENVS,
    FAMILY_NAMES,
    GIVEN_NAMES,
    ID_PREFIXES,
    KEY_ZIPF,
    NAME_WORDS,
    NETS,
    OBJECT_DIRS,
    OBJECT_EXTS,
    P_AK,
    P_STS,
    POLICIES,
    ROLES,
    SDK_AGENTS,
    SERVICE_USERS,
)

__all__ = ["Account", "Actor", "User", "World"]


@dataclass(slots=True)
class User:
    name: str
    principal_id: str
    human: bool
    mfa: bool


@dataclass(slots=True)
class Account:
    index: int
    account_id: str
    alias: str
    region: str
    users: list[User] = field(default_factory=list)
    roles: list[tuple[str, str]] = field(default_factory=list)  # (role name, role ID)
    office_ips: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Actor:
    """Something that makes calls: an AccessKey, a role session or a console user."""

    account: Account
    identity: dict[str, Any]  # userIdentity without the per-call parts (STS key, session context)
    user_agent: str
    region: str
    ops: list[Op]
    op_cum: list[float]
    ip_off: int
    ip_span: int
    error_rate: float
    mfa: bool = False


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _cum(weights: Iterable[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _zipf_cum(n: int, s: float) -> list[float]:
    return _cum(1.0 / (i + 1) ** s for i in range(n))


def _numbered(names: Sequence[str], i: int) -> str:
    """The i-th name, cycling through ``names`` with a numeric suffix once they run out."""
    base = names[i % len(names)]
    return base if i < len(names) else f"{base}-{i // len(names) + 1}"


def _pick(rng: random.Random, items: Sequence[Any], cum: list[float]) -> Any:
    return items[bisect.bisect_right(cum, rng.random() * cum[-1])]


class World:
    """Everything the hot loop picks from, built once per ``generate_events`` call."""

    def __init__(self, rng: random.Random, seed: int, count: int, account_ids: Sequence[str]) -> None:
        self.rng = rng
        self.seed = seed
        self.ip_count = _clamp(count // 20, 64, 50_000)
        self.key_count = _clamp(count // 100, 12, 5_000)
        self.pool_size = _clamp(count // 20_000, 4, 300)
        self.object_pool_size = _clamp(count // 500, 20, 5_000)
        self.ips = self._ip_pool()
        self.regions = [r for r, _, _ in REGIONS]
        self.region_cum = _cum(w for _, w, _ in REGIONS)
        self.services = list(SERVICES.values())
        self.service_cum = _cum(s.weight for s in self.services)
        self.ops_by_service = {s.name: [o for o in OPS if o.service is s] for s in self.services}
        self.op_cum_by_service = {k: _cum(o.weight for o in v) for k, v in self.ops_by_service.items()}
        self.account_count = len(account_ids)
        self.accounts = [self._account(i, a) for i, a in enumerate(account_ids)]
        self.ip_cursor = 0
        self.keys = self._keys()
        self.key_cum = _zipf_cum(len(self.keys), KEY_ZIPF)
        self.sessions = self._sessions()
        self.session_cum = _zipf_cum(len(self.sessions), 1.2)
        self.humans = self._humans()
        self.human_cum = _zipf_cum(len(self.humans), 1.0)
        self.pools: dict[tuple[int, str, str], list[str]] = {}

    # -- IPs ---------------------------------------------------------------------------------------

    def _ip_pool(self) -> list[str]:
        # Blocks of addresses share a /16, so a key's slice of the pool looks like one fleet or office.
        rng, nets, cum = self.rng, [n for n, _ in NETS], _cum(w for _, w in NETS)
        seen: set[str] = set()
        ips: list[str] = []
        while len(ips) < self.ip_count:
            net = _pick(rng, nets, cum)
            for _ in range(32):
                ip = f"{net}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                if ip not in seen:
                    seen.add(ip)
                    ips.append(ip)
        return ips[: self.ip_count]

    def _public_ip(self) -> int:
        """Index of a random public address of the pool (browsers are not inside a VPC)."""
        while True:
            index = self.rng.randrange(self.ip_count)
            if not self.ips[index].startswith(("10.", "172.", "192.168.")):
                return index

    def _ip_slice(self, share: float) -> tuple[int, int]:
        # Spans proportional to traffic make every IP of the pool see a similar number of calls.
        span = _clamp(round(share * self.ip_count), 1, self.ip_count)
        off = self.ip_cursor
        self.ip_cursor = (self.ip_cursor + span) % self.ip_count
        return off, span

    # -- principals --------------------------------------------------------------------------------

    def _account(self, index: int, account_id: str) -> Account:
        rng = self.rng
        home = rng.random() < 0.5 or index == 0
        region = "cn-hangzhou" if home else _pick(rng, self.regions, self.region_cum)
        acct = Account(index, account_id, _numbered(ALIASES, index), region)
        # Enough users for the keys at two keys per user at most (the RAM limit), about 30 % automation.
        n_users = max(8, math.ceil(self.key_count / 1.4 / self.account_count))
        n_service = max(3, n_users * 3 // 10)
        names = [_numbered(SERVICE_USERS, i) for i in range(n_service)]
        people = [f"{g}.{f}" for g in GIVEN_NAMES for f in FAMILY_NAMES]
        rng.shuffle(people)
        names += [_numbered(people, i) for i in range(n_users - n_service)]
        for i, name in enumerate(names):
            acct.users.append(
                User(name, "2" + "".join(rng.choices("0123456789", k=17)), i >= n_service, rng.random() < 0.6)
            )
        n_roles = _clamp(self.key_count // 20, 3, 60)
        for i in range(n_roles):
            acct.roles.append((_numbered(ROLES, i), "3" + "".join(rng.choices("0123456789", k=17))))
        acct.office_ips = [self._public_ip() for _ in range(3)]
        return acct

    def _op_profile(self, breadth: int) -> tuple[list[Op], list[float]]:
        # A client talks to a few services and a handful of their APIs, reads far more than writes.
        rng = self.rng
        services: list[Service] = []
        for _ in range(breadth * 2):
            svc = _pick(rng, self.services, self.service_cum)
            if svc not in services:
                services.append(svc)
            if len(services) == breadth:
                break
        ops: list[Op] = []
        for svc in services:
            candidates, cum = self.ops_by_service[svc.name], self.op_cum_by_service[svc.name]
            for _ in range(rng.randint(2, 6)):
                candidate = _pick(rng, candidates, cum)
                if candidate not in ops:
                    ops.append(candidate)
        weights = [o.weight * o.service.weight * rng.uniform(0.5, 1.5) for o in ops]
        return ops, _cum(weights)

    def _keys(self) -> list[Actor]:
        rng, n = self.rng, self.key_count
        shares = [1.0 / (i + 1) ** KEY_ZIPF for i in range(n)]
        total = sum(shares)
        # Top keys belong to automation; the long tail is spread over everyone, at most 2 keys per user
        # (the RAM limit), plus one forgotten root key per account somewhere in the cold half.
        automation = [(a, u) for a in self.accounts for u in a.users if not u.human]
        everyone = [(a, u) for a in self.accounts for u in a.users]
        rng.shuffle(automation)
        used: dict[tuple[int, str], int] = {}
        root_ranks = {rng.randrange(n // 2, n): a for a in self.accounts}
        keys: list[Actor] = []
        for rank in range(n):
            if rank in root_ranks:
                acct = root_ranks[rank]
                identity = {
                    "type": "root-account",
                    "accountId": acct.account_id,
                    "principalId": acct.account_id,
                    "userName": "root",
                }
            else:
                if rank < len(automation):
                    acct, user = automation[rank]
                else:
                    while True:
                        acct, user = everyone[rng.randrange(len(everyone))]
                        if used.get((acct.index, user.name), 0) < 2:
                            break
                used[(acct.index, user.name)] = used.get((acct.index, user.name), 0) + 1
                identity = {
                    "type": "ram-user",
                    "accountId": acct.account_id,
                    "principalId": user.principal_id,
                    "userName": user.name,
                }
            identity["accessKeyId"] = random_key_id(rng, "LTAI5t" if rng.random() < 0.8 else "LTAI4G")
            ops, cum = self._op_profile(rng.randint(3, 5) if rank < 10 else rng.randint(1, 3))
            off, span = self._ip_slice(P_AK * shares[rank] / total)
            region = acct.region if rng.random() < 0.7 else _pick(rng, self.regions, self.region_cum)
            # A few cold keys belong to misconfigured jobs that fail a lot.
            error_rate = 0.3 if rank >= 10 and rng.random() < 0.03 else 0.02
            agent = rng.choice(SDK_AGENTS)
            keys.append(Actor(acct, identity, agent, region, ops, cum, off, span, error_rate))
        return keys

    def _sessions(self) -> list[Actor]:
        rng = self.rng
        sessions: list[Actor] = []
        for acct in self.accounts:
            for role, role_id in acct.roles:
                for _ in range(rng.randint(1, 4)):
                    if role.startswith(("k8s", "ecs", "ack", "Aliyun")):
                        name = "i-" + REGION_CODES[acct.region] + "".join(rng.choices(ALNUM, k=17))
                    elif role.startswith(("sso", "readonly", "bastion")):
                        user = rng.choice(acct.users)
                        name = user.name
                    else:
                        name = f"{role.split('-')[0]}-{rng.randrange(10**9, 10**10)}"
                    identity = {
                        "type": "assumed-role",
                        "accountId": acct.account_id,
                        "principalId": f"{role_id}:{name}",
                        "userName": f"{role}:{name}",
                    }
                    ops, cum = self._op_profile(rng.randint(1, 3))
                    sessions.append(
                        Actor(acct, identity, rng.choice(SDK_AGENTS), acct.region, ops, cum, 0, 1, 0.02)
                    )
        shares = [1.0 / (i + 1) ** 1.2 for i in range(len(sessions))]
        total = sum(shares)
        for actor, share in zip(sessions, shares, strict=True):
            actor.ip_off, actor.ip_span = self._ip_slice((P_STS - P_AK) * share / total)
        return sessions

    def _humans(self) -> list[Actor]:
        rng = self.rng
        humans: list[Actor] = []
        for acct in self.accounts:
            people = [u for u in acct.users if u.human][:40]
            principals = [(u.name, u.principal_id, u.mfa) for u in people] + [("root", acct.account_id, True)]
            for name, pid, mfa in principals:
                identity = {
                    "type": "root-account" if name == "root" else "ram-user",
                    "accountId": acct.account_id,
                    "principalId": pid,
                    "userName": name,
                }
                ops, cum = self._op_profile(rng.randint(2, 4))
                # Office IPs most of the time, a home IP now and then.
                ip = rng.choice(acct.office_ips) if rng.random() < 0.7 else self._public_ip()
                humans.append(
                    Actor(acct, identity, rng.choice(BROWSER_AGENTS), acct.region, ops, cum, ip, 1, 0.03, mfa)
                )
        return humans

    # -- resources ---------------------------------------------------------------------------------

    def resource(self, acct: Account, region: str, kind: str) -> str:
        key = (acct.index, region, kind)
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = self._resource_pool(acct, region, kind)
        r = self.rng.random()
        return pool[int(r * r * len(pool))]  # popular resources first

    def _resource_pool(self, acct: Account, region: str, kind: str) -> list[str]:
        rng, n = self.rng, self.pool_size
        code = REGION_CODES.get(region, "bp1")
        prefix = ID_PREFIXES.get(kind)
        if prefix is not None:
            return [prefix + code + "".join(rng.choices(ALNUM, k=17)) for _ in range(n)]
        if kind == "ram_user":
            return [u.name for u in acct.users[: n * 4]]
        if kind == "ram_role":
            return [r for r, _ in acct.roles]
        if kind == "ram_role_arn":
            return [f"acs:ram::{acct.account_id}:role/{r.lower()}" for r, _ in acct.roles]
        if kind == "ram_policy":
            return list(POLICIES)
        if kind == "kms_key":
            return [str(_uuid(rng)) for _ in range(n)]
        if kind == "cs_cluster":
            return ["c" + f"{rng.getrandbits(128):032x}" for _ in range(n)]
        if kind == "oss_object":
            return [
                f"{self.resource(acct, region, 'oss_bucket')}/{rng.choice(OBJECT_DIRS)}"
                f"{rng.choice(GIVEN_NAMES)}-{rng.randrange(100000)}{rng.choice(OBJECT_EXTS)}"
                for _ in range(self.object_pool_size)
            ]
        words = NAME_WORDS[kind]
        if kind == "oss_bucket":
            names = [
                f"{acct.alias}-{e}-{w}" + ("" if region == acct.region else f"-{region}")
                for w in words
                for e in ENVS
            ]
        elif kind == "cdn_domain":
            names = [f"{w}.{acct.alias}.com" for w in words]
        elif kind == "kms_secret":
            names = [f"{e}/{w}" for w in words for e in ENVS]
        elif kind == "sls_project":
            names = [f"{acct.alias}-{w}-{region}" for w in words]
        else:
            names = list(words)
        rng.shuffle(names)
        return names[:n]


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

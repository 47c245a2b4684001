"""The rate rules: ApiCallRateInsight, ApiErrorRateInsight and AkInsight's call jump.

Calls are counted per subject (an API, or an AccessKey) and per minute of event time. The baseline
is the subject's average calls per minute in the stored history (``baseline_days`` back, or since
the account's first event), read once an hour per subject. A minute that reaches
max(minimum, multiplier × baseline) starts an insight at once (its Start record names the events
counted so far); the insight ends with the first minute that stays below (its End record has the
totals). The open insights and the current minute's counts are the detector's saved state.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...model.insights import StoredInsight
from ...model.query import Attr, EventFilter
from ...model.times import format_wire_time
from .config import Thresholds
from .history import History
from .record import Attribution, Seen, Statistics, insight_record

__all__ = ["RateRule", "rate_rules"]

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
#: Baselines count at most this many events (beyond it, the average is already far above any minimum).
_COUNT_CAP = 2_000_000
_TRIGGERS_KEPT = 200
_CACHE_LIMIT = 200_000
#: A baseline kept up to date by the detector drifts only by the calls leaving its window: a
#: fresh count from the store once a week is enough (each count reads up to two weeks of calls).
_RECOUNT_MS = 7 * DAY_MS


@dataclass(slots=True)
class _Minute:
    """One subject's calls in the current minute: they join an insight only if the minute is hot."""

    minute: int
    count: int = 0
    ids: list[str] = field(default_factory=list)
    keys: Counter[str] = field(default_factory=Counter)
    ips: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class _Open:
    start_ms: int
    first_minute: int
    last_hot_minute: int
    count: int
    baseline: float
    baseline_minutes: int
    region: str
    ids: list[str] = field(default_factory=list)
    keys: Counter[str] = field(default_factory=Counter)
    ips: Counter[str] = field(default_factory=Counter)
    trigger: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Baseline:
    """Calls of a subject since ``start`` (counted in the store at ``counted_at``, then by the detector)."""

    start: int
    counted_at: int
    calls: int


@dataclass(slots=True)
class _Subject:
    current: _Minute
    open: _Open | None = None
    baseline: float = 0.0
    baseline_minutes: int = 0


class RateRule:
    """One rate rule: which events count, for which subject, and its thresholds."""

    def __init__(
        self,
        insight_type: str,
        history: History,
        th: Thresholds,
        *,
        subject: Callable[[Seen], str | None],
        baseline_filter: Callable[[str, int, int], EventFilter],
        per_key: bool = False,
        minimum: int,
        multiplier: float,
        what: str,
    ) -> None:
        self.insight_type, self._history, self._th = insight_type, history, th
        self._subject, self._baseline_filter, self._per_key = subject, baseline_filter, per_key
        self._minimum, self._multiplier, self._what = minimum, multiplier, what
        self._subjects: dict[tuple[str, str], _Subject] = {}
        self._baselines: dict[tuple[str, str], _Baseline] = {}

    # -- per event --------------------------------------------------------------------------------
    def check(self, ev: Seen) -> list[StoredInsight]:
        name = self._subject(ev)
        if name is None:
            return []
        minute = ev.time_ms - ev.time_ms % MINUTE_MS
        key = (ev.account_id, name)
        state = self._subjects.get(key)
        found: list[StoredInsight] = []
        if state is None:
            state = self._subjects[key] = _Subject(_Minute(minute))
        elif minute > state.current.minute:
            found += self._close_minute(key, state)
            self._fold(key, state.current)
            state.current = _Minute(minute)
        elif minute < state.current.minute:
            return []  # a late event: its minute is closed (it is in the baseline all the same)
        cur = state.current
        cur.count += 1
        if len(cur.ids) < _TRIGGERS_KEPT:
            cur.ids.append(ev.event_id)
        cur.keys[ev.access_key_id or ev.user_name] += 1
        cur.ips[ev.ip] += 1
        o = state.open
        if o is not None:
            if o.last_hot_minute == minute:
                self._add(o, ev)
            elif cur.count >= self._threshold_value(o.baseline):
                self._merge(o, cur)  # this minute is hot too: the insight goes on
                o.last_hot_minute = minute
            return found
        threshold = self._threshold(key, state, minute)
        if cur.count >= threshold:
            o = state.open = _Open(
                start_ms=ev.time_ms,
                first_minute=minute,
                last_hot_minute=minute,
                count=0,
                baseline=state.baseline,
                baseline_minutes=state.baseline_minutes,
                region=ev.region,
                trigger={"service": ev.service, "name": ev.name, "ip": ev.ip, "key": ev.access_key_id},
            )
            self._merge(o, cur)
            found.append(self._record(key, o, "Start", ev.time_ms, ev))
        return found

    def _fold(self, key: tuple[str, str], done: _Minute) -> None:
        """A finished minute joins the baseline: it keeps up with what the detector sees."""
        base = self._baselines.get(key)
        if base is not None and done.minute >= base.counted_at:
            base.calls += done.count

    @staticmethod
    def _add(o: _Open, ev: Seen) -> None:
        o.count += 1
        o.keys[ev.access_key_id or ev.user_name] += 1
        o.ips[ev.ip] += 1
        if len(o.ids) < _TRIGGERS_KEPT:
            o.ids.append(ev.event_id)

    @staticmethod
    def _merge(o: _Open, cur: _Minute) -> None:
        o.count += cur.count
        o.keys.update(cur.keys)
        o.ips.update(cur.ips)
        o.ids.extend(cur.ids[: max(0, _TRIGGERS_KEPT - len(o.ids))])

    def _threshold_value(self, baseline: float) -> int:
        return max(self._minimum, math.ceil(self._multiplier * baseline))

    def _threshold(self, key: tuple[str, str], state: _Subject, minute: int) -> int:
        """The subject's threshold now. Its baseline is counted in the store once a week (of event
        time) and kept up to date in between by counting the events the detector sees."""
        base = self._baselines.get(key)
        if base is None or minute - base.counted_at >= _RECOUNT_MS:
            account, name = key
            if self._per_key:
                calls, first = self._history.key_calls(account, name, minute)
                start = minute if first is None else first - first % MINUTE_MS
            else:
                start = minute - self._th.baseline_days * DAY_MS
                earliest = self._history.earliest(account, minute)
                if earliest is not None:
                    start = max(start, earliest - earliest % MINUTE_MS)
                flt = self._baseline_filter(name, start, minute - 1)
                calls = self._history.count(account, flt, _COUNT_CAP)
            if len(self._baselines) > _CACHE_LIMIT:
                self._baselines.clear()
            base = self._baselines[key] = _Baseline(start, minute, calls)
        minutes = max(1, (minute - base.start) // MINUTE_MS)
        state.baseline, state.baseline_minutes = base.calls / minutes, minutes
        return self._threshold_value(state.baseline)

    # -- closing ----------------------------------------------------------------------------------
    def _close_minute(self, key: tuple[str, str], state: _Subject) -> list[StoredInsight]:
        """The current minute is over: an open insight whose last hot minute it was not ends."""
        o = state.open
        if o is None:
            return []
        if state.current.minute == o.last_hot_minute:
            return []  # still hot; the next minute decides
        end_ms = o.last_hot_minute + MINUTE_MS
        state.open = None
        return [self._record(key, o, "End", end_ms, None)]

    def expire(self, clock_ms: int) -> list[StoredInsight]:
        """Close what no event will close: subjects whose minute ended a minute before ``clock_ms``."""
        found: list[StoredInsight] = []
        for key, state in list(self._subjects.items()):
            if state.current.minute + 2 * MINUTE_MS > clock_ms:
                continue
            if state.open is not None:
                o = state.open
                state.open = None
                found.append(self._record(key, o, "End", o.last_hot_minute + MINUTE_MS, None))
            self._fold(key, state.current)
            del self._subjects[key]
        return found

    def _record(
        self, key: tuple[str, str], o: _Open, state: str, time_ms: int, ev: Seen | None
    ) -> StoredInsight:
        account, name = key
        minutes = max(1, (o.last_hot_minute - o.first_minute) // MINUTE_MS + 1)
        rate = o.count / minutes
        trigger = Seen(
            seq=0,
            account_id=account,
            event_id=o.ids[0] if o.ids else "",
            time_ms=o.start_ms,
            name=o.trigger.get("name", ""),
            service=o.trigger.get("service", ""),
            rw="",
            error_code="",
            ip=o.trigger.get("ip", ""),
            access_key_id=o.trigger.get("key", ""),
            user_name="",
            identity_type="",
            region=o.region,
        )
        return insight_record(
            account_id=account,
            insight_type=self.insight_type,
            insight_object=name,
            anchor=str(o.first_minute),
            state=state,
            time_ms=time_ms,
            region=o.region,
            statistics=Statistics(rate, minutes, o.baseline, o.baseline_minutes, o.count),
            attributions=[
                Attribution("userIdentity.accessKeyId", [(k, c / minutes) for k, c in o.keys.most_common(5)]),
                Attribution("sourceIpAddress", [(k, c / minutes) for k, c in o.ips.most_common(5)]),
            ],
            triggers=o.ids,
            explanation=(
                f"{self._what} of {name}: {o.count} in {minutes} minute(s) from"
                f" {format_wire_time(o.first_minute)}, against a baseline of {o.baseline:.3f} per minute over"
                f" {o.baseline_minutes} minutes (threshold {self._threshold_value(o.baseline)} per minute)."
            ),
            trigger=trigger,
        )

    # -- saved state ------------------------------------------------------------------------------
    def dump(self) -> list[Any]:
        out: list[Any] = []
        for (account, name), s in self._subjects.items():
            o = s.open
            out.append(
                [
                    account,
                    name,
                    s.current.minute,
                    s.current.count,
                    s.current.ids,
                    dict(s.current.keys),
                    dict(s.current.ips),
                    None
                    if o is None
                    else [
                        o.start_ms,
                        o.first_minute,
                        o.last_hot_minute,
                        o.count,
                        o.baseline,
                        o.baseline_minutes,
                        o.region,
                        o.ids,
                        dict(o.keys),
                        dict(o.ips),
                        o.trigger,
                    ],
                ]
            )
        return out

    def load(self, saved: list[Any]) -> None:
        self._subjects.clear()
        for account, name, minute, count, ids, keys, ips, o in saved:
            state = _Subject(_Minute(minute, count, list(ids), Counter(keys), Counter(ips)))
            if o is not None:
                state.open = _Open(
                    o[0],
                    o[1],
                    o[2],
                    o[3],
                    o[4],
                    o[5],
                    o[6],
                    list(o[7]),
                    Counter(o[8]),
                    Counter(o[9]),
                    dict(o[10]),
                )
                state.baseline, state.baseline_minutes = o[4], o[5]
            self._subjects[(account, name)] = state


def _api(ev: Seen) -> str:
    return f"{ev.service}:{ev.name}"


def _api_filter(extra: dict[str, Any]) -> Callable[[str, int, int], EventFilter]:
    def build(name: str, start: int, end: int) -> EventFilter:
        service, _, event = name.partition(":")
        equals: dict[Attr, tuple[str, ...]] = {Attr.SERVICE_NAME: (service,), Attr.EVENT_NAME: (event,)}
        equals.update(extra.get("equals", {}))
        return EventFilter(start, end, equals=equals, has_error=extra.get("has_error"))

    return build


def rate_rules(history: History, th: Thresholds) -> list[RateRule]:
    return [
        RateRule(
            "ApiCallRateInsight",
            history,
            th,
            subject=lambda ev: _api(ev) if ev.rw == "Write" and ev.name else None,
            baseline_filter=_api_filter({"equals": {Attr.EVENT_RW: ("Write",)}}),
            minimum=th.rate_min_per_minute,
            multiplier=th.rate_multiplier,
            what="Write calls",
        ),
        RateRule(
            "ApiErrorRateInsight",
            history,
            th,
            subject=lambda ev: _api(ev) if ev.error_code and ev.name else None,
            baseline_filter=_api_filter({"has_error": True}),
            minimum=th.error_min_per_minute,
            multiplier=th.error_multiplier,
            what="Failed calls",
        ),
        RateRule(
            "AkInsight",
            history,
            th,
            subject=lambda ev: (
                ev.access_key_id if ev.access_key_id and not ev.access_key_id.startswith("STS.") else None
            ),
            baseline_filter=lambda key, start, end: EventFilter(
                start, end, equals={Attr.ACCESS_KEY_ID: (key,)}
            ),
            # An AccessKey's average since its first call, from the usage aggregates: one read.
            per_key=True,
            minimum=th.ak_min_per_minute,
            multiplier=th.ak_multiplier,
            what="Calls by AccessKey",
        ),
    ]

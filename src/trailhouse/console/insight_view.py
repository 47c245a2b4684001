"""An insight as the Insights pages show it: its two records read into one row of plain values.

Nothing here escapes: the templates do (Jinja autoescape), so an insight's object, explanation and
attribution values (which come from what key holders sent) reach the page as text.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

import orjson

from ..model.insights import StoredInsight
from ..model.times import format_wire_time
from ..service.insights.browse import Episode
from .web import PREFIX

__all__ = ["RATE_TYPES", "STATISTICS_NOTES", "Attribution", "InsightRow", "Statistics", "insight_row"]

#: Rate insights: observed and baseline are calls per minute (docs/insights.md, "The record").
RATE_TYPES = frozenset({"ApiCallRateInsight", "ApiErrorRateInsight"})
#: What the statistics of each type mean, for the detail page.
STATISTICS_NOTES = {
    "IpInsight": (
        "Observed: one call from a network new to the AccessKey. Baseline: the key's earlier calls per"
        " network it had used; baseline duration: the window (minutes) in which networks new to it"
        " were counted."
    ),
    "ApiCallRateInsight": (
        "Write calls of the API per minute during the insight against its average per minute over the"
        " baseline duration; durations are minutes."
    ),
    "ApiErrorRateInsight": (
        "Failed calls of the API per minute during the insight against its average per minute over the"
        " baseline duration; durations are minutes."
    ),
    "AkInsight": (
        "A call jump: the key's calls per minute against its average since its first call. A dormant key"
        " (observed duration 0): the baseline duration is how long the key had been idle, in minutes."
    ),
    "PolicyChangeInsight": (
        "One change; the baseline duration is the look-back (minutes) in which this caller made no"
        " policy change."
    ),
    "PasswordChangeInsight": (
        "One change; the baseline duration is the look-back (minutes) in which this caller made no"
        " password or login-profile change."
    ),
    "TrailConcealmentInsight": (
        "One change; the baseline duration is the look-back (minutes) in which this caller made no"
        " trail stop, deletion or narrowing."
    ),
}


@dataclass(frozen=True, slots=True)
class Statistics:
    """insightContext.statistics of one record."""

    insight: float
    insight_duration: int
    baseline: float
    baseline_duration: int
    insight_count: int

    def ratio(self, insight_type: str) -> str:
        """Observed over baseline, as "×12.5", for rates only."""
        # A point insight's numbers are not two rates (IpInsight's baseline is calls per network).
        is_rate = insight_type in RATE_TYPES or (insight_type == "AkInsight" and self.insight_duration > 0)
        if not is_rate:
            return ""
        if self.baseline <= 0:
            return "no calls at all in the baseline"
        return f"×{self.insight / self.baseline:,.1f}"


@dataclass(frozen=True, slots=True)
class Attribution:
    attribute: str
    insight: tuple[tuple[str, float], ...]
    baseline: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class InsightRow:
    """One insight as the pages show it: the Start's facts, the End's time and totals."""

    insight_id: str
    shared_id: str
    end_id: str
    insight_type: str
    insight_object: str
    region: str
    start_ms: int
    end_ms: int | None
    explanation: str
    end_explanation: str
    key: str
    ip: str
    service: str
    event_name: str
    statistics: Statistics | None
    end_statistics: Statistics | None
    attributions: tuple[Attribution, ...]
    triggers: tuple[str, ...]
    body_json: str
    end_json: str

    @property
    def start(self) -> str:
        return format_wire_time(self.start_ms)

    @property
    def end(self) -> str:
        return "" if self.end_ms is None else format_wire_time(self.end_ms)

    @property
    def ongoing(self) -> bool:
        return self.end_ms is None

    @property
    def summary(self) -> str:
        """The explanation a list shows: the End's (the whole insight) once there is one."""
        return self.end_explanation or self.explanation

    @property
    def link(self) -> str:
        return f"{PREFIX}/insights/{urllib.parse.quote(self.insight_id, safe='')}"


def _text(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    return value if isinstance(value, str) else "" if value is None else str(value)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _statistics(context: dict[str, Any]) -> Statistics | None:
    stats = context.get("statistics")
    if not isinstance(stats, dict):
        return None
    return Statistics(
        _number(stats.get("insight")),
        int(_number(stats.get("insightDuration"))),
        _number(stats.get("baseline")),
        int(_number(stats.get("baselineDuration"))),
        int(_number(stats.get("insightCount"))),
    )


def _values(items: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(items, list):
        return ()
    return tuple((_text(i, "value"), _number(i.get("average"))) for i in items if isinstance(i, dict))


def _context(doc: dict[str, Any]) -> dict[str, Any]:
    details = doc.get("insightDetails")
    context = details.get("insightContext") if isinstance(details, dict) else None
    return context if isinstance(context, dict) else {}


def _doc(record: StoredInsight | None) -> dict[str, Any]:
    if record is None:
        return {}
    try:
        doc = orjson.loads(record.body)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def insight_row(episode: Episode) -> InsightRow:
    first = episode.record
    doc, end_doc = _doc(episode.start), _doc(episode.end)
    lead = doc or end_doc
    context = _context(lead)
    attributions = tuple(
        Attribution(_text(a, "attribute"), _values(a.get("insight")), _values(a.get("baseline")))
        for a in context.get("attributions", ())
        if isinstance(a, dict)
    )
    triggers: list[str] = []
    for source in (doc, end_doc):  # a rate insight's End names the calls of its later minutes too
        ids = source.get("triggeringEventIds")
        for event_id in ids if isinstance(ids, list) else ():
            if isinstance(event_id, str) and event_id not in triggers:
                triggers.append(event_id)
    end_stats = _statistics(_context(end_doc)) if end_doc else None
    start_stats = _statistics(context)
    return InsightRow(
        insight_id=first.insight_id,
        shared_id=first.shared_id,
        end_id=episode.end.insight_id if episode.end else "",
        insight_type=first.insight_type,
        insight_object=first.insight_object,
        region=first.region,
        start_ms=first.event_time_ms,
        end_ms=episode.end.event_time_ms if episode.end else None,
        explanation=_text(lead, "explanation"),
        end_explanation=_text(end_doc, "explanation") if doc else "",
        key=first.access_key_id,
        ip=first.source_ip,
        service=first.service_name,
        event_name=first.event_name,
        statistics=start_stats,
        end_statistics=end_stats if end_stats != start_stats else None,
        attributions=attributions,
        triggers=tuple(triggers),
        body_json=orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() if doc else "",
        end_json=orjson.dumps(end_doc, option=orjson.OPT_INDENT_2).decode() if end_doc else "",
    )

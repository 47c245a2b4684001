"""The search page's whole state, read from and written back to the URL.

Filter names are the native search's (``EventName``, ``SourceIpAddress``, ``ResourceName.prefix``,
…, see service/search.py): a console URL and a ``GET /api/v1/events`` URL share their filters. In
the form, a value ending in ``*`` asks for a prefix (``Describe*``), and a SourceIpAddress with a
``/`` is a network. ``start``/``end`` are ISO 8601 UTC times (or epoch milliseconds), ``failed``
is ``true`` (errors only) or ``false`` (successes only), ``cols`` the shown columns, ``rows`` the
page size, ``cursor`` the keyset position of the page.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ..model.query import EventFilter
from ..model.times import DAY_MS, TimeFormatError, format_wire_time, parse_event_time
from ..service.search import FILTER_PARAMS, PREFIXABLE, SearchParamError, build_search_filter
from ..storage.base import EventLog

__all__ = [
    "COLUMNS",
    "DEFAULT_COLUMNS",
    "FORM_FILTERS",
    "SearchState",
    "StateError",
    "parse_rows",
    "parse_state",
    "parse_window",
]

#: Columns a person may show: name -> heading. The event's time is always shown (it links to the event).
COLUMNS: dict[str, str] = {
    "name": "Event",
    "service": "Service",
    "user": "User",
    "key": "AccessKey",
    "ip": "Source IP",
    "rw": "R/W",
    "resources": "Resources",
    "error": "Error",
    "agent": "User agent",
    "region": "Region",
    "type": "Type",
    "request": "Request ID",
}
DEFAULT_COLUMNS = ("name", "service", "user", "key", "ip", "rw", "resources", "error")
#: The filters the form offers, in its order; the rest (EventRW, SensitiveAction) have selects.
FORM_FILTERS: tuple[tuple[str, str], ...] = (
    ("EventName", "Event name"),
    ("ServiceName", "Service"),
    ("User", "User"),
    ("EventAccessKeyId", "AccessKey ID"),
    ("SourceIpAddress", "Source IP or CIDR"),
    ("ResourceName", "Resource name"),
    ("ResourceType", "Resource type"),
    ("ErrorCode", "Error code"),
    ("RoleName", "Role"),
    ("RequestId", "Request ID"),
    ("EventId", "Event ID"),
    ("EventType", "Event type"),
    ("EventCategory", "Category"),
)
ROW_CHOICES = (20, 50, 100, 200)
DEFAULT_ROWS = 50
DEFAULT_DAYS = 7


class StateError(ValueError):
    """A URL parameter the console cannot use; the message says which and why."""


@dataclass(frozen=True, slots=True)
class SearchState:
    start_ms: int
    end_ms: int
    #: (name, value) in canonical form: ``EventName`` = exact, ``EventName.prefix`` = prefix.
    filters: tuple[tuple[str, str], ...] = ()
    failed: bool | None = None
    columns: tuple[str, ...] = DEFAULT_COLUMNS
    rows: int = DEFAULT_ROWS
    cursor: str | None = None
    histogram: bool = True

    # -- URLs ----------------------------------------------------------------------------------
    def params(self, *, cursor: bool = False) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = [
            ("start", format_wire_time(self.start_ms)),
            ("end", format_wire_time(self.end_ms)),
        ]
        out += list(self.filters)
        if self.failed is not None:
            out.append(("failed", "true" if self.failed else "false"))
        if self.columns != DEFAULT_COLUMNS:
            out.append(("cols", ",".join(self.columns)))
        if self.rows != DEFAULT_ROWS:
            out.append(("rows", str(self.rows)))
        if not self.histogram:
            out.append(("histogram", "off"))
        if cursor and self.cursor:
            out.append(("cursor", self.cursor))
        return out

    def query(self, **changes: Any) -> str:
        """The query string of this state with ``changes`` applied (a new search drops the cursor)."""
        state = replace(self, **changes) if changes else self
        return urllib.parse.urlencode(state.params(cursor="cursor" in changes))

    def export_query(self, fmt: str) -> str:
        params = [(k, v) for k, v in self.params() if k not in ("cols", "rows", "histogram")]
        return urllib.parse.urlencode([*params, ("format", fmt)])

    def filter_pairs(self) -> list[tuple[str, str]]:
        return list(self.filters)

    def form_values(self, name: str) -> list[str]:
        """The values of a filter as the form shows them (a prefix with its ``*``)."""
        values = [v for n, v in self.filters if n == name]
        values += [v + "*" for n, v in self.filters if n == f"{name}.prefix"]
        return values or [""]

    def selected(self, name: str) -> str:
        return next((v for n, v in self.filters if n == name), "")

    def build_filter(self, store: EventLog, account_id: str) -> tuple[EventFilter, dict[str, Any]]:
        try:
            return build_search_filter(
                store,
                account_id=account_id,
                start_ms=self.start_ms,
                end_ms=self.end_ms,
                pairs=self.filters,
                failed=self.failed,
            )
        except SearchParamError as exc:
            raise StateError(str(exc)) from None


def _time(value: str, name: str) -> int:
    value = value.strip()
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        return parse_event_time(value if value.endswith("Z") or "+" in value[10:] else value + "Z")
    except (TimeFormatError, ValueError, OverflowError):
        raise StateError(f"{name}: {value!r} is not a time (use 2026-12-06T10:00:00Z)") from None


def _canonical(pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for name, raw in pairs:
        base, _, modifier = name.partition(".")
        if base not in FILTER_PARAMS:
            continue
        value = raw.strip()
        if not value:
            continue
        if modifier == "prefix":
            pair = (name, value)
        elif modifier:
            raise StateError(f"unknown modifier in {name}: use {base}=value or {base}.prefix=value")
        elif value.endswith("*") and FILTER_PARAMS[base] in PREFIXABLE:
            pair = (f"{base}.prefix", value[:-1])
        else:
            pair = (base, value)
        if pair not in out:
            out.append(pair)
    return tuple(out)


def parse_window(single: dict[str, str], *, now_ms: int, retention_days: int) -> tuple[int, int]:
    """``start``/``end`` of a page's URL (the search's, the insights'): default the last 7 days."""
    end = _time(single["end"], "end") if single.get("end", "").strip() else now_ms
    start = (
        _time(single["start"], "start")
        if single.get("start", "").strip()
        else max(end - DEFAULT_DAYS * DAY_MS, now_ms - retention_days * DAY_MS)
    )
    if start > end:
        raise StateError("start must not be later than end")
    return start, end


def parse_rows(text: str) -> int:
    """``rows``: one of ROW_CHOICES (default 50)."""
    rows_text = text.strip()
    if rows_text and (not rows_text.isdigit() or int(rows_text) not in ROW_CHOICES):
        raise StateError(f"rows must be one of {', '.join(map(str, ROW_CHOICES))}")
    return int(rows_text) if rows_text else DEFAULT_ROWS


def parse_state(params: list[tuple[str, str]], *, now_ms: int, retention_days: int) -> SearchState:
    """The state a URL's query asks for; defaults: the last 7 days, every event, 50 rows."""
    single = {name: value for name, value in params}
    start, end = parse_window(single, now_ms=now_ms, retention_days=retention_days)
    failed_text = single.get("failed", "").strip().lower()
    if failed_text not in ("", "true", "false"):
        raise StateError("failed must be true (errors only) or false (successes only)")
    failed = None if not failed_text else failed_text == "true"
    columns: tuple[str, ...] = DEFAULT_COLUMNS
    chosen = [v for n, v in params if n == "col"]  # the form's checkboxes
    if "cols" in single:
        chosen += single["cols"].split(",")
    if chosen:
        columns = tuple(c for c in COLUMNS if c in chosen)
    rows = parse_rows(single.get("rows", ""))
    return SearchState(
        start_ms=start,
        end_ms=end,
        filters=_canonical(params),
        failed=failed,
        columns=columns,
        rows=rows,
        cursor=single.get("cursor") or None,
        histogram=single.get("histogram", "on") != "off",
    )

"""Bulk reads and downloads: runs of reads from one IP with no long pause between calls.

A run of one **kind** from one source IP goes on while calls come less than ``BURST_GAP_MS`` apart;
it is a bulk read when it holds at least ``BURST_MIN_CALLS`` calls. Kinds: **download**, the reads
that return data (objects, secrets, parameters), and **enumeration**, the Describe*/List* calls of
every service, which map what the key can reach. Memory: one open run per (IP, kind).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .types import BulkRead

__all__ = ["BURST_GAP_MS", "BURST_MIN_CALLS", "DOWNLOAD_ACTIONS", "BurstFinder", "read_kind"]

#: Reads that hand data out, not metadata.
DOWNLOAD_ACTIONS = frozenset(
    {
        "GetObject",
        "SelectObject",
        "GetSecretValue",
        "GetSecretParameter",
        "GetSecretParameters",
        "GetParametersByPath",
        "ExportKey",
    }
)
BURST_GAP_MS = 10 * 60_000  # ten minutes
BURST_MIN_CALLS = 10
_SAMPLE = 5
_RESOURCES_COUNTED = 10_000  # distinct resources counted per run; more is reported as that many


def read_kind(event_name: str) -> str | None:
    if event_name in DOWNLOAD_ACTIONS:
        return "download"
    if event_name.startswith(("Describe", "List")):
        return "enumeration"
    return None


@dataclass(slots=True)
class _Run:
    start_ms: int
    end_ms: int
    calls: int = 0
    failed: int = 0
    names: Counter[str] = field(default_factory=Counter)
    resources: dict[str, None] = field(default_factory=dict)


class BurstFinder:
    """Feed calls in time order; ``bursts`` are the runs at or after ``since_ms`` that qualify.

    Runs that ended before ``since_ms`` are remembered by their size only, to tell a burst the IP
    always makes (routine, like a nightly backup) from a new one.
    """

    def __init__(self, since_ms: int, limit: int) -> None:
        self._since = since_ms
        self._limit = limit
        self._open: dict[tuple[str, str], _Run] = {}
        self._before: dict[tuple[str, str], int] = {}  # largest qualifying run before since_ms
        self._found: list[tuple[tuple[str, str], _Run]] = []
        self.total = 0

    def add(
        self, t: int, ip: str, event_name: str, failed: bool, resources: tuple[tuple[str, str], ...]
    ) -> None:
        kind = read_kind(event_name)
        if kind is None:
            return
        key = (ip, kind)
        run = self._open.get(key)
        if run is not None and t - run.end_ms > BURST_GAP_MS:
            self._close(key, run)
            run = None
        if run is None:
            run = self._open[key] = _Run(t, t)
        run.end_ms = t
        run.calls += 1
        run.failed += int(failed)
        run.names[event_name] += 1
        for rtype, rname in resources:
            if len(run.resources) < _RESOURCES_COUNTED:
                run.resources[f"{rtype} {rname}".strip()] = None

    def _close(self, key: tuple[str, str], run: _Run) -> None:
        if run.calls < BURST_MIN_CALLS:
            return
        if run.end_ms < self._since:
            self._before[key] = max(self._before.get(key, 0), run.calls)
            return
        self.total += 1
        if len(self._found) < self._limit:
            self._found.append((key, run))

    def bursts(self, is_new: dict[str, bool]) -> list[BulkRead]:
        for key, run in list(self._open.items()):
            self._close(key, run)
        self._open.clear()
        out = [
            BulkRead(
                kind=kind,
                source_ip=ip,
                start_ms=run.start_ms,
                end_ms=run.end_ms,
                calls=run.calls,
                failed_calls=run.failed,
                event_names=tuple(sorted(run.names.items(), key=lambda kv: (-kv[1], kv[0]))),
                resource_count=len(run.resources),
                sample_resources=tuple(list(run.resources)[:_SAMPLE]),
                new_ip=is_new.get(ip, False),
                routine=self._before.get((ip, kind), 0) * 2 >= run.calls,
            )
            for (ip, kind), run in self._found
        ]
        # Downloads before enumeration, new IPs first, then the largest.
        out.sort(key=lambda b: (b.routine, b.kind != "download", not b.new_ip, -b.calls, b.start_ms))
        return out

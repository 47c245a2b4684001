"""The figures of a reliability run: one line per property and backend, printed at the end of the
session and written as JSON so docs/reliability.md can cite them."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

#: ``TRAILHOUSE_RELIABILITY=full`` (``make reliability``) selects the full sizes; anything else the
#: short ones that ``make test`` runs.
FULL = os.environ.get("TRAILHOUSE_RELIABILITY", "").lower() == "full"
MODE = "full" if FULL else "short"


def size(short: int, full: int) -> int:
    return full if FULL else short


def seconds(short: float, full: float) -> float:
    return full if FULL else short


@dataclass
class Figure:
    prop: str  # e.g. "kill -9 serve"
    backend: str  # "sqlite", "postgres", or "-" when no store is involved
    line: str  # the sentence printed at the end of the run
    ok: bool
    figures: dict[str, Any] = field(default_factory=dict)
    test: str = ""


RESULTS: list[Figure] = []


def record(prop: str, backend: str, line: str, *, ok: bool, test: str = "", **figures: Any) -> None:
    """Keep one property's figure; call it before asserting, so a failure still has its number."""
    RESULTS.append(Figure(prop, backend, line, ok, figures, test))


def as_json() -> list[dict[str, Any]]:
    return [asdict(f) for f in RESULTS]

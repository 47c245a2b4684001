"""Fixtures of the gateway's tests."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from trailhouse.api.context import Services
from trailhouse.api.rpc import dispatch
from trailhouse.api.rpc.call import Call
from trailhouse.storage.budget import current_budget


@dataclasses.dataclass
class Seen:
    thread: str
    budget_s: float | None
    seconds: float = 0.0
    interrupted: bool = False


@pytest.fixture
def record(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[tuple[str, str], Callable[[Call, Services], None] | None], list[Seen]]:
    """Wrap an operation's handler: each call notes its thread and budget, after ``before`` ran."""

    def wrap(key: tuple[str, str], before: Callable[[Call, Services], None] | None = None) -> list[Seen]:
        seen: list[Seen] = []
        op = dispatch.OPERATIONS[key]

        def handler(call: Call, svc: Services) -> dict[str, Any]:
            budget = current_budget()
            entry = Seen(threading.current_thread().name, None if budget is None else budget.timeout_s)
            seen.append(entry)
            started = time.perf_counter()
            try:
                if before is not None:
                    before(call, svc)
            except BaseException:
                entry.interrupted = True
                raise
            finally:
                entry.seconds = time.perf_counter() - started
            return op.handler(call, svc)

        monkeypatch.setitem(dispatch.OPERATIONS, key, dataclasses.replace(op, handler=handler))
        return seen

    return wrap

"""Trailhouse as a test double for ActionTrail, as moto is for AWS.

* ``trail`` (pytest fixture, installed with the package): a throwaway Trailhouse and an account of
  it, with official SDK clients and ``trail.record(...)``.
* ``emulator()``: the same as a context manager, outside pytest.
* ``AuditMiddleware`` (ASGI) and ``WsgiAuditMiddleware``: record the calls of your own service as
  ActionTrail events, so a test can assert that a request left its audit record.

docs/testing.md shows them at work (the suite in ``examples/``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .events import complete_event, make_event
    from .server import Emulator, EmulatorError, RecordError, SdkMissing, Trail, emulator

__all__ = [
    "Emulator",
    "EmulatorError",
    "RecordError",
    "SdkMissing",
    "Trail",
    "complete_event",
    "emulator",
    "make_event",
]

#: Where each name lives. Imported on first use: the pytest plugin (a submodule) is loaded into
#: every pytest run where trailhouse is installed, and must not pull the server in with it.
_HOMES = {
    "Emulator": "server",
    "EmulatorError": "server",
    "RecordError": "server",
    "SdkMissing": "server",
    "Trail": "server",
    "emulator": "server",
    "complete_event": "events",
    "make_event": "events",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)

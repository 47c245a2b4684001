"""Trailhouse as a test double for ActionTrail, as moto is for AWS.

* ``trail`` (pytest fixture, installed with the package): a throwaway Trailhouse and an account of
  it, with official SDK clients and ``trail.record(...)``.
* ``emulator()``: the same as a context manager, outside pytest.
* ``AuditMiddleware`` (ASGI) and ``WsgiAuditMiddleware``: record the calls of your own service as
  ActionTrail events, so a test can assert that a request left its audit record.

docs/testing.md shows them at work (the suite in ``examples/``).
"""

from __future__ import annotations

from .emulator import Emulator, EmulatorError, RecordError, SdkMissing, Trail, emulator
from .events import complete_event, make_event

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

"""The pytest plugin: ``trail`` and ``trailhouse_emulator`` fixtures, registered by the package's
``pytest11`` entry point, so installing trailhouse is enough to use them.

``trailhouse_emulator`` is one server for the whole session (starting uvicorn costs a fraction of a
second); ``trail`` is a new account of it for each test, with its own AccessKey pair and SDK
clients, so a test sees only the events it recorded. Nothing here runs unless a test asks for
one of these fixtures: the module imports nothing heavy, and defines no hooks besides the
fixtures, so other test suites are undisturbed. ``-p no:trailhouse`` turns it off.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .server import Emulator, Trail

__all__ = ["trail", "trailhouse_emulator"]


@pytest.fixture(scope="session")
def trailhouse_emulator() -> Iterator[Emulator]:
    """A Trailhouse on 127.0.0.1 with a throwaway SQLite store and throttling off, for the session."""
    from .server import Emulator

    with Emulator() as server:
        yield server


@pytest.fixture
def trail(trailhouse_emulator: Emulator) -> Trail:
    """A fresh account of the session's emulator: ``endpoint``, ``access_key_id``/``access_key_secret``,
    ``client_2017``/``client_2020`` (official SDK clients), ``record(...)`` and ``events(...)``."""
    return trailhouse_emulator.trail()

"""Named, recorded schema migrations: one directory of numbered SQL files per backend."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

__all__ = ["Migration", "migrations_for"]


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    sql: str


def migrations_for(backend: str) -> list[Migration]:
    """The migrations of one backend, in the order their names sort (``0001_…``, ``0002_…``)."""
    folder = resources.files(__name__).joinpath(backend)
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]

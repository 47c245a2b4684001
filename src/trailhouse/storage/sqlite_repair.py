"""The data repair of SQLite migration 0006: events stored twice under one (account, eventId).

Before migration 0006 an event re-sent with an eventTime in another UTC day was stored again.
PostgreSQL never did (its ``event_ids`` table has always been unique), so this is SQLite's alone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

__all__ = ["remove_duplicate_events"]


def remove_duplicate_events(
    conn: sqlite3.Connection, rebuild_usage: Callable[[sqlite3.Connection, int, int], None]
) -> str | None:
    """Remove the events stored more than once under one (account, eventId), keeping the first.

    ``rebuild_usage(conn, account, access_key)`` then recomputes the AccessKey usage of each key
    those copies named from what remains. Returns what was done, or None when nothing was.
    """
    groups = conn.execute(
        "SELECT account, event_key FROM events INDEXED BY events_key"
        " GROUP BY account, event_key HAVING count(*) > 1"
    ).fetchall()
    doubled: list[int] = []
    for account, key in groups:
        first: dict[str, int] = {}
        # From the body, which every schema has (the column is gone since migration 0017).
        for seq, event_id in conn.execute(
            "SELECT seq, event_id_of(body) FROM events WHERE account = ? AND event_key = ? ORDER BY seq",
            (account, key),
        ):
            if event_id in first:
                doubled.append(seq)
            else:
                first[event_id] = seq
    if not doubled:
        return None
    keys: set[tuple[int, int]] = set()
    for start in range(0, len(doubled), 500):
        chunk = doubled[start : start + 500]
        marks = ",".join("?" * len(chunk))
        keys.update(
            conn.execute(
                f"SELECT account, access_key FROM events WHERE seq IN ({marks}) AND access_key IS NOT NULL",
                chunk,
            ).fetchall()
        )
        conn.execute(f"DELETE FROM event_resources WHERE seq IN ({marks})", chunk)
        conn.execute(f"DELETE FROM events WHERE seq IN ({marks})", chunk)
    for account, access_key in sorted(keys):
        rebuild_usage(conn, account, access_key)
    return (
        f"removed {len(doubled)} events stored twice (same account and eventId, another day),"
        f" keeping the first arrival; AccessKey usage rebuilt for {len(keys)} keys"
    )

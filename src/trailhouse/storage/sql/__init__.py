"""The SQL both backends share, steered by a dialect object (``dialect.SQLITE``, ``dialect.POSTGRES``).

``find`` builds every lookup and the usage page; ``rows`` the rows an ingest writes; ``migrate``
applies the numbered migrations; ``store.SqlStore`` the store methods that read and write alike.
The backend modules keep what really differs: connections, locking, bulk loading, partitions.
"""

from __future__ import annotations

from .dialect import POSTGRES, SQLITE, Dialect
from .find import (
    DAY_BUCKETED_DRIVERS,
    DAY_MS,
    ID_READERS,
    INTERNED_COLUMNS,
    FindQuery,
    TermsSql,
    build_find,
    build_usage,
    day_windows,
    network_text_prefix,
    sqlite_day,
    text_value,
    usage_entry,
)
from .migrate import apply_migrations, split_statements
from .rows import (
    EVENT_COLUMNS,
    RESOURCE_COLUMNS,
    Placed,
    Plan,
    StoredIds,
    merge_usage,
    plan_batch,
    upsert_usage,
)
from .store import SqlStore
from .trails import ConnectionTx

__all__ = [
    "ConnectionTx",
    "DAY_BUCKETED_DRIVERS",
    "DAY_MS",
    "EVENT_COLUMNS",
    "INTERNED_COLUMNS",
    "POSTGRES",
    "RESOURCE_COLUMNS",
    "SQLITE",
    "Dialect",
    "FindQuery",
    "ID_READERS",
    "SqlStore",
    "TermsSql",
    "apply_migrations",
    "build_find",
    "build_usage",
    "day_windows",
    "Placed",
    "Plan",
    "StoredIds",
    "merge_usage",
    "network_text_prefix",
    "plan_batch",
    "split_statements",
    "sqlite_day",
    "text_value",
    "upsert_usage",
    "usage_entry",
]

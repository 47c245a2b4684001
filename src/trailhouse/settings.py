"""Every setting in one place: defaults, then environment (TRAILHOUSE_*), then command-line flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = ["Settings", "sqlite_path_from_url"]

DEFAULT_DB = "sqlite:///trailhouse.db"


def sqlite_path_from_url(url: str) -> str | None:
    """The file path of a ``sqlite:///path`` URL (``sqlite:////abs/path`` for absolute), else None."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///") or "trailhouse.db"
    if url.startswith("sqlite://"):
        return url.removeprefix("sqlite://")
    return None


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


@dataclass(frozen=True, slots=True)
class Settings:
    db_url: str = DEFAULT_DB
    host: str = "127.0.0.1"
    port: int = 8080
    #: Where the generated master key lives; defaults to the SQLite file's folder, else ./trailhouse-data.
    data_dir: str | None = None
    #: base64 of 32 bytes; when unset a key is generated once into data_dir/master.key (mode 0600).
    master_key: str | None = None
    redis_url: str | None = None
    #: Namespace of every Redis key, so several deployments can share one Redis.
    redis_prefix: str = "trailhouse"
    max_body_bytes: int = 32 * 1024 * 1024
    max_batch_events: int = 10_000
    #: Requests per second per account and operation; 0 switches a limit off.
    throttle_lookup_events: float = 2.0
    throttle_access_key_usage: float = 50.0
    timestamp_skew_s: int = 900
    #: The longest StartTime..EndTime of LookupEvents 2020-07-06 (the docs say 90 days, older ones 30).
    lookup_events_2020_max_span_days: int = 90
    usage_window_days: int = 400
    retention_days: int = 400
    #: The longest a request's store work may run (a lookup, a search page); past it the request is
    #: stopped and answered ServiceUnavailable / QueryTimeout. 0 switches the limit off.
    query_timeout_s: float = 10.0
    log_level: str = "info"
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        base = cls(
            db_url=os.environ.get("TRAILHOUSE_DB") or DEFAULT_DB,
            host=os.environ.get("TRAILHOUSE_HOST") or "127.0.0.1",
            port=_env_int("TRAILHOUSE_PORT", 8080),
            data_dir=os.environ.get("TRAILHOUSE_DATA_DIR") or None,
            master_key=os.environ.get("TRAILHOUSE_MASTER_KEY") or None,
            redis_url=os.environ.get("TRAILHOUSE_REDIS") or None,
            redis_prefix=os.environ.get("TRAILHOUSE_REDIS_PREFIX") or "trailhouse",
            max_body_bytes=_env_int("TRAILHOUSE_MAX_BODY_BYTES", 32 * 1024 * 1024),
            max_batch_events=_env_int("TRAILHOUSE_MAX_BATCH_EVENTS", 10_000),
            throttle_lookup_events=_env_float("TRAILHOUSE_THROTTLE_LOOKUP_EVENTS", 2.0),
            throttle_access_key_usage=_env_float("TRAILHOUSE_THROTTLE_ACCESS_KEY_USAGE", 50.0),
            timestamp_skew_s=_env_int("TRAILHOUSE_TIMESTAMP_SKEW_S", 900),
            lookup_events_2020_max_span_days=_env_int("TRAILHOUSE_LOOKUP_EVENTS_2020_MAX_SPAN_DAYS", 90),
            usage_window_days=_env_int("TRAILHOUSE_USAGE_WINDOW_DAYS", 400),
            retention_days=_env_int("TRAILHOUSE_RETENTION_DAYS", 400),
            query_timeout_s=_env_float("TRAILHOUSE_QUERY_TIMEOUT_S", 10.0),
            log_level=os.environ.get("TRAILHOUSE_LOG_LEVEL") or "info",
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **given)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """These settings as the environment ``from_env`` reads, for worker processes started by name."""
        pairs = {
            "TRAILHOUSE_DB": self.db_url,
            "TRAILHOUSE_HOST": self.host,
            "TRAILHOUSE_PORT": str(self.port),
            "TRAILHOUSE_DATA_DIR": str(self.resolved_data_dir()),
            "TRAILHOUSE_MASTER_KEY": self.master_key or "",
            "TRAILHOUSE_REDIS": self.redis_url or "",
            "TRAILHOUSE_REDIS_PREFIX": self.redis_prefix,
            "TRAILHOUSE_MAX_BODY_BYTES": str(self.max_body_bytes),
            "TRAILHOUSE_MAX_BATCH_EVENTS": str(self.max_batch_events),
            "TRAILHOUSE_THROTTLE_LOOKUP_EVENTS": str(self.throttle_lookup_events),
            "TRAILHOUSE_THROTTLE_ACCESS_KEY_USAGE": str(self.throttle_access_key_usage),
            "TRAILHOUSE_TIMESTAMP_SKEW_S": str(self.timestamp_skew_s),
            "TRAILHOUSE_LOOKUP_EVENTS_2020_MAX_SPAN_DAYS": str(self.lookup_events_2020_max_span_days),
            "TRAILHOUSE_USAGE_WINDOW_DAYS": str(self.usage_window_days),
            "TRAILHOUSE_RETENTION_DAYS": str(self.retention_days),
            "TRAILHOUSE_QUERY_TIMEOUT_S": str(self.query_timeout_s),
            "TRAILHOUSE_LOG_LEVEL": self.log_level,
        }
        return pairs

    def resolved_data_dir(self) -> Path:
        if self.data_dir:
            return Path(self.data_dir)
        path = sqlite_path_from_url(self.db_url)
        if path and path != ":memory:":
            return Path(path).resolve().parent
        return Path("trailhouse-data").resolve()

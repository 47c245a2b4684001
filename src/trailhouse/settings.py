"""Every setting in one place: defaults, then environment (TRAILHOUSE_*), then command-line flags."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = ["Settings", "SettingsError", "default_data_dir", "sqlite_path_from_url"]

DEFAULT_DB = "sqlite:///trailhouse.db"


def sqlite_path_from_url(url: str) -> str | None:
    """The file path of a ``sqlite:///path`` URL (``sqlite:////abs/path`` for absolute), else None."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///") or "trailhouse.db"
    if url.startswith("sqlite://"):
        return url.removeprefix("sqlite://")
    return None


class SettingsError(ValueError):
    """A setting holds a value it cannot take; the message names the setting and what it expects."""


#: The flag of ``trailhouse serve`` (or any command) that also sets a field, for error messages.
_FLAGS = {
    "db_url": "--db",
    "host": "--host",
    "port": "--port",
    "redis_url": "--redis",
    "throttle_lookup_events": "--throttle-lookup",
    "throttle_access_key_usage": "--throttle-usage",
    "retention_days": "--retention-days",
    "log_level": "--log-level",
    "tls_cert": "--tls-cert",
    "tls_key": "--tls-key",
}
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} is {raw!r}: expected a whole number") from None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} is {raw!r}: expected a number") from None


def default_data_dir() -> Path:
    """Where state of our own lives when nothing says otherwise: never the working directory,
    so a key created from one folder is the key a server started from another folder finds."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "trailhouse"


@dataclass(frozen=True, slots=True)
class Settings:
    db_url: str = DEFAULT_DB
    host: str = "127.0.0.1"
    port: int = 8080
    #: Where the generated master key lives: the SQLite file's folder, else $XDG_DATA_HOME/trailhouse
    #: (~/.local/share/trailhouse); never relative to the working directory.
    data_dir: str | None = None
    #: base64 of 32 bytes; when unset a key is generated once into data_dir/master.key (mode 0600).
    master_key: str | None = None
    redis_url: str | None = None
    #: Namespace of every Redis key, so several deployments can share one Redis.
    redis_prefix: str = "trailhouse"
    max_body_bytes: int = 32 * 1024 * 1024
    max_batch_events: int = 10_000
    #: The largest single event (its compact JSON); a larger one is refused on its own.
    max_event_bytes: int = 1024 * 1024
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
    #: A connection with no request in progress is closed after this many seconds.
    idle_timeout_s: float = 5.0
    #: A request whose head and body have not all arrived this long after its first byte gets 408.
    request_timeout_s: float = 30.0
    #: Past this many open connections new requests are answered 503; 0 = no cap.
    max_connections: int = 1000
    #: PEM files for HTTPS; both or neither.
    tls_cert: str | None = None
    tls_key: str | None = None
    log_level: str = "info"
    #: When set, GET /metrics wants ``Authorization: Bearer <this>``; unset, /metrics is open.
    metrics_token: str | None = None
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
            max_event_bytes=_env_int("TRAILHOUSE_MAX_EVENT_BYTES", 1024 * 1024),
            throttle_lookup_events=_env_float("TRAILHOUSE_THROTTLE_LOOKUP_EVENTS", 2.0),
            throttle_access_key_usage=_env_float("TRAILHOUSE_THROTTLE_ACCESS_KEY_USAGE", 50.0),
            timestamp_skew_s=_env_int("TRAILHOUSE_TIMESTAMP_SKEW_S", 900),
            lookup_events_2020_max_span_days=_env_int("TRAILHOUSE_LOOKUP_EVENTS_2020_MAX_SPAN_DAYS", 90),
            usage_window_days=_env_int("TRAILHOUSE_USAGE_WINDOW_DAYS", 400),
            retention_days=_env_int("TRAILHOUSE_RETENTION_DAYS", 400),
            query_timeout_s=_env_float("TRAILHOUSE_QUERY_TIMEOUT_S", 10.0),
            idle_timeout_s=_env_float("TRAILHOUSE_IDLE_TIMEOUT_S", 5.0),
            request_timeout_s=_env_float("TRAILHOUSE_REQUEST_TIMEOUT_S", 30.0),
            max_connections=_env_int("TRAILHOUSE_MAX_CONNECTIONS", 1000),
            tls_cert=os.environ.get("TRAILHOUSE_TLS_CERT") or None,
            tls_key=os.environ.get("TRAILHOUSE_TLS_KEY") or None,
            log_level=(os.environ.get("TRAILHOUSE_LOG_LEVEL") or "info").lower(),
            metrics_token=os.environ.get("TRAILHOUSE_METRICS_TOKEN") or None,
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        settings = replace(base, **given)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def _name(self, attr: str) -> str:
        env = "TRAILHOUSE_" + {"db_url": "DB", "redis_url": "REDIS"}.get(attr, attr).upper()
        flag = _FLAGS.get(attr)
        return f"{env} (or {flag})" if flag else env

    def validate(self) -> None:
        """Raise SettingsError for the first setting that cannot work, before anything starts."""

        def need(ok: bool, attr: str, expected: str) -> None:
            if not ok:
                value = getattr(self, attr)
                raise SettingsError(f"{self._name(attr)} is {value!r}: expected {expected}")

        need(
            self.db_url.startswith(("sqlite://", "postgresql://", "postgres://")),
            "db_url",
            "sqlite:///relative/path, sqlite:////absolute/path or postgresql://user@host:port/db",
        )
        need(bool(self.host), "host", "an address to listen on, e.g. 127.0.0.1 or 0.0.0.0")
        need(1 <= self.port <= 65535, "port", "a port number from 1 to 65535")
        if self.master_key is not None:
            try:
                raw = base64.b64decode(self.master_key, validate=True)
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                # The value is a secret: name the setting, never echo it.
                raise SettingsError(
                    "TRAILHOUSE_MASTER_KEY: expected base64 of 32 bytes (e.g. from `openssl rand -base64 32`)"
                )
        need(
            self.redis_url is None or self.redis_url.startswith(("redis://", "rediss://", "unix://")),
            "redis_url",
            "redis://host:port/db, rediss://… or unix:///path",
        )
        need(self.max_body_bytes >= 1, "max_body_bytes", "a size in bytes of at least 1")
        need(self.max_batch_events >= 1, "max_batch_events", "a count of at least 1")
        need(self.max_event_bytes >= 1, "max_event_bytes", "a size in bytes of at least 1")
        need(self.throttle_lookup_events >= 0, "throttle_lookup_events", "calls per second, 0 or more")
        need(self.throttle_access_key_usage >= 0, "throttle_access_key_usage", "calls per second, 0 or more")
        need(self.timestamp_skew_s >= 1, "timestamp_skew_s", "seconds, at least 1")
        need(
            self.lookup_events_2020_max_span_days >= 1, "lookup_events_2020_max_span_days", "days, at least 1"
        )
        need(self.usage_window_days >= 1, "usage_window_days", "days, at least 1")
        need(self.retention_days >= 1, "retention_days", "days, at least 1")
        need(self.query_timeout_s >= 0, "query_timeout_s", "seconds, 0 (no limit) or more")
        need(self.idle_timeout_s > 0, "idle_timeout_s", "seconds, more than 0")
        need(self.request_timeout_s > 0, "request_timeout_s", "seconds, more than 0")
        need(self.max_connections >= 0, "max_connections", "a count, 0 (no cap) or more")
        need(self.log_level.lower() in LOG_LEVELS, "log_level", "one of " + ", ".join(LOG_LEVELS))
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SettingsError(
                "TRAILHOUSE_TLS_CERT (or --tls-cert) and TRAILHOUSE_TLS_KEY (or --tls-key): "
                "expected both or neither"
            )
        for attr in ("tls_cert", "tls_key"):
            path = getattr(self, attr)
            need(path is None or Path(path).is_file(), attr, "a readable PEM file")

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
            "TRAILHOUSE_MAX_EVENT_BYTES": str(self.max_event_bytes),
            "TRAILHOUSE_THROTTLE_LOOKUP_EVENTS": str(self.throttle_lookup_events),
            "TRAILHOUSE_THROTTLE_ACCESS_KEY_USAGE": str(self.throttle_access_key_usage),
            "TRAILHOUSE_TIMESTAMP_SKEW_S": str(self.timestamp_skew_s),
            "TRAILHOUSE_LOOKUP_EVENTS_2020_MAX_SPAN_DAYS": str(self.lookup_events_2020_max_span_days),
            "TRAILHOUSE_USAGE_WINDOW_DAYS": str(self.usage_window_days),
            "TRAILHOUSE_RETENTION_DAYS": str(self.retention_days),
            "TRAILHOUSE_QUERY_TIMEOUT_S": str(self.query_timeout_s),
            "TRAILHOUSE_IDLE_TIMEOUT_S": str(self.idle_timeout_s),
            "TRAILHOUSE_REQUEST_TIMEOUT_S": str(self.request_timeout_s),
            "TRAILHOUSE_MAX_CONNECTIONS": str(self.max_connections),
            "TRAILHOUSE_TLS_CERT": self.tls_cert or "",
            "TRAILHOUSE_TLS_KEY": self.tls_key or "",
            "TRAILHOUSE_LOG_LEVEL": self.log_level,
            "TRAILHOUSE_METRICS_TOKEN": self.metrics_token or "",
        }
        return pairs

    def resolved_data_dir(self) -> Path:
        """TRAILHOUSE_DATA_DIR; else beside the SQLite file (the key travels with the data it opens);
        else the per-user data directory. A PostgreSQL deployment never depends on the working
        directory: ``keys create`` run from one folder and ``serve`` from another find one key."""
        if self.data_dir:
            return Path(self.data_dir).expanduser().resolve()
        path = sqlite_path_from_url(self.db_url)
        if path and path != ":memory:":
            return Path(path).expanduser().resolve().parent
        return default_data_dir()

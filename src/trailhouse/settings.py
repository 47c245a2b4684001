"""Every setting in one place: defaults, then environment (TRAILHOUSE_*), then command-line flags."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["SettingInfo", "Settings", "SettingsError", "default_data_dir", "sqlite_path_from_url"]

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


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
#: TRAILHOUSE_INGEST_WORKERS when not set (docs/benchmarks.md, "Decode in worker processes for
#: `serve`", "Write units"): the cores but one, at most this many.
INGEST_WORKERS_AUTO_MAX = 2
INGEST_WORKERS_MAX = 128


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def setting(
    default: Any,
    env: str,
    meaning: str,
    *,
    flag: str | None = None,
    shown: str | None = None,
    kind: type | None = None,
) -> Any:
    """A field of ``Settings`` with everything said about it once: the environment variable
    (``TRAILHOUSE_<env>``), the command-line flag that also sets it, what it means, and how its
    default reads to a person when ``repr`` would not say it well (docs/configuration.md is made
    from these). ``kind`` is the type of its values when the default (None) does not say it."""
    return field(
        default=default,
        metadata={"env": "TRAILHOUSE_" + env, "flag": flag, "meaning": meaning, "shown": shown, "kind": kind},
    )


@dataclass(frozen=True, slots=True)
class SettingInfo:
    """One row of the settings table."""

    attr: str
    env: str
    flag: str | None
    default: str
    meaning: str


#: How the environment's text becomes a value, by the type of the setting's default (None: text).
_PARSERS: dict[type, tuple[Any, str]] = {int: (int, "a whole number"), float: (float, "a number")}


def _env_value(f: Field[Any], raw: str) -> object:
    parse, expected = _PARSERS.get(f.metadata["kind"] or type(f.default), (str, "text"))
    try:
        return parse(raw)
    except ValueError:
        raise SettingsError(f"{f.metadata['env']} is {raw!r}: expected {expected}") from None


def _plain(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def default_data_dir() -> Path:
    """Where state of our own lives when nothing says otherwise: never the working directory,
    so a key created from one folder is the key a server started from another folder finds."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "trailhouse"


@dataclass(frozen=True, slots=True)
class Settings:
    db_url: str = setting(
        DEFAULT_DB,
        "DB",
        "`sqlite:///relative/path`, `sqlite:////absolute/path`, or `postgresql://user@host:port/db`",
        flag="--db",
    )
    host: str = setting("127.0.0.1", "HOST", "the address to listen on", flag="--host")
    port: int = setting(8080, "PORT", "the port to listen on", flag="--port")
    data_dir: str | None = setting(
        None,
        "DATA_DIR",
        "where the master key generated with the store is kept, and looked for (directory created 0700, "
        "key 0600)",
        shown="the SQLite file's folder, else `$XDG_DATA_HOME/trailhouse`, else "
        "`~/.local/share/trailhouse` (never the working directory)",
    )
    master_key: str | None = setting(
        None,
        "MASTER_KEY",
        "base64 of 32 bytes; seals AccessKey secrets at rest (AES-256-GCM). **Several nodes must share it**",
        shown="generated into `<data dir>/master.key` (mode 0600) by the command that creates the store; "
        "never beside an existing store",
    )
    redis_url: str | None = setting(
        None, "REDIS", "share nonces and throttling between nodes", flag="--redis", shown="none (in process)"
    )
    redis_prefix: str = setting(
        "trailhouse", "REDIS_PREFIX", "namespace of every Redis key, for several deployments on one Redis"
    )
    max_body_bytes: int = setting(
        32 * 1024 * 1024,
        "MAX_BODY_BYTES",
        "the largest ingest body, compressed and decompressed; past it: 413",
        shown="`33554432` (32 MiB)",
    )
    max_batch_events: int = setting(
        10_000, "MAX_BATCH_EVENTS", "events per `POST /api/v1/events`; past it: 413"
    )
    max_event_bytes: int = setting(
        1024 * 1024,
        "MAX_EVENT_BYTES",
        "the largest single event (its compact JSON); a larger one is refused on its own",
        shown="`1048576` (1 MiB)",
    )
    ingest_workers: int | None = setting(
        None,
        "INGEST_WORKERS",
        "processes (per server process) that gunzip, decode, validate and pack `POST /api/v1/events` "
        "batches while the server's process writes; `0` does it all in the server's process",
        flag="--ingest-workers",
        shown=f"for `serve`, the cores but one (with `serve --workers N`, each process's share of them but "
        f"one), at most {INGEST_WORKERS_AUTO_MAX}; `0` for an app embedded elsewhere (`trailhouse.testing`)",
        kind=int,
    )
    throttle_lookup_events: float = setting(
        2.0,
        "THROTTLE_LOOKUP_EVENTS",
        "LookupEvents calls per second per account; `0` switches it off",
        flag="--throttle-lookup",
    )
    throttle_access_key_usage: float = setting(
        50.0,
        "THROTTLE_ACCESS_KEY_USAGE",
        "GetAccessKeyLastUsed* calls per second per account and operation; `0` switches it off",
        flag="--throttle-usage",
    )
    timestamp_skew_s: int = setting(
        900,
        "TIMESTAMP_SKEW_S",
        "allowed difference in seconds between a request's Timestamp/x-acs-date and the server clock",
    )
    lookup_events_2020_max_span_days: int = setting(
        90,
        "LOOKUP_EVENTS_2020_MAX_SPAN_DAYS",
        "the longest StartTime..EndTime of LookupEvents 2020-07-06, in days (older docs said 30)",
    )
    usage_window_days: int = setting(
        400, "USAGE_WINDOW_DAYS", "how far back GetAccessKeyLastUsed* look, in days"
    )
    retention_days: int = setting(
        400,
        "RETENTION_DAYS",
        "days kept: older events are refused at ingest; the native search's default window; "
        "PostgreSQL drops partitions past it",
        flag="--retention-days",
    )
    console_session_s: int = setting(
        8 * 3600,
        "CONSOLE_SESSION_S",
        "how long a web console sign-in lasts, in seconds (then the console asks to sign in again)",
    )
    sqlite_cache_mib: int = setting(
        256,
        "SQLITE_CACHE_MIB",
        "SQLite's page cache for writing, in MiB (each reading thread gets up to 32 of its own); "
        "allocated as pages are used, so the process grows to about this much with the data and "
        "stays there. Less memory, slower ingest of large stores",
    )
    query_timeout_s: float = setting(
        10.0,
        "QUERY_TIMEOUT_S",
        "the longest a request's store work may run (a lookup, a search page, an ingest's write), "
        "in seconds; past it the request is stopped and answered 503 ServiceUnavailable / "
        "QueryTimeout. `0` switches it off. "
        "PostgreSQL applies it in whole tenths of a second, at least 0.1 s",
    )
    inline_read_ms: float = setting(
        5.0,
        "INLINE_READ_MS",
        "on SQLite, a read-only API call (LookupEvents, GetAccessKeyLastUsed*) is first tried on "
        "the server's event loop for up to this many milliseconds, and if it needs longer it is "
        "stopped and run again in a worker thread under the query time limit; most calls end well "
        "within it, without the hand-over to a thread (about half the server's CPU per lookup). "
        "Where the store or the limits wait on the network (PostgreSQL, Redis), any value above 0 "
        "lets requests be admitted, and such calls answered, on the event loop too, their "
        "statements and Redis scripts sent on asynchronous connections (for PostgreSQL a second "
        "pool of as many connections as the first) under the query time limit. "
        "`0` sends every call to a thread",
    )
    idle_timeout_s: float = setting(
        5.0,
        "IDLE_TIMEOUT_S",
        "a connection with no request in progress (new, or after a response) is closed after this "
        "many seconds",
    )
    request_timeout_s: float = setting(
        30.0,
        "REQUEST_TIMEOUT_S",
        "a request whose line, headers and body have not all arrived this many seconds after its "
        "first byte is answered 408 and closed",
    )
    max_connections: int = setting(
        1000,
        "MAX_CONNECTIONS",
        "past this many open connections new requests get 503 at once; `0` = no cap",
    )
    tls_cert: str | None = setting(
        None,
        "TLS_CERT",
        "PEM certificate (chain); with the key, `serve` speaks HTTPS",
        flag="--tls-cert",
        shown="none (HTTP)",
    )
    tls_key: str | None = setting(
        None, "TLS_KEY", "PEM private key of the certificate", flag="--tls-key", shown="none"
    )
    log_level: str = setting("info", "LOG_LEVEL", "one of " + ", ".join(LOG_LEVELS), flag="--log-level")
    metrics_token: str | None = setting(
        None,
        "METRICS_TOKEN",
        "when set, `GET /metrics` wants `Authorization: Bearer <this>`",
        shown="none (`/metrics` is open)",
    )
    log_key: str | None = setting(
        None,
        "LOG_KEY",
        "the Ed25519 key that signs the Merkle log's checkpoints, as a C2SP signer key "
        "(`PRIVATE+KEY+<name>+<id>+<key>`); see docs/integrity.md. **Several nodes must share it**",
        shown="generated once into `<data dir>/log.key` (mode 0600)",
    )
    log_sequencer: str = setting(
        "on",
        "LOG_SEQUENCER",
        "`on`: `serve` adds every event to its account's Merkle log and signs a checkpoint within a "
        "second; `off`: events wait, unlogged, until a node with it on runs (benchmarks)",
    )

    oss_dir: str | None = setting(
        None,
        "OSS_DIR",
        "trail delivery to OSS without an endpoint: a directory whose sub-directories are the buckets",
        shown="`<data dir>/oss`",
    )
    oss_endpoint: str | None = setting(
        None,
        "OSS_ENDPOINT",
        "an S3-compatible endpoint URL (Alibaba OSS's S3 API, MinIO, Ceph) for trail delivery; when "
        "set it replaces the directory. Credentials and region the usual boto3 way "
        "(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`, `~/.aws`)",
        shown="none (the directory)",
    )
    nats_url: str | None = setting(
        None,
        "NATS_URL",
        "NATS JetStream server(s) that trails with an `SlsProjectArn` deliver to, e.g. "
        "`nats://127.0.0.1:4222` (comma-separated for a cluster)",
        shown="none (stream delivery reports an error)",
    )
    delivery_window_s: float = setting(
        60.0,
        "DELIVERY_WINDOW_S",
        "a trail's OSS file holds the events that arrived in this many seconds (ActionTrail: 300)",
    )
    delivery_lease_s: float = setting(
        15.0,
        "DELIVERY_LEASE_S",
        "with several nodes one delivers each trail, under a lease renewed every third of this many "
        "seconds; when that node dies another takes the trail over after at most this long",
    )
    region: str = setting(
        "cn-hangzhou",
        "REGION",
        "the ActionTrail region this server speaks for: new trails' HomeRegion, where the five-trail "
        "limit counts, and what DescribeTrails shows without IncludeShadowTrails",
    )
    throttle_trails: float = setting(
        20.0,
        "THROTTLE_TRAILS",
        "trail operations (CreateTrail, DescribeTrails, …) per second per account and operation; "
        "`0` switches it off",
    )
    # -- Insights (docs/insights.md) --------------------------------------------------------------
    insights_detector: str = setting(
        "on",
        "INSIGHTS_DETECTOR",
        "`on`: `serve` runs the Insights detector in a worker process it supervises (one node at a "
        "time detects); `off`: not (run `trailhouse insights worker` elsewhere)",
    )
    insights_worker_nice: int = setting(
        10,
        "INSIGHTS_WORKER_NICE",
        "added to the Insights worker's CPU niceness (0–19): when the CPU is short, ingest comes "
        "first and detection waits",
    )
    insights_lease_s: float = setting(
        30.0,
        "INSIGHTS_LEASE_S",
        "with several nodes one detects, under a lease renewed a third of the way into its term; "
        "when its node dies another takes detection over after at most this long",
    )
    insights_checkpoint_s: float = setting(
        5.0,
        "INSIGHTS_CHECKPOINT_S",
        "while the log is busy the detector commits its place at most this often (at once with an "
        "insight or when the log goes quiet); a crash replays at most this much of the log",
    )
    insights_defer_s: float = setting(
        20.0,
        "INSIGHTS_DEFER_S",
        "while ingest is busy (1,000 events/s or more) the worker waits for a gap before detecting, "
        "at most this long after it fell behind, so that bursts of ingest do not share the CPU with "
        "it; 0 detects at once",
    )
    insight_types: str = setting(
        "IpInsight,ApiCallRateInsight,ApiErrorRateInsight,AkInsight,PolicyChangeInsight,"
        "PasswordChangeInsight,TrailConcealmentInsight",
        "INSIGHT_TYPES",
        "the Insights types this server offers (comma-separated); others are InsightTypeNotAvailable",
        shown="all seven",
    )
    insight_baseline_days: int = setting(
        14, "INSIGHT_BASELINE_DAYS", "days of stored history a baseline reads"
    )
    insight_ip_prefix_v4: int = setting(
        24,
        "INSIGHT_IP_PREFIX_V4",
        "IpInsight judges IPv4 sources by this network prefix (32: single addresses)",
    )
    insight_ip_min_history_calls: int = setting(
        50, "INSIGHT_IP_MIN_HISTORY_CALLS", "IpInsight: calls an AccessKey needs in its history to be judged"
    )
    insight_ip_max_recent_new: int = setting(
        1,
        "INSIGHT_IP_MAX_RECENT_NEW",
        "IpInsight: a key is judged only when at most this many networks were new to it in the recent days",
    )
    insight_ip_max_networks: int = setting(
        100, "INSIGHT_IP_MAX_NETWORKS", "IpInsight: a key that used more networks than this is not judged"
    )
    insight_ip_recent_days: int = setting(
        7, "INSIGHT_IP_RECENT_DAYS", "IpInsight: the recent days INSIGHT_IP_MAX_RECENT_NEW counts over"
    )
    insight_rate_min_per_minute: int = setting(
        30, "INSIGHT_RATE_MIN_PER_MINUTE", "ApiCallRateInsight: write calls of one API per minute, at least"
    )
    insight_rate_multiplier: float = setting(
        10.0, "INSIGHT_RATE_MULTIPLIER", "ApiCallRateInsight: and at least this many times the baseline"
    )
    insight_error_min_per_minute: int = setting(
        20,
        "INSIGHT_ERROR_MIN_PER_MINUTE",
        "ApiErrorRateInsight: failed calls of one API per minute, at least",
    )
    insight_error_multiplier: float = setting(
        10.0, "INSIGHT_ERROR_MULTIPLIER", "ApiErrorRateInsight: and at least this many times the baseline"
    )
    insight_ak_dormant_days: int = setting(
        30, "INSIGHT_AK_DORMANT_DAYS", "AkInsight: an AccessKey idle this many days that calls again"
    )
    insight_ak_min_per_minute: int = setting(
        120, "INSIGHT_AK_MIN_PER_MINUTE", "AkInsight: one AccessKey's calls per minute, at least"
    )
    insight_ak_multiplier: float = setting(
        10.0, "INSIGHT_AK_MULTIPLIER", "AkInsight: and at least this many times the key's baseline"
    )
    insight_change_history_days: int = setting(
        30,
        "INSIGHT_CHANGE_HISTORY_DAYS",
        "Policy/Password/TrailConcealment: raised when the caller made no such change in this many days",
    )
    insight_always_policies: str = setting(
        "AdministratorAccess",
        "INSIGHT_ALWAYS_POLICIES",
        "PolicyChangeInsight: attaching these policies (comma-separated) is always an insight",
    )
    insight_webhook_url: str | None = setting(
        None, "INSIGHT_WEBHOOK_URL", "POST every new insight record here (JSON)", shown="none"
    )
    insight_webhook_secret: str | None = setting(
        None,
        "INSIGHT_WEBHOOK_SECRET",
        "signs webhook bodies: `X-Trailhouse-Signature: sha256=<hex HMAC of the body>`",
        shown="none",
    )

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Defaults, then the environment, then ``overrides`` (flags; None means not given)."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = os.environ.get(f.metadata["env"])
            if raw in (None, ""):
                continue
            assert raw is not None
            values[f.name] = _env_value(f, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values.get("log_level"), str):
            values["log_level"] = str(values["log_level"]).lower()
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    @classmethod
    def table(cls) -> list[SettingInfo]:
        """Every setting, in declaration order, as docs/configuration.md shows it."""
        rows = []
        for f in fields(cls):
            shown = f.metadata["shown"] or ("none" if f.default is None else f"`{_plain(f.default)}`")
            rows.append(
                SettingInfo(f.name, f.metadata["env"], f.metadata["flag"], shown, f.metadata["meaning"])
            )
        return rows

    def _name(self, attr: str) -> str:
        meta = next(f.metadata for f in fields(self) if f.name == attr)
        return f"{meta['env']} (or {meta['flag']})" if meta["flag"] else meta["env"]

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
        need(
            self.ingest_workers is None or 0 <= self.ingest_workers <= INGEST_WORKERS_MAX,
            "ingest_workers",
            f"a count from 0 (decode in the server's process) to {INGEST_WORKERS_MAX}",
        )
        need(self.throttle_lookup_events >= 0, "throttle_lookup_events", "calls per second, 0 or more")
        need(self.throttle_access_key_usage >= 0, "throttle_access_key_usage", "calls per second, 0 or more")
        need(self.timestamp_skew_s >= 1, "timestamp_skew_s", "seconds, at least 1")
        need(
            self.lookup_events_2020_max_span_days >= 1, "lookup_events_2020_max_span_days", "days, at least 1"
        )
        need(self.usage_window_days >= 1, "usage_window_days", "days, at least 1")
        need(self.retention_days >= 1, "retention_days", "days, at least 1")
        need(self.sqlite_cache_mib >= 2, "sqlite_cache_mib", "MiB, at least 2")
        need(self.console_session_s >= 1, "console_session_s", "seconds, at least 1")
        need(self.query_timeout_s >= 0, "query_timeout_s", "seconds, 0 (no limit) or more")
        need(0 <= self.inline_read_ms <= 1000, "inline_read_ms", "milliseconds, 0 (never) to 1000")
        need(self.idle_timeout_s > 0, "idle_timeout_s", "seconds, more than 0")
        need(self.request_timeout_s > 0, "request_timeout_s", "seconds, more than 0")
        need(self.max_connections >= 0, "max_connections", "a count, 0 (no cap) or more")
        need(
            self.oss_endpoint is None or self.oss_endpoint.startswith(("http://", "https://")),
            "oss_endpoint",
            "an http:// or https:// URL",
        )
        need(
            self.nats_url is None
            or all(
                u.strip().startswith(("nats://", "tls://", "ws://", "wss://"))
                for u in self.nats_url.split(",")
            ),
            "nats_url",
            "nats://host:port (comma-separated for several)",
        )
        need(self.delivery_window_s > 0, "delivery_window_s", "seconds, more than 0")
        need(self.delivery_lease_s >= 1, "delivery_lease_s", "seconds, at least 1")
        need(self.insights_lease_s >= 2, "insights_lease_s", "seconds, at least 2")
        need(self.insights_checkpoint_s >= 0, "insights_checkpoint_s", "seconds, 0 or more")
        need(self.insights_defer_s >= 0, "insights_defer_s", "seconds, 0 or more")
        need(
            len(self.region) <= 32 and self.region.replace("-", "").isalnum() and self.region.islower(),
            "region",
            "a region id such as cn-hangzhou or ap-southeast-1",
        )
        need(self.throttle_trails >= 0, "throttle_trails", "calls per second, 0 or more")
        need(self.log_level.lower() in LOG_LEVELS, "log_level", "one of " + ", ".join(LOG_LEVELS))
        need(self.log_sequencer in ("on", "off"), "log_sequencer", "on or off")
        if self.log_key is not None and not self.log_key.startswith("PRIVATE+KEY+"):
            # The value is a secret: name the setting, never echo it.
            raise SettingsError(
                "TRAILHOUSE_LOG_KEY: expected a C2SP signer key, PRIVATE+KEY+<name>+<id>+<key>"
            )
        need(self.insights_detector in ("on", "off"), "insights_detector", "on or off")
        need(0 <= self.insights_worker_nice <= 19, "insights_worker_nice", "a niceness from 0 to 19")
        need(self.insight_baseline_days >= 1, "insight_baseline_days", "days, at least 1")
        need(0 < self.insight_ip_prefix_v4 <= 32, "insight_ip_prefix_v4", "a prefix length from 1 to 32")
        need(self.insight_ip_min_history_calls >= 0, "insight_ip_min_history_calls", "a count, 0 or more")
        need(self.insight_ip_max_recent_new >= 0, "insight_ip_max_recent_new", "a count, 0 or more")
        need(self.insight_ip_recent_days >= 1, "insight_ip_recent_days", "days, at least 1")
        need(self.insight_ip_max_networks >= 1, "insight_ip_max_networks", "a count, at least 1")
        for attr in (
            "insight_rate_min_per_minute",
            "insight_error_min_per_minute",
            "insight_ak_min_per_minute",
        ):
            need(getattr(self, attr) >= 1, attr, "calls per minute, at least 1")
        for attr in ("insight_rate_multiplier", "insight_error_multiplier", "insight_ak_multiplier"):
            need(getattr(self, attr) >= 1, attr, "a multiplier of at least 1")
        need(self.insight_ak_dormant_days >= 1, "insight_ak_dormant_days", "days, at least 1")
        need(self.insight_change_history_days >= 0, "insight_change_history_days", "days, 0 (always) or more")
        need(
            self.insight_webhook_url is None or self.insight_webhook_url.startswith(("http://", "https://")),
            "insight_webhook_url",
            "an http:// or https:// URL",
        )
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
        pairs = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "data_dir":
                value = self.resolved_data_dir()
            pairs[f.metadata["env"]] = "" if value is None else str(value)
        return pairs

    def resolved_oss_dir(self) -> Path:
        """TRAILHOUSE_OSS_DIR, else ``oss`` in the data directory: the directory of buckets."""
        if self.oss_dir:
            return Path(self.oss_dir).expanduser().resolve()
        return self.resolved_data_dir() / "oss"

    def resolved_ingest_workers(self, processes: int = 1) -> int:
        """TRAILHOUSE_INGEST_WORKERS, else what this host's cores make worth it for each of
        ``processes`` server processes (``serve --workers``): its share of the cores but its own,
        at most INGEST_WORKERS_AUTO_MAX."""
        if self.ingest_workers is not None:
            return self.ingest_workers
        return max(0, min(_cores() // max(1, processes) - 1, INGEST_WORKERS_AUTO_MAX))

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

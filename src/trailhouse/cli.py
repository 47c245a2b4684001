"""The ``trailhouse`` command: serve, ingest, credentials, demo data, search, reports, migrations."""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
import sys
import time
import zlib
from collections.abc import Iterator
from typing import Annotated, BinaryIO

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import package_version
from .model.credentials import KeyStatus, TokenScope
from .model.event import parse_body
from .model.times import format_wire_time, now_ms
from .service.credentials import CredentialError, create_access_key, create_token
from .service.ingest import (
    UTF8_BOM,
    IngestLimits,
    IngestReport,
    UnreadableInput,
    decode_ndjson,
    ingest_items,
)
from .service.secrets import MasterKeyError, Sealer, check_master_key, key_source, load_master_key
from .settings import Settings, SettingsError
from .storage import open_store
from .storage.base import EventStore, StoreError, StoreMissing

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
keys_app = typer.Typer(no_args_is_help=True, help="AccessKey pairs for the ActionTrail API.")
tokens_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for the native API (ingest, read).")
app.add_typer(keys_app, name="keys")
app.add_typer(tokens_app, name="tokens")
access_key_app = typer.Typer(no_args_is_help=True, help="Questions about one AccessKey.")
app.add_typer(access_key_app, name="access-key")

console = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="sqlite:///path or postgresql://…; default $TRAILHOUSE_DB or ./trailhouse.db"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


#: Exit codes besides 0: 1 a failure, 2 a bad setting or argument (as for click's usage errors),
#: 3 ingest rejected events, 4 nothing to report (an AccessKey with no events).
EXIT_FAILURE, EXIT_USAGE, EXIT_NOTHING = 1, 2, 4


def fail(message: str, code: int = EXIT_FAILURE) -> typer.Exit:
    # One line, whatever the terminal width, and the message's own brackets are not markup.
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def note(message: str) -> None:
    console.print(escape(message), soft_wrap=True, style="yellow")


def _version(value: bool) -> None:
    if value:
        out.print(f"trailhouse {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """The ``trailhouse`` command: serve, ingest, credentials, demo data, search, reports, migrations."""


def _settings(db: str | None, **overrides: object) -> Settings:
    try:
        return Settings.from_env(db_url=db, **overrides)
    except SettingsError as exc:
        raise fail(str(exc), EXIT_USAGE) from None


def _store(settings: Settings, *, create: bool = True) -> EventStore:
    """The store; ``create=False`` for commands that only read what is there."""
    try:
        return open_store(settings.db_url, retention_days=settings.retention_days, create=create)
    except StoreMissing:
        raise fail(
            f"no store at {_safe_url(settings.db_url)}: nothing has been ingested there; "
            "check --db or TRAILHOUSE_DB"
        ) from None
    except StoreError as exc:
        raise fail(str(exc)) from None


def _sealer(settings: Settings) -> Sealer:
    try:
        return Sealer(load_master_key(settings.master_key, settings.resolved_data_dir()))
    except MasterKeyError as exc:
        raise fail(str(exc)) from None


def _check_sealer(settings: Settings, sealer: Sealer, store: EventStore) -> None:
    """Refuse to start with a master key that cannot open the stored AccessKey secrets."""
    try:
        check_master_key(sealer, store)
    except MasterKeyError:
        source = key_source(settings.master_key, settings.resolved_data_dir())
        raise fail(
            f"the master key ({source}) cannot open the AccessKey secrets stored in "
            f"{_safe_url(settings.db_url)}: they were sealed with another key; point TRAILHOUSE_DATA_DIR "
            "at the directory holding the master.key they were created with, or set TRAILHOUSE_MASTER_KEY "
            "to that key"
        ) from None


# -- serve ---------------------------------------------------------------------------------------
@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
    redis: Annotated[
        str | None, typer.Option("--redis", help="Share nonces and throttling via Redis.")
    ] = None,
    throttle_lookup: Annotated[
        float | None, typer.Option(help="LookupEvents calls/s per account; 0 = off.")
    ] = None,
    throttle_usage: Annotated[
        float | None, typer.Option(help="GetAccessKeyLastUsed* calls/s per account; 0 = off.")
    ] = None,
    retention_days: Annotated[
        int | None, typer.Option(help="PostgreSQL: drop monthly partitions older than this (default 400).")
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Worker processes (each with its own store); above 1 needs --redis.")
    ] = 1,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error.")] = None,
    tls_cert: Annotated[
        str | None, typer.Option("--tls-cert", help="PEM certificate (chain) to serve HTTPS; with --tls-key.")
    ] = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")] = None,
) -> None:
    """Start the HTTP service: the ActionTrail API at / and the native API at /api/v1."""
    import logging

    import uvicorn

    from .api.app import create_app
    from .serving import endpoint, uvicorn_options

    settings = _settings(
        db,
        host=host,
        port=port,
        redis_url=redis,
        throttle_lookup_events=throttle_lookup,
        throttle_access_key_usage=throttle_usage,
        log_level=log_level,
        retention_days=retention_days,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    if workers < 1:
        raise fail(f"--workers={workers}: expected 1 or more", EXIT_USAGE)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    sealer = _sealer(settings)  # create or check the master key before the first request needs it
    options = uvicorn_options(settings)
    if workers > 1:
        # Nonces and throttling must be one across processes, and workers are started by name.
        if not settings.redis_url:
            raise fail("--workers above 1 needs --redis: nonces and throttling must be shared by the workers")
        import os

        store = _store(settings)
        try:
            _check_sealer(settings, sealer, store)
        finally:
            store.close()
        os.environ.update(settings.to_env())
        console.print(f"Trailhouse on [bold]{endpoint(settings)}[/] ({workers} workers)", soft_wrap=True)
        uvicorn.run("trailhouse.api.app:app_from_env", factory=True, workers=workers, **options)
        return
    try:
        application = create_app(settings)
    except StoreError as exc:
        raise fail(str(exc)) from None
    store = application.state.services.store
    try:
        _check_sealer(settings, sealer, store)
    except typer.Exit:
        store.close()
        raise
    console.print(
        f"Trailhouse on [bold]{endpoint(settings)}[/] (store {escape(_safe_url(store.url))})", soft_wrap=True
    )
    uvicorn.run(application, **options)


# -- ingest --------------------------------------------------------------------------------------
#: Warnings printed one per line before the rest are only counted.
MAX_WARNINGS_SHOWN = 50


def _open_input(name: str, stack: contextlib.ExitStack) -> BinaryIO:
    """The file (or stdin), transparently gunzipped when it starts with the gzip magic."""
    raw: BinaryIO = sys.stdin.buffer if name == "-" else stack.enter_context(open(name, "rb"))  # noqa: SIM115
    peek = getattr(raw, "peek", None)
    if peek is None:  # a stdin replaced by an in-memory buffer: no look-ahead, so buffer it whole
        raw = io.BytesIO(raw.read())
        head = raw.getvalue()[:2]
    else:
        head = peek(2)[:2]
    if head == b"\x1f\x8b":
        return stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))  # type: ignore[return-value]
    return raw


def _file_items(name: str, chunk: int) -> Iterator[list[tuple[int, object]]]:
    """Decoded events of one file, in chunks; NDJSON is streamed so that large files stay flat in memory."""
    with contextlib.ExitStack() as stack:
        yield from _decoded_chunks(_open_input(name, stack), chunk)


def _decoded_chunks(stream: BinaryIO, chunk: int) -> Iterator[list[tuple[int, object]]]:
    from .service.ingest import decode_events

    try:
        lines = iter(stream)
        skipped = 0
        first = b""
        for first in lines:
            if skipped == 0 and first.startswith(UTF8_BOM):
                first = first[len(UTF8_BOM) :]
            if first.strip():
                break
            skipped += 1
        head = first.lstrip()[:1]
        if not head:
            return
        if head == b"[" or (head == b"{" and _is_document(first)):
            items = decode_events(first + stream.read())
            for start in range(0, len(items), chunk):
                yield items[start : start + chunk]
            return
        batch: list[tuple[int, object]] = []
        for item in decode_ndjson(itertools.chain([first], lines), first_line=skipped + 1):
            batch.append(item)
            if len(batch) >= chunk:
                yield batch
                batch = []
        if batch:
            yield batch
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise UnreadableInput(f"corrupt gzip data: {exc}") from None


def _is_document(first_line: bytes) -> bool:
    """Whether a file whose first line starts with '{' is one JSON document rather than NDJSON."""
    try:
        parsed = orjson.loads(first_line)
    except orjson.JSONDecodeError:
        return True  # a pretty-printed object spans lines
    return isinstance(parsed, dict) and "events" in parsed and "eventId" not in parsed


@app.command()
def ingest(
    files: Annotated[
        list[str], typer.Argument(help='NDJSON, JSON array, {"events": [...]}, .gz, or - for stdin.')
    ],
    db: DbOption = None,
    batch: Annotated[int, typer.Option(help="Events per transaction.")] = 20000,
    json_out: JsonOption = False,
) -> None:
    """Load ActionTrail events from files (as delivered to object storage) into the store."""
    settings = _settings(db)
    store = _store(settings)
    total = IngestReport()
    limits = IngestLimits.of(settings)
    started = time.perf_counter()
    failed_files: list[str] = []
    warnings_shown = 0
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,} events"),
            TextColumn("{task.fields[rate]:,.0f} events/s"),
            TimeElapsedColumn(),
            console=console,
            disable=json_out or not console.is_terminal,
        ) as progress:
            task = progress.add_task("ingest", total=None, rate=0.0)
            for name in files:
                offset = 0
                progress.update(task, description=name)
                try:
                    for items in _file_items(name, batch):
                        report = ingest_items(store, items, may_write=lambda _account: True, limits=limits)
                        for r in report.rejected:
                            console.print(
                                f"[yellow]{name}[/]: event {r.index} ({r.event_id or '?'}): "
                                f"rejected: {escape(r.reason)}"
                            )
                        for w in report.warnings:
                            warnings_shown += 1
                            if warnings_shown <= MAX_WARNINGS_SHOWN:
                                console.print(
                                    f"[dim]{name}[/]: event {w.index} ({w.event_id}): "
                                    f"warning: {escape(w.warning)}"
                                )
                        total.add(report)
                        offset += len(items)
                        elapsed = time.perf_counter() - started
                        done = total.accepted + total.duplicates + len(total.rejected)
                        progress.update(task, completed=done, rate=done / elapsed if elapsed else 0.0)
                except (OSError, UnreadableInput) as exc:
                    failed_files.append(name)
                    console.print(f"[bold red]error:[/] cannot read {name}: {exc}")
                except StoreError as exc:
                    raise fail(f"the store failed while ingesting {name}: {exc}") from None
    finally:
        store.close()
    elapsed = time.perf_counter() - started
    done = total.accepted + total.duplicates + len(total.rejected)
    summary = {
        "accepted": total.accepted,
        "duplicates": total.duplicates,
        "rejected": len(total.rejected),
        "warnings": len(total.warnings),
        "events_with_warnings": total.warned_events,
        "files": len(files),
        "unreadable_files": failed_files,
        "seconds": round(elapsed, 3),
        "events_per_second": round(done / elapsed, 1) if elapsed else None,
    }
    if json_out:
        out.print(json.dumps(summary))
    else:
        if warnings_shown > MAX_WARNINGS_SHOWN:
            console.print(f"… and {warnings_shown - MAX_WARNINGS_SHOWN:,} more warnings")
        console.print(
            f"accepted {total.accepted:,}, duplicates {total.duplicates:,}, rejected {len(total.rejected):,} "
            f"({total.warned_events:,} stored with warnings) "
            f"in {elapsed:.2f}s ({summary['events_per_second'] or 0:,.0f} events/s)"
        )
    if failed_files:
        raise typer.Exit(2)
    if total.rejected:
        raise typer.Exit(3)


# -- keys ----------------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option("--account", help="The account the key belongs to.")],
    user: Annotated[str, typer.Option("--user", help="The RAM user name shown for the key.")] = "root",
    allow: Annotated[
        list[str] | None, typer.Option("--allow", help="Limit to an action, e.g. actiontrail:LookupEvents.")
    ] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create an AccessKey pair. The secret is shown once."""
    settings = _settings(db)
    store = _store(settings)
    try:
        created = create_access_key(
            store, _sealer(settings), account_id=account, user_name=user, allowed_actions=tuple(allow or ())
        )
    except CredentialError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    if json_out:
        out.print(
            json.dumps(
                {
                    "AccessKeyId": created.key.access_key_id,
                    "AccessKeySecret": created.secret,
                    "AccountId": created.key.account_id,
                }
            )
        )
    else:
        out.print(f"AccessKeyId:     {created.key.access_key_id}")
        out.print(f"AccessKeySecret: {created.secret}")
        out.print(f"AccountId:       {created.key.account_id}")
        console.print("[dim]The secret is not stored in clear and cannot be shown again.[/]")


@keys_app.command("list")
def keys_list(
    account: Annotated[str | None, typer.Option("--account")] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """List AccessKeys (never their secrets)."""
    store = _store(_settings(db), create=False)
    try:
        keys = store.list_all_access_keys() if account is None else store.list_access_keys(account_id=account)
    finally:
        store.close()
    rows = [
        {
            "AccessKeyId": k.access_key_id,
            "AccountId": k.account_id,
            "UserName": k.user_name,
            "Status": str(k.status),
            "AllowedActions": list(k.allowed_actions),
            "CreateTime": format_wire_time(k.created_ms),
        }
        for k in keys
    ]
    if json_out:
        out.print(json.dumps(rows))
        return
    table = Table("AccessKeyId", "AccountId", "UserName", "Status", "Allowed", "Created")
    for r in rows:
        table.add_row(
            r["AccessKeyId"],
            r["AccountId"],
            r["UserName"],
            r["Status"],
            ", ".join(r["AllowedActions"]) or "all",
            r["CreateTime"],
        )  # type: ignore[arg-type]
    out.print(table)


def _set_status(key_id: str, status: KeyStatus | None, db: str | None) -> None:
    store = _store(_settings(db), create=False)
    try:
        done = (
            store.delete_access_key(key_id) if status is None else store.set_access_key_status(key_id, status)
        )
    finally:
        store.close()
    if not done:
        raise fail(f"no AccessKey {key_id}")
    console.print(f"{key_id}: {'deleted' if status is None else status}")


@keys_app.command("disable")
def keys_disable(key_id: str, db: DbOption = None) -> None:
    """Disable a key: requests signed with it get InvalidAccessKeyId.Inactive."""
    _set_status(key_id, KeyStatus.INACTIVE, db)


@keys_app.command("enable")
def keys_enable(key_id: str, db: DbOption = None) -> None:
    """Enable a disabled key again."""
    _set_status(key_id, KeyStatus.ACTIVE, db)


@keys_app.command("delete")
def keys_delete(key_id: str, db: DbOption = None) -> None:
    """Delete a key for good."""
    _set_status(key_id, None, db)


# -- tokens --------------------------------------------------------------------------------------
@tokens_app.command("create")
def tokens_create(
    account: Annotated[
        list[str] | None, typer.Option("--account", help="An account the token may use.")
    ] = None,
    all_accounts: Annotated[bool, typer.Option("--all-accounts", help="Any account.")] = False,
    scope: Annotated[
        list[TokenScope] | None, typer.Option("--scope", help="ingest (default) and/or read.")
    ] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create a bearer token for the native API. The token is shown once."""
    store = _store(_settings(db))
    try:
        created = create_token(
            store,
            account_ids=tuple(account or ()),
            all_accounts=all_accounts,
            scopes=tuple(scope or (TokenScope.INGEST,)),
        )
    except CredentialError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    if json_out:
        out.print(json.dumps({"Token": created.secret, "TokenId": created.token.token_id}))
    else:
        out.print(f"Token:   {created.secret}")
        out.print(f"TokenId: {created.token.token_id}")
        console.print("[dim]Only a hash of the token is stored; it cannot be shown again.[/]")


@tokens_app.command("list")
def tokens_list(db: DbOption = None, json_out: JsonOption = False) -> None:
    """List tokens (never the token itself)."""
    store = _store(_settings(db), create=False)
    try:
        tokens = store.list_tokens()
    finally:
        store.close()
    rows = [
        {
            "TokenId": t.token_id,
            "Accounts": "*" if t.all_accounts else ",".join(t.account_ids),
            "Scopes": ",".join(t.scopes),
            "CreateTime": format_wire_time(t.created_ms),
        }
        for t in tokens
    ]
    if json_out:
        out.print(json.dumps(rows))
        return
    table = Table("TokenId", "Accounts", "Scopes", "Created")
    for r in rows:
        table.add_row(*r.values())
    out.print(table)


@tokens_app.command("delete")
def tokens_delete(token_id: str, db: DbOption = None) -> None:
    """Revoke a token."""
    store = _store(_settings(db), create=False)
    try:
        done = store.delete_token(token_id)
    finally:
        store.close()
    if not done:
        raise fail(f"no token {token_id}")
    console.print(f"{token_id}: deleted")


# -- demo ----------------------------------------------------------------------------------------
@app.command()
def demo(
    db: DbOption = None,
    count: Annotated[int, typer.Option(help="Background events besides the leaked-key story.")] = 5000,
    port: Annotated[int, typer.Option(help="The port the printed snippets use.")] = 8080,
    json_out: JsonOption = False,
) -> None:
    """Load the demo dataset (idempotent) and create an AccessKey to query it with."""
    from .service.demo import load_demo

    settings = _settings(db)
    store = _store(settings)
    try:
        loaded = load_demo(store, _sealer(settings), count=count, now=now_ms())
    finally:
        store.close()
    if json_out:
        out.print(json.dumps(loaded.to_dict()))
        return
    out.print(loaded.instructions(port))


# -- lookup --------------------------------------------------------------------------------------
def _cli_time(value: str | None, default: int, name: str) -> int:
    from .model.times import TimeFormatError, parse_event_time

    if not value:
        return default
    try:
        return parse_event_time(value)
    except TimeFormatError as exc:
        raise fail(f"{name}: {exc}") from None


@app.command()
def lookup(
    account: Annotated[str, typer.Option("--account", help="The account to search.")],
    where: Annotated[
        list[str] | None,
        typer.Argument(help="Filters: Key=Value (exact), Key.prefix=Value, SourceIpAddress=10.0.0.0/8."),
    ] = None,
    start: Annotated[str | None, typer.Option(help="ISO 8601; default: start of retention.")] = None,
    end: Annotated[str | None, typer.Option(help="ISO 8601; default: now.")] = None,
    failed: Annotated[
        bool | None, typer.Option("--failed/--succeeded", help="Only failed or successful calls.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many events (default: all).")] = None,
    oldest_first: Annotated[bool, typer.Option("--oldest-first", help="Ascending time order.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, ndjson, json or csv.")] = "table",
    db: DbOption = None,
) -> None:
    """Search events without the cloud API's limits: any filters, any window, no page limit."""
    from .model.times import DAY_MS
    from .service.search import FILTER_PARAMS, SearchParamError, build_search_filter

    if fmt not in ("table", "ndjson", "json", "csv"):
        raise fail("--format must be table, ndjson, json or csv")
    pairs = []
    for item in where or []:
        name, sep, value = item.partition("=")
        if not sep or name.partition(".")[0] not in FILTER_PARAMS:
            raise fail(f"{item!r} is not a filter; known keys: {', '.join(FILTER_PARAMS)}")
        pairs.append((name, value))
    settings = _settings(db)
    store = _store(settings, create=False)
    try:
        now = now_ms()
        oldest_kept = now - settings.retention_days * DAY_MS
        start_ms = _cli_time(start, oldest_kept, "--start")
        end_ms = _cli_time(end, now, "--end")
        try:
            flt, _ = build_search_filter(
                store, account_id=account, pairs=pairs, failed=failed, start_ms=start_ms, end_ms=end_ms
            )
        except SearchParamError as exc:
            raise fail(str(exc)) from None
        events = store.iter_events(account_id=account, flt=flt, descending=not oldest_first)
        if limit is not None:
            events = itertools.islice(events, limit)
        shown = _print_events(events, fmt)
        if not shown:
            # The rows stay on stdout (empty); why there are none goes to stderr.
            if not _account_has_events(store, account):
                note(f"account {account} has no events in {_safe_url(store.url)}")
            elif end_ms < oldest_kept:
                note(
                    f"the window ends before the retention of {settings.retention_days} days "
                    "(TRAILHOUSE_RETENTION_DAYS): events that old are not kept"
                )
            else:
                note("no events match")
    finally:
        store.close()


def _account_has_events(store: EventStore, account: str) -> bool:
    from .model.query import EventFilter

    return bool(
        store.find_events(account_id=account, flt=EventFilter(0, 2**62), after=None, descending=True, limit=1)
    )


def _print_events(events: Iterator[object], fmt: str) -> int:
    """Print the events in ``fmt``; return how many there were."""
    import csv

    from .service.search import CSV_COLUMNS, csv_row

    stream = sys.stdout
    shown = 0
    if fmt == "ndjson":
        for e in events:
            stream.write(e.body.decode() + "\n")  # type: ignore[attr-defined]
            shown += 1
        return shown
    if fmt == "json":
        bodies = [e.body.decode() for e in events]  # type: ignore[attr-defined]
        stream.write("[" + ",".join(bodies) + "]\n")
        return len(bodies)
    if fmt == "csv":
        writer = csv.writer(stream)
        writer.writerow(CSV_COLUMNS)
        for e in events:
            writer.writerow(csv_row(parse_body(e.body)))  # type: ignore[attr-defined]
            shown += 1
        return shown
    table = Table("eventTime", "eventName", "serviceName", "user", "sourceIp", "accessKeyId", "error")
    for e in events:
        ev = parse_body(e.body)  # type: ignore[attr-defined]
        who = ev.get("userIdentity") or {}
        table.add_row(
            ev.get("eventTime", ""),
            ev.get("eventName", ""),
            ev.get("serviceName", ""),
            str(who.get("userName", "")),
            ev.get("sourceIpAddress", ""),
            str(who.get("accessKeyId", "")),
            ev.get("errorCode", "") or "",
        )
        shown += 1
    out.print(table)
    console.print(f"{shown:,} events")
    return shown


# -- access-key report ---------------------------------------------------------------------------
@access_key_app.command("report")
def access_key_report(
    key: Annotated[str, typer.Argument(help="The AccessKey id.")],
    account: Annotated[str, typer.Option("--account", help="The account the key belongs to.")],
    since: Annotated[str | None, typer.Option(help="ISO 8601; default: the usage window (400 days).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or html.")] = "table",
    db: DbOption = None,
) -> None:
    """The leaked-key report: IPs, services, resources, failed calls and dangerous actions, as a timeline."""
    from .model.times import DAY_MS
    from .service.access_keys import build_report
    from .service.report_render import report_to_html, report_to_json, report_to_table

    if fmt not in ("table", "json", "html"):
        raise fail("--format must be table, json or html")
    settings = _settings(db)
    store = _store(settings, create=False)
    try:
        now = now_ms()
        since_ms = _cli_time(since, now - settings.usage_window_days * DAY_MS, "--since")
        report = build_report(store, account_id=account, access_key_id=key, since_ms=since_ms, now_ms=now)
        account_known = report.used or _account_has_events(store, account)
    finally:
        store.close()
    if not report.used:
        # A report of nothing would read as "the key was never used", which the store cannot
        # tell from a mistyped key or account: say what is known and exit non-zero.
        if not account_known:
            why = f"account {account} has no events in {_safe_url(settings.db_url)}"
        else:
            why = f"AccessKey {key} made no calls in account {account} since {format_wire_time(since_ms)}"
        if fmt == "json":
            sys.stdout.write(json.dumps(report_to_json(report), ensure_ascii=False, indent=2) + "\n")
        raise fail(f"{why}; check the key id, --account and --since", EXIT_NOTHING)
    if fmt == "json":
        sys.stdout.write(json.dumps(report_to_json(report), ensure_ascii=False, indent=2) + "\n")
    elif fmt == "html":
        sys.stdout.write(report_to_html(report))
    else:
        report_to_table(report, out)


# -- migrate / copy ------------------------------------------------------------------------------
def _safe_url(url: str) -> str:
    """A database URL without its password, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


@app.command()
def migrate(db: DbOption = None) -> None:
    """Apply pending schema migrations and the data repairs that come with them.

    The service also applies them at start-up. A repair says what it changed, e.g. the events an
    old SQLite store held twice (same account and eventId in two UTC days), of which it keeps the
    first arrival.
    """
    store = _store(_settings(db))
    repairs = list(store.repairs)
    store.close()
    for line in repairs:
        console.print(f"repaired: {line}")
    console.print(f"schema up to date: {_safe_url(store.url)}")


@app.command()
def maintain(
    db: DbOption = None,
    retention_days: Annotated[
        int | None, typer.Option(help="Default 400 ($TRAILHOUSE_RETENTION_DAYS).")
    ] = None,
) -> None:
    """Housekeeping the service also runs hourly: partitions ahead, drop those past retention, statistics."""
    settings = _settings(db, retention_days=retention_days)
    store = _store(settings, create=False)
    try:
        done = store.maintain(now_ms=now_ms())
    except StoreError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    for line in done:
        console.print(line)


@app.command()
def copy(
    source: Annotated[
        str, typer.Option("--from", help="The store to copy from, e.g. sqlite:///trailhouse.db.")
    ],
    target: Annotated[str, typer.Option("--to", help="The store to copy into, e.g. postgresql://…")],
    batch: Annotated[int, typer.Option(help="Events per transaction.")] = 20000,
) -> None:
    """Copy every event, AccessKey and token from one store to another; re-running copies nothing twice."""
    from .storage.copy import copy_store

    src = _store(_settings(source), create=False)
    try:
        dst = _store(_settings(target))
    except typer.Exit:
        src.close()
        raise
    try:
        with Progress(
            TextColumn("copy"),
            BarColumn(),
            TextColumn("{task.completed:,} events"),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        ) as progress:
            task = progress.add_task("copy", total=None)
            result = copy_store(src, dst, batch=batch, progress=lambda n: progress.update(task, completed=n))
    except StoreError as exc:
        raise fail(f"copy failed (re-run to resume): {exc}") from None
    finally:
        src.close()
        dst.close()
    console.print(
        f"copied {result.copied:,} events ({result.duplicates:,} already there); "
        f"source holds {result.source_count:,}, target holds {result.target_count:,}"
    )
    if result.target_count < result.source_count:
        raise fail("the target holds fewer events than the source")


def main() -> None:
    app(prog_name="trailhouse")


if __name__ == "__main__":
    main()

"""``trailhouse serve``: the HTTP service in this process, or in several worker processes."""

from __future__ import annotations

import dataclasses
import sys
from typing import Annotated

import typer
from rich.markup import escape

from ..service.credentials import CredentialError
from ..storage.base import StoreError
from .common import (
    EXIT_USAGE,
    DbOption,
    check_log_key,
    check_sealer,
    console,
    fail,
    load_settings,
    open_or_fail,
    out,
    safe_url,
    sealer_or_fail,
)

__all__ = ["serve"]


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
    ingest_workers: Annotated[
        int | None,
        typer.Option(
            "--ingest-workers",
            help="Processes (per worker process) that decode and validate POST /api/v1/events "
            "batches while the server writes; 0 does it in the server's process.",
            show_default="the cores but one (with --workers, each process's share but one), at most 2",
        ),
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error.")] = None,
    tls_cert: Annotated[
        str | None, typer.Option("--tls-cert", help="PEM certificate (chain) to serve HTTPS; with --tls-key.")
    ] = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")] = None,
    dev: Annotated[
        bool,
        typer.Option(
            "--dev",
            help="For development and tests: a throwaway store unless --db, throttling off, and an "
            "AccessKey pair, a token and an SDK snippet printed at start.",
        ),
    ] = False,
    account: Annotated[
        str | None, typer.Option("--account", help="With --dev: the account of the printed credentials.")
    ] = None,
) -> None:
    """Start the HTTP service: the ActionTrail API at / and the native API at /api/v1."""
    if account is not None and not dev:
        raise fail("--account is for --dev: it names the account of the printed credentials", EXIT_USAGE)
    if not dev:
        _serve(
            db,
            host,
            port,
            redis,
            throttle_lookup,
            throttle_usage,
            retention_days,
            workers,
            log_level,
            tls_cert,
            tls_key,
            ingest_workers=ingest_workers,
        )
        return
    if workers != 1:
        raise fail("--dev runs one process: leave out --workers", EXIT_USAGE)
    import signal
    import tempfile

    # uvicorn re-raises the signal that stopped it once it has shut down; as an exception here
    # (SIGINT is one already), it leaves through the ``with`` and the throwaway folder is removed.
    signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        with tempfile.TemporaryDirectory(prefix="trailhouse-dev-") as folder:
            # The master key goes with a throwaway store; a given --db keeps the usual one (its keys need it).
            _serve(
                db or f"sqlite:///{folder}/trail.db",
                host,
                port,
                redis,
                0.0 if throttle_lookup is None else throttle_lookup,
                0.0 if throttle_usage is None else throttle_usage,
                retention_days,
                1,
                log_level,
                tls_cert,
                tls_key,
                ingest_workers=ingest_workers,
                dev_account=account or "",
                data_dir=None if db else f"{folder}/data",
            )
    except KeyboardInterrupt:
        pass


def _exit_quietly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _serve(
    db: str | None,
    host: str | None,
    port: int | None,
    redis: str | None,
    throttle_lookup: float | None,
    throttle_usage: float | None,
    retention_days: int | None,
    workers: int,
    log_level: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    *,
    ingest_workers: int | None = None,
    dev_account: str | None = None,
    data_dir: str | None = None,
) -> None:
    import logging

    import uvicorn

    from ..api.app import create_app
    from ..serving import endpoint, uvicorn_options

    settings = load_settings(
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
        data_dir=data_dir,
        ingest_workers=ingest_workers,
    )
    if workers < 1:
        raise fail(f"--workers={workers}: expected 1 or more", EXIT_USAGE)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    options = uvicorn_options(settings)
    if workers > 1:
        # Nonces and throttling must be one across processes, and workers are started by name.
        if not settings.redis_url:
            raise fail("--workers above 1 needs --redis: nonces and throttling must be shared by the workers")
        import os

        # A new store gets its master key here, before the workers start and need it.
        store = open_or_fail(settings)
        try:
            check_sealer(settings, sealer_or_fail(settings), store)
            check_log_key(settings, store)
        finally:
            store.close()
        from ..api.app import insights_worker_for

        # Each process starts its own decode pool: the default is each one's share of the cores.
        settings = dataclasses.replace(settings, ingest_workers=settings.resolved_ingest_workers(workers))
        os.environ.update(settings.to_env())
        # One Insights worker for the node, supervised by this process, not one per HTTP worker.
        insights = insights_worker_for(settings)
        os.environ["TRAILHOUSE_INSIGHTS_DETECTOR"] = "off"
        console.print(f"Trailhouse on [bold]{endpoint(settings)}[/] ({workers} workers)", soft_wrap=True)
        if insights is not None:
            insights.start()
        try:
            uvicorn.run("trailhouse.api.app:app_from_env", factory=True, workers=workers, **options)
        finally:
            if insights is not None:
                insights.stop()
        return
    # Opened here, not by create_app: a new store gets its master key with it (open_or_fail), and
    # an existing one without its key is refused before the app would need the key.
    store = open_or_fail(settings)
    try:
        sealer = sealer_or_fail(settings)
        check_sealer(settings, sealer, store)
        check_log_key(settings, store)
        # The host's default decode pool is the server's to choose; an app built elsewhere (tests,
        # trailhouse.testing) forks none unless TRAILHOUSE_INGEST_WORKERS asks.
        settings = dataclasses.replace(settings, ingest_workers=settings.resolved_ingest_workers())
        application = create_app(settings, store, close_store=True)
    except StoreError as exc:
        store.close()
        raise fail(str(exc)) from None
    except typer.Exit:
        store.close()
        raise
    if dev_account is not None:
        from .dev import dev_credentials

        try:
            created = dev_credentials(store, sealer, dev_account or None)
        except (CredentialError, StoreError) as exc:
            store.close()
            raise fail(str(exc)) from None
        # The credentials are what this command answers (stdout); the rest are messages (stderr).
        out.print(escape(created.banner(endpoint(settings))), soft_wrap=True)
    console.print(
        f"Trailhouse on [bold]{endpoint(settings)}[/] (store {escape(safe_url(store.url))})", soft_wrap=True
    )
    uvicorn.run(application, **options)

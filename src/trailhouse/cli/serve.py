"""``trailhouse serve``: the HTTP service in this process, or in several worker processes."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape

from ..storage.base import StoreError
from .common import (
    EXIT_USAGE,
    DbOption,
    check_sealer,
    console,
    fail,
    load_settings,
    open_or_fail,
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
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error.")] = None,
    tls_cert: Annotated[
        str | None, typer.Option("--tls-cert", help="PEM certificate (chain) to serve HTTPS; with --tls-key.")
    ] = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")] = None,
) -> None:
    """Start the HTTP service: the ActionTrail API at / and the native API at /api/v1."""
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
    )
    if workers < 1:
        raise fail(f"--workers={workers}: expected 1 or more", EXIT_USAGE)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    sealer = sealer_or_fail(settings)  # create or check the master key before the first request needs it
    options = uvicorn_options(settings)
    if workers > 1:
        # Nonces and throttling must be one across processes, and workers are started by name.
        if not settings.redis_url:
            raise fail("--workers above 1 needs --redis: nonces and throttling must be shared by the workers")
        import os

        store = open_or_fail(settings)
        try:
            check_sealer(settings, sealer, store)
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
        check_sealer(settings, sealer, store)
    except typer.Exit:
        store.close()
        raise
    console.print(
        f"Trailhouse on [bold]{endpoint(settings)}[/] (store {escape(safe_url(store.url))})", soft_wrap=True
    )
    uvicorn.run(application, **options)

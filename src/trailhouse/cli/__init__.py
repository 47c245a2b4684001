"""The ``trailhouse`` command: serve, ingest, credentials, demo data, search, reports, migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import package_version
from .common import out
from .credentials import (
    keys_create,
    keys_delete,
    keys_disable,
    keys_enable,
    keys_list,
    tokens_create,
    tokens_delete,
    tokens_list,
)
from .demo import demo
from .ingest import ingest
from .insights import (
    insights_detect,
    insights_disable,
    insights_enable,
    insights_list,
    insights_show,
    insights_types,
)
from .lookup import lookup
from .report import access_key_report
from .serve import serve
from .stores import copy, maintain, migrate

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
keys_app = typer.Typer(no_args_is_help=True, help="AccessKey pairs for the ActionTrail API.")
tokens_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for the native API (ingest, read).")
app.add_typer(keys_app, name="keys")
app.add_typer(tokens_app, name="tokens")
access_key_app = typer.Typer(no_args_is_help=True, help="Questions about one AccessKey.")
app.add_typer(access_key_app, name="access-key")
insights_app = typer.Typer(no_args_is_help=True, help="Insights: anomalies found as events arrive.")
app.add_typer(insights_app, name="insights")


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


# The whole command tree in one place; the listing order in --help is this registration order.
app.command()(serve)
app.command()(ingest)
keys_app.command("create")(keys_create)
keys_app.command("list")(keys_list)
keys_app.command("disable")(keys_disable)
keys_app.command("enable")(keys_enable)
keys_app.command("delete")(keys_delete)
tokens_app.command("create")(tokens_create)
tokens_app.command("list")(tokens_list)
tokens_app.command("delete")(tokens_delete)
app.command()(demo)
app.command()(lookup)
access_key_app.command("report")(access_key_report)
app.command()(migrate)
app.command()(maintain)
app.command()(copy)
insights_app.command("list")(insights_list)
insights_app.command("show")(insights_show)
insights_app.command("enable")(insights_enable)
insights_app.command("disable")(insights_disable)
insights_app.command("types")(insights_types)
insights_app.command("detect")(insights_detect)


def main() -> None:
    app(prog_name="trailhouse")

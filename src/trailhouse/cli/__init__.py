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
from .insights_worker import insights_status, insights_worker
from .log import log_checkpoint, log_consistency, log_export, log_proof, log_public_key
from .lookup import lookup
from .org import org_add_member, org_delete, org_list, org_remove_member
from .report import access_key_report
from .serve import serve
from .stores import copy, maintain, migrate
from .trails import trails_list
from .trails_status import trails_deliver, trails_status
from .verify import verify

__all__ = ["app", "main"]

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
keys_app = typer.Typer(no_args_is_help=True, help="AccessKey pairs for the ActionTrail API.")
tokens_app = typer.Typer(no_args_is_help=True, help="Bearer tokens for the native API (ingest, read).")
app.add_typer(keys_app, name="keys")
app.add_typer(tokens_app, name="tokens")
access_key_app = typer.Typer(no_args_is_help=True, help="Questions about one AccessKey.")
app.add_typer(access_key_app, name="access-key")
log_app = typer.Typer(no_args_is_help=True, help="The Merkle log: checkpoints, proofs, its key.")
app.add_typer(log_app, name="log")
trails_app = typer.Typer(no_args_is_help=True, help="Trails: where their delivery stands, delivering now.")
app.add_typer(trails_app, name="trails")
org_app = typer.Typer(
    no_args_is_help=True,
    help="Organizations: a management account whose organization trails cover its members.",
)
app.add_typer(org_app, name="org")
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
log_app.command("checkpoint")(log_checkpoint)
log_app.command("proof")(log_proof)
log_app.command("consistency")(log_consistency)
log_app.command("export")(log_export)
log_app.command("public-key")(log_public_key)
app.command()(verify)
trails_app.command("list")(trails_list)
trails_app.command("status")(trails_status)
trails_app.command("deliver")(trails_deliver)
org_app.command("add-member")(org_add_member)
org_app.command("remove-member")(org_remove_member)
org_app.command("list")(org_list)
org_app.command("delete")(org_delete)
insights_app.command("list")(insights_list)
insights_app.command("show")(insights_show)
insights_app.command("enable")(insights_enable)
insights_app.command("disable")(insights_disable)
insights_app.command("types")(insights_types)
insights_app.command("detect")(insights_detect)
insights_app.command("worker")(insights_worker)
insights_app.command("status")(insights_status)


def main() -> None:
    app(prog_name="trailhouse")

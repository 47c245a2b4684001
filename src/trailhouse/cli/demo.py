"""``trailhouse demo``: the demo dataset and an AccessKey to query it with."""

from __future__ import annotations

from typing import Annotated

import typer

from ..model.times import now_ms
from .common import DbOption, JsonOption, load_settings, opened, out, sealer_or_fail, write_json

__all__ = ["demo"]


def demo(
    db: DbOption = None,
    count: Annotated[int, typer.Option(help="Background events besides the leaked-key story.")] = 5000,
    port: Annotated[int, typer.Option(help="The port the printed snippets use.")] = 8080,
    json_out: JsonOption = False,
) -> None:
    """Load the demo dataset (idempotent) and create an AccessKey to query it with."""
    from ..demo.load import load_demo

    settings = load_settings(db)
    with opened(settings) as store:
        loaded = load_demo(store, sealer_or_fail(settings), count=count, now=now_ms())
    if json_out:
        # The CLI's JSON keys are camelCase (docs/cli.md, "Output").
        write_json(
            {
                "accepted": loaded.accepted,
                "duplicates": loaded.duplicates,
                "accountId": loaded.account_id,
                "accessKeyId": loaded.access_key_id,
                "accessKeySecret": loaded.access_key_secret,
                "readToken": loaded.read_token,
                "leakedAccessKeyId": loaded.leaked_key,
                "attackerIps": list(loaded.attacker_ips),
            }
        )
        return
    out.print(loaded.instructions(port))

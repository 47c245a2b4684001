"""``trailhouse demo``: the demo dataset and an AccessKey to query it with."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ..model.times import now_ms
from .common import DbOption, JsonOption, load_settings, opened, out, sealer_or_fail

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
        out.print(json.dumps(loaded.to_dict()))
        return
    out.print(loaded.instructions(port))

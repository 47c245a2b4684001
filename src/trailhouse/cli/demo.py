"""``trailhouse demo``: the demo dataset and an AccessKey to query it with."""

from __future__ import annotations

from typing import Annotated

import typer

from ..model.times import now_ms
from .common import DbOption, JsonOption, fail, load_settings, opened, out, sealer_or_fail, write_json

__all__ = ["demo"]


def demo(
    db: DbOption = None,
    count: Annotated[int, typer.Option(help="Background events besides the leaked-key story.")] = 5000,
    port: Annotated[int, typer.Option(help="The port the printed snippets use.")] = 8080,
    json_out: JsonOption = False,
) -> None:
    """Load the demo dataset (idempotent) and create an AccessKey to query it with."""
    from ..delivery.object_storage import DirectoryStorage, ObjectStorageError, open_object_storage
    from ..demo.load import load_demo
    from ..service.insights.config import thresholds_from

    settings = load_settings(db)
    with opened(settings) as store:
        sealer = sealer_or_fail(settings)  # a store without its key is refused before anything is made
        # The demo trail delivers into a bucket of the directory of buckets (or the S3 endpoint).
        objects = open_object_storage(settings)
        bucket = "trailhouse-demo"
        try:
            objects.create_bucket(bucket)
        except ObjectStorageError as exc:
            raise fail(
                f"cannot create the demo trail's bucket {bucket!r} in {objects.location}: {exc}"
            ) from None
        files = f"{objects.location}/{bucket}" if isinstance(objects, DirectoryStorage) else f"s3://{bucket}"
        loaded = load_demo(
            store,
            sealer,
            count=count,
            now=now_ms(),
            trail_bucket=bucket,
            trail_files=files,
            insights=thresholds_from(settings),
        )
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
                "insights": loaded.insights,
            }
        )
        return
    out.print(loaded.instructions(port))

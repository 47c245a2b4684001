"""``trailhouse ingest``: events from files (NDJSON, a JSON array, ``{"events": [...]}``, gzipped or not)."""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ..service.ingest import (
    IngestLimits,
    IngestReport,
    UnreadableInput,
    decode_events,
    decode_ndjson,
    delivered_order,
    ingest_items,
    is_event_file,
    is_ndjson_start,
    without_bom,
)
from ..storage.base import StoreError
from .common import DbOption, JsonOption, console, fail, load_settings, open_or_fail, write_json

__all__ = ["ingest"]

#: Warnings printed one per line before the rest are only counted.
MAX_WARNINGS_SHOWN = 50


def _open_input(name: str, stack: contextlib.ExitStack) -> BinaryIO | gzip.GzipFile:
    """The file (or stdin), transparently gunzipped when it starts with the gzip magic."""
    raw: BinaryIO = sys.stdin.buffer if name == "-" else stack.enter_context(open(name, "rb"))  # noqa: SIM115
    peek = getattr(raw, "peek", None)
    if peek is None:  # a stdin replaced by an in-memory buffer: no look-ahead, so buffer it whole
        raw = io.BytesIO(raw.read())
        head = raw.getvalue()[:2]
    else:
        head = peek(2)[:2]
    if head == b"\x1f\x8b":
        return stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
    return raw


def _file_items(name: str, chunk: int, objects: Any = None) -> Iterator[list[tuple[int, object]]]:
    """Decoded events of one file, in chunks; NDJSON is streamed so that large files stay flat in memory."""
    with contextlib.ExitStack() as stack:
        if name.startswith("s3://"):
            bucket, _, key = name.removeprefix("s3://").partition("/")
            data = objects.get(bucket, key)
            raw: BinaryIO | gzip.GzipFile = io.BufferedReader(io.BytesIO(data))
            if data[:2] == b"\x1f\x8b":
                raw = stack.enter_context(gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb"))
            yield from _decoded_chunks(raw, chunk)
            return
        yield from _decoded_chunks(_open_input(name, stack), chunk)


def _expand(names: list[str], settings: Any) -> tuple[list[str], Any]:
    """Directories become their event files and ``s3://bucket/prefix`` the objects under it, each
    tree in the order its files were delivered (service/ingest.py says which files and which order)."""
    expanded: list[str] = []
    objects = None
    for name in names:
        if name.startswith("s3://"):
            if not settings.oss_endpoint:
                raise fail(
                    f"{name}: set TRAILHOUSE_OSS_ENDPOINT to the S3-compatible endpoint to read it from"
                )
            from ..delivery.object_storage import ObjectStorageError, S3Storage

            objects = objects or S3Storage(settings.oss_endpoint)
            bucket, _, prefix = name.removeprefix("s3://").partition("/")
            try:
                keys = [k for k in objects.list(bucket, prefix) if is_event_file(k)]
            except ObjectStorageError as exc:
                raise fail(f"cannot list {name}: {exc}") from None
            expanded.extend(f"s3://{bucket}/{k}" for k in delivered_order(keys))
        elif name != "-" and Path(name).is_dir():
            root = Path(name)
            found = [
                p.as_posix()
                for p in root.rglob("*")
                if p.is_file() and is_event_file(p.relative_to(root).as_posix())
            ]
            expanded.extend(delivered_order(found))
        else:
            expanded.append(name)
    return expanded, objects


def _decoded_chunks(stream: BinaryIO | gzip.GzipFile, chunk: int) -> Iterator[list[tuple[int, object]]]:
    try:
        lines = iter(stream)
        skipped = 0
        first = b""
        for first in lines:
            if skipped == 0:
                first = without_bom(first)
            if first.strip():
                break
            skipped += 1
        if not first.strip():
            return
        if not is_ndjson_start(first):
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


def ingest(
    files: Annotated[
        list[str],
        typer.Argument(
            help='NDJSON, JSON array, {"events": [...]}, .gz, - for stdin, a directory of delivered files, '
            "or s3://bucket/prefix (with TRAILHOUSE_OSS_ENDPOINT)."
        ),
    ],
    db: DbOption = None,
    batch: Annotated[int, typer.Option(help="Events per transaction.")] = 20000,
    json_out: JsonOption = False,
) -> None:
    """Load ActionTrail events from files (as delivered to object storage) into the store."""
    settings = load_settings(db)
    files, objects = _expand(files, settings)
    store = open_or_fail(settings)
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
                    for items in _file_items(name, batch, objects):
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
        "eventsWithWarnings": total.warned_events,
        "files": len(files),
        "unreadableFiles": failed_files,
        "seconds": round(elapsed, 3),
        "eventsPerSecond": round(done / elapsed, 1) if elapsed else None,
    }
    if json_out:
        write_json(summary)
    else:
        if warnings_shown > MAX_WARNINGS_SHOWN:
            console.print(f"… and {warnings_shown - MAX_WARNINGS_SHOWN:,} more warnings")
        console.print(
            f"accepted {total.accepted:,}, duplicates {total.duplicates:,}, rejected {len(total.rejected):,} "
            f"({total.warned_events:,} stored with warnings) "
            f"in {elapsed:.2f}s ({summary['eventsPerSecond'] or 0:,.0f} events/s)"
        )
    if failed_files:
        raise typer.Exit(2)
    if total.rejected:
        raise typer.Exit(3)

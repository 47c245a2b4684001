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
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
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
    delivered_order,
    is_event_file,
    is_ndjson_start,
    store_valid,
    without_bom,
)
from ..service.ingest_pool import Decoded, Items, Lines, Pipeline, Work, default_workers
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


@dataclass(frozen=True, slots=True)
class _FileStart:
    name: str


@dataclass(frozen=True, slots=True)
class _FileEnd:
    name: str
    error: str | None  # why the file could not be read (what it gave before is not stored)


def _stream(names: list[str], batch: int, piece: int, objects: Any) -> Iterator[Work | _FileStart | _FileEnd]:
    """Every file's pieces of work, each file between its start and its end (or its error)."""
    for name in names:
        yield _FileStart(name)
        try:
            yield from _file_work(name, batch, piece, objects)
        except (OSError, UnreadableInput) as exc:
            yield _FileEnd(name, str(exc))
        else:
            yield _FileEnd(name, None)


def _file_work(name: str, batch: int, piece: int, objects: Any) -> Iterator[Work]:
    """One file's events as pieces of work; NDJSON is streamed so that large files stay flat in memory."""
    with contextlib.ExitStack() as stack:
        if name.startswith("s3://"):
            bucket, _, key = name.removeprefix("s3://").partition("/")
            data = objects.get(bucket, key)
            raw: BinaryIO | gzip.GzipFile = io.BufferedReader(io.BytesIO(data))
            if data[:2] == b"\x1f\x8b":
                raw = stack.enter_context(gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb"))
            yield from _pieces(raw, batch, piece)
            return
        yield from _pieces(_open_input(name, stack), batch, piece)


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


def _pieces(stream: BinaryIO | gzip.GzipFile, batch: int, most: int) -> Iterator[Work]:
    """Pieces of at most ``most`` events that never straddle a transaction of ``batch`` events
    (the writer commits when a transaction's pieces are back), numbered as the whole file."""
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
            for start in range(0, len(items), batch):
                chunk = items[start : start + batch]
                for at in range(0, len(chunk), most):
                    yield Items(chunk[at : at + most])
            return
        piece: list[bytes] = []
        events = in_batch = index = 0
        line_number = first_line = skipped + 1
        size = min(most, batch)
        for line in itertools.chain([first], lines):
            piece.append(line)
            # Blank lines stay in the piece (the line numbers count them) but are not events.
            if line.strip():
                events += 1
                if events == size:
                    yield Lines(piece, index, first_line, events)
                    index += events
                    in_batch = (in_batch + events) % batch
                    first_line = line_number + 1
                    piece, events = [], 0
                    size = min(most, batch - in_batch)
            line_number += 1
        if events:
            yield Lines(piece, index, first_line, events)
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
    batch: Annotated[int, typer.Option(help="Events per transaction.", min=1)] = 20000,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Processes that decode and validate while this one writes; 0 does it all in this "
            "process. Events are stored and reported in input order either way.",
            min=0,
            show_default="the cores but one, at least 1",
        ),
    ] = None,
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
    name = ""
    try:
        with (
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,} events"),
                TextColumn("{task.fields[rate]:,.0f} events/s"),
                TimeElapsedColumn(),
                console=console,
                disable=json_out or not console.is_terminal,
            ) as progress,
            Pipeline(default_workers() if workers is None else workers, limits, batch) as pipeline,
        ):
            task = progress.add_task("ingest", total=None, rate=0.0)
            held: list[Decoded] = []  # the pieces of the transaction being gathered
            held_events = 0

            def write() -> None:
                nonlocal warnings_shown
                units = [d.unit for d in held]
                rejected = [r for d in held for r in d.rejected]
                warned = [w for d in held for w in d.warnings]
                held.clear()
                try:
                    report = store_valid(store, units, rejected, warned)
                except StoreError as exc:
                    raise fail(f"the store failed while ingesting {name}: {exc}") from None
                for r in report.rejected:
                    console.print(
                        f"[yellow]{name}[/]: event {r.index} ({r.event_id or '?'}): "
                        f"rejected: {escape(r.reason)}"
                    )
                for w in report.warnings:
                    warnings_shown += 1
                    if warnings_shown <= MAX_WARNINGS_SHOWN:
                        console.print(
                            f"[dim]{name}[/]: event {w.index} ({w.event_id}): warning: {escape(w.warning)}"
                        )
                total.add(report)
                elapsed = time.perf_counter() - started
                done = total.accepted + total.duplicates + len(total.rejected)
                progress.update(task, completed=done, rate=done / elapsed if elapsed else 0.0)

            for event in pipeline.run(_stream(files, batch, pipeline.piece, objects)):
                if isinstance(event, Decoded):
                    held.append(event)
                    held_events += event.events
                    if held_events >= batch:
                        write()
                        held_events = 0
                elif isinstance(event, _FileStart):
                    name = event.name
                    progress.update(task, description=name)
                else:
                    if event.error is None:
                        if held:
                            write()
                    else:  # as in one process: a transaction the file could not complete is not stored
                        failed_files.append(name)
                        console.print(f"[bold red]error:[/] cannot read {name}: {event.error}")
                    held.clear()
                    held_events = 0
    except KeyboardInterrupt:
        raise fail(f"interrupted while ingesting {name}: {_stored_so_far(total)}") from None
    except BrokenProcessPool as exc:
        raise fail(
            f"a decode process stopped while ingesting {name} ({exc}): {_stored_so_far(total)}"
        ) from None
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


def _stored_so_far(total: IngestReport) -> str:
    return (
        f"{total.accepted:,} events were stored before it (and {total.duplicates:,} found already "
        "there), in whole transactions; the one in progress is stored whole or not at all. "
        "Ingest is idempotent on eventId: run the same command again to finish."
    )

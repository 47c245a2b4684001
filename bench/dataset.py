"""The benchmark dataset: seeded NDJSON from the project's own generator, cached under bench/data/.

Layout of one dataset directory (``bench/data/s{seed}-n{count}-e{YYYYMMDD}/``):

* ``part-000.ndjson`` … : the main dataset, ``count`` events over 90 days ending at ``end_ms``, split
  into parts of at most ``PART_EVENTS`` events (``trailhouse ingest`` reads a whole file into memory,
  so one 11 GB file would not fit). The parts concatenated are byte-identical to one
  ``write_ndjson`` of the whole stream.
* ``slice-http.ndjson`` / ``slice-file.ndjson``: fresh events for the steady-state ingest phases,
  generated with seeds ``seed + 1`` / ``seed + 2`` for the same accounts over the day after the main
  dataset, so they arrive "now" into a store that already holds everything else.
* ``manifest.json``: counts, bytes and sha256 of every file, written last; a directory with a
  manifest is complete and is reused.

Everything derives from (seed, count, end day, slice sizes): same parameters, same bytes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trailhouse.demo.generate import generate_events, write_ndjson

__all__ = ["DAY_MS", "PART_EVENTS", "Dataset", "account_ids", "day_floor", "ensure_dataset"]

DAY_MS = 86_400_000
PART_EVENTS = 1_000_000
ACCOUNTS = 3
MAIN_DAYS = 90


def day_floor(ms: int) -> int:
    return ms - ms % DAY_MS


def account_ids(seed: int, n: int = ACCOUNTS) -> list[str]:
    """Stable 16-digit account IDs for a seed, shared by the main dataset and its slices."""
    rng = random.Random(f"trailhouse-bench-accounts:{seed}")
    ids: list[str] = []
    while len(ids) < n:
        candidate = str(rng.randrange(10**15, 2 * 10**15))
        if candidate not in ids:
            ids.append(candidate)
    return ids


@dataclass
class FileInfo:
    path: str
    events: int
    bytes: int
    sha256: str


@dataclass
class Dataset:
    seed: int
    count: int
    main_end_ms: int  # the main dataset covers [main_end_ms - 90 days, main_end_ms)
    slice_end_ms: int  # the slices cover [main_end_ms, slice_end_ms)
    accounts: list[str]
    directory: str
    parts: list[FileInfo] = field(default_factory=list)
    slice_http: FileInfo | None = None
    slice_file: FileInfo | None = None
    generated_s: float = 0.0
    cached: bool = False

    @property
    def main_bytes(self) -> int:
        return sum(p.bytes for p in self.parts)

    @property
    def part_paths(self) -> list[str]:
        return [p.path for p in self.parts]

    def describe(self) -> dict[str, object]:
        d = asdict(self)
        d["main_bytes"] = self.main_bytes
        d["bytes_per_event"] = round(self.main_bytes / self.count, 1) if self.count else None
        return d


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def _info(path: Path, events: int) -> FileInfo:
    return FileInfo(str(path), events, path.stat().st_size, _sha256(path))


def ensure_dataset(
    data_dir: Path,
    *,
    seed: int,
    count: int,
    end_day_ms: int,
    http_events: int,
    file_events: int,
    log: object = print,
) -> Dataset:
    """Generate (or reuse) the dataset for these parameters and return its description."""
    main_end = end_day_ms - DAY_MS
    stamp = time.strftime("%Y%m%d", time.gmtime(end_day_ms / 1000))
    directory = data_dir / f"s{seed}-n{count}-e{stamp}-h{http_events}-f{file_events}"
    manifest = directory / "manifest.json"
    ids = account_ids(seed)
    if manifest.exists():
        data = json.loads(manifest.read_text())
        ds = Dataset(
            seed,
            count,
            data["main_end_ms"],
            data["slice_end_ms"],
            data["accounts"],
            str(directory),
            [FileInfo(**p) for p in data["parts"]],
            FileInfo(**data["slice_http"]),
            FileInfo(**data["slice_file"]),
            data["generated_s"],
            cached=True,
        )
        if all(Path(p.path).exists() for p in [*ds.parts, ds.slice_http, ds.slice_file]):  # type: ignore[list-item]
            return ds
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log(f"generating {count:,} events (seed {seed}) into {directory}")  # type: ignore[operator]
    stream = generate_events(seed=seed, count=count, end_ms=main_end, days=MAIN_DAYS, account_ids=ids)
    parts: list[FileInfo] = []
    remaining = count
    index = 0
    while remaining > 0 or index == 0:
        n = min(PART_EVENTS, remaining)
        path = directory / f"part-{index:03d}.ndjson"
        written = write_ndjson(path, itertools.islice(stream, n))
        parts.append(_info(path, written))
        remaining -= written
        index += 1
        if written == 0:
            break
    slices: list[FileInfo] = []
    for offset, (name, n) in enumerate((("slice-http", http_events), ("slice-file", file_events)), start=1):
        path = directory / f"{name}.ndjson"
        written = write_ndjson(
            path, generate_events(seed=seed + offset, count=n, end_ms=end_day_ms, days=1, account_ids=ids)
        )
        slices.append(_info(path, written))
    generated_s = time.perf_counter() - started
    ds = Dataset(
        seed,
        count,
        main_end,
        end_day_ms,
        ids,
        str(directory),
        parts,
        slices[0],
        slices[1],
        round(generated_s, 2),
    )
    manifest.write_text(
        json.dumps(
            {
                "main_end_ms": main_end,
                "slice_end_ms": end_day_ms,
                "accounts": ids,
                "generated_s": ds.generated_s,
                "parts": [asdict(p) for p in parts],
                "slice_http": asdict(slices[0]),
                "slice_file": asdict(slices[1]),
            },
            indent=1,
        )
    )
    return ds


def read_batches(path: str, size: int) -> list[bytes]:
    """An NDJSON file as request bodies of ``size`` events each (NDJSON again)."""
    with open(path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    return [b"".join(lines[i : i + size]) for i in range(0, len(lines), size)]


def fresh_day_batches(
    path: Path, label: str, slice_end_ms: int, *, seed: int = 7, count: int = 50_000, size: int = 1000
) -> list[bytes]:
    """``count`` events never stored, on the day after a dataset's slices, seeded by ``label`` (a
    run of an A/B gets its own), written to ``path`` and read back as request bodies of ``size``."""
    write_ndjson(
        str(path),
        generate_events(
            seed=1000 + zlib.crc32(label.encode()) % 10_000,
            count=count,
            end_ms=slice_end_ms + DAY_MS,
            days=1,
            account_ids=account_ids(seed),
        ),
    )
    return read_batches(str(path), size)

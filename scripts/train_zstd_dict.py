"""Train the zstd dictionary that packs event bodies (src/trailhouse/data/zstd_dict_v1.bin).

Trained on generated events of a seed the benchmarks never use, so benchmark figures are not
measured on the training data. A dictionary, once shipped, is frozen: rows packed with it name it
by its scheme byte, and a new one needs a new scheme (storage/codec.py).

    python scripts/train_zstd_dict.py [OUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import zstandard

from trailhouse.demo.generate import generate_events

SEED = 424242
SAMPLES = 20_000
SIZE = 16_384


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("src/trailhouse/data/zstd_dict_v1.bin")
    end_ms = 1_780_000_000_000
    samples = [orjson.dumps(e) for e in generate_events(seed=SEED, count=SAMPLES, end_ms=end_ms, days=90)]
    trained = zstandard.train_dictionary(SIZE, samples, level=3)
    out.write_bytes(trained.as_bytes())
    print(f"{out}: {len(trained.as_bytes())} bytes from {len(samples)} events")


if __name__ == "__main__":
    main()

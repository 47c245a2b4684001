"""``ndjson_lines``, the block reader of ``trailhouse verify``: the same events, byte for byte, as
reading the file line by line, wherever the blocks are cut."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from trailhouse.cli.verify import read_ndjson
from trailhouse.service.integrity.verify import ndjson_lines


def _line_by_line(data: bytes) -> list[bytes]:
    """What the verifier read before the block reader (a binary file's lines, which end at \\n
    only, each without its trailing \\r\\n), blank lines skipped."""
    lines = [line.rstrip(b"\r\n") for line in io.BytesIO(data)]
    return [line for line in lines if line]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"x")), max_size=12),
    st.sampled_from([b"\n", b"\r\n", b"\n\n"]),
    st.booleans(),
    st.lists(st.integers(0, 200), max_size=6),
)
def test_blocks_give_the_lines(lines: list[bytes], end: bytes, final: bool, cuts: list[int]) -> None:
    data = end.join(lines) + (end if final else b"")
    points = sorted({min(c, len(data)) for c in cuts})
    blocks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert list(ndjson_lines(blocks)) == _line_by_line(data)


def test_read_ndjson_reads_plain_and_gzip_files_across_blocks(tmp_path: Path) -> None:
    events = [b'{"eventId":"e%d","pad":"%s"}' % (i, b"x" * (i % 3000)) for i in range(3000)]
    data = b"\n".join(events) + b"\n"
    assert len(data) > 3 << 20  # several blocks
    (tmp_path / "log.ndjson").write_bytes(data)
    (tmp_path / "log.ndjson.gz").write_bytes(gzip.compress(data))
    assert list(read_ndjson(tmp_path / "log.ndjson")) == events
    assert list(read_ndjson(tmp_path / "log.ndjson.gz")) == events

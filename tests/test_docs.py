"""The generated parts of the docs match the code they describe."""

from __future__ import annotations

import pytest
from scripts.docs_gen import BLOCKS, ROOT, update_file


@pytest.mark.parametrize("doc", sorted(BLOCKS))
def test_generated_docs_are_current(doc: str) -> None:
    assert update_file(ROOT / doc, BLOCKS[doc], check=True), (
        f"{doc} is stale: run `python scripts/docs_gen.py` and commit the result"
    )


def test_compatibility_table_lists_every_operation() -> None:
    from trailhouse.api.rpc.dispatch import OPERATIONS

    text = (ROOT / "docs/compatibility.md").read_text()
    for action, version in OPERATIONS:
        assert f"| {action} | {version} |" in text

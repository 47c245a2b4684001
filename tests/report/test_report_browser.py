"""The HTML report in a real browser: headless Chromium (Debian's) at 900 and 1400 px wide.

Screenshots go to ``test-artifacts/`` at the repository root (git-ignored), for a person to look
at; the test itself checks what can be measured: the page never scrolls sideways (tables scroll in
their own boxes), and no time, id or address is broken over two lines.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.report._stories import BUSY_KEY, END_MS, busy_events, demo_events, put, report_of
from trailhouse.demo.story import demo_story_facts
from trailhouse.render.report_html import report_to_html
from trailhouse.storage.sqlite import SqliteStore

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WIDTHS = (900, 1400)

# The elements that must stay on one line but wrapped.
_WRAPPED = """() => Array.from(document.querySelectorAll('.nw, .ip'))
    .filter(e => e.offsetParent !== null && e.getClientRects().length > 1)
    .map(e => e.textContent)"""
# The first scrolling box is the summary's.
_SUMMARY_FITS = "() => { const s = document.querySelector('.scroll'); return s.scrollWidth <= s.clientWidth }"


@pytest.fixture(scope="module")
def pages() -> Iterator[dict[str, Path]]:
    ARTIFACTS.mkdir(exist_ok=True)
    out: dict[str, Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, events, key in (
            ("demo", demo_events(), demo_story_facts(end_ms=END_MS).leaked_key_id),
            ("busy", busy_events(), BUSY_KEY),
        ):
            store = SqliteStore(Path(tmp) / f"{name}.db")
            try:
                put(store, events)
                page = ARTIFACTS / f"report-{name}.html"
                page.write_text(report_to_html(report_of(store, key)), encoding="utf-8")
                out[name] = page
            finally:
                store.close()
    yield out


@pytest.mark.parametrize("name", ["demo", "busy"])
def test_report_holds_at_900_and_1400_px(pages: dict[str, Path], name: str) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium, or scripts/ensure-browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            for width in WIDTHS:
                page = browser.new_page(viewport={"width": width, "height": 1000})
                page.goto(pages[name].as_uri())
                # Open the collapsed parts too: they must hold as well.
                page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
                shot = ARTIFACTS / f"report-{name}-{width}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                scroll_width = page.evaluate("document.documentElement.scrollWidth")
                assert scroll_width <= page.evaluate("window.innerWidth"), (name, width, scroll_width)
                assert page.evaluate(_WRAPPED) == [], (name, width)
                # The summary fits without scrolling its box: it is what a responder reads first.
                assert page.evaluate(_SUMMARY_FITS), (name, width)
                # The findings are on the first screen: the alert and the summary.
                alert = page.locator("p.alert").first
                assert alert.is_visible() and alert.bounding_box()["y"] < 300  # type: ignore[index]
                page.close()
        finally:
            browser.close()

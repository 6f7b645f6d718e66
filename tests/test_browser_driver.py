"""The headless-Chromium driver (tests/browser.py) on a small page: the HTML reports' tests rely on
evaluate, errors, screenshot and scroll_width reading the page as a browser renders it.

Skipped where no Chromium is installed (set BROWSER_PATH to point at one)."""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import Browser, BrowserError, chromium

# a 1200 px tall div, so a full-page screenshot differs from the 900 px viewport; the script reports an
# error only for #err and throws only for #throw, so a page without either must have none
PAGE = """<!doctype html>
<html><head><meta name="viewport" content="width=device-width"></head>
<body><div id="tall" style="height: 1200px">report</div>
<svg width="300" height="100"><rect width="10" height="10"/><rect x="20" width="10" height="10"/>
<rect x="40" width="10" height="10"/></svg>
<script>
if (location.hash === "#err") console.error("boom");
if (location.hash === "#throw") throw new Error("bang");
</script></body></html>
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module: a start costs more than all the pages it opens here."""
    if chromium() is None:
        pytest.skip("no Chromium found (BROWSER_PATH, chromium, chromium-browser, google-chrome)")
    with Browser() as started:
        yield started


@pytest.fixture
def page_path(tmp_path: Path) -> Path:
    path = tmp_path / "page.html"
    path.write_text(PAGE)
    return path


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, which the format puts first."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:16]
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_evaluate_counts_the_rects(browser: Browser, page_path: Path) -> None:
    page = browser.open(page_path, width=800)
    assert page.evaluate("document.querySelectorAll('svg rect').length") == 3
    assert page.evaluate("document.getElementById('tall').textContent") == "report"


def test_evaluate_raises_on_a_thrown_exception(browser: Browser, page_path: Path) -> None:
    page = browser.open(page_path, width=800)
    with pytest.raises(RuntimeError, match="nope"):
        page.evaluate("(() => { throw new Error('nope') })()")


def test_errors_empty_without_fragment(browser: Browser, page_path: Path) -> None:
    assert browser.open(page_path, width=800).errors == []


def test_errors_hold_console_error(browser: Browser, page_path: Path) -> None:
    errors = browser.open(page_path, width=800, fragment="err").errors
    assert any("boom" in error for error in errors), errors


def test_errors_hold_uncaught_exception(browser: Browser, page_path: Path) -> None:
    errors = browser.open(page_path, width=800, fragment="throw").errors
    assert any("bang" in error for error in errors), errors


def test_screenshot_is_png_of_page_width(browser: Browser, page_path: Path, tmp_path: Path) -> None:
    page = browser.open(page_path, width=640)
    page.screenshot(tmp_path / "full.png")
    page.screenshot(tmp_path / "viewport.png", full_page=False)
    full_height = page.evaluate("document.documentElement.scrollHeight")
    assert full_height > 1200
    assert png_size((tmp_path / "full.png").read_bytes()) == (640, full_height)
    assert png_size((tmp_path / "viewport.png").read_bytes()) == (640, 900)


def test_scroll_width_sees_overflow_at_390(browser: Browser, page_path: Path) -> None:
    page = browser.open(page_path, width=390, mobile=True)
    assert page.scroll_width() == 390
    page.evaluate("document.body.insertAdjacentHTML('beforeend', '<div style=\"width: 1000px\">wide</div>')")
    assert page.scroll_width() > 390


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"width": 0}, "width=0", id="zero-width"),
        pytest.param({"width": 800, "fragment": "#err"}, "leading '#'", id="fragment-with-hash"),
    ],
)
def test_open_rejects_bad_arguments(browser: Browser, page_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        browser.open(page_path, **kwargs)


def test_open_rejects_a_missing_file(browser: Browser, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.html"):
        browser.open(tmp_path / "missing.html", width=800)


def test_an_exited_browser_is_reported_with_its_stderr() -> None:
    # Python stands in for a browser that dies at once: it rejects --headless on stderr and exits
    with Browser(sys.executable) as gone, pytest.raises(BrowserError, match=r"(?s)exited.*unknown option --headless"):
        gone.send("Browser.getVersion")


def test_a_missing_executable_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        Browser(str(tmp_path / "nothing-here"))

"""The built site in headless Chromium, served and opened from disk, as its readers use it."""

from __future__ import annotations

import io
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from browser.harness import PHONE, TEMPLATES, WIDE, Visit, local_target

MODES = ("served", "file")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", TEMPLATES)
def test_page_loads_without_errors(site_browser, mode: str, name: str) -> None:
    """No console error, no failed request, nothing requested from outside the machine."""
    v = site_browser.visit(mode, name)
    assert v.console_errors == [], v.url
    assert v.failed == [], v.url
    assert v.refused == [], v.url


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", TEMPLATES)
def test_internal_links_resolve(site_browser, roots, site_dir: Path, mode: str, name: str) -> None:
    """Every link inside the site lands on a page (a file, never a folder listing on file://)
    and on an existing anchor."""
    v = site_browser.visit(mode, name)
    broken = []
    ids: dict[Path, set[str]] = {}
    for url in sorted(set(v.links)):
        target = local_target(url, roots, site_dir)
        if target is None:
            continue
        _, path = target
        if path.is_dir():
            if mode == "file" or not (path / "index.html").is_file():
                broken.append(f"{url}: a folder, not a page")
                continue
            path = path / "index.html"
        if not path.is_file():
            broken.append(f"{url}: no such file")
            continue
        fragment = unquote(urlsplit(url).fragment)
        if fragment and path.suffix == ".html":
            if path not in ids:
                ids[path] = set(re.findall(r'\b(?:id|name)="([^"]+)"', path.read_text(encoding="utf-8")))
            if fragment not in ids[path]:
                broken.append(f"{url}: no anchor #{fragment}")
    assert broken == [], v.url


@pytest.mark.parametrize("mode", MODES)
def test_search_finds_tsm_first(site_browser, mode: str) -> None:
    ctx = site_browser.context(mode, WIDE)
    try:
        v = Visit("search")
        page = site_browser.open(ctx, mode, "index.html", v)
        page.fill("input.md-search__input", "temporal shift")
        first = page.locator(".md-search-result__item").first
        first.wait_for(timeout=15000)
        title = first.locator("h1, h2").first.inner_text()
        assert "TSM" in title, title
        assert v.console_errors == [] and v.refused == []
    finally:
        ctx.close()


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_table_wider_than_its_container(site_browser, name: str) -> None:
    """At 1400 px no table needs a horizontal scroll bar."""
    v = site_browser.visit("served", name, WIDE)
    assert v.wide_tables == [], v.url


@pytest.mark.parametrize("name", ["leaderboard", "papers-index", "datasets-index", "reproduction"])
def test_key_column_stays_visible_on_a_phone(site_browser, name: str) -> None:
    """At 390 px, with a table scrolled to its right end, its first column is still on screen."""
    ctx = site_browser.context("served", PHONE)
    try:
        page = site_browser.open(ctx, "served", TEMPLATES[name])
        result = page.evaluate("""() => {
          const t = document.querySelector('article table');
          t.scrollIntoView();
          t.scrollLeft = t.scrollWidth;
          const cell = t.tBodies[0].rows[0].cells[0];
          const r = cell.getBoundingClientRect();
          const hit = document.elementFromPoint(r.left + 4, r.top + r.height / 2);
          return {scrolled: t.scrollLeft, wider: t.scrollWidth > t.clientWidth, left: r.left, right: r.right,
                  visible: cell.contains(hit), text: cell.textContent.trim()};
        }""")
        assert result["left"] >= 0 and result["right"] <= PHONE["width"], result
        assert result["visible"], result
        assert not result["wider"] or result["scrolled"] > 0, result  # it did scroll
    finally:
        ctx.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_stage_links_to_the_next_stage(site_browser, mode: str, n: int) -> None:
    ctx = site_browser.context(mode, WIDE)
    try:
        page = site_browser.open(ctx, mode, f"generated/stages/stage-{n}.html")
        nxt = page.locator(f"article a[rel='next'][href$='stage-{n + 1}.html']")
        assert nxt.count() == 1
        nxt.click()
        page.wait_for_load_state("load")
        assert page.url.endswith(f"stage-{n + 1}.html")
        assert page.locator("article h1").first.inner_text().startswith(f"Stage {n + 1}")
    finally:
        ctx.close()


@pytest.mark.parametrize("name", ["leaderboard", "stage"])
def test_dark_mode_charts_are_not_white_boxes(site_browser, name: str) -> None:
    """In the dark scheme each chart's pixels are mostly dark, and its text is light."""
    from PIL import Image

    ctx = site_browser.context("served", WIDE, scheme="dark")
    try:
        page = site_browser.open(ctx, "served", TEMPLATES[name])
        charts = page.locator(".kb-chart-wide svg")
        assert charts.count() >= 1
        for i in range(charts.count()):
            png = charts.nth(i).screenshot()
            img = Image.open(io.BytesIO(png)).convert("L")
            pixels = img.tobytes()
            bright = sum(1 for p in pixels if p > 200) / len(pixels)
            mean = sum(pixels) / len(pixels)
            assert mean < 100 and bright < 0.15, f"chart {i}: mean grey {mean:.0f}, {bright:.0%} near white"
        fill = page.evaluate("getComputedStyle(document.querySelector('.kb-chart svg text')).fill")
        grey = [int(x) for x in re.findall(r"\d+", fill)[:3]]
        assert sum(grey) / 3 > 150, f"chart text is {fill} on a dark page"
    finally:
        ctx.close()


@pytest.mark.parametrize("name", TEMPLATES)
def test_screenshots(site_browser, name: str) -> None:
    """Screenshots of each template at 1400 and 390 px go to build/screenshots/; at both widths
    no console error and nothing outside the viewport (tables scroll inside themselves)."""
    for viewport in (WIDE, PHONE):
        v = site_browser.visit("served", name, viewport)
        assert v.console_errors == [], (v.url, viewport)
        assert v.overflow == [], (v.url, viewport)

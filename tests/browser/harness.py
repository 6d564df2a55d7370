"""Helpers of the browser tests: the page of each template, and a :class:`Browser` that visits
pages of the built site (served or from ``file://``) and records what happened.

Each page is visited once per (mode, width, scheme) and what the tests need is collected in
that visit (console errors, failed and refused requests, links, table widths); served visits
leave a screenshot in ``build/screenshots/<template>-<width>-<scheme>.png``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "build" / "screenshots"
WIDE = {"width": 1400, "height": 900}
PHONE = {"width": 390, "height": 844}
SHOT_MAX_HEIGHT = 6000  # px of a long page kept in its screenshot
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

# One page per template (path inside site/). Chosen for having every section of their template.
TEMPLATES = {
    "home": "index.html",
    "about": "about.html",
    "stages-index": "generated/stages/index.html",
    "stage": "generated/stages/stage-1.html",
    "paper-staged": "generated/papers/lin2019tsm.html",
    "paper-unstaged": "generated/papers/arandjelovic2016netvlad.html",
    "papers-index": "generated/papers/index.html",
    "dataset": "generated/datasets/kinetics-400.html",
    "datasets-index": "generated/datasets/index.html",
    "leaderboard": "generated/leaderboards/kinetics-400.html",
    "leaderboards-index": "generated/leaderboards/index.html",
    "repos-index": "generated/repos/index.html",
    "reproduction": "generated/reproduction.html",
    "code": "generated/code/tsm.html",
    "tag": "generated/tags/temporal-module.html",
    "tags-index": "generated/tags/index.html",
    "resources": "generated/resources.html",
    "sources": "generated/sources.html",
}


def chromium_path() -> str | None:
    """Debian's Chromium, or the one ``PAPERS_KB_CHROMIUM`` names; ``None`` when absent."""
    explicit = os.environ.get("PAPERS_KB_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Visit:
    """What one page load showed."""

    url: str
    console_errors: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # requests that would have left the machine
    failed: list[str] = field(default_factory=list)  # requests that failed (missing files ...)
    links: list[str] = field(default_factory=list)  # absolute URLs of a[href] in the page
    anchors: list[str] = field(default_factory=list)  # ids and names in the page
    wide_tables: list[str] = field(default_factory=list)  # tables wider than their container
    overflow: list[str] = field(default_factory=list)  # elements sticking out of the viewport


def is_local(url: str, root: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return url.startswith(root)


class Browser:
    """Opens pages of the site in fresh contexts and records what happened."""

    def __init__(self, browser, roots: dict[str, str]):
        self.browser = browser
        self.roots = roots
        self._visits: dict[tuple, Visit] = {}

    def context(self, mode: str, viewport: dict, scheme: str = "light"):
        ctx = self.browser.new_context(viewport=viewport, color_scheme=scheme, service_workers="block")
        return ctx

    def open(self, ctx, mode: str, path: str, visit: Visit | None = None):
        """A page of ``ctx`` at ``path``, outside requests refused and recorded in ``visit``."""
        root = self.roots[mode]
        visit = visit if visit is not None else Visit(root + path)
        page = ctx.new_page()

        def route(r):
            if is_local(r.request.url, root):
                r.continue_()
            else:
                visit.refused.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("console", lambda m: m.type == "error" and visit.console_errors.append(
            f"{m.text} ({m.location.get('url', '')})"))
        page.on("pageerror", lambda e: visit.console_errors.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: is_local(r.url, root) and visit.failed.append(
            f"{r.url} ({r.failure})"))
        page.goto(root + path, wait_until="load")
        return page

    def visit(self, mode: str, name: str, viewport: dict = WIDE, scheme: str = "light") -> Visit:
        """Load template page ``name`` once per (mode, width, scheme); screenshot it (served mode)."""
        key = (mode, name, viewport["width"], scheme)
        if key in self._visits:
            return self._visits[key]
        path = TEMPLATES[name]
        visit = Visit(self.roots[mode] + path)
        ctx = self.context(mode, viewport, scheme)
        try:
            page = self.open(ctx, mode, path, visit)
            page.wait_for_timeout(150)  # tablesort and Material's components run after load
            info = page.evaluate(_COLLECT)
            visit.links = info["links"]
            visit.anchors = info["anchors"]
            visit.wide_tables = info["wide"]
            visit.overflow = info["overflow"]
            if mode == "served":
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                height = min(page.evaluate("document.documentElement.scrollHeight"), SHOT_MAX_HEIGHT)
                page.screenshot(path=str(SCREENSHOTS / f"{name}-{viewport['width']}-{scheme}.png"),
                                full_page=True, clip={"x": 0, "y": 0, "width": viewport["width"], "height": height})
        finally:
            ctx.close()
        self._visits[key] = visit
        return visit


_COLLECT = """() => {
  const links = [...document.querySelectorAll('a[href]')].map(a => a.href);
  const anchors = [...document.querySelectorAll('[id], a[name]')].map(e => e.id || e.getAttribute('name'));
  const wide = [];
  for (const t of document.querySelectorAll('article table')) {
    const box = t.getBoundingClientRect();
    const host = t.closest('.md-content__inner') || document.body;
    const hb = host.getBoundingClientRect();
    if (t.scrollWidth > t.clientWidth + 1 || box.right > hb.right + 1) {
      const head = [...t.querySelectorAll('th')].map(th => th.textContent.trim()).join(' | ');
      wide.push(`${head}: scrollWidth ${t.scrollWidth} > clientWidth ${t.clientWidth}, right ${Math.round(box.right)} vs ${Math.round(hb.right)}`);
    }
  }
  const overflow = [];
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    for (const e of document.querySelectorAll('article *')) {
      const r = e.getBoundingClientRect();
      if (r.width && r.right > window.innerWidth + 1 && !e.closest('table')) {
        overflow.push(`<${e.tagName.toLowerCase()} class="${e.className.baseVal ?? e.className}"> right ${Math.round(r.right)}`);
        if (overflow.length > 5) break;
      }
    }
    if (!overflow.length) overflow.push(`page ${document.documentElement.scrollWidth} px wide`);
  }
  return {links, anchors, wide, overflow};
}"""


def local_target(url: str, roots: dict[str, str], site_dir: Path) -> tuple[str, Path] | None:
    """(mode, file) a site-internal URL points at, or ``None`` for an outside link."""
    for mode, root in roots.items():
        if url.startswith(root):
            rest = urlsplit(url[len(root):]).path
            return mode, site_dir / unquote(rest)
    return None


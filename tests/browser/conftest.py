"""Headless Chromium over the built site, served from 127.0.0.1 and opened from ``file://``.

The site is built once per test session from this repository's ``data/`` into a temporary
folder (or taken from ``PAPERS_KB_BROWSER_SITE``, a site built by ``papers-kb build``).
Chromium is Debian's (``/usr/bin/chromium``, or ``PAPERS_KB_CHROMIUM``), driven through
Playwright's Chrome DevTools Protocol client; Playwright's own browser downloads are never
used. Every request that leaves 127.0.0.1 or the site folder is refused and recorded.
The tests skip, saying why, when Chromium or Playwright is missing.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

from browser.harness import CHROMIUM_FLAGS, REPO, Browser, chromium_path


def pytest_collection_modifyitems(config, items):
    """Skip the tests that drive a browser, with the reason, when Chromium or Playwright is
    missing (the tests that only read the built site still run)."""
    reason = None
    if chromium_path() is None:
        reason = ("Chromium not found (apt-get install chromium, or set PAPERS_KB_CHROMIUM): "
                  "browser tests skipped")
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "playwright (python) not installed (pip install -e '.[test]'): browser tests skipped"
    if reason:
        here = Path(__file__).parent
        for item in items:
            needs_browser = {"browser", "site_browser"} & set(getattr(item, "fixturenames", ()))
            if here in Path(str(item.fspath)).parents and needs_browser:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def site_dir(tmp_path_factory) -> Path:
    """The built site: ``PAPERS_KB_BROWSER_SITE`` if set, else a fresh build of ``data/``."""
    given = os.environ.get("PAPERS_KB_BROWSER_SITE")
    if given:
        site = Path(given).resolve()
        assert (site / "index.html").is_file(), f"PAPERS_KB_BROWSER_SITE={given}: no index.html there"
        return site
    from papers_kb.build import build_site

    site = tmp_path_factory.mktemp("browser") / "site"
    build_site(REPO, site_dir=site)
    return site


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="session")
def http_root(site_dir: Path):
    """``http://127.0.0.1:PORT/`` serving the site from a thread, stopped at the end of the session."""
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def roots(site_dir: Path, http_root: str) -> dict[str, str]:
    """Base URL of the site per mode: ``served`` and ``file``."""
    return {"served": http_root, "file": site_dir.as_uri() + "/"}


@pytest.fixture(scope="package")
def browser():
    """Chromium for the tests of this package; closed when they are done (Playwright's sync API
    keeps an event loop running meanwhile, which asyncio.run() in later tests must not see)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # Playwright gives Chromium a fresh temporary --user-data-dir of its own.
        b = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="package")
def site_browser(browser, roots) -> Browser:
    return Browser(browser, roots)

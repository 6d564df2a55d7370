"""Tests of ``papers_kb.links``: internal checks on built sites, external checks against a
local HTTP server on 127.0.0.1 only (no other address is ever contacted)."""

from __future__ import annotations

import http.server
import json
import re
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import make_project, write
from papers_kb import links
from papers_kb.cli import main as cli_main
from papers_kb.links import LinkCache, LinkConfig, Origin, arxiv_canonical, check_external, check_internal

# --------------------------------------------------------------------------------------------
# A local test server: one route per behaviour, requests counted per route.
# --------------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counts: Counter  # set on the subclass made per server

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _reply(self, code: int, headers: dict | None = None, body: bytes = b"") -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> None:
        path = self.path.split("?")[0]
        self.counts[path] += 1
        self.counts[("ua", self.headers.get("User-Agent", ""))] += 1
        self.counts[(self.command, path)] += 1
        n = self.counts[path]
        if path.startswith("/ok"):
            self._reply(200, body=b"fine")
        elif path == "/r301a":
            self._reply(301, {"Location": "/r301b"})
        elif path == "/r301b":
            self._reply(308, {"Location": "/ok/final"})
        elif path == "/r302a":
            self._reply(302, {"Location": "/r302b"})
        elif path == "/r302b":
            self._reply(307, {"Location": "/ok/temp"})
        elif path == "/loop1":
            self._reply(301, {"Location": "/loop2"})
        elif path == "/loop2":
            self._reply(302, {"Location": "/loop1"})
        elif path == "/missing":
            self._reply(404)
        elif path == "/gone":
            self._reply(410)
        elif path == "/nohead":
            self._reply(405 if self.command == "HEAD" else 200)
        elif path == "/flaky":
            self._reply(500 if n == 1 else 200)
        elif path == "/down":
            self._reply(503)
        elif path == "/limited":
            self._reply(429, {"Retry-After": "1"})
        elif path == "/limited-once":
            self._reply(429 if n == 1 else 200, {"Retry-After": "0"} if n == 1 else None)
        elif path == "/slow":
            time.sleep(1.5)
            self._reply(200)
        elif path == "/drop":
            self.close_connection = True  # close the socket without a single byte of answer
            self.connection.shutdown(socket.SHUT_RDWR)
        elif path == "/to-ftp":
            self._reply(301, {"Location": "ftp://example.invalid/file"})
        elif path == "/to-mailto":
            self._reply(302, {"Location": "mailto:someone@example.org"})
        elif path == "/to-javascript":
            self._reply(302, {"Location": "javascript:alert(1)"})
        elif path == "/to-data":
            self._reply(301, {"Location": "data:text/html,<script>alert(1)</script>"})
        elif path == "/to-bad-port":
            self._reply(302, {"Location": f"http://127.0.0.1:99999{path}"})
        elif path == "/forbidden":
            self._reply(403)
        else:
            self._reply(404)

    do_HEAD = _route
    do_GET = _route


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 with a fresh request counter."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        handler = type("H", (_Handler,), {"counts": self.counts})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = LocalServer()
    yield s
    s.close()


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def fast_config(**kw) -> LinkConfig:
    base = dict(timeout=0.5, retries=1, backoff=0.05, delay=0.0, max_retry_after=2.0, user_agent="papers-kb-test")
    base.update(kw)
    return LinkConfig(**base)


def run(urls: list[str], cfg: LinkConfig, cache: LinkCache | None = None) -> dict[str, links.LinkResult]:
    res = check_external({u: [Origin("t", 0, "f")] for u in urls}, cfg, cache)
    return {r.url: r for r in res}


# --------------------------------------------------------------------------------------------
# External check
# --------------------------------------------------------------------------------------------


def test_external_classifies_every_route(server: LocalServer) -> None:
    port = closed_port()
    paths = ["/ok/1", "/r301a", "/r302a", "/loop1", "/missing", "/gone", "/nohead", "/flaky", "/down",
             "/limited", "/limited-once", "/slow", "/drop"]
    urls = [server.url(p) for p in paths] + [f"http://127.0.0.1:{port}/x"]
    t0 = time.perf_counter()
    res = run(urls, fast_config())
    elapsed = time.perf_counter() - t0
    st = {p: res[server.url(p)] for p in paths}

    assert st["/ok/1"].status == "ok" and st["/ok/1"].code == 200
    assert st["/r301a"].status == "moved" and st["/r301a"].final_url == server.url("/ok/final")
    assert "moved to" in st["/r301a"].message
    assert st["/r302a"].status == "ok"  # temporary redirects are followed silently
    assert st["/loop1"].status == "broken" and "loop" in st["/loop1"].message
    assert st["/missing"].status == "broken" and st["/missing"].code == 404
    assert st["/gone"].status == "broken" and st["/gone"].code == 410
    assert st["/nohead"].status == "ok"
    assert st["/flaky"].status == "ok"
    assert st["/down"].status == "broken" and st["/down"].code == 503
    assert st["/limited"].status == "rate-limited" and st["/limited"].code == 429
    assert st["/limited-once"].status == "ok"
    assert st["/slow"].status == "timeout"
    assert st["/drop"].status == "broken" and "dropped" in st["/drop"].message
    closed = res[f"http://127.0.0.1:{port}/x"]
    assert closed.status == "broken" and "connect" in closed.message

    c = server.counts
    # HEAD refused with 405, then one GET; a 404 is not retried.
    assert c[("HEAD", "/nohead")] == 1 and c[("GET", "/nohead")] == 1
    assert c["/missing"] == 1 and c["/gone"] == 1
    # 500 then 200: retried exactly once.
    assert c["/flaky"] == 2
    # retries=1: never more than 2 attempts on 5xx, 429, timeouts, dropped connections.
    assert c["/down"] == 2
    assert c["/limited"] == 2
    assert c["/limited-once"] == 2
    assert c["/slow"] == 2
    assert c["/drop"] == 2
    # a redirect loop is detected on the first pass, each hop requested once
    assert c["/loop1"] == 1 and c["/loop2"] == 1
    assert elapsed < 15, elapsed


def test_retry_count_is_configurable(server: LocalServer) -> None:
    res = run([server.url("/down"), server.url("/drop")], fast_config(retries=2))
    assert res[server.url("/down")].status == "broken"
    assert server.counts["/down"] == 3 and server.counts["/drop"] == 3
    server.counts.clear()
    run([server.url("/down")], fast_config(retries=0))
    assert server.counts["/down"] == 1


def test_redirect_to_other_scheme_and_user_agent(server: LocalServer) -> None:
    cfg = fast_config(user_agent=None)
    cfg.user_agent = links.default_user_agent()
    res = run([server.url("/to-ftp")], cfg)[server.url("/to-ftp")]
    assert res.status == "broken" and "non-HTTP" in res.message
    assert server.counts["/to-ftp"] == 1  # not retried
    assert server.counts[("ua", "papers-kb-linkcheck/0.1")] == 1


def test_retry_after_longer_than_max_wait_is_not_waited(server: LocalServer) -> None:
    t0 = time.perf_counter()
    res = run([server.url("/limited")], fast_config(max_retry_after=0.5, retries=3))
    assert res[server.url("/limited")].status == "rate-limited"
    assert server.counts["/limited"] == 1
    assert time.perf_counter() - t0 < 1.0


def test_host_rules_and_excludes(server: LocalServer) -> None:
    cfg = LinkConfig.from_mapping({
        "timeout": 5, "retries": 0, "delay": 0, "exclude": [r"/ok/excluded$"],
        "hosts": {"127.0.0.1": {"method": "GET", "treat-403-as-ok": True, "per-host": 1}},
    })
    res = run([server.url("/forbidden"), server.url("/ok/excluded"), server.url("/nohead")], cfg)
    assert res[server.url("/forbidden")].status == "ok"
    assert res[server.url("/ok/excluded")].status == "excluded"
    assert server.counts["/ok/excluded"] == 0
    assert server.counts[("HEAD", "/nohead")] == 0 and server.counts[("GET", "/nohead")] == 1
    skip = LinkConfig.from_mapping({"hosts": {"127.0.0.1": {"skip": True}}})
    assert run([server.url("/ok/2")], skip)[server.url("/ok/2")].status == "excluded"
    with pytest.raises(ValueError, match="unknown"):
        LinkConfig.from_mapping({"per_hots": 3})
    with pytest.raises(ValueError, match="number"):
        LinkConfig.from_mapping({"per-host": "4"})
    with pytest.raises(ValueError, match="method"):
        LinkConfig.from_mapping({"hosts": {"x.org": {"method": "POST"}}})


def test_per_host_limit_is_respected() -> None:
    """A server that records how many requests it serves at once never sees more than per-host."""
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    class Slowish(_Handler):
        counts = Counter()

        def _route(self) -> None:
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            time.sleep(0.2)  # long enough for the client to fill every slot, even on a busy machine
            with lock:
                state["now"] -= 1
            self._reply(200)

        do_HEAD = _route
        do_GET = _route

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slowish)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        port = httpd.server_address[1]
        urls = [f"http://127.0.0.1:{port}/p{i}" for i in range(12)]
        res = run(urls, fast_config(per_host=3, concurrency=50))
        assert all(r.status == "ok" for r in res.values())
        assert state["max"] == 3
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_cache_skips_fresh_ok_results(server: LocalServer, tmp_path: Path) -> None:
    path = tmp_path / "links.json"
    urls = [server.url("/ok/a"), server.url("/missing")]
    first = run(urls, fast_config(), LinkCache(path, ttl=3600))
    assert first[server.url("/ok/a")].status == "ok" and not first[server.url("/ok/a")].cached
    assert json.loads(path.read_text())["urls"][server.url("/ok/a")]["status"] == "ok"
    server.counts.clear()
    second = run(urls, fast_config(), LinkCache(path, ttl=3600))
    assert second[server.url("/ok/a")].cached and second[server.url("/ok/a")].status == "ok"
    assert server.counts["/ok/a"] == 0
    assert server.counts["/missing"] == 1  # broken results are always checked again
    server.counts.clear()
    run(urls, fast_config(), LinkCache(path, ttl=0))  # expired: requested again
    assert server.counts["/ok/a"] == 1


def test_arxiv_mirrors_get_canonical_advice(server: LocalServer) -> None:
    assert arxiv_canonical("http://cn.arxiv.org/abs/1811.08383v3") == "https://arxiv.org/abs/1811.08383"
    assert arxiv_canonical("https://export.arxiv.org/pdf/2102.05095.pdf") == "https://arxiv.org/abs/2102.05095"
    assert arxiv_canonical("http://xxx.lanl.gov/abs/hep-th/9901001") == "https://arxiv.org/abs/hep-th/9901001"
    assert arxiv_canonical("https://arxiv.org/abs/1811.08383") is None
    assert arxiv_canonical("https://www.arxiv.org/abs/1811.08383") is None
    assert arxiv_canonical("https://github.com/cn.arxiv.org/abs/1811.08383") is None
    # No request is made for that advice (cn.arxiv.org is not reachable from the tests anyway).
    res = run(["http://cn.arxiv.org/abs/1811.08383"], fast_config())
    r = res["http://cn.arxiv.org/abs/1811.08383"]
    assert r.status == "moved" and r.final_url == "https://arxiv.org/abs/1811.08383" and r.requests == 0


def test_config_from_pyproject_and_file(tmp_path: Path) -> None:
    assert links.load_config(tmp_path).per_host == 4  # no pyproject: defaults
    write(tmp_path / "pyproject.toml", """
        [project]
        name = "x"
        urls = {Repository = "https://example.invalid/x"}
        [tool.papers-kb.check-links]
        per-host = 2
        ttl-days = 1
        [tool.papers-kb.check-links.hosts."arxiv.org"]
        delay = 1.5
    """)
    cfg = links.load_config(tmp_path)
    assert cfg.per_host == 2 and cfg.ttl_days == 1
    assert cfg.rule("export.arxiv.org").delay == 1.5 and cfg.rule("github.com").delay is None
    assert cfg.user_agent == "papers-kb-linkcheck/0.1 (+https://example.invalid/x)"
    write(tmp_path / "lc.toml", 'timeout = 3\nexclude = ["foo"]\n')
    cfg = links.load_config(tmp_path, tmp_path / "lc.toml")
    assert cfg.timeout == 3 and cfg.excluded("http://foo/") and cfg.per_host == 4


# --------------------------------------------------------------------------------------------
# Internal check
# --------------------------------------------------------------------------------------------


def _site(root: Path, broken: bool) -> Path:
    site = root / "site"
    write(site / "index.html", """
        <html><head><link rel="stylesheet" href="assets/style.css?v=3">
        <script src="/assets/app.js"></script></head>
        <body><h1 id="top">Home</h1>
        <a href="papers/">papers</a> <a href="papers/index.html#list">list</a>
        <a href="papers/a%20b/">spaced</a> <a href="#top">top</a> <a href="">self</a>
        <a href="https://example.invalid/">ext</a> <a href="mailto:x@example.invalid">mail</a>
        <img src="img/logo.png" srcset="img/logo.png 1x, img/logo.png 2x"></body></html>
    """)
    write(site / "assets" / "style.css", "body{}")
    write(site / "assets" / "app.js", "")
    write(site / "img" / "logo.png", "png")
    write(site / "papers" / "index.html", """
        <html><body><ul id="list"><li><a href="../">home</a></li>
        <li><a href="../papers/a%20b/#sec-1">a b</a></li></ul></body></html>
    """)
    write(site / "papers" / "a b" / "index.html", """
        <html><body><h2 id="sec-1">One</h2><a name="old"></a><a href="../../index.html#top">up</a>
        <a href="#old">old</a></body></html>
    """)
    if broken:
        write(site / "papers" / "index.html", """
            <html><body><ul id="list"><li><a href="../">home</a></li>
            <li><a href="../missing-page/">gone</a></li>
            <li><a href="../papers/a%20b/#sec-2">a b</a></li>
            <li><img src="../img/nope.png"></li></ul></body></html>
        """)
    return site


def test_internal_clean_site_passes(tmp_path: Path) -> None:
    problems, pages, n = check_internal(_site(tmp_path, broken=False))
    assert problems == []
    assert pages == 3 and n >= 12


def test_internal_broken_site_reports_and_exits_1(tmp_path: Path, capsys) -> None:
    site = _site(tmp_path, broken=True)
    problems, _, _ = check_internal(site)
    got = {(p.page, p.href, p.reason) for p in problems}
    assert got == {
        ("papers/index.html", "../missing-page/", "no such page: missing-page"),
        ("papers/index.html", "../papers/a%20b/#sec-2", "missing anchor #sec-2 on papers/a b/index.html"),
        ("papers/index.html", "../img/nope.png", "missing asset: img/nope.png"),
    }
    assert all(p.line >= 2 for p in problems)
    rc = cli_main(["--root", str(tmp_path), "check-links", "--internal", "--site", str(site)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "papers/index.html:\n" in out
    assert re.search(r"\d+: \.\./missing-page/ \(no such page: missing-page\)", out)
    assert "missing anchor #sec-2" in out and "internal: 3 broken" in out


def test_internal_check_on_real_mini_build(tmp_path: Path, capsys) -> None:
    from papers_kb.build import build_site

    proj = make_project(tmp_path / "proj")
    build_site(proj)
    problems, pages, n = check_internal(proj / "site")
    assert problems == [], [str(p) for p in problems[:10]]
    assert pages > 10 and n > 100
    assert cli_main(["--root", str(proj), "check-links"]) == 0
    # Break one generated page: the check must notice.
    page = proj / "site" / "generated" / "papers" / "lin2019tsm.html"
    html = page.read_text(encoding="utf-8")
    assert 'href="../datasets/toyset.html"' in html and 'href="#sources"' in html
    html = html.replace('href="../datasets/toyset.html"', 'href="../datasets/nowhere.html"', 1)
    page.write_text(html.replace('href="#sources"', 'href="#no-such-heading"', 1), encoding="utf-8")
    capsys.readouterr()
    assert cli_main(["--root", str(proj), "check-links"]) == 1
    out = capsys.readouterr().out
    assert "generated/papers/lin2019tsm.html:\n" in out
    assert "../datasets/nowhere.html (no such page: generated/datasets/nowhere.html)" in out
    assert "#no-such-heading (missing anchor #no-such-heading)" in out
    assert "internal: 2 broken" in out


def test_internal_root_relative_links_and_base_path(tmp_path: Path) -> None:
    site = _site(tmp_path, broken=False)
    write(site / "404.html", """
        <html><body><a href="/kb/papers/">papers</a> <a href="/kb/">home</a>
        <a href="/elsewhere/">out</a> <a href="../../../etc/passwd">escape</a></body></html>
    """)
    problems, _, _ = check_internal(site, base_path="/kb/")
    assert {(p.href, p.reason) for p in problems} == {
        ("/elsewhere/", "outside the site's base path /kb/"),
        ("../../../etc/passwd", "points outside the site folder"),
        ("/assets/app.js", "outside the site's base path /kb/"),  # index.html's root link without /kb/
    }


def test_missing_site_is_a_usage_error(tmp_path: Path) -> None:
    assert cli_main(["--root", str(tmp_path), "check-links"]) == 2


# --------------------------------------------------------------------------------------------
# CLI: external check on a tiny data folder pointing at the local server
# --------------------------------------------------------------------------------------------


def test_cli_external_reports_file_line_and_field(server: LocalServer, tmp_path: Path, capsys) -> None:
    proj = make_project(tmp_path / "proj")
    n = 0

    def local(m: re.Match) -> str:
        nonlocal n
        n += 1
        return server.url(f"/ok/{n}")

    for f in (proj / "data").rglob("*.yaml"):
        f.write_text(re.sub(r"https?://[^\s\"']+", local, f.read_text(encoding="utf-8")), encoding="utf-8")
    paper = proj / "data" / "papers" / "lin2019tsm.yaml"
    text = paper.read_text(encoding="utf-8")
    text += f"links:\n- kind: project\n  url: {server.url('/missing')}\n- kind: blog\n  url: {server.url('/r301a')}\n"
    paper.write_text(text, encoding="utf-8")
    missing_line = text.splitlines().index(f"  url: {server.url('/missing')}") + 1
    config = write(tmp_path / "lc.toml", 'exclude = ["^https://arxiv\\\\.org/"]\ntimeout = 0.5\nretries = 0\n'
                   'delay = 0\n')
    out_json = tmp_path / "out.json"
    rc = cli_main(["--root", str(proj), "check-links", "--external", "--config", str(config),
                   "--cache", str(tmp_path / "c.json"), "--json", str(out_json)])
    out = capsys.readouterr().out
    assert rc == 1
    assert re.search(rf"data/papers/lin2019tsm\.yaml:{missing_line}\s+links\[0\]\.url\s+\S+/missing\s+\(HTTP 404", out)
    assert re.search(r"moved \(1\)\n\s+data/papers/lin2019tsm\.yaml:\d+\s+links\[1\]\.url\s+\S+/r301a", out)
    assert "1 broken, 1 moved" in out
    doc = json.loads(out_json.read_text())
    by_url = {r["url"]: r for r in doc["external"]["results"]}
    assert by_url[server.url("/missing")]["origins"][0] == {
        "file": "data/papers/lin2019tsm.yaml", "line": missing_line, "field": "links[0].url"}
    assert by_url["https://arxiv.org/abs/1811.08383"]["status"] == "excluded"
    assert doc["external"]["summary"]["ok"] >= 3
    assert all(r["status"] in ("ok", "excluded", "broken", "moved") for r in by_url.values())


# --------------------------------------------------------------------------------------------
# Hostile URLs and servers: one URL never stops the run, every request is bounded in time
# --------------------------------------------------------------------------------------------


def test_unusable_urls_and_redirects_are_broken_not_fatal(server: LocalServer) -> None:
    """An invalid port, a malformed host and redirects to mailto:, javascript: and data: each
    end as ``broken`` with a reason; the other URLs of the run are still checked."""
    urls = ["http://127.0.0.1:99999/x", "http://[::1/x", server.url("/to-mailto"), server.url("/to-javascript"),
            server.url("/to-data"), server.url("/to-bad-port"), server.url("/ok/after")]
    res = run(urls, fast_config())
    assert res[server.url("/ok/after")].status == "ok"
    assert res["http://127.0.0.1:99999/x"].status == "broken" and "invalid URL" in res["http://127.0.0.1:99999/x"].message
    assert res["http://[::1/x"].status == "broken" and "invalid URL" in res["http://[::1/x"].message
    for path, target in (("/to-mailto", "mailto:"), ("/to-javascript", "javascript:"), ("/to-data", "data:")):
        r = res[server.url(path)]
        assert r.status == "broken" and "non-HTTP" in r.message and target in r.message, (path, r)
        assert server.counts[path] == 1  # not retried
    bad = res[server.url("/to-bad-port")]
    assert bad.status == "broken" and "invalid" in bad.message and "99999" in bad.message


class _TrickleServer:
    """Answers every request with headers sent one line at a time, each pause shorter than the
    client's timeout, for about ``lines * pause`` seconds, then a valid empty 200."""

    def __init__(self, lines: int = 12, pause: float = 0.25):
        self.lines, self.pause = lines, pause
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                for i in range(self.lines):
                    time.sleep(self.pause)
                    conn.sendall(f"X-Slow-{i}: {i}\r\n".encode())
                conn.sendall(b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass  # the client gave up

    def close(self) -> None:
        self.sock.close()


def test_trickling_headers_are_cut_at_the_total_deadline() -> None:
    """Headers trickling for 3 s with a 1 s timeout: ``timeout``, not ``ok`` after 3 s."""
    srv = _TrickleServer()
    try:
        url = f"http://127.0.0.1:{srv.port}/slowly"
        r = run([url], fast_config(timeout=1.0, retries=0))[url]
        assert r.status == "timeout" and "within 1 s" in r.message, r
    finally:
        srv.close()


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe\x00garbage", b'{"urls": []}', b'{"urls": {"URL": 5}}',
                                     b'{"urls": {"URL": {"status": "ok", "checked_at": "yesterday"}}}', b"[1, 2]"])
def test_corrupt_cache_is_a_warning_and_is_rebuilt(server: LocalServer, tmp_path: Path, capsys, content: bytes) -> None:
    proj = make_project(tmp_path / "proj")
    for f in (proj / "data").rglob("*.yaml"):
        f.write_text(re.sub(r"https?://[^\s\"']+", server.url("/ok/x"), f.read_text(encoding="utf-8")), encoding="utf-8")
    cache = tmp_path / "links.json"
    cache.write_bytes(content.replace(b"URL", server.url("/ok/x").encode()))
    config = write(tmp_path / "lc.toml", 'exclude = ["^https://arxiv\\\\.org/"]\ntimeout = 0.5\nretries = 0\ndelay = 0\n')
    rc = cli_main(["--root", str(proj), "check-links", "--external", "--config", str(config), "--cache", str(cache)])
    err = capsys.readouterr().err
    assert rc == 0 and "Traceback" not in err
    assert f"link cache {cache} is unreadable" in err and "starting a new one" in err
    assert json.loads(cache.read_text())["urls"][server.url("/ok/x")]["status"] == "ok"  # rebuilt

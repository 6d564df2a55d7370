"""arXiv enrichment and `papers-kb add`, against a local server speaking arXiv's Atom format."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from werkzeug import Request, Response

from arxiv_feed import FeedEntry, feed
from conftest import REPO, make_project
from papers_kb.arxiv_client import BadArxivId, Fetcher, disagreements, make_key, parse_arxiv_id, Record
from papers_kb.catalog import load_catalog
from papers_kb.cli import main

TSM = FeedEntry("1811.08383", "TSM: Temporal Shift Module for Efficient Video Understanding",
                ["Ji Lin", "Chuang Gan", "Song Han"], version=3, comment="ICCV 2019",
                journal_ref="ICCV 2019")
VIVIT = FeedEntry("2103.15691", "ViViT: A Video Vision\n   Transformer",
                  ["Anurag Arnab", "Mostafa Dehghani", "Georg Heigold", "Chen Sun", "Mario Lučić", "Cordelia Schmid"],
                  published="2021-03-29T17:58:00Z", updated="2021-11-01T10:00:00Z", version=2,
                  doi="10.1109/ICCV48922.2021.00676")
OLD = FeedEntry("hep-th/9901001", "An Old-Style Identifier Paper", ["Jürgen Kühne"],
                published="1999-01-01T00:00:00Z", updated="1999-01-01T00:00:00Z", primary_category="hep-th",
                categories=["hep-th"])
ALL = {e.arxiv_id: e for e in (TSM, VIVIT, OLD)}


def ids_of(request: Request) -> list[str]:
    return [i for i in parse_qs(request.query_string.decode()).get("id_list", [""])[0].split(",") if i]


def serve_known(request: Request) -> Response:
    """Answer like arXiv: the known ids among those asked, in date order (not request order)."""
    wanted = [ALL[i] for i in ids_of(request) if i in ALL]
    wanted.sort(key=lambda e: e.published)
    return Response(feed(wanted, request.query_string.decode()), content_type="application/atom+xml")


@pytest.fixture
def arx(httpserver, monkeypatch, tmp_path):
    """Point the client at the local server, with no politeness delay and a short timeout."""
    monkeypatch.setenv("PAPERS_KB_ARXIV_URL", httpserver.url_for("/api/query") + "?{}")
    monkeypatch.setenv("PAPERS_KB_ARXIV_DELAY", "0")
    monkeypatch.setenv("PAPERS_KB_ARXIV_BACKOFF", "0.05")
    monkeypatch.setenv("PAPERS_KB_ARXIV_TIMEOUT", "1")
    monkeypatch.setenv("PAPERS_KB_ARXIV_RETRIES", "2")
    monkeypatch.setenv("PAPERS_KB_ARXIV_CACHE", str(tmp_path / "cache"))
    httpserver.clear()
    return httpserver


@pytest.mark.parametrize("text, expected", [
    ("1811.08383", ("1811.08383", None)),
    ("1811.08383v3", ("1811.08383", 3)),
    ("arXiv:1811.08383", ("1811.08383", None)),
    ("https://arxiv.org/abs/1811.08383", ("1811.08383", None)),
    ("https://arxiv.org/pdf/1811.08383v2.pdf", ("1811.08383", 2)),
    ("http://cn.arxiv.org/abs/1811.08383", ("1811.08383", None)),
    ("hep-th/9901001", ("hep-th/9901001", None)),
])
def test_accepted_id_forms(text, expected):
    assert parse_arxiv_id(text) == expected


@pytest.mark.parametrize("text", ["1811.8383", "1412.07670", "2013.00001", "tsm", "https://example.org/abs/1811.08383", "18110.08383", ""])
def test_refused_id_forms_list_the_accepted_ones(text):
    with pytest.raises(BadArxivId, match="accepted forms: 1811.08383, 1811.08383v3, arXiv:1811.08383"):
        parse_arxiv_id(text)


def test_add_writes_entry_and_refuses_second_time(project: Path, arx, capsys):
    arx.expect_request("/api/query").respond_with_handler(serve_known)
    t0 = time.perf_counter()
    assert main(["--root", str(project), "add", "https://arxiv.org/pdf/2103.15691v1.pdf", "--tag", "transformer"]) == 0
    elapsed = time.perf_counter() - t0
    out = capsys.readouterr().out
    assert "wrote data/papers/arnab2021vivit.yaml" in out and "ViViT: A Video Vision Transformer" in out
    cat = load_catalog(project / "data", root=project)
    p = cat.papers["arnab2021vivit"]
    assert p.title == "ViViT: A Video Vision Transformer"  # whitespace normalised
    assert p.authors[4] == "Mario Lučić" and p.year == 2021 and p.doi == "10.1109/ICCV48922.2021.00676"
    assert p.arxiv and p.arxiv.version == 2 and str(p.arxiv.published) == "2021-03-29"
    assert p.tags == ["transformer"] and p.venue_type == "preprint"
    text = (project / "data/papers/arnab2021vivit.yaml").read_text()
    assert "abstract" not in text and "An abstract" not in text  # abstract stays in the cache
    assert elapsed < 5
    # the cached abstract is shown on the paper page, not stored in data/
    from papers_kb.build import render_site

    render_site(project)
    page = (project / "site_src/generated/papers/arnab2021vivit.md").read_text()
    assert "## Abstract (from arXiv)" in page and "An abstract written for the tests." in page
    # again: refused with the existing entry's path, and no request needed
    n = len(arx.log)
    assert main(["--root", str(project), "add", "2103.15691"]) == 1
    assert "already in the catalog: data/papers/arnab2021vivit.yaml" in capsys.readouterr().err
    assert len(arx.log) == n


def test_add_same_title_under_other_id_refused(project: Path, arx, capsys):
    arx.expect_request("/api/query").respond_with_data(
        feed([FeedEntry("1901.00001", "TSM: Temporal Shift Module for Efficient Video Understanding", ["Ji Lin"])]))
    assert main(["--root", str(project), "add", "1901.00001"]) == 1
    assert "same title" in capsys.readouterr().err
    assert not (project / "data/papers/lin2019tsm.yaml").read_text().count("1901.00001")


def test_add_force_keeps_hand_written_fields(project: Path, arx, capsys):
    arx.expect_request("/api/query").respond_with_handler(serve_known)
    path = project / "data/papers/lin2019tsm.yaml"
    path.write_text(path.read_text() + "summary: Shift channels along time.  # hand-written\n")
    assert main(["--root", str(project), "add", "1811.08383", "--force"]) == 0
    text = path.read_text()
    assert "summary: Shift channels along time.  # hand-written" in text
    assert "journal_ref: ICCV 2019" in text and "version: 3" in text and "stage: 1" in text
    assert "updated data/papers/lin2019tsm.yaml" in capsys.readouterr().out


def test_add_dry_run_and_stage(project: Path, arx, capsys):
    arx.expect_request("/api/query").respond_with_handler(serve_known)
    assert main(["--root", str(project), "add", "hep-th/9901001", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "key: kuhne1999oldstyle" in out and "arxiv_id: hep-th/9901001" in out
    assert not (project / "data/papers/kuhne1999oldstyle.yaml").exists()
    assert main(["--root", str(project), "add", "hep-th/9901001", "--stage", "2"]) == 2
    assert "--stage needs --why" in capsys.readouterr().err
    assert main(["--root", str(project), "add", "hep-th/9901001", "--stage", "2", "--why", "For the tests."]) == 0
    cat = load_catalog(project / "data", root=project)
    assert cat.stage_item("kuhne1999oldstyle") == (2, 2)


@pytest.mark.parametrize("case", ["empty", "malformed", "wrong-id"])
def test_bad_answers_write_nothing(project: Path, arx, capsys, case):
    body = {"empty": feed([]), "malformed": b"<feed><entry>", "wrong-id": feed([VIVIT])}[case]
    arx.expect_request("/api/query").respond_with_data(body, content_type="application/atom+xml")
    before = sorted(p.name for p in (project / "data/papers").iterdir())
    assert main(["--root", str(project), "add", "2001.00001"]) in (1, 2)
    err = capsys.readouterr().err
    expected = {"empty": "arXiv has no record for 2001.00001", "malformed": "malformed response",
                "wrong-id": "answered with id(s) 2103.15691 that were not asked for"}[case]
    assert expected in err
    assert sorted(p.name for p in (project / "data/papers").iterdir()) == before


def test_503_then_success_is_retried(project: Path, arx, capsys):
    arx.expect_ordered_request("/api/query").respond_with_data("busy", status=503)
    arx.expect_ordered_request("/api/query").respond_with_handler(serve_known)
    assert main(["--root", str(project), "add", "2103.15691"]) == 0
    assert len(arx.log) == 2


def test_429_honours_retry_after(project: Path, arx, capsys):
    arx.expect_ordered_request("/api/query").respond_with_data("slow down", status=429, headers={"Retry-After": "1"})
    arx.expect_ordered_request("/api/query").respond_with_handler(serve_known)
    t0 = time.perf_counter()
    assert main(["--root", str(project), "add", "2103.15691"]) == 0
    assert time.perf_counter() - t0 >= 1.0  # waited as told, not the 0.05 s backoff


def test_persistent_503_gives_one_clear_line(project: Path, arx, capsys):
    arx.expect_request("/api/query").respond_with_data("down", status=503)
    assert main(["--root", str(project), "add", "2103.15691"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("arXiv could not be reached: HTTP 503") and "\n" not in err
    assert len(arx.log) == 3  # first try + 2 retries


def test_hung_server_times_out(project: Path, monkeypatch, tmp_path, capsys):
    """A server that accepts the connection and never answers (own socket, so the shared
    test server is not blocked)."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    monkeypatch.setenv("PAPERS_KB_ARXIV_URL", f"http://127.0.0.1:{port}/api/query?{{}}")
    monkeypatch.setenv("PAPERS_KB_ARXIV_TIMEOUT", "0.5")
    monkeypatch.setenv("PAPERS_KB_ARXIV_BACKOFF", "0.01")
    monkeypatch.setenv("PAPERS_KB_ARXIV_RETRIES", "1")
    monkeypatch.setenv("PAPERS_KB_ARXIV_DELAY", "0")
    monkeypatch.setenv("PAPERS_KB_ARXIV_CACHE", str(tmp_path / "c"))
    try:
        t0 = time.perf_counter()
        assert main(["--root", str(project), "add", "2103.15691"]) == 2
        assert "arXiv could not be reached: timed out" in capsys.readouterr().err
        assert time.perf_counter() - t0 < 5
    finally:
        srv.close()


def test_connection_refused(project: Path, monkeypatch, tmp_path, capsys):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    monkeypatch.setenv("PAPERS_KB_ARXIV_URL", f"http://127.0.0.1:{port}/api/query?{{}}")
    monkeypatch.setenv("PAPERS_KB_ARXIV_BACKOFF", "0.01")
    monkeypatch.setenv("PAPERS_KB_ARXIV_DELAY", "0")
    monkeypatch.setenv("PAPERS_KB_ARXIV_CACHE", str(tmp_path / "c"))
    assert main(["--root", str(project), "add", "2103.15691"]) == 2
    assert capsys.readouterr().err.startswith("arXiv could not be reached: connection failed")


def test_enrich_batches_and_caches(project: Path, arx, capsys):
    arx.expect_request("/api/query").respond_with_handler(serve_known)
    # one request for the known ids; TSM matched back although answers come in date order
    assert main(["--root", str(project), "enrich", "lin2019tsm"]) == 0
    assert len(arx.log) == 1
    assert ids_of(arx.log[0][0]) == ["1811.08383"]
    assert parse_qs(arx.log[0][0].query_string.decode())["max_results"] == ["1"]
    assert "version: 3" in (project / "data/papers/lin2019tsm.yaml").read_text()
    assert main(["--root", str(project), "enrich", "lin2019tsm"]) == 0
    assert len(arx.log) == 1  # second run: from the cache
    assert "with 0 request(s)" in capsys.readouterr().out


def test_enrich_check_reports_wrong_ids(project: Path, arx, capsys):
    wrong = FeedEntry("1811.08383", "Something Else Entirely", ["Someone Different"], published="2010-01-01T00:00:00Z")
    arx.expect_request("/api/query").respond_with_data(feed([wrong]))
    assert main(["--root", str(project), "enrich", "--check", "lin2019tsm"]) == 1
    out = capsys.readouterr().out
    assert "data/papers/lin2019tsm.yaml:1: title" in out and "first author" in out and "year 2019" in out


def test_disagreement_tolerances():
    from papers_kb.schema import Paper

    p = Paper(key="tran2015learning", title="Learning Spatiotemporal Features with 3D Convolutional Networks",
              aliases=["C3D: Generic Features for Video Analysis"], authors=["Du Tran"], year=2015)
    rec = Record("1412.0767", 4, "C3D: Generic Features for Video Analysis", ["Du Tran"], "2014-12-02", "2015-10-07",
                 "cs.CV", ["cs.CV"], None, None, None, "")
    assert disagreements(p, rec) == []


def test_make_key():
    assert make_key(["Ji Lin"], 2019, "TSM: Temporal Shift Module", set()) == "lin2019tsm"
    assert make_key(["Gedas Bertasius"], 2021, "Is Space-Time Attention All You Need?", set()) == "bertasius2021spacetime"
    assert make_key(["Ji Lin"], 2019, "TSM: x", {"lin2019tsm"}) == "lin2019tsmb"


def test_enrich_check_whole_knowledge_base(tmp_path, httpserver, monkeypatch, capsys):
    """A feed recorded from the confirmed facts of data/ (title, authors, first-version year)
    agrees with every entry, and the whole knowledge base costs one request per 100 ids."""
    proj = tmp_path / "kb"
    proj.mkdir()
    shutil.copytree(REPO / "data", proj / "data")
    cat = load_catalog(proj / "data", root=proj)
    entries = {}
    for p in cat.papers.values():
        if p.arxiv_id:
            year = p.arxiv.published.year if p.arxiv and p.arxiv.published else p.year or 2000
            entries[p.arxiv_id] = FeedEntry(p.arxiv_id, p.title, p.authors or ["Unknown Author"],
                                            published=f"{year}-01-01T00:00:00Z")

    def handler(request):
        asked = [entries[i] for i in ids_of(request) if i in entries]
        return Response(feed(sorted(asked, key=lambda e: e.published)), content_type="application/atom+xml")

    httpserver.expect_request("/api/query").respond_with_handler(handler)
    monkeypatch.setenv("PAPERS_KB_ARXIV_URL", httpserver.url_for("/api/query") + "?{}")
    monkeypatch.setenv("PAPERS_KB_ARXIV_DELAY", "0")
    monkeypatch.setenv("PAPERS_KB_ARXIV_CACHE", str(tmp_path / "cache"))
    assert main(["--root", str(proj), "enrich", "--check"]) == 0
    assert len(httpserver.log) == -(-len(entries) // 100)
    assert f"checked {len(entries)} entries against arXiv: 0 disagreement(s)" in capsys.readouterr().err


# --- hostile answers and faults: one line, bounded time, nothing lost -------------------------

import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402


def one_line(err: str) -> str:
    err = err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_redirect_loop_is_one_line(project: Path, arx, capsys):
    arx.expect_request("/api/query").respond_with_data("", status=302, headers={"Location": arx.url_for("/api/query")})
    before = sorted(p.name for p in (project / "data/papers").iterdir())
    assert main(["--root", str(project), "add", "2103.15691"]) == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith("arXiv could not be reached: too many redirects") and arx.url_for("/api/query") in err
    assert sorted(p.name for p in (project / "data/papers").iterdir()) == before


def test_feed_entry_with_a_non_arxiv_id_is_one_line(project: Path, arx, capsys):
    body = feed([VIVIT]).replace(b"<id>http://arxiv.org/abs/2103.15691v2</id>", b"<id>http://example.org/not-arxiv</id>")
    arx.expect_request("/api/query").respond_with_data(body, content_type="application/atom+xml")
    assert main(["--root", str(project), "add", "2103.15691"]) == 2
    err = one_line(capsys.readouterr().err)
    assert "'http://example.org/not-arxiv' is not an arXiv id" in err
    assert not (project / "data/papers/arnab2021vivit.yaml").exists()


class Trickler:
    """A raw HTTP server on 127.0.0.1 that sends a whole valid answer, a few bytes at a time
    (each pause shorter than the client's read timeout, so only a total deadline stops it)."""

    def __init__(self, body: bytes, pause: float = 0.25, pieces: int = 20):
        self.answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/atom+xml\r\n"
                       b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        self.pause, self.pieces = pause, pieces
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.served = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                self.served += 1
                step = -(-len(self.answer) // self.pieces)
                try:
                    for i in range(0, len(self.answer), step):
                        conn.sendall(self.answer[i:i + step])
                        time.sleep(self.pause)
                except OSError:
                    pass  # the client gave up

    def close(self) -> None:
        self.sock.close()


def test_trickling_server_is_cut_at_the_total_deadline(project: Path, monkeypatch, tmp_path, capsys):
    """A 5 s trickle with a 1 s timeout: the request ends at its deadline, not after the trickle."""
    srv = Trickler(feed([VIVIT]))
    monkeypatch.setenv("PAPERS_KB_ARXIV_URL", f"http://127.0.0.1:{srv.port}/api/query?{{}}")
    monkeypatch.setenv("PAPERS_KB_ARXIV_TIMEOUT", "1")
    monkeypatch.setenv("PAPERS_KB_ARXIV_RETRIES", "0")
    monkeypatch.setenv("PAPERS_KB_ARXIV_DELAY", "0")
    monkeypatch.setenv("PAPERS_KB_ARXIV_CACHE", str(tmp_path / "c"))
    try:
        assert main(["--root", str(project), "add", "2103.15691"]) == 2
        err = one_line(capsys.readouterr().err)
        assert err.startswith("arXiv could not be reached: timed out") and "within 1 s" in err
        assert not (project / "data/papers/arnab2021vivit.yaml").exists()
    finally:
        srv.close()


def test_long_retry_after_is_not_waited_in_silence(project: Path, arx, monkeypatch, capsys):
    arx.expect_request("/api/query").respond_with_data("slow down", status=429, headers={"Retry-After": "3600"})
    monkeypatch.setenv("PAPERS_KB_ARXIV_MAX_WAIT", "5")
    assert main(["--root", str(project), "add", "2103.15691"]) == 2
    err = one_line(capsys.readouterr().err)
    assert "HTTP 429" in err and "3600 s" in err and "5 s" in err
    assert len(arx.log) == 1


def test_short_retry_after_is_announced(project: Path, arx, capsys):
    arx.expect_ordered_request("/api/query").respond_with_data("slow down", status=429, headers={"Retry-After": "1"})
    arx.expect_ordered_request("/api/query").respond_with_handler(serve_known)
    assert main(["--root", str(project), "add", "2103.15691"]) == 0
    err = capsys.readouterr().err
    assert "HTTP 429" in err and "waiting 1 s" in err


def test_enrich_refuses_a_record_whose_title_and_first_author_disagree(project: Path, arx, capsys):
    wrong = FeedEntry("1811.08383", "Something Else Entirely", ["Someone Different"], doi="10.1000/other.1")
    arx.expect_request("/api/query").respond_with_data(feed([wrong]))
    path = project / "data/papers/lin2019tsm.yaml"
    before = path.read_text()
    assert main(["--root", str(project), "enrich", "lin2019tsm"]) == 1
    out = capsys.readouterr()
    assert "data/papers/lin2019tsm.yaml" in out.out + out.err and "--force" in out.out + out.err
    assert path.read_text() == before  # curated authors kept, no foreign DOI
    assert main(["--root", str(project), "enrich", "--force", "lin2019tsm"]) == 0
    assert "Someone Different" in path.read_text()


@pytest.mark.parametrize("command", ["enrich", "add"])
def test_a_doi_the_schema_rejects_is_never_written(project: Path, arx, capsys, command: str):
    bad = FeedEntry("1811.08383", TSM.title, TSM.authors, doi="10.1234/has space {brace}")
    other = FeedEntry("2001.00001", "A New Paper About Something", ["New Author"], doi="10.1234/x y",
                      published="2020-01-05T00:00:00Z", updated="2020-01-05T00:00:00Z")
    arx.expect_request("/api/query").respond_with_data(feed([bad if command == "enrich" else other]))
    args = ["enrich", "lin2019tsm"] if command == "enrich" else ["add", "2001.00001"]
    code = main(["--root", str(project), *args])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "is not a DOI" in err
    cat = load_catalog(project / "data", root=project)  # data/ is valid
    assert all(p.doi is None for p in cat.papers.values())
    assert code == 0


def test_add_stage_writes_both_files_or_neither_even_when_killed(project: Path, tmp_path):
    """``add --stage`` killed (SIGKILL) at each file operation in data/: afterwards data/ is
    valid, with the paper and its stage item both there or both absent."""
    cache = tmp_path / "cache"
    rec = Record("2103.15691", 2, "ViViT: A Video Vision Transformer", ["Anurag Arnab"], "2021-03-29", "2021-11-01",
                 "cs.CV", ["cs.CV"], None, None, None, "abstract")
    (cache / "records").mkdir(parents=True)
    (cache / "records/2103.15691.json").write_text(json.dumps(rec.__dict__))
    script = (
        "import os, signal, sys\n"
        "real, n = os.replace, [0]\n"
        "def replace(src, dst, *a, **k):\n"
        "    if '/data/' in os.fspath(dst):\n"
        "        n[0] += 1\n"
        "        if n[0] == int(sys.argv[1]):\n"
        "            os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(src, dst, *a, **k)\n"
        "os.replace = replace\n"
        "from papers_kb.cli import main\n"
        "sys.exit(main(sys.argv[2:]))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PAPERS_KB_ARXIV_CACHE": str(cache)}
    outcomes = []
    for kill_at in range(1, 8):
        proj = make_project(tmp_path / f"p{kill_at}")
        proc = subprocess.run([sys.executable, "-c", script, str(kill_at), "--root", str(proj), "add", "2103.15691",
                               "--stage", "2", "--why", "For the test."], env=env, capture_output=True, text=True)
        outcomes.append(proc.returncode)
        assert main(["--root", str(proj), "validate"]) == 0, (kill_at, proc.returncode)
        cat = load_catalog(proj / "data", root=proj)
        on_path = cat.stage_item("arnab2021vivit") is not None
        assert ("arnab2021vivit" in cat.papers) == on_path, kill_at
        assert not (proj / "data/.papers-kb-txn").exists()
    assert -signal.SIGKILL in outcomes and 0 in outcomes  # killed at every step, then one run finished


def test_concurrent_adds_with_colliding_keys_keep_both(project: Path, monkeypatch, capsys):
    """Two adds of different papers whose derived keys collide (same first author, year and
    first word), both fetching before either writes: the lock serialises the writes and the
    second one sees the first's key."""
    from papers_kb import arxiv_client

    recs = {
        "2001.00001": Record("2001.00001", 1, "Alpha Models For Video", ["Jane Doe"], "2020-01-01", "2020-01-01",
                             "cs.CV", ["cs.CV"], None, None, None, ""),
        "2001.00002": Record("2001.00002", 1, "Alpha Networks Again", ["Jane Doe"], "2020-01-02", "2020-01-02",
                             "cs.CV", ["cs.CV"], None, None, None, ""),
    }
    both_fetched = threading.Barrier(2, timeout=20)

    class SlowFetcher(arxiv_client.Fetcher):
        def fetch(self, ids, use_cache=True):
            out = {i: recs[i] for i in ids}
            both_fetched.wait()
            return out

    codes = {}

    def run(vid):
        codes[vid] = arxiv_client.add(project, vid, fetcher=SlowFetcher(cache_dir=project / ".cache"))

    threads = [threading.Thread(target=run, args=(v,)) for v in recs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert codes == {"2001.00001": 0, "2001.00002": 0}
    cat = load_catalog(project / "data", root=project)
    assert {p.arxiv_id for p in cat.papers.values()} >= set(recs)  # neither paper lost
    assert {"doe2020alpha", "doe2020alphab"} <= set(cat.papers)


def test_add_that_breaks_a_cross_check_is_taken_back(project: Path, arx, capsys):
    """Written, then the catalog does not validate (an unknown tag): both files are put back."""
    arx.expect_request("/api/query").respond_with_handler(serve_known)
    stages = (project / "data/stages.yaml").read_text()
    assert main(["--root", str(project), "add", "2103.15691", "--stage", "2", "--why", "x", "--tag", "no-such-tag"]) == 1
    assert "unknown tag 'no-such-tag'" in capsys.readouterr().err
    assert not (project / "data/papers/arnab2021vivit.yaml").exists()
    assert (project / "data/stages.yaml").read_text() == stages
    assert not (project / "data/.papers-kb-txn").exists()

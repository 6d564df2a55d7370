"""How long ``papers-kb serve`` takes to show an edited paper page, on the real catalog.

Copies the project (``mkdocs.yml``, hand-written pages, ``data/``, ``videozoo/`` sources) into
a temporary folder, starts ``papers-kb serve`` there on a free loopback port, waits for the
first build, then ``--edits`` times: rewrites the summary of one paper's YAML file with a new
marker and polls the served page (every 50 ms) until the marker appears. Prints the seconds
from the file write to the changed page for each edit, their median and maximum (goal of
issue 26: under 3 s), and the load average.

Usage: ``python scripts/bench_serve.py [--paper lin2019tsm] [--edits 5]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.read().decode("utf-8", "replace")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paper", default="lin2019tsm", help="paper key whose file is edited")
    ap.add_argument("--edits", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one change")
    ap.add_argument("--log", help="copy the server's log to this file")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    proc = None
    try:
        shutil.copy(REPO / "mkdocs.yml", work / "mkdocs.yml")
        shutil.copytree(REPO / "site_src", work / "site_src", ignore=shutil.ignore_patterns("generated"))
        shutil.copytree(REPO / "data", work / "data")
        shutil.copytree(REPO / "videozoo", work / "videozoo", ignore=shutil.ignore_patterns("__pycache__"))
        port = _free_port()
        log = open(work / "serve.log", "w")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "papers_kb.cli", "--root", str(work), "serve",
                                 "--addr", f"127.0.0.1:{port}"], env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/generated/papers/{args.paper}.html"  # use_directory_urls: false
        while _get(url) is None:
            if proc.poll() is not None or time.perf_counter() - t0 > 300:
                print((work / "serve.log").read_text()[-3000:], file=sys.stderr)
                return 1
            time.sleep(0.2)
        print(f"first build served after {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        time.sleep(2.0)  # let the watcher settle

        path = work / "data" / "papers" / f"{args.paper}.yaml"
        original = path.read_text(encoding="utf-8")
        times = []
        for i in range(args.edits):
            marker = f"Edit{i}Marker{int(time.time() * 1000)}"
            text = original.replace("summary: ", f"summary: {marker} ", 1)
            assert text != original, "the paper needs a summary field"
            start = time.perf_counter()
            path.write_text(text, encoding="utf-8")
            while True:
                page = _get(url)
                if page is not None and marker in page:
                    break
                if time.perf_counter() - start > args.timeout:
                    print((work / "serve.log").read_text()[-3000:], file=sys.stderr)
                    print(f"edit {i}: not shown after {args.timeout} s", file=sys.stderr)
                    return 1
                time.sleep(0.05)
            times.append(time.perf_counter() - start)
            print(f"edit {i + 1}: page changed after {times[-1]:.2f} s")
            time.sleep(1.5)  # let the follow-up rebuild (of the written Markdown) finish
        print(f"median {statistics.median(times):.2f} s, max {max(times):.2f} s over {len(times)} edits "
              f"(goal: < 3 s); load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if args.log and (work / "serve.log").exists():
            shutil.copy(work / "serve.log", args.log)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

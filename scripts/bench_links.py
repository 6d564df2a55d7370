"""Benchmark of the external link checker against ``linkchecker``, on loopback only.

1,000 distinct URLs spread over 20 loopback addresses (127.0.0.2 ... 127.0.0.21, one
asyncio server each, run in a child process), every answer delayed by 50 ms. Measures:

* papers-kb's checker (``papers_kb.links.LinkChecker``, default settings: per-host limit 4,
  global limit 32, 0.05 s politeness pause), in this process;
* ``linkchecker`` (PyPI ``linkchecker``, from the venv) as a subprocess on a local HTML page
  listing the 1,000 URLs with ``--check-extern``, once at its default thread count and once
  with ``-t 64``. A permissive ``robots.txt`` is served so that it checks every URL. Its
  start-up time (same command on a page without links) is measured and reported apart.

Prints URLs per second of each, the ratios ours/linkchecker, and the largest number of
requests each server saw in flight at once (per host), which must be <= 4 for ours.

Usage: ``python scripts/bench_links.py [--urls 1000] [--hosts 20] [--latency 0.05]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from papers_kb.links import LinkChecker, LinkConfig  # noqa: E402

ROBOTS = b"User-agent: *\nDisallow:\n"


def _serve(hosts: list[str], latency: float, conn) -> None:
    """Child process: one asyncio HTTP/1.1 server per address; reports ports through ``conn``."""

    inflight: dict[str, int] = {h: 0 for h in hosts}
    peak: dict[str, int] = {h: 0 for h in hosts}
    served: dict[str, int] = {h: 0 for h in hosts}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = writer.get_extra_info("sockname")[0]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = 0
                for ln in lines[1:]:
                    if ln.lower().startswith("content-length:"):
                        length = int(ln.split(":", 1)[1])
                if length:
                    await reader.readexactly(length)
                if path == "/robots.txt":
                    body, ctype = ROBOTS, "text/plain"
                elif path == "/__stats":
                    body, ctype = json.dumps({"peak": peak, "served": served}).encode(), "application/json"
                elif path == "/__reset":
                    for h in hosts:
                        peak[h] = 0
                        served[h] = 0
                    body, ctype = b"reset", "text/plain"
                else:
                    inflight[host] += 1
                    peak[host] = max(peak[host], inflight[host])
                    served[host] += 1
                    try:
                        await asyncio.sleep(latency)
                    finally:
                        inflight[host] -= 1
                    body, ctype = b"ok\n", "text/plain"
                out = (f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                       f"Connection: keep-alive\r\n\r\n").encode()
                writer.write(out if method == "HEAD" else out + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        servers = []
        port = 0
        for h in hosts:
            srv = await asyncio.start_server(handle, h, port, backlog=1024)
            port = srv.sockets[0].getsockname()[1]  # same port on every address
            servers.append(srv)
        conn.send(port)
        await asyncio.Event().wait()

    asyncio.run(main())


def _stats(hosts: list[str], port: int, reset: bool = False) -> dict:
    import httpx

    with httpx.Client(timeout=5) as c:
        if reset:
            c.get(f"http://{hosts[0]}:{port}/__reset")
            return {}
        return c.get(f"http://{hosts[0]}:{port}/__stats").json()


def run_ours(urls: list[str]) -> float:
    """Seconds for papers-kb's checker (defaults) to check ``urls``; all must be ok."""
    cfg = LinkConfig(user_agent="papers-kb-linkcheck/0.1 (benchmark)")
    t0 = time.perf_counter()
    res = asyncio.run(LinkChecker(cfg).check_urls(urls))
    dt = time.perf_counter() - t0
    bad = [r for r in res.values() if r.status != "ok"]
    if bad:
        raise SystemExit(f"ours: {len(bad)} URLs not ok, e.g. {bad[0]}")
    return dt


def run_linkchecker(page: Path, threads: int | None, expect: int) -> float:
    """Seconds for ``linkchecker --check-extern`` on ``page``.

    Its verbose CSV report (stdout) must list ``expect`` valid loopback URLs, so a run that
    stopped early (robots.txt, errors) is not timed as a success.
    """
    exe = shutil.which("linkchecker") or str(Path(sys.executable).with_name("linkchecker"))
    cmd = [exe, "--check-extern", "--no-status", "-v", "-o", "csv", "--timeout", "30"]
    if threads:
        cmd += ["-t", str(threads)]
    cmd.append(page.as_uri())
    env = dict(os.environ, HOME=str(page.parent))  # no user linkcheckerrc
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=170)
    dt = time.perf_counter() - t0
    rows = [ln.split(";") for ln in proc.stdout.splitlines() if ln.startswith("http://127.0.0.")]
    valid = {r[0] for r in rows if len(r) > 6 and r[6] == "True"}
    if len(valid) != expect:
        raise SystemExit(f"linkchecker found {len(valid)} valid of {expect} URLs (rc {proc.returncode}):\n"
                         f"{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--urls", type=int, default=1000)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--latency", type=float, default=0.05, help="server answer delay (s)")
    args = ap.parse_args()
    hosts = [f"127.0.0.{i}" for i in range(2, 2 + args.hosts)]
    parent, child = mp.Pipe()
    proc = mp.get_context("fork").Process(target=_serve, args=(hosts, args.latency, child), daemon=True)
    proc.start()
    try:
        port = parent.recv()
        urls = [f"http://{hosts[i % len(hosts)]}:{port}/page/{i}" for i in range(args.urls)]
        tmp = Path(tempfile.mkdtemp(prefix="bench-links-"))
        tmp.chmod(0o755)  # linkchecker run as root drops to user nobody, who must read the page
        page = tmp / "links.html"
        page.write_text("<!doctype html><html><body>\n" + "\n".join(f'<a href="{u}">{i}</a>' for i, u in
                                                                  enumerate(urls)) + "\n</body></html>\n")
        empty = tmp / "empty.html"
        empty.write_text("<!doctype html><html><body>no links</body></html>\n")
        print(f"{args.urls} URLs on {len(hosts)} hosts ({hosts[0]} ... {hosts[-1]}, port {port}), "
              f"{args.latency * 1000:.0f} ms per answer")

        rows = []
        _stats(hosts, port, reset=True)
        t = run_ours(urls)
        peaks = _stats(hosts, port)["peak"]
        rows.append(("papers-kb (per-host 4)", t, 0.0, max(peaks.values())))
        per_host = {"papers-kb": sorted(peaks.values())}

        startup = run_linkchecker(empty, None, 0)
        for label, threads in (("linkchecker (default threads)", None), ("linkchecker -t 64", 64)):
            _stats(hosts, port, reset=True)
            t = run_linkchecker(page, threads, args.urls)
            st = _stats(hosts, port)
            rows.append((label, t, startup, max(st["peak"].values())))
            per_host[label] = sorted(st["peak"].values())

        print(f"linkchecker start-up (page without links): {startup:.2f} s")
        print(f"{'checker':32} {'seconds':>8} {'URLs/s':>8} {'URLs/s excl. start-up':>22} {'max in flight/host':>19}")
        rates = {}
        for label, t, st0, peak in rows:
            rate = args.urls / t
            rate_x = args.urls / max(t - st0, 1e-9)
            rates[label] = (rate, rate_x)
            print(f"{label:32} {t:8.2f} {rate:8.1f} {rate_x:22.1f} {peak:19d}")
        ours = rates["papers-kb (per-host 4)"][0]
        for label in ("linkchecker (default threads)", "linkchecker -t 64"):
            r, rx = rates[label]
            print(f"ratio ours/{label}: {ours / r:.1f}x (vs its rate excluding start-up: {ours / rx:.1f}x)")
        for label, values in per_host.items():
            print(f"requests in flight at once, per host (sorted over the {len(values)} hosts), {label}: "
                  f"{' '.join(map(str, values))}")
        if rows[0][3] > 4:
            print(f"FAIL: our checker had {rows[0][3]} requests in flight on one host (limit 4)")
            sys.exit(1)
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        proc.terminate()
        proc.join(5)


if __name__ == "__main__":
    main()

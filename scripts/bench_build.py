"""Benchmark of ``papers-kb build`` at the scale of a field: the real catalog plus N papers.

For each N (default 1,000, 5,000 and 10,000) a project is made in a temporary folder:
``mkdocs.yml``, the hand-written pages of ``site_src/``, the real ``data/``, and N paper
entries copied from one real entry (``--template``, default ``feichtenhofer2019slowfast``)
under new keys, titles and arXiv ids, without its stage; each copy but the first relates
(``see-also``) to the copy before it, so that related papers and their back-links are
built for every page. Then, each in its own process:

(``videozoo/`` is copied too: the code pages show its model files.)

1. ``build``: the whole build (validate, render, ``mkdocs build --strict``) from scratch,
   as ``papers-kb build`` runs it, with its per-step times;
2. ``mkdocs``: a bare ``mkdocs build --strict`` of the same generated Markdown;
3. ``rerender``: validate and render again (``papers-kb render``) after one copied paper's
   summary changed: the counts say how many pages were rendered again (the MkDocs step of a
   second build is a full build again, as measured in 2).

Prints per-step times, validate time per entry, render time per generated page, MkDocs time
per page, the ratio of the whole build to the bare MkDocs build (both as process wall time,
interpreter start included), peak memory (``ru_maxrss`` of each process) and, over the N
measured, time(largest N) / time(smallest N) of the whole build. Goals (issue 26): validate
<= 1 ms per entry, render <= 2 ms per page, whole build <= 1.25x bare MkDocs at every N,
time(10k) / time(1k) <= 11.

Usage: ``python scripts/bench_build.py [--n 1000 5000 10000] [--repeat R] [--keep DIR] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_project(dest: Path, n: int, template: str = "feichtenhofer2019slowfast", repo: Path = REPO) -> int:
    """Write the synthetic project (real data + ``n`` copied papers) into ``dest``; returns the
    number of entry files written."""
    import yaml

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(repo / "mkdocs.yml", dest / "mkdocs.yml")
    shutil.copytree(repo / "site_src", dest / "site_src", ignore=shutil.ignore_patterns("generated"),
                    dirs_exist_ok=True)
    shutil.copytree(repo / "data", dest / "data", dirs_exist_ok=True)
    # the code pages show the videozoo model files named by data/reproduction/
    shutil.copytree(repo / "videozoo", dest / "videozoo", ignore=shutil.ignore_patterns("__pycache__"),
                    dirs_exist_ok=True)
    base = yaml.safe_load((repo / "data" / "papers" / f"{template}.yaml").read_text(encoding="utf-8"))
    for drop in ("stage", "doi", "citation_key", "related"):
        base.pop(drop, None)
    previous = None
    for i in range(n):
        entry = dict(base)
        key = f"syn{i:05d}{template}"
        entry["key"] = key
        entry["title"] = f"{base['title']} (synthetic copy {i})"
        if base.get("short_name"):
            entry["short_name"] = f"{base['short_name']} #{i}"
        # new arXiv ids of the entry's year (numbers 90000+ in December, then November ...: no
        # month of that year had that many submissions, so no real id is reused)
        yy = (base.get("year") or 2019) % 100
        entry["arxiv_id"] = f"{yy:02d}{12 - i // 10000:02d}.{90000 + i % 10000:05d}"
        if previous:
            entry["related"] = [{"paper": previous, "kind": "see-also"}]
        (dest / "data" / "papers" / f"{key}.yaml").write_text(
            yaml.safe_dump(entry, sort_keys=False, allow_unicode=True), encoding="utf-8")
        previous = key
    return n


def _worker_build(root: Path, site: Path | None) -> None:
    """Child process: the whole build, as ``papers-kb build`` runs it (without ``site``: only
    validate and render, as ``papers-kb render``); prints JSON."""
    from papers_kb.build import build_site, render_site
    from papers_kb.catalog import CatalogError

    try:
        rep = build_site(root, site) if site else render_site(root)
    except CatalogError as exc:
        sys.exit(exc.report())
    c = rep.catalog.counts()
    entries = sum(c[k] for k in ("papers", "datasets", "repos", "results", "resources", "stages", "tags"))
    print(json.dumps({"seconds": rep.seconds, "pages": rep.pages, "entries": entries,
                      "papers": c["papers"], "rendered": len(rep.render.rendered),
                      "unchanged": rep.render.unchanged, "removed": len(rep.render.removed),
                      "written": len(rep.render.written), "make_seconds": rep.render.make_seconds}))


def _measure(cmd: list[str], cwd: Path) -> dict:
    """Run ``cmd`` (in ``cwd``) through a ``--measure`` helper process, which waits for it
    with ``os.wait4``: the peak memory reported is that command's own. Returns the JSON of
    the command's last output line with ``wall`` (s) and ``maxrss_mib`` added."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, __file__, "--measure", "--", *cmd], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _measure_child(cmd: list[str]) -> None:
    """Helper process: run ``cmd``; print its last output line (JSON) with wall time and peak memory."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        sys.stderr.write(errors)
        sys.exit(proc.returncode or 1)
    try:
        data = json.loads(text.strip().splitlines()[-1]) if text.strip() else {}
    except json.JSONDecodeError:
        data = {}
    data.update(wall=wall, maxrss_mib=usage.ru_maxrss / 1024)
    print(json.dumps(data))


def bench(n: int, workdir: Path, template: str, repeat: int = 1) -> dict:
    """Make the project for ``n`` papers under ``workdir`` and measure build, bare MkDocs and re-render.

    With ``repeat`` > 1 the (cold) build and the bare MkDocs build run that many times,
    alternately, and the fastest run of each is kept (the machine is shared).
    """
    root = workdir / f"n{n}"
    t0 = time.perf_counter()
    make_project(root, n, template)
    made = time.perf_counter() - t0
    py = sys.executable
    builds, bares = [], []
    for _ in range(repeat):
        for cold in (root / "site_src" / "generated", root / ".cache", root / "site"):
            shutil.rmtree(cold, ignore_errors=True)
        builds.append(_measure([py, __file__, "--worker-build", str(root), str(root / "site")], root))
        bares.append(_measure([py, "-m", "mkdocs", "build", "--strict", "--quiet", "-f", str(root / "mkdocs.yml"),
                               "-d", str(root / "site-bare")], root))
        shutil.rmtree(root / "site-bare", ignore_errors=True)
    build = min(builds, key=lambda m: m["wall"])
    bare = min(bares, key=lambda m: m["wall"])
    build["walls"], bare["walls"] = [m["wall"] for m in builds], [m["wall"] for m in bares]
    # one paper edited: its page (and the pages that show its summary) are rendered again
    edited = root / "data" / "papers" / f"syn{n // 2:05d}{template}.yaml"
    edited.write_text(edited.read_text(encoding="utf-8").replace("summary: ", "summary: Edited. ", 1),
                      encoding="utf-8")
    rerender = _measure([py, __file__, "--worker-build", str(root), "-"], root)
    return {"n": n, "make_s": made, "build": build, "bare_mkdocs": bare, "rerender": rerender}


def report(rows: list[dict]) -> str:
    lines = []
    head = (f"{'N':>6} {'papers':>6} {'pages':>6} | {'validate s':>10} {'ms/entry':>8} | {'render s':>8} "
            f"{'ms/page':>7} | {'mkdocs s':>8} {'ms/page':>7} | {'build s':>8} {'bare s':>7} {'ratio':>5} | "
            f"{'peak MiB':>8} {'bare MiB':>8}")
    lines += [head, "-" * len(head)]
    for r in rows:
        b, m = r["build"], r["bare_mkdocs"]
        s = b["seconds"]
        lines.append(
            f"{r['n']:>6} {b['papers']:>6} {b['pages']:>6} | {s['validate']:>10.2f} "
            f"{1000 * s['validate'] / b['entries']:>8.3f} | {s['render']:>8.2f} {1000 * s['render'] / b['pages']:>7.3f} | "
            f"{s['mkdocs']:>8.2f} {1000 * s['mkdocs'] / b['pages']:>7.2f} | {b['wall']:>8.2f} {m['wall']:>7.2f} "
            f"{b['wall'] / m['wall']:>5.2f} | {b['maxrss_mib']:>8.0f} {m['maxrss_mib']:>8.0f}")
    if any(len(r["build"].get("walls", [])) > 1 for r in rows):
        lines.append("runs (s, fastest kept): " + "; ".join(
            f"N={r['n']} build {', '.join(f'{w:.1f}' for w in r['build']['walls'])} / bare "
            f"{', '.join(f'{w:.1f}' for w in r['bare_mkdocs']['walls'])}" for r in rows))
    lines.append("")
    lines.append("render step broken down (s): making Markdown / SVG charts (matplotlib, a constant) / BibTeX "
                 "files; the rest (views, input digests, writing files); ms per page without the charts")
    for r in rows:
        b = r["build"]
        mk = b.get("make_seconds", {})
        md, svg, bib = mk.get(".md", 0.0), mk.get(".svg", 0.0), mk.get(".bib", 0.0)
        rest = b["seconds"]["render"] - md - svg - bib
        lines.append(f"  N={r['n']}: md {md:.2f}, svg {svg:.2f}, bib {bib:.2f}, rest {rest:.2f}; "
                     f"{1000 * (b['seconds']['render'] - svg) / b['pages']:.3f} ms/page without the charts")
    lines.append("")
    lines.append("papers-kb render again after one paper's summary changed (incremental):")
    for r in rows:
        rb = r["rerender"]
        s = rb["seconds"]
        lines.append(f"  N={r['n']}: {rb['rendered']} rendered ({rb['written']} written), {rb['unchanged']} unchanged, "
                     f"{rb['removed']} removed; validate {s['validate']:.2f} s, render {s['render']:.2f} s, "
                     f"process {rb['wall']:.2f} s, peak {rb['maxrss_mib']:.0f} MiB")
    if len(rows) > 1:
        lo, hi = rows[0], rows[-1]
        lines.append("")
        lines.append(f"time(N={hi['n']}) / time(N={lo['n']}) of the whole build: "
                     f"{hi['build']['wall'] / lo['build']['wall']:.2f} "
                     f"(papers {hi['build']['papers']} / {lo['build']['papers']} = "
                     f"{hi['build']['papers'] / lo['build']['papers']:.2f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--worker-build":
        _worker_build(Path(argv[1]), None if argv[2] == "-" else Path(argv[2]))
        return 0
    if argv and argv[0] == "--measure":
        _measure_child(argv[2:] if argv[1:2] == ["--"] else argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 5000, 10000], help="synthetic papers added")
    ap.add_argument("--template", default="feichtenhofer2019slowfast", help="real paper entry to copy")
    ap.add_argument("--keep", help="make the projects in this folder and keep them (default: a temp folder)")
    ap.add_argument("--json", help="also write the measurements to this JSON file")
    ap.add_argument("--repeat", type=int, default=1, help="runs of the build and of bare MkDocs (fastest kept)")
    args = ap.parse_args(argv)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-build-"))
    rows = []
    try:
        for n in args.n:
            print(f"N={n} ...", file=sys.stderr, flush=True)
            rows.append(bench(n, work, args.template, args.repeat))
            if not args.keep:
                shutil.rmtree(work / f"n{n}", ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(report(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{os.cpu_count()} CPUs; peak memory is ru_maxrss of each process", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

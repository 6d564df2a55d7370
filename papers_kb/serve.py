"""``papers-kb serve``: MkDocs' development server, re-rendering the pages of edited entries.

The server watches ``data/`` and the hand-written pages of ``site_src/`` (:func:`on_serve`).
Before each (re)build, the MkDocs hook :func:`on_pre_build` of this file validates ``data/``
and renders incrementally (only the pages whose inputs changed are rendered and written, see
:func:`papers_kb.render.write_specs`); the server then builds dirty (MkDocs' ``--dirty``: only
pages whose Markdown changed are built again; a page that includes a snippet written by the
render, a chart or the home page's counts, is built again too, see :func:`on_files`) and the
browser reloads. A validation error is logged with every problem, and the pages stay as they
were until the data is fixed.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.papers_kb")

_SNIPPETS = "/.snippets/"
_includers: set[str] = set()  # pages (paths under docs_dir) that include a snippet written this build


def on_pre_build(config: Any, **kwargs: Any) -> None:
    """MkDocs hook: render the generated pages of the project whose ``mkdocs.yml`` is served."""
    from papers_kb.build import render_site
    from papers_kb.catalog import CatalogError

    root = Path(config.config_file_path).resolve().parent
    try:
        rep = render_site(root)
    except CatalogError as exc:
        log.error("papers-kb: pages not updated, data/ has problems:\n%s", exc.report())
        return
    r = rep.render
    _includers.clear()
    snippets = [path.split(_SNIPPETS, 1)[1] for path in r.written if _SNIPPETS in path]
    if snippets:
        _includers.update(including_pages(Path(config.docs_dir), snippets))
    log.info("papers-kb: %d rendered (%d written), %d unchanged, %d removed in %.2f s (validate %.2f s)",
             len(r.rendered), len(r.written), r.unchanged, len(r.removed), rep.seconds["render"], rep.seconds["validate"])


def including_pages(docs: Path, snippets: list[str]) -> list[str]:
    """Markdown pages under ``docs`` (paths relative to it, ``/``-separated) with a
    pymdownx.snippets line including one of ``snippets`` (``charts/x.svg``, ``home.md``)."""
    quoted = [f'"{name}"' for name in snippets]
    out = []
    for dirpath, dirnames, names in os.walk(docs):
        dirnames[:] = [d for d in dirnames if d != ".snippets"]
        for name in names:
            if name.endswith(".md"):
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                if "--8<--" in text and any(q in text for q in quoted):
                    out.append(os.path.relpath(path, docs).replace(os.sep, "/"))
    return sorted(out)


def on_files(files: Any, config: Any, **kwargs: Any) -> Any:
    """MkDocs hook: a dirty build rebuilds only pages whose Markdown is newer than their HTML;
    remove the HTML of pages that include a snippet the render just wrote, so they are built
    again with it."""
    for f in files:
        if f.src_uri in _includers and os.path.isfile(f.abs_dest_path):
            os.unlink(f.abs_dest_path)
    return files


def on_serve(server: Any, config: Any, builder: Any, **kwargs: Any) -> Any:
    """MkDocs hook: watch the hand-written pages but not ``site_src/generated/``, which the
    pre-build hook writes (a watch there would start a second build after each edit)."""
    from papers_kb.render import GENERATED

    docs = Path(config.docs_dir)
    server.unwatch(str(docs))
    server.watch(str(docs), recursive=False)  # index.md, about.md ...
    for child in sorted(docs.iterdir()):
        if child.is_dir() and child.name != GENERATED:
            server.watch(str(child))
    return server


def serve(root: Path | str, addr: str = "127.0.0.1:8000") -> int:
    """Serve the site of ``root`` at ``addr`` until interrupted; returns the exit status.

    Runs in ``root`` (paths in ``mkdocs.yml`` are relative to it). The site is not
    ``--strict`` here: MkDocs warns of dirty builds, and a preview should show pages
    despite warnings (``papers-kb build`` is strict).
    """
    from mkdocs.commands.serve import serve as mkdocs_serve

    root = Path(root).resolve()
    logger = logging.getLogger("mkdocs")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)-7s -  %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    with contextlib.chdir(root):
        mkdocs_serve(config_file=str(root / "mkdocs.yml"), livereload=True, build_type="dirty",
                     watch=[str(root / "data")], dev_addr=addr, hooks=[str(Path(__file__).resolve())],
                     strict=False)
    return 0

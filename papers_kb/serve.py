"""``papers-kb serve``: MkDocs' development server, re-rendering the pages of edited entries.

The server watches ``data/`` and the hand-written pages of ``site_src/`` (:func:`on_serve`).
Before each (re)build, the MkDocs hook :func:`on_pre_build` of this file validates ``data/``
and renders incrementally (only the pages whose inputs changed are rendered and written, see
:func:`papers_kb.render.write_specs`); the server then builds dirty (MkDocs' ``--dirty``: only pages whose Markdown changed are
built again) and the browser reloads. A validation error is logged with every problem, and
the pages stay as they were until the data is fixed.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.papers_kb")


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
    log.info("papers-kb: %d rendered (%d written), %d unchanged, %d removed in %.2f s (validate %.2f s)",
             len(r.rendered), len(r.written), r.unchanged, len(r.removed), rep.seconds["render"], rep.seconds["validate"])


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

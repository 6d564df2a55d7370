"""Validate + render + ``mkdocs build``: the site from ``data/`` in one call.

Nothing is half-written: a validation error stops before any file is touched, and MkDocs
builds into a temporary folder that replaces ``site/`` only when the build succeeded.
The site generator never imports torch or videozoo.

The site folder is replaced wholesale, so the build refuses one it did not make (see
:func:`check_site_dir`): every build leaves a marker file, ``.papers-kb-site``, in its output.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from papers_kb.catalog import Catalog, load_catalog
from papers_kb.files import atomic_write
from papers_kb.render import CACHE_FILE, RenderReport, page_specs, write_specs

SITE_MARKER = ".papers-kb-site"


class SiteDirError(RuntimeError):
    """The site folder must not be (re)placed by a build; the message says why (one line)."""


def check_site_dir(root: Path | str, site: Path | str) -> Path:
    """Refuse a site folder whose replacement would lose something; returns it resolved.

    Accepted: a folder that does not exist yet (its parent must), an empty folder, or a folder
    holding the marker file (``.papers-kb-site``) that every build writes.

    Raises:
        SiteDirError: the parent is missing; the folder is the project root or holds it, is
            ``data/`` or ``.git`` or lies inside them, holds ``data/`` or ``.git``, is not a
            folder, or has files and no marker (not made by ``papers-kb build``).
    """
    root = Path(root).resolve()
    site = Path(site).resolve()
    data = (root / "data").resolve()

    def refuse(why: str) -> SiteDirError:
        return SiteDirError(f"build: refusing --site {site}: {why}")

    if not site.parent.is_dir():
        raise SiteDirError(f"build: --site {site}: parent folder {site.parent} does not exist")
    if root == site or root.is_relative_to(site):
        raise refuse("it is the project folder or holds it")
    if site.is_relative_to(data):
        raise refuse("it is data/ or inside it")
    if ".git" in site.parts:
        raise refuse("it is inside a .git folder")
    if site.exists() and not site.is_dir():
        raise refuse("it is not a folder")
    if site.is_dir():
        for name in ("data", ".git"):
            if (site / name).exists():
                raise refuse(f"it holds {name}/")
        if any(site.iterdir()) and not (site / SITE_MARKER).is_file():
            raise refuse(f"it has files and no {SITE_MARKER} marker, so no papers-kb build made it; "
                         "empty or remove it, or choose another folder")
    return site


@dataclass
class BuildReport:
    """Counts and timings (seconds) of a build."""

    catalog: Catalog
    render: RenderReport
    pages: int
    seconds: dict[str, float] = field(default_factory=dict)
    site_dir: Path | None = None


def page_producers() -> dict:
    """Extra page producers run during rendering (charts, BibTeX downloads), as page specs."""
    from papers_kb.charts import leaderboard_chart_specs, lesson_chart_specs

    from papers_kb.bibtex import bib_download_specs

    return {"charts": leaderboard_chart_specs, "lessons": lesson_chart_specs, "bib": bib_download_specs}


def cached_abstracts(root: Path) -> dict[str, str]:
    """Abstracts kept in the local arXiv cache by ``papers-kb enrich``/``add`` (no network)."""
    import os

    from papers_kb.arxiv_client import load_cached_abstracts

    return load_cached_abstracts(root / os.environ.get("PAPERS_KB_ARXIV_CACHE", ".cache/arxiv"))


def site_source_url(root: Path) -> str | None:
    """``[tool.papers-kb.site] source-url`` of ``root/pyproject.toml`` (where the repository's
    files can be browsed), or ``None`` when it is not set."""
    import tomllib

    try:
        conf = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    value = conf.get("tool", {}).get("papers-kb", {}).get("site", {}).get("source-url")
    return value if isinstance(value, str) and value.startswith("https://") else None


def render_site(root: Path | str = ".", incremental: bool = True) -> BuildReport:
    """Validate ``data/`` and write the generated Markdown under ``site_src/generated/``.

    With ``incremental`` (the default) only pages whose inputs changed since the last
    render are rendered again (the record is kept in ``.cache/render/``); the report's
    ``render.rendered`` / ``render.unchanged`` / ``render.removed`` say what happened.

    Raises:
        CatalogError: with every validation problem; nothing is written then.
    """
    root = Path(root).resolve()
    t0 = time.perf_counter()
    cat = load_catalog(root / "data", root=root)
    t1 = time.perf_counter()
    specs = page_specs(cat, extra=page_producers(), abstracts=cached_abstracts(root), source_url=site_source_url(root))
    report = write_specs(specs, root / "site_src", root / CACHE_FILE if incremental else None)
    t2 = time.perf_counter()
    return BuildReport(cat, report, len(specs), {"validate": t1 - t0, "render": t2 - t1})


def mkdocs_build(root: Path | str = ".", site_dir: Path | str | None = None, strict: bool = True) -> Path:
    """Run ``mkdocs build`` (``--strict`` by default) into ``site_dir`` atomically.

    Raises:
        SiteDirError: ``site_dir`` is a folder the build must not replace (see
            :func:`check_site_dir`); nothing is written then.
        RuntimeError: when MkDocs aborts (in strict mode, on any warning); ``site_dir`` is
            then left as it was.
    """
    from mkdocs.commands.build import build as _mk_build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort, ConfigurationError

    root = Path(root).resolve()
    site = check_site_dir(root, site_dir if site_dir else root / "site")
    tmp = Path(tempfile.mkdtemp(prefix=".site-", dir=site.parent))
    collected: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            collected.append(f"{record.levelname}: {record.getMessage()}")

    logger = logging.getLogger("mkdocs")
    handler = _Collect(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        # Paths in mkdocs.yml (docs_dir, snippet base_path) are relative to the project root.
        with contextlib.chdir(root):
            cfg = load_config(config_file=str(root / "mkdocs.yml"), strict=strict, site_dir=str(tmp))
            _mk_build(cfg)
    except (Abort, ConfigurationError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError("\n".join([*collected, f"mkdocs build failed: {exc}"])) from exc
    except Exception as exc:  # markdown extensions raise their own errors (missing snippet ...)
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"mkdocs build failed: {type(exc).__name__}: {exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        logger.removeHandler(handler)
    atomic_write(tmp / SITE_MARKER, "Made by `papers-kb build`; the next build replaces this whole folder.\n")
    old = None
    if site.exists():
        # moved aside under a fresh name (never a fixed one such as site.old: it may be the user's)
        old = Path(tempfile.mkdtemp(prefix=".site-old-", dir=site.parent))
        site.rename(old / site.name)
    tmp.rename(site)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return site


def build_site(root: Path | str = ".", site_dir: Path | str | None = None, strict: bool = True) -> BuildReport:
    """Validate, render and build the static site; returns counts and step timings.

    Raises:
        SiteDirError: before anything is written, for a site folder the build must not replace.
        CatalogError: with every validation problem; nothing is written then.
        RuntimeError: when MkDocs fails; the previous site is kept.
    """
    check_site_dir(root, site_dir if site_dir else Path(root) / "site")
    report = render_site(root)
    t0 = time.perf_counter()
    report.site_dir = mkdocs_build(root, site_dir, strict)
    report.seconds["mkdocs"] = time.perf_counter() - t0
    return report

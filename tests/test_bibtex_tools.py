"""The BibTeX export through the real tools: ``bibtex``, ``biber`` and ``pdflatex``.

Hostile entries (unbalanced braces, every LaTeX special, a newline and ``@misc{`` inside a
field, a corporate author holding "and") and the whole catalog's export must give 0 errors and
lose no entry, and a document citing the whole BibLaTeX export (``\\nocite{*}``) must compile.
Skipped, with the reason, where the Debian packages texlive-binaries, biber, texlive-latex-base,
texlive-bibtex-extra and texlive-latex-recommended (biblatex needs its etoolbox) are not
installed (``.ci/run`` installs them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO
from papers_kb.bibtex import bib_name, encode, export_bibtex, write
from papers_kb.catalog import load_catalog
from papers_kb.schema import Paper

TOOLS = {t: shutil.which(t) for t in ("bibtex", "biber", "pdflatex")}
INSTALL = ("Debian: apt-get install texlive-binaries biber texlive-latex-base texlive-bibtex-extra "
           "texlive-latex-recommended")
needs = {t: pytest.mark.skipif(not path, reason=f"{t} not installed ({INSTALL})") for t, path in TOOLS.items()}


def _tex_file(name: str) -> bool:
    kpsewhich = shutil.which("kpsewhich")
    return bool(kpsewhich) and subprocess.run([kpsewhich, name], capture_output=True).returncode == 0


needs["biblatex"] = pytest.mark.skipif(
    not (TOOLS["pdflatex"] and _tex_file("biblatex.sty") and _tex_file("etoolbox.sty")),
    reason=f"biblatex.sty or etoolbox.sty not installed ({INSTALL})")

HOSTILE = [
    Paper(key="evil2020braces", title="A {unbalanced title: A^2-Nets ~ \\ } and } more { 50% #1 & $x$ _u_ <i> |\n@misc{x,",
          authors=["Google Research and DeepMind", "Mario Lučić", "Van Gool, Luc", "OpenAI", "Meta AI", "Ann {Brace"],
          year=2020, venue="TPAMI", venue_type="journal", volume="12}\n@misc{x,", number="3{", pages="1-2}%",
          doi="10.1007/978-3-030-01216-8_43"),
    Paper(key="evil2021venue", title="Venue {with} } braces", authors=["Ji Lin"], year=2021, venue="Conf {on} } Stuff\\",
          venue_type="conference", pages="5--9 }", arxiv_id="1811.08383"),
    Paper(key="next2021entry", title="The Entry After", authors=["Song Han"], year=2021, arxiv_id="2103.15691"),
]


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


def bibtex_run(tmp: Path, text: str) -> tuple[str, str]:
    """``bibtex`` with the plain style over ``text`` citing every entry: (.blg, .bbl)."""
    (tmp / "refs.bib").write_text(text, encoding="utf-8")
    (tmp / "doc.aux").write_text("\\relax\n\\citation{*}\n\\bibstyle{plain}\n\\bibdata{refs}\n")
    proc = run(["bibtex", "doc"], tmp)
    blg = (tmp / "doc.blg").read_text(encoding="utf-8", errors="replace")
    assert proc.returncode in (0, 1), blg  # 1: warnings only
    return blg, (tmp / "doc.bbl").read_text(encoding="utf-8", errors="replace")


def biblatex_run(tmp: Path, text: str) -> tuple[str, str, str]:
    """pdflatex + biber + pdflatex on a document citing every entry: (biber .blg, .bbl, .log)."""
    (tmp / "refs.bib").write_text(text, encoding="utf-8")
    (tmp / "doc.tex").write_text("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n"
                                 "\\usepackage[backend=biber]{biblatex}\n\\addbibresource{refs.bib}\n"
                                 "\\begin{document}\n\\nocite{*}\n\\printbibliography\n\\end{document}\n")
    first = run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc"], tmp)
    assert first.returncode == 0, first.stdout[-3000:]
    proc = run(["biber", "doc"], tmp)
    blg = (tmp / "doc.blg").read_text(encoding="utf-8", errors="replace")
    assert proc.returncode == 0, blg[-3000:]
    second = run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc"], tmp)
    log = (tmp / "doc.log").read_text(encoding="utf-8", errors="replace")
    assert second.returncode == 0, "\n".join(l for l in log.splitlines() if l.startswith("!"))[:3000]
    return blg, (tmp / "doc.bbl").read_text(encoding="utf-8", errors="replace"), log


def test_encoding_keeps_braces_balanced() -> None:
    for text in ("a { b", "a } b", "\\", "A^2 ~ x", "{}}{"):
        for biblatex in (False, True):
            out = encode(text, biblatex)
            depth = 0
            for c in out:
                depth += {"{": 1, "}": -1}.get(c, 0)
                assert depth >= 0, out
            assert depth == 0, out
    assert encode("A^2-Nets", biblatex=True) == "A\\textasciicircum{}2-Nets"
    assert bib_name("Google Research and DeepMind", False) == "{Google Research and DeepMind}"
    assert bib_name("Meta AI", True) == "{Meta AI}"
    assert bib_name("Mario Lučić", True) == "Lučić, Mario"
    entry = write(HOSTILE[:1])
    for field in ("volume", "number", "pages"):
        value = re.search(rf"^  {field} = (.*)$", entry, re.M).group(1)
        assert value.startswith("{") and value.endswith("},") and "\n" not in value, (field, value)


@needs["bibtex"]
def test_bibtex_reads_hostile_entries_without_errors(tmp_path: Path) -> None:
    blg, bbl = bibtex_run(tmp_path, write(HOSTILE))
    assert "error message" not in blg, blg
    assert sorted(re.findall(r"\\bibitem\{([^}]*)\}", bbl)) == sorted(p.key for p in HOSTILE)  # none swallowed
    assert "Google Research and DeepMind" in bbl  # one corporate author, not two garbled persons


@needs["biber"]
@needs["biblatex"]
def test_biber_and_pdflatex_read_hostile_entries(tmp_path: Path) -> None:
    blg, bbl, log = biblatex_run(tmp_path, write(HOSTILE, biblatex=True))
    assert "ERROR" not in blg, blg
    assert sorted(re.findall(r"\\entry\{([^}]*)\}", bbl)) == sorted(p.key for p in HOSTILE)
    assert "{Google Research and DeepMind}" in bbl or "Google Research and DeepMind" in bbl


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(REPO / "data", root=REPO)


@needs["bibtex"]
def test_bibtex_reads_the_whole_catalog(tmp_path: Path, catalog) -> None:
    blg, bbl = bibtex_run(tmp_path, export_bibtex(catalog))
    assert "error message" not in blg, blg
    assert len(re.findall(r"\\bibitem\{", bbl)) == len(catalog.papers)


@needs["biber"]
@needs["biblatex"]
def test_pdflatex_compiles_the_whole_biblatex_export(tmp_path: Path, catalog) -> None:
    blg, bbl, log = biblatex_run(tmp_path, export_bibtex(catalog, biblatex=True))
    assert "ERROR" not in blg, blg
    assert len(re.findall(r"\\entry\{", bbl)) == len(catalog.papers)
    assert "Output written on doc.pdf" in log

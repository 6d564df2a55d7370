"""The whole build: validate -> render -> mkdocs --strict, and nothing written on errors."""

from __future__ import annotations

from pathlib import Path

from conftest import write
from papers_kb.cli import main


def test_build_produces_the_site(project: Path, capsys) -> None:
    assert main(["--root", str(project), "build"]) == 0
    site = project / "site"
    assert (site / "index.html").is_file()
    for n in range(1, 5):
        assert (site / f"generated/stages/stage-{n}/index.html").is_file()
    assert (site / "generated/papers/lin2019tsm/index.html").is_file()
    assert (site / "generated/datasets/toyset/index.html").is_file()
    home = (site / "index.html").read_text()
    assert "Stage 1: CNNs" in home  # the generated snippet is included
    assert "fonts.googleapis" not in home and "cdn.jsdelivr" not in home
    out = capsys.readouterr().out
    assert "render" in out and "mkdocs" in out


def test_invalid_data_writes_nothing(project: Path, capsys) -> None:
    write(project / "data/papers/bad.yaml", """
        key: bad
        title: Bad
        url: "javascript:alert(1)"
        """)
    write(project / "data/datasets/dup.yaml", "key: toyset\nname: Dup\n")
    assert main(["--root", str(project), "build"]) == 1
    err = capsys.readouterr().err
    assert "data/papers/bad.yaml:3: url:" in err and "key: duplicate dataset key 'toyset'" in err
    assert not (project / "site_src/generated").exists()
    assert not (project / "site").exists()


def test_failed_mkdocs_keeps_previous_site(project: Path, capsys) -> None:
    assert main(["--root", str(project), "build"]) == 0
    (project / "site_src/about.md").write_text("# About\n\n[broken](nowhere.md)\n")
    assert main(["--root", str(project), "build"]) == 1
    assert "nowhere.md" in capsys.readouterr().err
    assert (project / "site/index.html").is_file()
    assert not list(project.glob(".site-*"))

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
        assert (site / f"generated/stages/stage-{n}.html").is_file()
    assert (site / "generated/papers/lin2019tsm.html").is_file()
    assert (site / "generated/datasets/toyset.html").is_file()
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


# --- the site folder: never replace what a build did not create ----------------------------

import os  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402


@pytest.mark.parametrize("target", ["data", ".", ".git", "data/papers", "site_src", "notes", ".."])
def test_build_refuses_a_site_folder_it_did_not_create(project: Path, capsys, target: str) -> None:
    """``--site data`` (or the project root, .git, any folder with files not written by a build)
    is refused with one line naming the folder; nothing is moved or deleted."""
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    write(project / "notes/todo.txt", "my own notes\n")
    before = sorted(str(p.relative_to(project.parent)) for p in project.parent.rglob("*") if ".git/" not in str(p))
    assert main(["--root", str(project), "build", "--site", str(project / target)]) != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert str((project / target).resolve()) in err
    after = sorted(str(p.relative_to(project.parent)) for p in project.parent.rglob("*") if ".git/" not in str(p))
    assert [p for p in before if p not in after] == []  # nothing removed
    assert (project / ".git/HEAD").is_file() and (project / "data/stages.yaml").is_file()
    assert not list(project.parent.rglob(".site-*"))


def test_build_rebuilds_its_own_site_and_an_empty_folder(project: Path, capsys) -> None:
    assert main(["--root", str(project), "build"]) == 0
    assert main(["--root", str(project), "build"]) == 0  # its own earlier build: replaced
    out = project / "elsewhere"
    out.mkdir()
    assert main(["--root", str(project), "build", "--site", str(out)]) == 0  # empty: fine
    assert (out / "index.html").is_file()
    assert main(["--root", str(project), "build", "--site", str(out)]) == 0
    (out / "generated").rename(project / "moved-away")  # still the build's folder, by its marker
    assert main(["--root", str(project), "build", "--site", str(out)]) == 0


def test_build_site_with_missing_parent_is_one_clear_line(project: Path, capsys) -> None:
    target = project / "no" / "such" / "site"
    assert main(["--root", str(project), "build", "--site", str(target)]) != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert str(target.parent) in err and "does not exist" in err
    assert not (project / "no").exists()


def test_build_keeps_a_folder_named_like_the_old_site(project: Path) -> None:
    """The previous site is moved aside under a fresh temporary name, never ``<site>.old``
    (which may be the user's)."""
    keep = project / "site.old"
    write(keep / "mine.txt", "keep me\n")
    assert main(["--root", str(project), "build"]) == 0
    assert main(["--root", str(project), "build"]) == 0
    assert (keep / "mine.txt").read_text() == "keep me\n"


def test_written_files_keep_the_mode_the_umask_gives(project: Path) -> None:
    old = os.umask(0o022)
    try:
        assert main(["--root", str(project), "export", "--json", "-o", str(project / "kb.json")]) == 0
        assert main(["--root", str(project), "render"]) == 0
    finally:
        os.umask(old)
    assert (project / "kb.json").stat().st_mode & 0o777 == 0o644
    page = project / "site_src/generated/papers/lin2019tsm.md"
    assert page.stat().st_mode & 0o777 == 0o644
    old = os.umask(0o027)
    try:
        (project / "kb2.json").unlink(missing_ok=True)
        assert main(["--root", str(project), "export", "--json", "-o", str(project / "kb2.json")]) == 0
    finally:
        os.umask(old)
    assert (project / "kb2.json").stat().st_mode & 0o777 == 0o640

"""Shared fixtures: a small but complete project (data + site sources) in a temp folder."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MINI = REPO / "tests" / "fixtures" / "mini" / "data"


def make_project(dest: Path, data: Path = MINI) -> Path:
    """Copy mkdocs.yml, the hand-written site sources (pages, assets) and a data folder into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "mkdocs.yml", dest / "mkdocs.yml")
    shutil.copytree(REPO / "site_src", dest / "site_src", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("generated"))
    shutil.copytree(data, dest / "data", dirs_exist_ok=True)
    return dest


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the mini project (tests may break its data freely)."""
    return make_project(tmp_path / "proj")

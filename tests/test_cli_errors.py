"""Command-line errors: one line naming the file, URL or argument and the reason, a non-zero
exit status, never a traceback, and nothing half-written."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from papers_kb.arxiv_client import Record
from papers_kb.cli import main


def one_line(err: str) -> str:
    err = err.strip()
    assert err and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("args, named", [
    (["--key", "nosuch2020paper"], "nosuch2020paper"),
    (["--tag", "no-such-tag"], "no-such-tag"),
    (["--key", "lin2019tsm", "--tag", "no-such-tag"], "no-such-tag"),
])
def test_export_with_an_unknown_key_or_tag(project: Path, capsys, args: list[str], named: str) -> None:
    out = project / "kb.bib"
    assert main(["--root", str(project), "export", "--bibtex", "-o", str(out), *args]) == 2
    err = one_line(capsys.readouterr().err)
    assert named in err and ("--key" in err or "--tag" in err)
    assert not out.exists()


@pytest.fixture
def read_only_data(project: Path, monkeypatch):
    """data/ made read-only; as root (who may write anyway) every write under it is refused the
    way the kernel refuses it (EACCES), through the functions the code writes with."""
    data = project / "data"
    modes = {p: p.stat().st_mode for p in [data, *data.rglob("*")]}
    for p in [data, *data.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)
    if os.geteuid() == 0:
        inside = str(data.resolve()) + os.sep

        def refuse(path) -> None:
            if os.path.abspath(os.fspath(path)).startswith(inside):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))

        real_open, real_mkdir, real_replace, real_unlink = os.open, os.mkdir, os.replace, os.unlink

        def fake_open(path, flags, *a, **k):
            if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                refuse(path)
            return real_open(path, flags, *a, **k)

        monkeypatch.setattr(os, "open", fake_open)
        monkeypatch.setattr(os, "mkdir", lambda p, *a, **k: (refuse(p), real_mkdir(p, *a, **k))[1])
        monkeypatch.setattr(os, "replace", lambda s, d, *a, **k: (refuse(d), real_replace(s, d, *a, **k))[1])
        monkeypatch.setattr(os, "unlink", lambda p, *a, **k: (refuse(p), real_unlink(p, *a, **k))[1])
    yield data
    for p, m in sorted(modes.items(), key=lambda kv: -len(kv[0].parts)):
        p.chmod(m)


def test_add_to_a_read_only_data_folder(project: Path, read_only_data: Path, tmp_path, monkeypatch, capsys) -> None:
    cache = tmp_path / "cache"
    rec = Record("2103.15691", 2, "ViViT: A Video Vision Transformer", ["Anurag Arnab"], "2021-03-29", "2021-11-01",
                 "cs.CV", ["cs.CV"], None, None, None, "")
    (cache / "records").mkdir(parents=True)
    (cache / "records/2103.15691.json").write_text(json.dumps(rec.__dict__))
    monkeypatch.setenv("PAPERS_KB_ARXIV_CACHE", str(cache))
    monkeypatch.setenv("PAPERS_KB_ARXIV_URL", "http://127.0.0.1:9/api/query?{}")  # never the network
    before = sorted(str(p) for p in read_only_data.rglob("*"))
    assert main(["--root", str(project), "add", "2103.15691", "--stage", "2", "--why", "x"]) == 2
    err = one_line(capsys.readouterr().err)
    assert str(read_only_data) in err and "Permission denied" in err
    assert sorted(str(p) for p in read_only_data.rglob("*")) == before


def test_enrich_on_a_read_only_data_folder(project: Path, read_only_data: Path, tmp_path, monkeypatch, capsys) -> None:
    cache = tmp_path / "cache"
    rec = Record("1811.08383", 3, "TSM: Temporal Shift Module for Efficient Video Understanding",
                 ["Ji Lin", "Chuang Gan", "Song Han"], "2018-11-20", "2019-08-22", "cs.CV", ["cs.CV"], None, None, None, "")
    (cache / "records").mkdir(parents=True)
    (cache / "records/1811.08383.json").write_text(json.dumps(rec.__dict__))
    monkeypatch.setenv("PAPERS_KB_ARXIV_CACHE", str(cache))
    monkeypatch.setenv("PAPERS_KB_ARXIV_URL", "http://127.0.0.1:9/api/query?{}")  # never the network
    assert main(["--root", str(project), "enrich", "lin2019tsm"]) == 2
    err = one_line(capsys.readouterr().err)
    assert str(read_only_data) in err and "Permission denied" in err


def test_export_to_a_folder_that_cannot_be_written(project: Path, capsys) -> None:
    target = project / "data/stages.yaml/kb.json"  # a "folder" that is a file
    assert main(["--root", str(project), "export", "--json", "-o", str(target)]) == 2
    err = one_line(capsys.readouterr().err)
    assert str(target) in err

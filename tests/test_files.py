"""papers_kb.files: atomic writes, all-or-nothing transactions with recovery, the data/ lock."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from papers_kb.files import TXN_DIR, LockTimeout, Transaction, WriteError, atomic_write, data_lock, recover


def test_atomic_write_modes_and_errors(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a/new.txt", "x")
        assert (tmp_path / "a/new.txt").stat().st_mode & 0o777 == 0o644
        (tmp_path / "a/new.txt").chmod(0o600)
        atomic_write(tmp_path / "a/new.txt", "y")  # a replaced file keeps its mode
        assert (tmp_path / "a/new.txt").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
    (tmp_path / "file").write_text("")
    with pytest.raises(WriteError, match=r"cannot write .*file/x\.txt"):
        atomic_write(tmp_path / "file/x.txt", "z")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["new.txt"]  # no temporary file left


def test_transaction_commit_undo_and_confinement(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "papers").mkdir(parents=True)
    (data / "stages.yaml").write_text("old stages\n")
    t = Transaction(data)
    t.write(data / "papers/new.yaml", "new paper\n")
    t.write(data / "stages.yaml", "new stages\n")
    assert t.read_text(data / "stages.yaml") == "new stages\n"
    before = t.commit()
    assert (data / "papers/new.yaml").read_text() == "new paper\n" and (data / "stages.yaml").read_text() == "new stages\n"
    assert not (data / TXN_DIR).exists()
    Transaction.undo(data, before)
    assert not (data / "papers/new.yaml").exists() and (data / "stages.yaml").read_text() == "old stages\n"
    for outside in (tmp_path / "README.md", data / ".." / "x", data / TXN_DIR / "x"):
        with pytest.raises(ValueError):
            Transaction(data).write(outside, "x")


def test_recover_finishes_a_committed_transaction_and_drops_an_uncommitted_one(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.yaml").write_text("old a\n")
    committed = data / TXN_DIR / "c1"
    committed.mkdir(parents=True)
    (committed / "0").write_text("new a\n")
    (committed / "1").write_text("new b\n")
    (committed / "manifest.json").write_text(json.dumps({"version": 1, "changes": [
        {"target": "a.yaml", "staged": "0"}, {"target": "sub/b.yaml", "staged": "1"}]}))
    uncommitted = data / TXN_DIR / "c2"
    uncommitted.mkdir()
    (uncommitted / "0").write_text("half\n")
    assert recover(data) == ["a.yaml", "sub/b.yaml"]
    assert (data / "a.yaml").read_text() == "new a\n" and (data / "sub/b.yaml").read_text() == "new b\n"
    assert not (data / TXN_DIR).exists()


def test_data_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    held = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with data_lock(tmp_path):
            held.set()
            release.wait(10)

    t = threading.Thread(target=holder)
    t.start()
    assert held.wait(10)
    with pytest.raises(LockTimeout, match="locked by another papers-kb command"):
        with data_lock(tmp_path, timeout=0.2):
            pass
    release.set()
    t.join(10)
    with data_lock(tmp_path, timeout=5):
        pass

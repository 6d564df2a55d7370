"""Writing files without losing or half-writing anything: the one module every writer uses.

* :func:`atomic_write` replaces one file: the data goes to a temporary file in the same folder,
  then :func:`os.replace` puts it in place, so a reader sees the old file or the new one.
* :class:`Transaction` replaces several files all-or-nothing, even across ``kill -9``: the new
  contents are staged under ``<folder>/.papers-kb-txn/<id>/``, a manifest written last (one
  rename) commits them, then they are moved into place. :func:`recover` finishes a committed
  transaction that was interrupted and discards one that was not committed.
* :func:`data_lock` is the exclusive lock on ``data/`` (the ``filelock`` package) that
  ``papers-kb add`` and ``enrich`` hold while they read the catalog, decide and write.

New files get the mode the umask gives (``0o666 & ~umask``, as ``open()`` would create them);
a replaced file keeps its mode.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import Iterator

TXN_DIR = ".papers-kb-txn"
LOCK_NAME = ".papers-kb.lock"


class WriteError(OSError):
    """A file could not be written; the message names the file and the reason (one line)."""


class LockTimeout(WriteError):
    """Another papers-kb command holds the lock on ``data/``."""


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _create_temp(folder: Path, name: str, mode: int | None) -> tuple[int, Path]:
    """A new temporary file ``.<name>.<random>.tmp`` in ``folder``, opened for writing.

    Created with mode ``0o666`` so that the kernel applies the umask (``tempfile.mkstemp``
    would give ``0o600``); ``mode`` (the mode of the file being replaced) overrides it.
    """
    while True:
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        if mode is not None:
            os.fchmod(fd, mode)
        return fd, tmp


def _existing_mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None


def _write_fd(fd: int, raw: bytes, sync: bool) -> None:
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)
        if sync:
            fh.flush()
            os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path | str, data: str | bytes, sync: bool = False) -> None:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` via a temporary file and a rename.

    Missing parent folders are created. ``sync`` also flushes the data to disk (fsync).

    Raises:
        WriteError: naming ``path`` and the reason (read-only folder, disk full ...); the old
            file, if any, is left as it was and no temporary file remains.
    """
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temp(path.parent, path.name, _existing_mode(path))
        _write_fd(fd, raw, sync)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {_reason(exc)}") from exc
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


# --- transactions -----------------------------------------------------------------------------


def _inside(folder: Path, path: Path) -> str:
    """``path`` relative to ``folder`` (POSIX form); refuses anything outside it."""
    rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(folder))  # ValueError outside
    if not rel.parts or rel.parts[0] == TXN_DIR:
        raise ValueError(f"{path} is not a file inside {folder}")
    return rel.as_posix()


class Transaction:
    """Several file changes under one ``folder`` (``data/``) applied all-or-nothing.

    Usage::

        txn = Transaction(root / "data")
        txn.write(paper_path, text)
        txn.write(stages_path, stages_text)
        before = txn.commit()          # every change, or (after a crash) none until recover()
        ...
        Transaction.undo(root / "data", before)   # put the previous contents back

    Hold :func:`data_lock` around reading, deciding and committing.
    """

    def __init__(self, folder: Path | str):
        self.folder = Path(folder)
        self.changes: dict[str, bytes | None] = {}  # relative path -> new content (None: delete)

    def write(self, path: Path | str, data: str | bytes) -> None:
        """Stage new content for ``path`` (a file inside the folder)."""
        self.changes[_inside(self.folder, Path(path))] = data.encode("utf-8") if isinstance(data, str) else data

    def delete(self, path: Path | str) -> None:
        """Stage the removal of ``path`` (nothing happens if it does not exist)."""
        self.changes[_inside(self.folder, Path(path))] = None

    def read_text(self, path: Path | str) -> str | None:
        """The content ``path`` will have after the commit (staged, else current; None: absent)."""
        rel = _inside(self.folder, Path(path))
        if rel in self.changes:
            raw = self.changes[rel]
            return None if raw is None else raw.decode("utf-8")
        target = self.folder / rel
        return target.read_text(encoding="utf-8") if target.exists() else None

    def commit(self) -> dict[str, bytes | None]:
        """Apply every staged change; returns the previous contents (None: did not exist).

        Raises:
            WriteError: when staging fails (nothing changed then) or, after the commit point,
                when moving a file fails (the next :func:`recover` finishes the job).
        """
        if not self.changes:
            return {}
        before = {rel: ((self.folder / rel).read_bytes() if (self.folder / rel).is_file() else None)
                  for rel in self.changes}
        txn = self.folder / TXN_DIR / secrets.token_hex(8)
        manifest = []
        try:
            txn.mkdir(parents=True)
            for i, (rel, raw) in enumerate(sorted(self.changes.items())):
                if raw is None:
                    manifest.append({"target": rel, "delete": True})
                    continue
                fd, tmp = _create_temp(txn, str(i), _existing_mode(self.folder / rel))
                _write_fd(fd, raw, sync=True)
                staged = txn / str(i)
                os.replace(tmp, staged)
                manifest.append({"target": rel, "staged": staged.name})
            _fsync_dir(txn)
        except OSError as exc:
            shutil.rmtree(txn, ignore_errors=True)
            raise WriteError(f"cannot write {self.folder}: {_reason(exc)}") from exc
        atomic_write(txn / "manifest.json", json.dumps({"version": 1, "changes": manifest}), sync=True)
        _fsync_dir(txn)
        _apply(self.folder, txn)  # commit point passed: from here on recover() completes it
        return before

    @staticmethod
    def undo(folder: Path | str, before: dict[str, bytes | None]) -> None:
        """Put back the contents :meth:`commit` returned, as one transaction."""
        t = Transaction(folder)
        for rel, raw in before.items():
            if raw is None:
                t.delete(t.folder / rel)
            else:
                t.write(t.folder / rel, raw)
        t.commit()


def _apply(folder: Path, txn: Path) -> list[str]:
    """Move a committed transaction's staged files into place; idempotent. Returns targets."""
    doc = json.loads((txn / "manifest.json").read_text(encoding="utf-8"))
    done = []
    try:
        for ch in doc["changes"]:
            target = folder / _inside(folder, folder / ch["target"])
            if ch.get("delete"):
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
            else:
                staged = txn / Path(ch["staged"]).name
                if staged.exists():  # absent: already moved by an earlier, interrupted apply
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staged, target)
                    _fsync_dir(target.parent)
            done.append(ch["target"])
    except OSError as exc:
        raise WriteError(f"cannot write {folder}: {_reason(exc)} "
                                    f"(an interrupted change is kept in {txn} and completed next time)") from exc
    shutil.rmtree(txn, ignore_errors=True)
    with contextlib.suppress(OSError):
        (folder / TXN_DIR).rmdir()
    return done


def pending(folder: Path | str) -> bool:
    """True when ``folder`` holds an interrupted transaction."""
    return (Path(folder) / TXN_DIR).is_dir()


def recover(folder: Path | str) -> list[str]:
    """Finish committed transactions that were interrupted; discard uncommitted ones.

    Call it holding :func:`data_lock`. Returns the paths (relative to ``folder``) that a
    finished transaction wrote.
    """
    folder = Path(folder)
    base = folder / TXN_DIR
    done: list[str] = []
    if not base.is_dir():
        return done
    for txn in sorted(p for p in base.iterdir() if p.is_dir()):
        manifest = txn / "manifest.json"
        try:
            committed = manifest.is_file() and isinstance(json.loads(manifest.read_text(encoding="utf-8")), dict)
        except (OSError, ValueError):
            committed = False
        if committed:
            done += _apply(folder, txn)
        else:
            shutil.rmtree(txn, ignore_errors=True)
    with contextlib.suppress(OSError):
        base.rmdir()
    return done


# --- the lock on data/ ---------------------------------------------------------------------------


@contextlib.contextmanager
def data_lock(data_dir: Path | str, timeout: float = 60.0) -> Iterator[list[str]]:
    """Hold the exclusive lock on ``data_dir`` (``data/.papers-kb.lock``) for the ``with`` block.

    On entry, an interrupted transaction is finished (see :func:`recover`); the block gets the
    list of paths that finished. The lock is the kernel's (``flock``), so a killed holder
    releases it.

    Raises:
        LockTimeout: another command held it for ``timeout`` seconds.
        WriteError: the lock file cannot be created (read-only ``data/`` ...).
    """
    from filelock import FileLock, Timeout

    data_dir = Path(data_dir)
    path = data_dir / LOCK_NAME
    lock = FileLock(path, timeout=timeout, thread_local=False)
    try:
        lock.acquire()
    except Timeout as exc:
        raise LockTimeout(f"{data_dir} is locked by another papers-kb command ({path}); "
                             f"waited {timeout:g} s") from exc
    except OSError as exc:
        raise WriteError(f"cannot write {data_dir}: {_reason(exc)} (lock file {path})") from exc
    try:
        yield recover(data_dir)
    finally:
        lock.release()

"""Every third-party module that papers_kb and videozoo import is declared in pyproject.toml.

A module that is only present in a developer's virtualenv passes every local test and then fails
on a fresh machine (OST's reference check needed POT, which no extra declared).  Imports are read
with :mod:`ast`; a module counts as declared when its distribution is a dependency (or extra) of
the project or is required by one of those (one level down, e.g. ftfy through open_clip_torch).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("papers_kb", "videozoo")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _req_name(req: str) -> str:
    return _norm(re.split(r"[<>=!~;\[ (]", req.strip(), maxsplit=1)[0])


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    names = {_req_name(r) for r in reqs}
    for name in list(names):
        try:
            names |= {_req_name(r) for r in metadata.requires(name) or ()}
        except metadata.PackageNotFoundError:
            pass
    return names


def _imported_top_level() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    mods = [node.module]
                else:
                    continue
                for mod in mods:
                    found.setdefault(mod.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared() -> None:
    dists = metadata.packages_distributions()
    declared = _declared()
    undeclared = []
    for mod, where in sorted(_imported_top_level().items()):
        if mod in sys.stdlib_module_names or mod in PACKAGES or mod == "__future__":
            continue
        names = {_norm(d) for d in dists.get(mod, [])}
        if not names:
            undeclared.append(f"{mod} (imported in {where}) is not installed: declare it in pyproject.toml")
        elif not names & declared:
            undeclared.append(f"{mod} (imported in {where}) comes from {sorted(names)}, not declared")
    assert not undeclared, "\n".join(undeclared)

"""Layer tables of the authors' released models, and the comparison with a videozoo model.

Each ``<name>.json`` file beside this module lists the state dict of a model built with the
authors' released code (random weights, on a CPU): every entry's name, shape and whether it
is a parameter or a buffer, with the repository, commit, constructor call and total
parameter count in its header. The tables are data: no code of the authors is imported at
test time, and nothing in videozoo produced them.

A model file checks itself against its table by mapping the authors' names through its own
key-mapping function (the one users call to load the authors' checkpoints) and comparing
every name and shape with its own state dict (:func:`compare_with_table`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch

__all__ = ["TABLE_DIR", "load_table", "table_state_dict", "compare_with_table"]

TABLE_DIR = Path(__file__).resolve().parent


def load_table(name: str) -> dict:
    """Read ``<name>.json``: a dict with ``repository``, ``commit``, ``how``, ``params`` and
    ``entries`` (a list of ``[state-dict name, shape, "param" | "buffer"]``).

    Raises:
        FileNotFoundError: naming the tables that exist, for an unknown ``name``.
        ValueError: naming the file and the entry, for a malformed entry.
    """
    path = TABLE_DIR / f"{name}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in TABLE_DIR.glob("*.json")))
        raise FileNotFoundError(f"no reference table {path.name}; known: {known}")
    table = json.loads(path.read_text(encoding="utf-8"))
    bad = [i for i, e in enumerate(table.get("entries", []))
           if not (isinstance(e, list) and len(e) == 3 and isinstance(e[0], str)
                   and isinstance(e[1], list) and e[2] in ("param", "buffer"))]
    if bad or "entries" not in table:
        raise ValueError(f"{path}: entries {bad[:5] or 'missing'} are not [name, shape, 'param'|'buffer']")
    return table


def table_state_dict(table: dict) -> dict[str, torch.Tensor]:
    """The table as a state dict of meta tensors (shapes only), ready for a key-mapping function."""
    return {name: torch.empty(shape, device="meta") for name, shape, _ in table["entries"]}


def compare_with_table(
    table: dict,
    map_keys: Callable[[dict], dict],
    own_state: dict[str, torch.Tensor],
    own_params: int,
) -> dict:
    """Map the table's names with ``map_keys`` and compare every name and shape with ``own_state``.

    Args:
        table: From :func:`load_table`.
        map_keys: The model's key-mapping function, ``authors' state dict -> ours``; entries it
            drops are reported (with their parameter count) under ``dropped``.
        own_state: The model's ``state_dict()`` (tensors on any device, meta included).
        own_params: The model's parameter count.

    Returns:
        ``passed`` (every mapped name is ours with the same shape and we have no other entry),
        ``entries`` (in the table), ``matched``, ``missing`` (ours, not in the mapped table),
        ``unexpected`` (mapped, not ours), ``shape_mismatches``, ``dropped`` (authors' names the
        mapping leaves out), ``dropped_params``, ``authors_params``, ``own_params`` and
        ``params_gap_pct`` (ours vs the authors' total, in %).
    """
    theirs = table_state_dict(table)
    mapped = map_keys(dict(theirs))
    kinds = {name: kind for name, _, kind in table["entries"]}
    shapes = {name: tuple(shape) for name, shape, _ in table["entries"]}
    kept = {id(v) for v in mapped.values()}
    dropped = sorted(k for k, v in theirs.items() if id(v) not in kept)
    dropped_params = sum(int(torch.Size(shapes[k]).numel()) for k in dropped if kinds[k] == "param")
    missing = sorted(set(own_state) - set(mapped))
    unexpected = sorted(set(mapped) - set(own_state))
    mismatches = sorted(f"{k}: ours {tuple(own_state[k].shape)}, authors' {tuple(mapped[k].shape)}"
                        for k in set(mapped) & set(own_state) if tuple(own_state[k].shape) != tuple(mapped[k].shape))
    authors_params = int(table["params"])
    return {
        "passed": not (missing or unexpected or mismatches),
        "entries": len(theirs),
        "matched": len(set(mapped) & set(own_state)) - len(mismatches),
        "missing": missing,
        "unexpected": unexpected,
        "shape_mismatches": mismatches,
        "dropped": dropped,
        "dropped_params": dropped_params,
        "authors_params": authors_params,
        "own_params": own_params,
        "params_gap_pct": (own_params - authors_params) / authors_params * 100,
    }

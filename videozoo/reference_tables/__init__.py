"""Recorded facts about the authors' released models, and the comparison with a videozoo model.

Each ``<name>.json`` file beside this module was made by running the authors' released code
(PyTorch or JAX) outside this repository, at a stated commit, with random weights on a CPU; the
file names the repository, commit, files and settings, and how it was made
(``scripts/reference_tables/`` where a script made it).  The tables are data: no code of the
authors is imported at test time, and nothing in videozoo produced them.  Two kinds exist:

* Layer tables (``entries``: ``[state-dict name, shape, "param" | "buffer"]`` and the total
  ``params``), read with :func:`load_table` and compared with :func:`compare_with_table`: a
  model maps the authors' names through its own key-mapping function (the one users call to
  load the authors' checkpoints) and compares every name and shape with its own state dict.
* Tables with outputs (``[name, shape]`` tables and, for tiny configurations, the logits the
  authors' code computes from weights and inputs drawn by the rules below), used with
  :func:`seeded_state_dict`, :func:`seeded_input` and :func:`table_gap`.  The draws use NumPy's
  ``default_rng`` seeded with ``[seed, i]`` for the ``i``-th entry of the table in the authors'
  order, so the authors' side and ours produce the same numbers without sharing any model code.

Only NumPy is imported at module level (torch inside the functions that make tensors), so that
the scripts can use the drawing rules beside JAX code without torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["TABLE_DIR", "load_table", "table_state_dict", "compare_with_table", "seeded_array", "seeded_state_dict",
           "seeded_input_array", "seeded_input", "table_gap", "WEIGHT_STD"]

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
    import torch

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
    import torch

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


WEIGHT_STD = 0.1
"""Standard deviation of every drawn weight (normal, mean 0)."""


def seeded_array(name: str, shape: list[int], seed: int, index: int, std: float = WEIGHT_STD) -> np.ndarray:
    """The drawn value of table entry ``index`` named ``name``: a float32 array of ``shape``.

    ``N(0, std^2)`` for every entry except: normalisation gains (1-D entries named ``...weight`` or
    ``...scale``) are ``1 + N(0, std^2)``; BatchNorm's ``running_var`` is uniform in ``[0.5, 1.5)``
    and ``num_batches_tracked`` is 0.
    """
    rng = np.random.default_rng([seed, index])
    if name.endswith("num_batches_tracked"):
        return np.zeros(shape, dtype=np.int64)
    if name.endswith("running_var"):
        return rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
    draw = rng.standard_normal(size=shape) * std
    if len(shape) == 1 and name.endswith(("weight", "scale")):
        draw = draw + 1.0
    return draw.astype(np.float32)


def seeded_state_dict(table: list, seed: int, std: float = WEIGHT_STD) -> dict[str, "torch.Tensor"]:
    """Drawn weights for an authors' layer table ``[[name, shape], ...]`` (their names and layouts)."""
    import torch

    return {name: torch.from_numpy(seeded_array(name, shape, seed, i, std)) for i, (name, shape) in enumerate(table)}


def seeded_input_array(shape: list[int], seed: int) -> np.ndarray:
    """The drawn input: float32 uniform in ``[0, 1)`` of ``shape``, from ``default_rng(seed)``."""
    return np.random.default_rng(seed).random(size=shape).astype(np.float32)


def seeded_input(shape: list[int], seed: int) -> "torch.Tensor":
    """:func:`seeded_input_array` as a tensor."""
    import torch

    return torch.from_numpy(seeded_input_array(shape, seed))


def table_gap(table: list, convert: Callable[[dict], dict], ours: dict) -> dict:
    """Compare an authors' layer table with our state dict, through our key mapping.

    Args:
        table: ``[[name, shape], ...]`` of the authors' model.
        convert: Our ``load_state_dict_from`` for that library, ``dict -> dict``.
        ours: Our model's ``state_dict()`` (meta tensors are fine).

    Returns:
        ``{"differing_keys": [...], "mapped_entries": n}``: our keys whose shape differs from the
        mapped table, or that only one side has (empty when the tables agree).
    """
    import torch

    mapped = convert({name: torch.empty(shape, device="meta") for name, shape in table})
    theirs = {k: tuple(v.shape) for k, v in mapped.items()}
    own = {k: tuple(v.shape) for k, v in ours.items()}
    differ = sorted(k for k in theirs.keys() | own.keys() if theirs.get(k) != own.get(k))
    return {"differing_keys": differ, "mapped_entries": len(theirs)}

"""Make ``videozoo/reference_tables/ost_vitb16_k400.json`` from the authors' OST code.

Usage (a checkout of github.com/tomchen-ctj/OST; einops, ftfy and regex importable; no GPU, no
weights needed)::

    git clone https://github.com/tomchen-ctj/OST /tmp/OST
    git -C /tmp/OST checkout 1810ae6e56ebcb549b333ea349a8ca80d41a62d1
    PYTHONPATH=$PWD python scripts/reference_tables/ost.py --release /tmp/OST \\
        --out videozoo/reference_tables/ost_vitb16_k400.json

What it records, computed by the authors' ``trainers/OST.py`` (class ``OST``) and ``clip/model.py``
(their CLIP), loaded from the checkout, in the layout of :mod:`videozoo.reference_tables`:

* the state-dict table (``entries``: ``[name, shape, "param" | "buffer"]``) and parameter count of
  OST on CLIP ViT-B/16 with 4 + 4 descriptors per class, built as ``returnCLIP`` builds it from
  ``configs/zero_shot/train/k400/16_32_ost.yaml`` (CLIP constructed directly, on the meta device,
  with the config's prompt settings: no prompt vectors);
* the outputs of ``OST.OptimalDescriptorSolver`` (spatio and temporal) and ``OST.get_logit`` for
  L2-normalised frame and descriptor embeddings drawn by :func:`videozoo.models.bike.seeded_input`
  (``x - 0.5``, normalised), with the release's solver settings (``eps`` 0.1, at most 100
  iterations, stop when the mean change of ``r`` is below 1e-2).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = "https://github.com/tomchen-ctj/OST"
CONFIG = "configs/zero_shot/train/k400/16_32_ost.yaml"
DESIGN = {"trainer": "OST", "vision_depth": 0, "language_depth": 1, "vision_ctx": 0, "language_ctx": 0}
TINY = dict(batch=3, frames=8, classes=5, descriptors=4, dim=16, seeds={"frames": 21, "spatial": 22, "temporal": 23},
            logit_scale=14.285714149475098)


def load_release(path: Path):
    sys.path.insert(0, str(path))
    from clip.model import CLIP  # noqa: E402  (the release's packages, from the checkout)
    from trainers.OST import OST  # noqa: E402

    return CLIP, OST


def normalised(shape: list[int], seed: int) -> torch.Tensor:
    from videozoo.models.bike import seeded_input

    return F.normalize(seeded_input(shape, seed) - 0.5, dim=-1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--release", type=Path, required=True, help="checkout of tomchen-ctj/OST")
    p.add_argument("--commit", help="commit of that checkout (default: git rev-parse HEAD there)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    CLIP, OST = load_release(args.release)
    commit = args.commit or subprocess.run(["git", "-C", str(args.release), "rev-parse", "HEAD"],
                                           capture_output=True, text=True, check=True).stdout.strip()
    cfg = types.SimpleNamespace(TRAINER=types.SimpleNamespace(OST=types.SimpleNamespace(N=4)))
    with torch.device("meta"):
        clip = CLIP(512, 224, 12, 768, 16, 77, 49408, 512, 8, 12, DESIGN)
    tokens = torch.zeros(2 * 4, 77, dtype=torch.long)
    model = OST(cfg, tokens, tokens, None, clip, None)
    params = sum(p.numel() for p in model.parameters())
    names = {n for n, _ in model.named_parameters()}
    entries = [[k, list(v.shape), "param" if k in names else "buffer"] for k, v in model.state_dict().items()]

    solver = OST.__new__(OST)           # the release's methods with its settings, without a CLIP
    torch.nn.Module.__init__(solver)
    solver.max_iter, solver.eps = 100, 0.1
    B, T, A, N, D = (TINY[k] for k in ("batch", "frames", "classes", "descriptors", "dim"))
    s = TINY["seeds"]
    frames = normalised([B, T, D], s["frames"])
    spatial = normalised([A, N, D], s["spatial"])
    temporal = normalised([A, N, D], s["temporal"])
    scale = torch.tensor(TINY["logit_scale"])
    with torch.no_grad():
        od_spatial = solver.OptimalDescriptorSolver(frames, spatial, scale)
        od_temporal = solver.OptimalDescriptorSolver(frames, temporal, scale)
        logits = solver.get_logit(frames, spatial, temporal, scale)
    out = {
        "model": f"OST (arXiv 2312.00096) on CLIP ViT-B/16, {CONFIG}",
        "repository": REPO,
        "commit": commit,
        "files": ["trainers/OST.py", "clip/model.py"],
        "constructor": (f"trainers.OST.OST(cfg with TRAINER.OST.N = 4, descriptor tokens, ..., "
                        f"clip.model.CLIP(512, 224, 12, 768, 16, 77, 49408, 512, 8, 12, {DESIGN}))"),
        "how": ("scripts/reference_tables/ost.py: the release's CLIP on the meta device wrapped by its OST class "
                "(random weights, nothing downloaded); every state_dict() entry in order; params is the sum of the "
                "parameters' sizes. od_solver: the release's OptimalDescriptorSolver and get_logit (max_iter 100, "
                "eps 0.1, stop when the mean change of r < 1e-2) on embeddings "
                "F.normalize(videozoo.models.bike.seeded_input(shape, seed) - 0.5, dim=-1)"),
        "tolerance": 1e-6,
        "videozoo_name": "ost",
        "od_solver": {**TINY, "od_spatial_logits": od_spatial.tolist(), "od_temporal_logits": od_temporal.tolist(),
                      "logits": logits.tolist()},
        "params": params,
        "entries": entries,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(out, indent=1)
    text = re.sub(r"\[[^\[\]{}]*\]", lambda m: " ".join(m.group(0).split()), text)
    args.out.write_text(re.sub(r'\[\s*"[^"\n]*",\s*\[[^\[\]]*\],\s*"[a-z]+"\s*\]',
                               lambda m: " ".join(m.group(0).split()), text) + "\n")
    print(f"wrote {args.out}: params {params}")


if __name__ == "__main__":
    main()

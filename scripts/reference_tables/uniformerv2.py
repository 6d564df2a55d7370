"""Make ``videozoo/reference_tables/uniformerv2.json`` from the authors' UniFormerV2 code.

Usage (a checkout of github.com/OpenGVLab/UniFormerV2; timm installed, no GPU, no weights needed)::

    git clone https://github.com/OpenGVLab/UniFormerV2 /tmp/UniFormerV2
    git -C /tmp/UniFormerV2 checkout 722a43440fc5b9662cc2a8f23b86caa205e45ebc
    PYTHONPATH=$PWD python scripts/reference_tables/uniformerv2.py --release /tmp/UniFormerV2 \\
        --out videozoo/reference_tables/uniformerv2.json

What it records, all from the authors' ``slowfast/models/uniformerv2_model.py`` (loaded from the
checkout; only its ``slowfast.utils.logging`` import is replaced by the standard ``logging``):

* for each released recipe, the model built with the recipe's ``UNIFORMERV2`` settings exactly as
  ``slowfast/models/uniformerv2.py`` passes them: its ``state_dict()`` (name, shape) table and
  parameter count;
* for tiny models of both designs, the logits in eval mode for weights drawn by
  :func:`videozoo.reference_tables.seeded_state_dict` over their table and an input drawn by
  :func:`videozoo.reference_tables.seeded_input`;
* at the recipes' full size, the largest logit difference between their model (its own random
  initialisation, with the parameters it starts at zero drawn from N(0, 0.02^2)) and ours after
  :func:`videozoo.models.uniformerv2.load_state_dict_from`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import re
import subprocess
import sys
import types
from pathlib import Path

import torch

from videozoo.reference_tables import seeded_input, seeded_state_dict

REPO = "https://github.com/OpenGVLab/UniFormerV2"
RECIPES = {
    # recipe file -> (videozoo name, UNIFORMERV2 settings, DATA.NUM_FRAMES, MODEL.NUM_CLASSES)
    "exp/k400/k400_b16_f8x224/config.yaml": ("uniformerv2_b16_k400", dict(
        n_layers=4, n_dim=768, n_head=12, mlp_factor=4.0, backbone_drop_path_rate=0.0, drop_path_rate=0.0,
        mlp_dropout=[0.5] * 4, cls_dropout=0.5, return_list=[8, 9, 10, 11], dw_reduction=1.5, no_lmhra=True,
        double_lmhra=True, temporal_downsample=False), 8, 400),
    "exp/sthv2/ssv2_b16_f16x224/config.yaml": ("uniformerv2_b16_ssv2", dict(
        n_layers=8, n_dim=768, n_head=12, mlp_factor=4.0, backbone_drop_path_rate=0.2, drop_path_rate=0.4,
        mlp_dropout=[0.5] * 8, cls_dropout=0.5, return_list=[4, 5, 6, 7, 8, 9, 10, 11], dw_reduction=1.5,
        no_lmhra=False, double_lmhra=True, temporal_downsample=True), 16, 174),
}
TINY = dict(input_resolution=32, patch_size=8, width=32, layers=3, heads=2, output_dim=16, t_size=8, dw_reduction=1.5,
            return_list=[1, 2], n_layers=2, n_dim=32, n_head=2, mlp_factor=4.0, mlp_dropout=[0.5, 0.5],
            cls_dropout=0.5, num_classes=5)
TINY_DESIGNS = {"k400_design": dict(no_lmhra=True, double_lmhra=True, temporal_downsample=False),
                "ssv2_design": dict(no_lmhra=False, double_lmhra=True, temporal_downsample=True)}


def load_release(path: Path) -> types.ModuleType:
    """Import the release's model file with ``slowfast.utils.logging`` replaced by ``logging``."""
    shim = types.ModuleType("slowfast.utils.logging")
    shim.get_logger = logging.getLogger
    for name in ("slowfast", "slowfast.utils"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["slowfast.utils.logging"] = shim
    spec = importlib.util.spec_from_file_location("uniformerv2_release", path / "slowfast/models/uniformerv2_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compact_json(obj: dict) -> str:
    """JSON with one line per layer-table row and per list of numbers (readable diffs)."""
    text = json.dumps(obj, indent=1)
    text = re.sub(r"\[[^\[\]{}]*\]", lambda m: " ".join(m.group(0).split()), text)
    return re.sub(r'\[\s*"[^"\n]*",\s*\[[^\[\]]*\]\s*\]', lambda m: " ".join(m.group(0).split()), text)


def table(model: torch.nn.Module) -> list:
    return [[k, list(v.shape)] for k, v in model.state_dict().items()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--release", type=Path, required=True, help="checkout of OpenGVLab/UniFormerV2")
    p.add_argument("--commit", help="commit of that checkout (default: git rev-parse HEAD there)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--skip-full", action="store_true", help="skip the full-size logits comparison")
    args = p.parse_args()
    from videozoo.models import uniformerv2 as ours
    from videozoo.registry import make_config

    rel = load_release(args.release)
    commit = args.commit or subprocess.run(["git", "-C", str(args.release), "rev-parse", "HEAD"],
                                           capture_output=True, text=True, check=True).stdout.strip()
    out = {
        "model": "UniFormerV2 (arXiv 2211.09552)",
        "repository": REPO,
        "commit": commit,
        "file": "slowfast/models/uniformerv2_model.py",
        "how": ("scripts/reference_tables/uniformerv2.py: the release's VisionTransformer built on CPU with the "
                "settings below (its uniformerv2_b16 sizes: 224x224, patch 16, width 768, 12 layers, 12 heads); "
                "state_dict() names and shapes in the release's order; tiny models in eval mode with weights from "
                "videozoo.reference_tables.seeded_state_dict(layer_table, weight_seed) and input from "
                "seeded_input(input_shape, input_seed)"),
        "tolerance": 1e-5,
        "recipes": {},
        "test_vectors": {},
    }
    for recipe, (name, settings, frames, classes) in RECIPES.items():
        torch.manual_seed(0)
        model = rel.VisionTransformer(input_resolution=224, patch_size=16, width=768, layers=12, heads=12,
                                      output_dim=512, t_size=frames, num_classes=classes, **settings).eval()
        entry = {"recipe": recipe, "videozoo_name": name, "settings": settings, "num_frames": frames,
                 "num_classes": classes, "params": sum(p.numel() for p in model.parameters()),
                 "layer_table": table(model)}
        if not args.skip_full:
            with torch.no_grad():  # draw what the release starts at zero, so that every part is compared
                for p in model.parameters():
                    if not p.any():
                        p.normal_(0, 0.02)
            mine = ours.UniFormerV2(make_config(name, "paper")).eval()
            mine.load_state_dict(ours.load_state_dict_from("uniformerv2", model.state_dict()))
            x = torch.rand(1, 3, frames, 224, 224, generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                entry["paper_size_logits_max_abs_diff"] = (model(x) - mine(x)).abs().max().item()
        out["recipes"][recipe.split("/")[2]] = entry
        print(name, entry["params"], entry.get("paper_size_logits_max_abs_diff"), flush=True)
    for name, design in TINY_DESIGNS.items():
        torch.manual_seed(0)
        model = rel.VisionTransformer(**TINY, **design).eval()
        layer_table = table(model)
        model.load_state_dict(seeded_state_dict(layer_table, 0))
        shape = [2, 3, TINY["t_size"], TINY["input_resolution"], TINY["input_resolution"]]
        with torch.no_grad():
            logits = model(seeded_input(shape, 1))
        lmhra = "none" if design["no_lmhra"] else ("double" if design["double_lmhra"] else "single")
        out["test_vectors"][name] = {
            "settings": {**TINY, **design},
            "videozoo_config": dict(num_classes=5, num_frames=8, img_size=32, patch_size=8, embed_dim=32, depth=3,
                                    num_heads=2, num_global=2, lmhra=lmhra,
                                    temporal_downsample=design["temporal_downsample"]),
            "weight_seed": 0, "input_seed": 1, "input_shape": shape,
            "logits": [[float(f"{v:.8g}") for v in row] for row in logits.tolist()],
            "layer_table": layer_table,
        }
    text = compact_json(out)
    args.out.write_text(text + "\n")
    print(f"wrote {args.out} ({len(text) / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()

"""Make ``videozoo/reference_tables/vivit.json`` from scenic's ViViT (JAX/Flax), models 1-4.

Two steps, in two environments (scenic needs JAX and Flax; videozoo needs torch)::

    # 1. in a virtualenv with jax[cpu], flax, ml_collections, immutabledict (no torch needed),
    #    with a checkout of github.com/google-research/scenic at commit 4a38d47:
    python scripts/reference_tables/vivit.py jax --scenic /path/to/scenic --commit 4a38d475ee89cb821078c0e2bf2065ee030e1535 \\
        --out videozoo/reference_tables/vivit.json
    # 2. with videozoo's environment: the paper-size comparison with our models, added to the file
    PYTHONPATH=$PWD python scripts/reference_tables/vivit.py torch --table videozoo/reference_tables/vivit.json

Step 1 builds scenic's ``ViViT`` (models 1, 3, 4) and ``SpaceTimeViViT`` (model 2) as
``ViViTClassificationModel.build_flax_model`` does, at ViViT-B/16x2 (hidden 768, 12 layers, 12
heads, MLP 3072, 4 temporal layers for model 2; 32x224x224, 400 classes, "3d_conv" tubelets with
the central-frame initializer, dropout 0): model 1 as ``configs/kinetics400/vivit_base_k400.py``,
model 2 as ``configs/kinetics400/vivit_base_factorised_encoder.py``, models 3 and 4 (no released
recipe) with the ``'gap'`` classifier scenic requires for them and, for model 3, the paper's
``attention_order='space_time'``.  It records each model's flattened parameter table
(``jax.eval_shape`` of ``init``, in Flax's order) and count, the logits of a tiny configuration of
each for weights drawn by :func:`videozoo.reference_tables.seeded_array`, and at the paper size
scenic's logits for weights drawn with std 0.02.  Step 2 maps those paper-size weights into our
models and records the largest logit difference.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from mtv import compact_json  # noqa: E402  (the same JSON layout)

MODELS = {  # videozoo variant name -> (variant, scenic attention_config, classifier)
    "vivit_b_st": ("spatio-temporal", {"type": "spacetime"}, "token"),
    "vivit_b_fe": ("factorised-encoder", {"type": "factorized_encoder"}, "token"),
    "vivit_b_fsa": ("factorised-self-attention", {"type": "factorized_self_attention_block",
                                                  "attention_order": "space_time"}, "gap"),
    "vivit_b_fdp": ("factorised-dot-product", {"type": "factorized_dot_product_attention"}, "gap"),
}
RECIPES = {"vivit_b_st": "scenic/projects/vivit/configs/kinetics400/vivit_base_k400.py",
           "vivit_b_fe": "scenic/projects/vivit/configs/kinetics400/vivit_base_factorised_encoder.py"}
PAPER = dict(hidden=768, layers=12, heads=12, mlp=3072, temporal_layers=4, patch=16, t=2, frames=32, size=224,
             classes=400)
TINY = dict(hidden=32, layers=2, heads=4, mlp=128, temporal_layers=2, patch=8, t=2, frames=8, size=32, classes=5)
PAPER_SIZE = dict(weight_seed=0, std=0.02, input_seed=1)


def run_jax(args: argparse.Namespace) -> None:
    import scenic_import

    tables = scenic_import.setup(args.scenic)
    import jax
    import jax.numpy as jnp
    import ml_collections
    import numpy as np
    from flax import traverse_util
    from scenic.projects.vivit import model as vivit_model

    def build(name: str, s: dict):
        _, attention, classifier = MODELS[name]
        common = dict(num_classes=s["classes"], patches=ml_collections.ConfigDict({"size": (s["patch"], s["patch"],
                                                                                            s["t"])}),
                      hidden_size=s["hidden"], temporal_encoding_config=ml_collections.ConfigDict(
                          {"method": "3d_conv", "kernel_init_method": "central_frame_initializer"}),
                      attention_config=ml_collections.ConfigDict(attention), representation_size=None,
                      classifier=classifier, dropout_rate=0.0, attention_dropout_rate=0.0)
        if name == "vivit_b_fe":
            return vivit_model.SpaceTimeViViT(
                spatial_mlp_dim=s["mlp"], spatial_num_layers=s["layers"], spatial_num_heads=s["heads"],
                temporal_mlp_dim=s["mlp"], temporal_num_layers=s["temporal_layers"], temporal_num_heads=s["heads"],
                **common)
        return vivit_model.ViViT(mlp_dim=s["mlp"], num_layers=s["layers"], num_heads=s["heads"],
                                 stochastic_droplayer_rate=0.0, **common)

    def param_table(model, shape):
        shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(shape), train=False))
        flat = traverse_util.flatten_dict(shapes["params"], sep="/")
        return [[k, list(v.shape)] for k, v in flat.items()]

    def logits(model, table, input_shape, weight_seed, input_seed, std):
        flat = {name: tables.seeded_array(name, shape, weight_seed, i, std) for i, (name, shape) in enumerate(table)}
        params = traverse_util.unflatten_dict({tuple(k.split("/")): jnp.asarray(v) for k, v in flat.items()})
        x = jnp.asarray(tables.seeded_input_array(input_shape, input_seed))
        return np.asarray(model.apply({"params": params}, x, train=False))

    def rows(a) -> list:
        return [[float(f"{v:.8g}") for v in row] for row in a.tolist()]

    out = {
        "model": "ViViT (arXiv 2103.15691)",
        "repository": "https://github.com/google-research/scenic",
        "commit": args.commit,
        "file": "scenic/projects/vivit/model.py",
        "how": ("scripts/reference_tables/vivit.py: scenic's Flax ViViT / SpaceTimeViViT built as "
                "ViViTClassificationModel.build_flax_model does (dropout 0); params flattened with '/' in Flax's "
                "order; logits of apply(train=False) with weights from videozoo.reference_tables.seeded_array(name, "
                "shape, weight_seed, index, std) and input (B, T, H, W, C) from seeded_input_array(shape, seed)"),
        "tolerance": 1e-5,
        "models": {},
    }
    for name, (variant, attention, classifier) in MODELS.items():
        s = PAPER
        model = build(name, s)
        paper_shape = [1, s["frames"], s["size"], s["size"], 3]
        table = param_table(model, tuple(paper_shape))
        rec = {"variant": variant, "attention_config": attention, "classifier": classifier,
               "recipe": RECIPES.get(name), "sizes": s,
               "params": int(sum(np.prod(shape) for _, shape in table)), "layer_table": table}
        tiny = build(name, TINY)
        shape = [2, TINY["frames"], TINY["size"], TINY["size"], 3]
        tiny_table = param_table(tiny, tuple(shape))
        rec["test_vector"] = {
            "sizes": TINY,
            "videozoo_config": dict(num_classes=TINY["classes"], img_size=TINY["size"], num_frames=TINY["frames"],
                                    patch_size=TINY["patch"], tubelet_t=TINY["t"], embed_dim=TINY["hidden"],
                                    depth=TINY["layers"], temporal_depth=TINY["temporal_layers"],
                                    num_heads=TINY["heads"], mlp_ratio=TINY["mlp"] / TINY["hidden"], variant=variant),
            "weight_seed": 0, "input_seed": 1, "input_shape": shape,
            "logits": rows(logits(tiny, tiny_table, shape, 0, 1, tables.WEIGHT_STD)),
            "layer_table": tiny_table,
        }
        if not args.skip_full:
            full = logits(model, table, paper_shape, PAPER_SIZE["weight_seed"], PAPER_SIZE["input_seed"],
                          PAPER_SIZE["std"])
            rec["paper_size"] = {**PAPER_SIZE, "input_shape": paper_shape, "logits": rows(full)}
        out["models"][name] = rec
        print(name, rec["params"], flush=True)
    args.out.write_text(compact_json(out) + "\n")
    print(f"wrote {args.out}")


def run_torch(args: argparse.Namespace) -> None:
    import torch

    from videozoo.models import vivit
    from videozoo.reference_tables import seeded_input, seeded_state_dict
    from videozoo.registry import make_config

    ref = json.loads(args.table.read_text())
    for name, rec in ref["models"].items():
        full = rec["paper_size"]
        cfg = make_config(name, "paper")
        model = vivit.ViViT(cfg).eval()
        sd = seeded_state_dict(rec["layer_table"], full["weight_seed"], full["std"])
        model.load_state_dict(vivit.load_state_dict_from("scenic", sd, cfg))
        x = seeded_input(full["input_shape"], full["input_seed"]).permute(0, 4, 1, 2, 3)
        with torch.no_grad():
            diff = (model(x) - torch.tensor(full["logits"])).abs().max().item()
        full["logits_max_abs_diff_videozoo"] = diff
        full["logits_max_abs"] = max(abs(v) for row in full["logits"] for v in row)
        print(f"{name}: paper size, max abs logit difference {diff:.3e} (logits up to {full['logits_max_abs']:.3g})",
              flush=True)
    args.table.write_text(compact_json(ref) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    j = sub.add_parser("jax", help="run scenic's models (JAX environment)")
    j.add_argument("--scenic", type=Path, required=True, help="checkout root of google-research/scenic")
    j.add_argument("--commit", required=True, help="commit of that checkout")
    j.add_argument("--out", type=Path, required=True)
    j.add_argument("--skip-full", action="store_true", help="skip the paper-size logits")
    t = sub.add_parser("torch", help="compare our models at the paper size (videozoo environment)")
    t.add_argument("--table", type=Path, required=True)
    args = p.parse_args()
    run_jax(args) if args.step == "jax" else run_torch(args)


if __name__ == "__main__":
    main()

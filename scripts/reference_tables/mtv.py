"""Make ``videozoo/reference_tables/mtv.json`` from scenic's MTV (JAX/Flax).

Two steps, in two environments (scenic needs JAX and Flax; videozoo needs torch)::

    # 1. in a virtualenv with jax[cpu], flax, ml_collections, immutabledict (no torch needed),
    #    with a checkout of github.com/google-research/scenic at commit 4a38d47:
    python scripts/reference_tables/mtv.py jax --scenic /path/to/scenic --commit 4a38d475ee89cb821078c0e2bf2065ee030e1535 \\
        --out videozoo/reference_tables/mtv.json
    # 2. with videozoo's environment: the paper-size comparison with our model, added to the file
    PYTHONPATH=$PWD python scripts/reference_tables/mtv.py torch --table videozoo/reference_tables/mtv.json

Step 1 builds scenic's ``MTV`` exactly as ``MTVClassificationModel.build_flax_model`` does, from
the recipe ``configs/kinetics/k400_mtv_b2_cva.py`` (dropout and stochastic depth off, which adds
no parameters), records its flattened parameter table (``jax.eval_shape`` of ``init``, in Flax's
order) and count; for a tiny three-view MTV it records the logits of ``apply(train=False)`` with
weights drawn by :func:`videozoo.reference_tables.seeded_array` over its table; and at the paper
size it records scenic's logits for weights drawn the same way with std 0.02.  Step 2 maps those
paper-size weights into our model and records the largest logit difference.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

TINY_VIEWS = [  # (hidden_size, tubelet t, heads, mlp_dim): a 3-view MTV with the recipe's structure
    (8, 8, 2, 16), (12, 4, 2, 24), (16, 2, 2, 32)]
TINY = dict(num_frames=16, img_size=16, patch=8, num_layers=3, fusion_layers=(1, 2), global_heads=2,
            global_mlp_dim=24, global_layers=2, num_classes=5)
PAPER_SIZE = dict(weight_seed=0, std=0.02, input_seed=1, input_shape=[1, 32, 224, 224, 3])


def compact_json(obj: dict) -> str:
    """JSON with one line per layer-table row and per list of numbers (readable diffs)."""
    text = json.dumps(obj, indent=1)
    text = re.sub(r"\[[^\[\]{}]*\]", lambda m: " ".join(m.group(0).split()), text)
    return re.sub(r'\[\s*"[^"\n]*",\s*\[[^\[\]]*\]\s*\]', lambda m: " ".join(m.group(0).split()), text)


def run_jax(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    import scenic_import

    tables = scenic_import.setup(args.scenic)
    import jax
    import jax.numpy as jnp
    import ml_collections
    import numpy as np
    from flax import traverse_util
    from scenic.projects.mtv import model as mtv_model
    from scenic.projects.mtv import model_utils
    from scenic.projects.mtv.configs.kinetics import k400_mtv_b2_cva

    def build(config: ml_collections.ConfigDict, num_classes: int):
        m = config.model
        return mtv_model.MTV(
            view_configs=m.view_configs, cross_view_fusion=m.cross_view_fusion,
            temporal_encoding_config=m.temporal_encoding_config, global_encoder_config=m.global_encoder_config,
            input_token_temporal_dims=model_utils.get_input_token_temporal_dims(config.dataset_configs.num_frames,
                                                                                m.view_configs),
            num_classes=num_classes, classifier=m.classifier, dropout_rate=0.0, attention_dropout_rate=0.0,
            stochastic_depth=0.0)

    def param_table(model, shape):
        shapes = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(shape), train=False))
        flat = traverse_util.flatten_dict(shapes["params"], sep="/")
        return [[k, list(v.shape)] for k, v in flat.items()]

    def logits(model, table, input_shape, weight_seed, input_seed, std):
        flat = {name: tables.seeded_array(name, shape, weight_seed, i, std) for i, (name, shape) in enumerate(table)}
        params = traverse_util.unflatten_dict({tuple(k.split("/")): jnp.asarray(v) for k, v in flat.items()})
        x = jnp.asarray(tables.seeded_input_array(input_shape, input_seed))
        return np.asarray(model.apply({"params": params}, x, train=False))

    paper_cfg = k400_mtv_b2_cva.get_config()
    paper = build(paper_cfg, 400)
    paper_shape = (1, paper_cfg.dataset_configs.num_frames, 224, 224, 3)
    paper_table = param_table(paper, paper_shape)
    out = {
        "model": "MTV (arXiv 2201.04288)",
        "repository": "https://github.com/google-research/scenic",
        "commit": args.commit,
        "file": "scenic/projects/mtv/model.py",
        "how": ("scripts/reference_tables/mtv.py: scenic's Flax MTV built as MTVClassificationModel.build_flax_model "
                "does (dropout and stochastic depth 0); params flattened with '/' in Flax's order; logits of "
                "apply(train=False) with weights from videozoo.reference_tables.seeded_array(name, shape, weight_seed, "
                "index, std) and input (B, T, H, W, C) from seeded_input_array(input_shape, input_seed)"),
        "tolerance": 1e-5,
        "recipe": {"config": "scenic/projects/mtv/configs/kinetics/k400_mtv_b2_cva.py", "variant": "Ti/8+S/4+B/2",
                   "num_frames": 32, "num_classes": 400,
                   "params": int(sum(np.prod(s) for _, s in paper_table)), "layer_table": paper_table},
    }
    print("paper params", out["recipe"]["params"], flush=True)

    cfg = ml_collections.ConfigDict({
        "dataset_configs": {"num_frames": TINY["num_frames"]},
        "model": {
            "view_configs": [ml_collections.ConfigDict({"hidden_size": d, "patches": {"size": (TINY["patch"],
                             TINY["patch"], t)}, "num_heads": h, "mlp_dim": m, "num_layers": TINY["num_layers"]})
                             for d, t, h, m in TINY_VIEWS],
            "cross_view_fusion": ml_collections.ConfigDict({"type": "cross_view_attention",
                                                            "fuse_in_descending_order": True,
                                                            "use_query_config": True,
                                                            "fusion_layers": TINY["fusion_layers"]}),
            "global_encoder_config": ml_collections.ConfigDict({"num_heads": TINY["global_heads"],
                                                                "mlp_dim": TINY["global_mlp_dim"],
                                                                "num_layers": TINY["global_layers"],
                                                                "hidden_size": 8, "merge_axis": "channel"}),
            "temporal_encoding_config": ml_collections.ConfigDict({"kernel_init_method": "central_frame_initializer",
                                                                   "method": "3d_conv"}),
            "classifier": "token"}})
    tiny = build(cfg, TINY["num_classes"])
    input_shape = [2, TINY["num_frames"], TINY["img_size"], TINY["img_size"], 3]
    tiny_table = param_table(tiny, tuple(input_shape))
    tiny_logits = logits(tiny, tiny_table, input_shape, 0, 1, tables.WEIGHT_STD)
    out["test_vector"] = {
        "scenic_config": json.loads(json.dumps(cfg.to_dict(), default=lambda o: o.to_dict())),
        "videozoo_config": dict(num_classes=TINY["num_classes"], num_frames=TINY["num_frames"],
                                img_size=TINY["img_size"], patch_size=TINY["patch"],
                                tubelet_t=[t for _, t, _, _ in TINY_VIEWS], view_dims=[d for d, _, _, _ in TINY_VIEWS],
                                view_heads=[h for _, _, h, _ in TINY_VIEWS],
                                view_mlp_dims=[m for _, _, _, m in TINY_VIEWS], depth=TINY["num_layers"],
                                fusion_layers=list(TINY["fusion_layers"]), global_heads=TINY["global_heads"],
                                global_mlp_dim=TINY["global_mlp_dim"], global_depth=TINY["global_layers"],
                                stochastic_depth=0.0),
        "weight_seed": 0, "input_seed": 1, "input_shape": input_shape,
        "logits": [[float(f"{v:.8g}") for v in row] for row in tiny_logits.tolist()],
        "layer_table": tiny_table,
    }
    if not args.skip_full:
        full = logits(paper, paper_table, PAPER_SIZE["input_shape"], PAPER_SIZE["weight_seed"],
                      PAPER_SIZE["input_seed"], PAPER_SIZE["std"])
        out["paper_size"] = {**PAPER_SIZE, "logits": [[float(f"{v:.8g}") for v in row] for row in full.tolist()]}
    args.out.write_text(compact_json(out) + "\n")
    print(f"wrote {args.out}")


def run_torch(args: argparse.Namespace) -> None:
    import torch

    from videozoo.models import mtv
    from videozoo.reference_tables import seeded_input, seeded_state_dict

    ref = json.loads(args.table.read_text())
    full = ref["paper_size"]
    model = mtv.MTV(mtv.MTVConfig.paper()).eval()
    sd = seeded_state_dict(ref["recipe"]["layer_table"], full["weight_seed"], full["std"])
    model.load_state_dict(mtv.load_state_dict_from("scenic", sd))
    x = seeded_input(full["input_shape"], full["input_seed"]).permute(0, 4, 1, 2, 3)
    with torch.no_grad():
        diff = (model(x) - torch.tensor(full["logits"])).abs().max().item()
    full["logits_max_abs_diff_videozoo"] = diff
    full["logits_max_abs"] = max(abs(v) for row in full["logits"] for v in row)
    args.table.write_text(compact_json(ref) + "\n")
    print(f"paper size: max abs logit difference {diff:.3e} (logits up to {full['logits_max_abs']:.3g})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    j = sub.add_parser("jax", help="run scenic's model (JAX environment)")
    j.add_argument("--scenic", type=Path, required=True, help="checkout root of google-research/scenic")
    j.add_argument("--commit", required=True, help="commit of that checkout")
    j.add_argument("--out", type=Path, required=True)
    j.add_argument("--skip-full", action="store_true", help="skip the paper-size logits")
    t = sub.add_parser("torch", help="compare our model at the paper size (videozoo environment)")
    t.add_argument("--table", type=Path, required=True)
    args = p.parse_args()
    run_jax(args) if args.step == "jax" else run_torch(args)


if __name__ == "__main__":
    main()

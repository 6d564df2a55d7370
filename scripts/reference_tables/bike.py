"""Make ``videozoo/reference_tables/bike.json`` from the authors' BIKE code.

Usage (a checkout of github.com/whwu95/BIKE; no GPU, no weights needed)::

    git clone https://github.com/whwu95/BIKE /tmp/BIKE
    git -C /tmp/BIKE checkout e8f6a8b8b573878e03d1c06246d830d65bf87799
    PYTHONPATH=$PWD python scripts/reference_tables/bike.py --release /tmp/BIKE \\
        --out videozoo/reference_tables/bike.json

What it records, all computed by the authors' ``clip/model.py`` (their CLIP), ``modules/video_clip.py``
(``video_header``, ``sentence_text_logit``) and ``utils/NCELoss.py`` (``NCELoss``), loaded from the
checkout:

* the (state-dict name, shape) tables and parameter counts of the released configurations: the
  video branch with ViT-B/16 (``configs/k400/k400_train_rgb_vitb-16-f8.yaml``: ``Transf`` header,
  ``VCS`` interaction) and the attribute head of the video + attributes model with ViT-B/32
  (``k400_train_video_attr_vitb-32-f8.yaml``), built as ``train.py`` / ``train_attributes.py`` build
  them;
* for a tiny configuration, with weights drawn by :func:`videozoo.models.bike.seeded_state_dict`
  over their tables and clips drawn by :func:`videozoo.models.bike.seeded_input`: the video
  branch's logits (``logit_scale * video_header(image_emb, text_emb, cls_emb)`` for ``VCS`` and
  ``DP``, as ``train.py`` computes them), the bidirectional ``NCELoss`` of those logits, and the
  attribute head's cosines for given attribute sentences (as ``train_attributes.py`` computes them).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = "https://github.com/whwu95/BIKE"
# The release's CLIP constructor arguments: embed_dim, image_resolution, vision_layers, vision_width,
# vision_patch_size, context_length, vocab_size, transformer_width, transformer_heads, transformer_layers.
RELEASED = {
    "video_vitb16": dict(config="configs/k400/k400_train_rgb_vitb-16-f8.yaml", videozoo_name="bike",
                         clip=(512, 224, 12, 768, 16, 77, 49408, 512, 8, 12), attributes=False),
    "video_attributes_vitb32": dict(config="configs/k400/k400_train_video_attr_vitb-32-f8.yaml",
                                    videozoo_name="bike_vitb32_va",
                                    clip=(512, 224, 12, 768, 32, 77, 49408, 512, 8, 12), attributes=True),
}
# Tiny: 64-wide CLIP on 32x32 frames with 8x8 patches, 16-token context (the release's rules give
# one 64-wide head per visual block and per header block; the header always has 6 blocks).
TINY = dict(clip=(64, 32, 2, 64, 8, 16, 49408, 64, 4, 2), batch=3, frames=4,
            captions=["a red square moving left", "a blue circle moving up", "a green cross moving right",
                      "a yellow triangle moving down"],
            labels=[0, 1, 0],
            sentences=["This is a video about red,square,left", "This is a video about blue,circle,up,ball",
                       "This is a video about cross"])


def load_release(path: Path):
    sys.path.insert(0, str(path))
    from clip.model import CLIP  # noqa: E402  (the release's packages, from the checkout)
    from modules.video_clip import sentence_text_logit, video_header  # noqa: E402
    from utils.NCELoss import NCELoss  # noqa: E402

    return CLIP, video_header, sentence_text_logit, NCELoss


def compact_json(obj: dict) -> str:
    """JSON with one line per layer-table row and per list of numbers (readable diffs)."""
    text = json.dumps(obj, indent=1)
    text = re.sub(r"\[[^\[\]{}]*\]", lambda m: " ".join(m.group(0).split()), text)
    return re.sub(r'\[\s*"[^"\n]*",\s*\[[^\[\]]*\]\s*\]', lambda m: " ".join(m.group(0).split()), text)


def table(model: torch.nn.Module) -> list:
    return [[k, list(v.shape)] for k, v in model.state_dict().items()]


def build(release, clip_args, attributes: bool, device: str = "cpu"):
    CLIP, video_header, sentence_text_logit, _ = release
    with torch.device(device), contextlib.redirect_stdout(io.StringIO()):   # the release prints its settings
        clip = CLIP(*clip_args)
        sd = clip.state_dict()
        vcs = video_header("Transf", "VCS", sd)
        sent = sentence_text_logit(sd) if attributes else None
    return clip, vcs, sent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--release", type=Path, required=True, help="checkout of whwu95/BIKE")
    p.add_argument("--commit", help="commit of that checkout (default: git rev-parse HEAD there)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    from videozoo.data.tokenizer import tokenize
    from videozoo.models.bike import seeded_input, seeded_state_dict

    release = load_release(args.release)
    commit = args.commit or subprocess.run(["git", "-C", str(args.release), "rev-parse", "HEAD"],
                                           capture_output=True, text=True, check=True).stdout.strip()
    out = {
        "model": "BIKE (arXiv 2301.00182)",
        "repository": REPO,
        "commit": commit,
        "files": ["clip/model.py", "modules/video_clip.py", "utils/NCELoss.py"],
        "how": ("scripts/reference_tables/bike.py: the release's CLIP(*clip_args), video_header('Transf', ...) and "
                "sentence_text_logit built as train.py and train_attributes.py build them (meta device for the "
                "released sizes); state_dict() names and shapes in the release's order; the tiny models in eval "
                "mode with weights from videozoo.models.bike.seeded_state_dict(table, weight_seed) and clips "
                "(B*T, 3, H, W) from seeded_input(shape, input_seed)"),
        "tolerance": 1e-5,
        "released": {},
    }
    for name, r in RELEASED.items():
        clip, vcs, sent = build(release, r["clip"], r["attributes"], device="meta")
        entry = {"config": r["config"], "videozoo_name": r["videozoo_name"], "clip_args": list(r["clip"]),
                 "clip_table": table(clip), "video_header_table": table(vcs)}
        n = sum(p.numel() for p in clip.parameters()) + sum(p.numel() for p in vcs.parameters())
        if sent is not None:
            entry["sentence_text_logit_table"] = table(sent)
            n += sum(p.numel() for p in sent.parameters())
        entry["params"] = n
        out["released"][name] = entry

    clip, vcs, sent = build(release, TINY["clip"], True)
    _, _, _, NCELoss = release
    with contextlib.redirect_stdout(io.StringIO()):
        dp = release[1]("Transf", "DP", clip.state_dict())
    tables = {"clip": table(clip), "video_header": table(vcs), "sentence_text_logit": table(sent)}
    seeds = {"clip": 11, "video_header": 12, "sentence_text_logit": 13, "input": 14}
    clip.load_state_dict(seeded_state_dict(tables["clip"], seeds["clip"]))
    vcs.load_state_dict(seeded_state_dict(tables["video_header"], seeds["video_header"]))
    dp.load_state_dict(seeded_state_dict(tables["video_header"], seeds["video_header"]))
    sent.load_state_dict(seeded_state_dict(tables["sentence_text_logit"], seeds["sentence_text_logit"]))
    for m in (clip, vcs, dp, sent):
        m.eval()
    B, T, size = TINY["batch"], TINY["frames"], TINY["clip"][1]
    context = TINY["clip"][5]
    frames_shape = [B * T, 3, size, size]
    images = seeded_input(frames_shape, seeds["input"])
    text = tokenize(TINY["captions"][:B], context_length=context)
    sentences = tokenize(TINY["sentences"], context_length=context)
    labels = torch.tensor(TINY["labels"])
    gt = (labels[:, None] == labels[None, :]).float()
    nce = NCELoss()
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
        image_emb = clip.encode_image(images).view(B, T, -1)
        cls_emb, text_emb = clip.encode_text(text, return_token=True)
        scale = clip.logit_scale.exp()
        vcs_logits = scale * vcs(image_emb, text_emb, cls_emb)
        dp_logits = scale * dp(image_emb, text_emb, cls_emb)
        loss = (nce(vcs_logits, gt) + nce(vcs_logits.T, gt)) / 2
        s_cls, _ = clip.encode_text(sentences, return_token=True)
        attr = sent(query_cls_emb=F.normalize(cls_emb, dim=-1), sentence_cls_features=F.normalize(s_cls, dim=-1))
    out["tiny"] = {
        "clip_args": list(TINY["clip"]), "batch": B, "frames": T, "frames_shape": frames_shape, "seeds": seeds,
        "captions": TINY["captions"][:B], "labels": TINY["labels"], "sentences": TINY["sentences"],
        "tables": tables,
        "vcs_logits": vcs_logits.tolist(), "dp_logits": dp_logits.tolist(), "nce_loss": loss.item(),
        "attribute_cosines": attr.tolist(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(compact_json(out) + "\n")
    print(f"wrote {args.out}: params " + ", ".join(f"{k} {v['params']}" for k, v in out["released"].items()))


if __name__ == "__main__":
    main()

"""Make the BIKE tables in ``videozoo/reference_tables/`` from the authors' BIKE code.

Usage (a checkout of github.com/whwu95/BIKE; no GPU, no weights needed)::

    git clone https://github.com/whwu95/BIKE /tmp/BIKE
    git -C /tmp/BIKE checkout e8f6a8b8b573878e03d1c06246d830d65bf87799
    PYTHONPATH=$PWD python scripts/reference_tables/bike.py --release /tmp/BIKE --out videozoo/reference_tables

What it writes, all from the authors' ``clip/model.py`` (their CLIP), ``modules/video_clip.py``
(``video_header``, ``sentence_text_logit``) and ``utils/NCELoss.py`` (``NCELoss``), loaded from the
checkout, in the layout of :mod:`videozoo.reference_tables` (``entries``: ``[name, shape,
"param" | "buffer"]``).  Names carry the release's checkpoint keys as prefixes:
``model_state_dict.`` (the CLIP), ``fusion_model_state_dict.`` (the video header) and
``attributes.fusion_model_state_dict.`` (the attribute branch's ``sentence_text_logit``).

* ``bike_vitb16_k400.json``: the video branch with ViT-B/16
  (``configs/k400/k400_train_rgb_vitb-16-f8.yaml``: ``Transf`` header, ``VCS`` interaction);
* ``bike_vitb32_va_k400.json``: the video + attributes model with ViT-B/32
  (``k400_train_video_attr_vitb-32-f8.yaml``), one CLIP;
* ``bike_tiny_outputs.json``: a tiny configuration's table and what their code computes with
  weights drawn by :func:`videozoo.models.bike.seeded_state_dict` over that table and clips drawn by
  :func:`videozoo.models.bike.seeded_input`: the video branch's logits
  (``logit_scale * video_header(image_emb, text_emb, cls_emb)`` for ``VCS`` and ``DP``, as
  ``train.py`` computes them), the bidirectional ``NCELoss`` of those logits, and the attribute
  head's cosines for given attribute sentences (as ``train_attributes.py`` computes them).
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
    "bike_vitb16_k400": dict(config="configs/k400/k400_train_rgb_vitb-16-f8.yaml", videozoo_name="bike",
                         clip=(512, 224, 12, 768, 16, 77, 49408, 512, 8, 12), attributes=False),
    "bike_vitb32_va_k400": dict(config="configs/k400/k400_train_video_attr_vitb-32-f8.yaml",
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
    """JSON with one line per table entry and per list of numbers (readable diffs)."""
    text = json.dumps(obj, indent=1)
    text = re.sub(r"\[[^\[\]{}]*\]", lambda m: " ".join(m.group(0).split()), text)
    return re.sub(r'\[\s*"[^"\n]*",\s*\[[^\[\]]*\],\s*"[a-z]+"\s*\]', lambda m: " ".join(m.group(0).split()), text)


def entries(prefix: str, model: torch.nn.Module) -> list:
    params = {name for name, _ in model.named_parameters()}
    return [[prefix + k, list(v.shape), "param" if k in params else "buffer"] for k, v in model.state_dict().items()]


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
    p.add_argument("--out", type=Path, required=True, help="folder of the tables (videozoo/reference_tables)")
    args = p.parse_args()
    from videozoo.data.tokenizer import tokenize
    from videozoo.models.bike import seeded_input, seeded_state_dict

    release = load_release(args.release)
    commit = args.commit or subprocess.run(["git", "-C", str(args.release), "rev-parse", "HEAD"],
                                           capture_output=True, text=True, check=True).stdout.strip()
    header = {"repository": REPO, "commit": commit,
              "files": ["clip/model.py", "modules/video_clip.py", "utils/NCELoss.py"]}
    prefixes = ("model_state_dict.", "fusion_model_state_dict.", "attributes.fusion_model_state_dict.")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, r in RELEASED.items():
        clip, vcs, sent = build(release, r["clip"], r["attributes"], device="meta")
        modules = [m for m in (clip, vcs, sent) if m is not None]
        table = {
            "model": f"BIKE (arXiv 2301.00182), {r['config']}", **header,
            "constructor": (f"clip.model.CLIP{tuple(r['clip'])}; modules.video_clip.video_header('Transf', 'VCS', "
                            f"clip.state_dict())" + ("; modules.video_clip.sentence_text_logit(clip.state_dict())"
                                                     if sent is not None else "")),
            "how": ("scripts/reference_tables/bike.py: the release's modules built as train.py and train_attributes.py "
                    "build them, on the meta device (random weights, nothing downloaded); every state_dict() entry in "
                    "order, prefixed with its checkpoint key (model_state_dict. for the CLIP, fusion_model_state_dict. "
                    "for the video header, attributes.fusion_model_state_dict. for the attribute head; one CLIP serves "
                    "both branches); params is the sum of the parameters' sizes"),
            "videozoo_name": r["videozoo_name"],
            "params": sum(p.numel() for m in modules for p in m.parameters()),
            "entries": [e for pre, m in zip(prefixes, (clip, vcs, sent)) if m is not None for e in entries(pre, m)],
        }
        (args.out / f"{name}.json").write_text(compact_json(table) + "\n")
        print(f"wrote {name}.json: params {table['params']}")

    clip, vcs, sent = build(release, TINY["clip"], True)
    _, _, _, NCELoss = release
    with contextlib.redirect_stdout(io.StringIO()):
        dp = release[1]("Transf", "DP", clip.state_dict())
    table = [e for pre, m in zip(prefixes, (clip, vcs, sent)) for e in entries(pre, m)]
    seed = 11
    weights = seeded_state_dict([[n, s] for n, s, _ in table], seed)
    for pre, m in zip(prefixes, (clip, vcs, sent)):
        m.load_state_dict({k[len(pre):]: v for k, v in weights.items() if k.startswith(pre)})
    dp.load_state_dict({k[len(prefixes[1]):]: v for k, v in weights.items() if k.startswith(prefixes[1])})
    for m in (clip, vcs, dp, sent):
        m.eval()
    B, T, size = TINY["batch"], TINY["frames"], TINY["clip"][1]
    context = TINY["clip"][5]
    frames_shape = [B * T, 3, size, size]
    input_seed = 14
    images = seeded_input(frames_shape, input_seed)
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
    tiny = {
        "model": "BIKE (arXiv 2301.00182), a tiny configuration run by the release's code", **header,
        "constructor": (f"clip.model.CLIP{tuple(TINY['clip'])}; video_header('Transf', 'VCS' and 'DP', "
                        f"clip.state_dict()); sentence_text_logit(clip.state_dict())"),
        "how": ("scripts/reference_tables/bike.py: the release's tiny modules in eval mode with weights "
                "videozoo.models.bike.seeded_state_dict(entries, weight_seed) in the table's order (the DP header gets "
                "the VCS header's weights), clips (B*T, 3, H, W) = seeded_input(frames_shape, input_seed); outputs as "
                "train.py (logit_scale.exp() * video_header(...)) and train_attributes.py (sentence_text_logit on "
                "normalised embeddings) compute them; nce_loss = (NCELoss(logits, G) + NCELoss(logits.T, G)) / 2"),
        "tolerance": 1e-5,
        "clip_args": list(TINY["clip"]), "batch": B, "frames": T, "frames_shape": frames_shape,
        "weight_seed": seed, "input_seed": input_seed, "captions": TINY["captions"][:B], "labels": TINY["labels"],
        "sentences": TINY["sentences"],
        "outputs": {"vcs_logits": vcs_logits.tolist(), "dp_logits": dp_logits.tolist(), "nce_loss": loss.item(),
                    "attribute_cosines": attr.tolist()},
        "params": sum(p.numel() for m in (clip, vcs, sent) for p in m.parameters()),
        "entries": table,
    }
    (args.out / "bike_tiny_outputs.json").write_text(compact_json(tiny) + "\n")
    print("wrote bike_tiny_outputs.json")


if __name__ == "__main__":
    main()

"""BIKE: bidirectional cross-modal knowledge exploration on top of CLIP for video recognition.

Paper: Wenhao Wu, Xiaohan Wang, Haipeng Luo, Jingdong Wang, Yi Yang, Wanli Ouyang,
"Bidirectional Cross-Modal Knowledge Exploration for Video Recognition with Pre-trained
Vision-Language Models", CVPR 2023, arXiv 2301.00182.  Authors' code: github.com/whwu95/BIKE
(commit e8f6a8b), whose module maths this file follows and is checked against.

BIKE uses a CLIP (:mod:`videozoo.models.clip`) in both directions:

* **Video -> text: video attribute association**.  The clip's CLIP embedding
  retrieves the ``k`` words of a lexicon it is most similar to; they are written into a
  sentence, ``"This is a video about w1,w2,...,wk"`` (the release's template), which the text
  tower encodes.  A small head compares the sentence with the class captions: two 2-layer
  MLPs (``query_fc`` on the normalised caption embedding, ``sentence_fc`` on the normalised
  sentence embedding) and a cosine similarity (the release's ``sentence_text_logit``).  The
  attribute branch's logits are added to the video branch's (the release fuses the two
  branches' scores after training; here with weight ``attribute_weight``).
* **Text -> video: video (temporal) concept spotting**.  The frame embeddings pass a
  temporal transformer (the release's ``Transf`` header: 6 pre-norm blocks, learned frame
  positions, a residual; :class:`videozoo.layers.temporal_transformer.FrameTransformer`).  Then
  every word token of a caption scores every frame, ``softmax_t(<w_l, v_t> / 0.01)``, and the
  scores averaged over the caption's word tokens are that category's temporal saliency; the
  saliency-weighted sum of the (normalised) frames is compared with the caption embedding:
  ``logit(b, n) = <sum_t a_{n,b,t} v_{b,t}, c_n>`` (the release's ``VCS`` interaction; the
  ``DP`` interaction, mean over frames and cosine, is the baseline).  The saliency is
  parameter-free, as the paper says.
* **Bidirectional loss**: video -> category and category -> video, each a KL
  divergence between the softmax of the scaled logits and the softmax of ``10 x`` the
  same-class indicator matrix (the release's ``NCELoss``), averaged over the two directions;
  the attribute branch is trained with the same loss on its own logits.

What is simplified: attributes are retrieved by the model's own CLIP towers (frame-averaged
embedding against the lexicon words, no gradient) instead of a separate frozen CLIP ViT-L/14
run offline over a large lexicon, and both branches are trained together with the sum of
their losses instead of one after the other.  Word-token saliency runs over every position of
the caption, padding included, as in the release.  The ``joint`` space-time attention option
and the dropouts of the release are not built.

Paper configuration: ViT-B/16 CLIP, 8 frames of 224x224 (the release's
``configs/k400/k400_train_rgb_vitb-16-f8.yaml``, 84.0 % top-1 on Kinetics-400); the variant
``bike_vitb32_va`` is the video + attributes model (ViT-B/32, top-5 attributes,
``k400_train_video_attr_vitb-32-f8.yaml``, 81.4 %).

Parameter names: CLIP's (``visual.*``, ``text.*``, ``logit_scale``), ``video_head.*`` (frame
positions ``frame_position_embeddings``, ``blocks.i``) and ``attribute_head.query_fc`` /
``sentence_fc``.  :func:`load_state_dict_from` converts the release's checkpoints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from videozoo.layers.nce import soft_target_nce
from videozoo.layers.temporal_transformer import FrameTransformer
from videozoo.models.clip import CLIP, CLIPConfig, QuickGELU, normalize_pixels
from videozoo.models.clip import load_state_dict_from as clip_state_dict_from
from videozoo.registry import Reported, register_check, register_model, register_variant

__all__ = ["BIKEConfig", "BIKE", "AttributeHead", "concept_spotting_logits", "bike_nce_loss",
           "load_state_dict_from", "bike", "DEFAULT_LEXICON", "seeded_state_dict", "seeded_input"]

DEFAULT_LEXICON = (
    "red", "green", "blue", "yellow", "square", "circle", "triangle", "cross", "left", "right", "up", "down",
    "object", "shape", "background", "texture", "person", "ball", "car", "dog",
)
"""Attribute words the video branch may retrieve: the synthetic task's colours, shapes and
directions and a few generic words (the release used a large offline lexicon)."""


@dataclass
class BIKEConfig(CLIPConfig):
    """Hyper-parameters of BIKE: CLIP's (:class:`videozoo.models.clip.CLIPConfig`) and BIKE's own.

    Attributes:
        temporal_layers: Blocks of the video header's temporal transformer (release: 6).
        temporal_heads: Its attention heads (release: text width / 64).
        frame_positions: Rows of its frame position table (release: the text context, 77).
        interaction: ``"VCS"`` (video concept spotting) or ``"DP"`` (mean over frames, cosine).
        vcs_temperature: Temperature of the word-to-frame softmax (release: 0.01).
        use_attributes: Add the video attribute association branch.
        attribute_topk: Lexicon words retrieved per clip (release: 5).
        attribute_prompt: Words put before the attributes.
        attribute_lexicon: The words attributes are retrieved from.
        attribute_weight: Weight of the attribute branch's logits in the fused prediction.
        nce_target_scale: Scale of the same-class indicator before its softmax (release: 10).
    """

    num_frames: int = 8
    patch_size: int = 16
    temporal_layers: int = 6
    temporal_heads: int = 8
    frame_positions: int = 77
    interaction: str = "VCS"
    vcs_temperature: float = 0.01
    use_attributes: bool = False
    attribute_topk: int = 5
    attribute_prompt: str = "This is a video about"
    attribute_lexicon: tuple[str, ...] = DEFAULT_LEXICON
    attribute_weight: float = 1.0
    nce_target_scale: float = 10.0

    @classmethod
    def paper(cls) -> "BIKEConfig":
        """ViT-B/16 CLIP, 8 frames at 224 px, 6-block temporal header, VCS (release k400 ViT-B/16 config)."""
        return cls()

    @classmethod
    def tiny(cls) -> "BIKEConfig":
        """CLIP's tiny towers (8 frames of 32x32, 8x8 patches, 16-token context) + a 1-block header."""
        base = {f.name: getattr(CLIPConfig.tiny(), f.name) for f in fields(CLIPConfig)}
        return cls(**{**base, "temporal_layers": 1, "temporal_heads": 1, "frame_positions": 16,
                      "attribute_topk": 3})

    def clip_config(self) -> CLIPConfig:
        """The CLIP part of this config: the towers that pre-trained CLIP weights load into."""
        return CLIPConfig(**{f.name: getattr(self, f.name) for f in fields(CLIPConfig)})


def _check_bike_config(c: BIKEConfig) -> None:
    problems = []
    if c.interaction not in ("VCS", "DP"):
        problems.append(f"interaction must be 'VCS' or 'DP', got {c.interaction!r}")
    if c.embed_dim % c.temporal_heads:
        problems.append(f"embed_dim {c.embed_dim} is not a multiple of temporal_heads {c.temporal_heads}")
    if c.num_frames > c.frame_positions:
        problems.append(f"num_frames {c.num_frames} exceeds frame_positions {c.frame_positions}")
    if c.use_attributes and not 1 <= c.attribute_topk <= len(c.attribute_lexicon):
        problems.append(f"attribute_topk {c.attribute_topk} must lie in [1, {len(c.attribute_lexicon)}] "
                        f"(the lexicon's size)")
    if problems:
        raise ValueError("BIKEConfig: " + "; ".join(problems))


# --------------------------------------------------------------------------- pieces


def concept_spotting_logits(frames: torch.Tensor, word_tokens: torch.Tensor, class_emb: torch.Tensor,
                            temperature: float = 0.01) -> torch.Tensor:
    """Video concept spotting (the release's ``VCS`` interaction), unscaled logits.

    Every word token of caption ``n`` scores every frame; the softmax over frames (temperature
    ``temperature``), averaged over the caption's ``L`` positions, is the temporal saliency
    ``a_{n,b,t}``; the saliency-weighted sum of the normalised frames is dotted with the
    normalised caption embedding.

    Args:
        frames: ``(B, T, D)`` frame embeddings (after the temporal header).
        word_tokens: ``(N, L, D)`` per-position caption features.
        class_emb: ``(N, D)`` caption embeddings.
        temperature: Softmax temperature.

    Returns:
        ``(B, N)`` logits (multiply by the CLIP temperature scale).
    """
    v = F.normalize(frames, dim=-1)
    w = F.normalize(word_tokens, dim=-1)
    c = F.normalize(class_emb, dim=-1)
    saliency = torch.einsum("nld,btd->nblt", w, v).div(temperature).softmax(dim=-1).mean(dim=2)  # (N, B, T)
    attended = torch.einsum("nbt,btd->nbd", saliency, v)
    return torch.einsum("nbd,nd->bn", attended, c)


def bike_nce_loss(logits: torch.Tensor, labels: torch.Tensor | None = None, target_scale: float = 10.0) -> torch.Tensor:
    """BIKE's bidirectional loss (the release's ``NCELoss`` on ``logits`` and ``logits.T``,
    averaged): :func:`videozoo.layers.nce.soft_target_nce` for video -> category and category ->
    video.

    Args:
        logits: ``(B, B)`` scaled similarities of clip ``i`` and the caption of sample ``j``.
        labels: ``(B,)`` class ids (default: every sample its own class).
        target_scale: Scale of the same-class indicator before its softmax.

    Raises:
        ValueError: ``logits`` is not a square matrix, or ``labels`` does not match it.
    """
    return (soft_target_nce(logits, labels, target_scale) + soft_target_nce(logits.t(), labels, target_scale)) / 2


class AttributeHead(nn.Module):
    """The attribute branch's scorer (the release's ``sentence_text_logit``).

    ``cos(sentence_fc(s), query_fc(c))`` for normalised sentence embeddings ``s`` and caption
    embeddings ``c``; each fc is Linear -> ReLU -> Linear of width ``D``.

    Shapes: sentences ``(B, D)``, captions ``(N, D)`` -> ``(B, N)`` (unscaled cosines).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.query_fc = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
        self.sentence_fc = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, sentences: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
        s = F.normalize(self.sentence_fc(F.normalize(sentences, dim=-1)), dim=-1)
        q = F.normalize(self.query_fc(F.normalize(captions, dim=-1)), dim=-1)
        return s @ q.t()


# --------------------------------------------------------------------------- model


class BIKE(CLIP):
    """BIKE (arXiv 2301.00182) on a :class:`videozoo.models.clip.CLIP`.

    Called as ``model(video, text)``: ``(B, 3, T, H, W)`` normalised clips and ``(N, L)``
    caption ids -> ``(B, N)`` logits, the video branch's (concept spotting over the temporal
    header's frames) plus, with ``use_attributes``, the attribute branch's.
    :meth:`contrastive_loss` is BIKE's bidirectional loss.
    """

    def __init__(self, config: BIKEConfig):
        _check_bike_config(config)
        super().__init__(config)
        D = config.embed_dim
        self.video_head = FrameTransformer(D, config.temporal_layers, config.temporal_heads, config.frame_positions,
                                           mlp_ratio=4.0, act=QuickGELU, norm_eps=1e-12, residual=True)
        self.attribute_head = AttributeHead(D) if config.use_attributes else None
        if config.use_attributes:
            self._register_attribute_tokens(config)

    # ---- video -> text: attribute sentences

    def _register_attribute_tokens(self, config: BIKEConfig) -> None:
        from videozoo.data.tokenizer import get_tokenizer, tokenize

        tok = get_tokenizer()
        words = [tok.encode(w) for w in config.attribute_lexicon]
        if any(len(w) == 0 for w in words):
            raise ValueError("attribute_lexicon holds an empty word")
        width = max(len(w) for w in words)
        ids = torch.zeros(len(words), width, dtype=torch.long)
        for i, w in enumerate(words):
            ids[i, :len(w)] = torch.tensor(w)
        self.register_buffer("lexicon_word_ids", ids, persistent=False)                    # (K, w)
        self.register_buffer("lexicon_word_len", torch.tensor([len(w) for w in words]), persistent=False)
        self.register_buffer("lexicon_text", tokenize(list(config.attribute_lexicon),
                                                      context_length=config.context_length), persistent=False)
        prefix = [tok.sot_id, *tok.encode(config.attribute_prompt)]
        self.register_buffer("attribute_prefix", torch.tensor(prefix), persistent=False)
        self.comma_id = tok.encode(",")[0]
        self.eot_id = tok.eot_id
        longest = len(prefix) + sum(sorted((len(w) for w in words), reverse=True)[:config.attribute_topk]) \
            + config.attribute_topk - 1 + 1
        if longest > config.context_length:
            raise ValueError(f"attribute sentences need up to {longest} tokens (prompt, {config.attribute_topk} "
                             f"words, commas, end); the context length is {config.context_length}")

    def attribute_sentences(self, word_index: torch.Tensor) -> torch.Tensor:
        """Token ids of ``"<prompt> w1,w2,...,wk"`` for retrieved lexicon words.

        Args:
            word_index: ``(B, k)`` lexicon indices, most similar first.

        Returns:
            ``(B, context_length)`` ids (start token, prompt, words joined by commas, end token,
            zeros), built with tensor operations so that they also run on the meta device.
        """
        B, k = word_index.shape
        words = self.lexicon_word_ids[word_index]                                       # (B, k, w)
        lens = self.lexicon_word_len[word_index]                                        # (B, k)
        w = words.shape[-1]
        comma = torch.full((B, k, 1), self.comma_id, dtype=words.dtype, device=words.device)
        pieces = torch.cat([words, comma], dim=-1)                                      # (B, k, w + 1)
        pos = torch.arange(w + 1, device=words.device)
        valid = pos < lens[..., None]
        valid[:, :-1, :] |= pos == w                                                    # commas between words
        pieces, valid = pieces.flatten(1), valid.flatten(1)
        order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)              # valid tokens first
        body = pieces.gather(1, order) * valid.gather(1, order)
        n = valid.sum(dim=1, keepdim=True)                                              # (B, 1)
        L, P = self.config.context_length, self.attribute_prefix.numel()
        out = torch.zeros(B, L, dtype=torch.long, device=words.device)
        out[:, :P] = self.attribute_prefix
        out[:, P:] = body[:, :L - P] if body.shape[1] >= L - P else F.pad(body, (0, L - P - body.shape[1]))
        return out.scatter(1, P + n, self.eot_id)

    def attribute_logits(self, frames: torch.Tensor, class_emb: torch.Tensor) -> torch.Tensor:
        """Video attribute association: ``(B, N)`` unscaled logits.

        Args:
            frames: ``(B, T, D)`` CLIP frame embeddings (before the temporal header).
            class_emb: ``(N, D)`` caption embeddings.
        """
        with torch.no_grad():
            lexicon = F.normalize(self.encode_text(self.lexicon_text), dim=-1)         # (K, D)
            video = F.normalize(frames.mean(dim=1), dim=-1)                             # (B, D)
            top = (video @ lexicon.t()).topk(self.config.attribute_topk, dim=-1).indices
            sentences = self.attribute_sentences(top)
        return self.attribute_head(self.encode_text(sentences), class_emb)

    # ---- text -> video: concept spotting

    def video_logits(self, frames: torch.Tensor, class_emb: torch.Tensor, word_tokens: torch.Tensor) -> torch.Tensor:
        """The video branch's ``(B, N)`` unscaled logits from CLIP frame embeddings ``(B, T, D)``,
        caption embeddings ``(N, D)`` and caption word tokens ``(N, L, D)``."""
        v = self.video_head(frames)
        if self.config.interaction == "DP":
            return F.normalize(v.mean(dim=1), dim=-1) @ F.normalize(class_emb, dim=-1).t()
        return concept_spotting_logits(v, word_tokens, class_emb, self.config.vcs_temperature)

    def branch_logits(self, video: torch.Tensor, text: torch.Tensor) -> dict[str, torch.Tensor]:
        """Scaled logits of each branch: ``{"video": (B, N)}`` and, with attributes, ``"attributes"``.

        Args:
            video: ``(B, 3, T, H, W)`` normalised clips, ``T = config.num_frames``.
            text: ``(N, L)`` caption ids.
        """
        frames = self.encode_video(video)                                               # (B, T, D)
        class_emb, word_tokens = self.encode_text(text, return_tokens=True)             # (N, D), (N, L, D)
        scale = self.temperature_scale()
        out = {"video": scale * self.video_logits(frames, class_emb, word_tokens)}
        if self.attribute_head is not None:
            out["attributes"] = scale * self.attribute_logits(frames, class_emb)
        return out

    def forward(self, video: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` logits of clips ``(B, 3, T, H, W)`` against captions ``(N, L)``: the video
        branch plus ``attribute_weight`` x the attribute branch.

        Raises:
            ValueError: bad shapes, frame count, image size, an empty caption list or a caption
                longer than the context (from the CLIP towers).
        """
        if video.dim() != 5:
            raise ValueError(f"video must be (B, 3, T, H, W), got shape {tuple(video.shape)}")
        logits = self.branch_logits(video, text)
        out = logits["video"]
        if "attributes" in logits:
            out = out + self.config.attribute_weight * logits["attributes"]
        return out

    def contrastive_loss(self, video: torch.Tensor, text: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """BIKE's bidirectional loss on ``B`` matched (clip, caption) pairs, summed over
        the branches.  ``labels`` (``(B,)``, optional) marks pairs of the same class."""
        if video.shape[0] != text.shape[0]:
            raise ValueError(f"need one caption per clip: {video.shape[0]} clips, {text.shape[0]} captions")
        return sum(bike_nce_loss(x, labels, self.config.nce_target_scale) for x in self.branch_logits(video, text).values())


def _clip_input(config: BIKEConfig, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard input: CLIP-normalised clips ``(B, 3, T, H, W)`` and ``num_classes`` captions."""
    from videozoo.data.tokenizer import tokenize

    captions = [f"a video of class {i}" for i in range(config.num_classes)]
    return normalize_pixels(clip), tokenize(captions, context_length=config.context_length)


_RELEASE = "authors' code whwu95/BIKE e8f6a8b, built by scripts/reference_tables/bike.py"


@register_model(
    "wu2023bidirectional",
    alias="bike",
    stage=3,
    config=BIKEConfig,
    reported=(Reported("params_m", 168.574465, _RELEASE, note="CLIP ViT-B/16 + video_header('Transf', 'VCS')",
                       kind="release", tolerance_pct=0.5),),
    clip_to_input=_clip_input,
    zero_shot={
        "role": "model",
        "control": "clip",
        "expect": {"heldout_top1_pct": ">= 55", "direction_top1_pct": ">= 65"},
        "rationale": "the temporal header adds learned frame positions, so the video embedding depends on "
                     "frame order and concept spotting can weight the frames per caption: a clip and its "
                     "time reversal can be told apart, so held-out pairs should be classified above the "
                     "frame-averaging control's 50 % ceiling and the direction above chance",
    },
)
def bike(config: BIKEConfig) -> BIKE:
    """Build a :class:`BIKE` from ``config``."""
    return BIKE(config)


register_variant(
    "bike_vitb32_va", of="wu2023bidirectional", overrides={"use_attributes": True},
    paper_overrides={"patch_size": 32, "attribute_topk": 5},
    reported=(Reported("params_m", 171.281665, _RELEASE,
                       note="CLIP ViT-B/32 + video_header + sentence_text_logit on one CLIP (the release "
                            "trains the attribute branch on a second CLIP copy)", kind="release", tolerance_pct=0.5),),
    description="video + attributes branches (V+A), ViT-B/32, top-5 attributes: the release's "
                "configs/k400/k400_train_video_attr_vitb-32-f8.yaml (81.4 % on Kinetics-400)",
)


# --------------------------------------------------------------------------- key mapping

_BLOCK_KEYS = (("ln_1.", "norm1."), ("ln_2.", "norm2."), ("attn.in_proj_weight", "attn.qkv.weight"),
               ("attn.in_proj_bias", "attn.qkv.bias"), ("attn.out_proj.", "attn.proj."),
               ("mlp.c_fc.", "mlp.fc1."), ("mlp.c_proj.", "mlp.fc2."))


def _from_video_header(sd: dict) -> dict:
    out = {}
    for k, v in sd.items():
        if k == "frame_position_embeddings.weight":
            out["video_head.frame_position_embeddings.weight"] = v
            continue
        m = re.match(r"transformer\.resblocks\.(\d+)\.(.*)", k)
        if not m:
            raise ValueError(f"BIKE video header state dict: unexpected key {k!r}")
        rest = m.group(2)
        for old, new in _BLOCK_KEYS:
            if rest.startswith(old):
                rest = new + rest[len(old):]
                break
        out[f"video_head.blocks.{m.group(1)}.{rest}"] = v
    return out


_PREFIXES = ("model_state_dict.", "fusion_model_state_dict.", "attributes.fusion_model_state_dict.")


def load_state_dict_from(state_dict: dict, video_head_state_dict: dict | None = None,
                         attribute_head_state_dict: dict | None = None) -> dict:
    """Convert the release's state dicts into this file's keys.

    Args:
        state_dict: One of: the release's checkpoint as ``torch.load`` returns it (a dict with
            ``model_state_dict`` -- the CLIP -- and ``fusion_model_state_dict`` -- the video
            header); a flat dict whose keys carry those prefixes (and
            ``attributes.fusion_model_state_dict.`` for the attribute head), as the tables in
            :mod:`videozoo.reference_tables` list them; or the CLIP part alone (OpenAI /
            open_clip names, or a Hugging Face ``CLIPModel``'s).
        video_head_state_dict: The release's ``video_header`` (``frame_position_embeddings.weight``,
            ``transformer.resblocks.i.*``), when ``state_dict`` is the CLIP part alone.
        attribute_head_state_dict: The release's ``sentence_text_logit`` (``query_fc.*``,
            ``sentence_fc.*``; the ``fusion_model_state_dict`` of an attribute checkpoint).

    Returns:
        A dict for ``BIKE.load_state_dict`` (use ``strict=False`` for the parts not given).

    Raises:
        ValueError: a key the mapping does not know.
    """
    if isinstance(state_dict.get("model_state_dict"), dict):                  # a torch.load-ed checkpoint
        state_dict, video_head_state_dict = state_dict["model_state_dict"], state_dict.get("fusion_model_state_dict")
    elif any(k.startswith(_PREFIXES) for k in state_dict):
        parts = [{k[len(p):]: v for k, v in state_dict.items() if k.startswith(p)} for p in _PREFIXES]
        state_dict, video_head_state_dict, attribute_head_state_dict = parts[0], parts[1] or None, parts[2] or None
    clip_sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    hf = any(k.startswith(("text_model.", "vision_model.")) for k in clip_sd)
    out = clip_state_dict_from(clip_sd, library="hf" if hf else "open_clip")
    if video_head_state_dict is not None:
        out.update(_from_video_header({k.removeprefix("module."): v for k, v in video_head_state_dict.items()}))
    if attribute_head_state_dict is not None:
        for k, v in attribute_head_state_dict.items():
            k = k.removeprefix("module.")
            if not re.fullmatch(r"(query_fc|sentence_fc)\.[02]\.(weight|bias)", k):
                raise ValueError(f"BIKE attribute head state dict: unexpected key {k!r}")
            out["attribute_head." + k] = v
    return out


# --------------------------------------------------------------------------- reference check

WEIGHT_STD = 0.1


def seeded_state_dict(table: list, seed: int) -> dict[str, torch.Tensor]:
    """Weights for a layer table ``[[name, shape], ...]`` drawn in the table's order.

    Entry ``i`` is drawn from NumPy's ``default_rng([seed, i])``: ``N(0, 0.1^2)``, plus one for
    1-D entries named ``...weight`` (normalisation gains).  The same rule runs on the authors'
    side (``scripts/reference_tables/bike.py``) and ours, so both get the same numbers without
    sharing model code.
    """
    out = {}
    for i, (name, shape) in enumerate(table):
        draw = np.random.default_rng([seed, i]).standard_normal(size=shape) * WEIGHT_STD
        if len(shape) == 1 and name.endswith("weight"):
            draw = draw + 1.0
        out[name] = torch.from_numpy(np.asarray(draw, dtype=np.float32))
    return out


def seeded_input(shape: list[int], seed: int) -> torch.Tensor:
    """Float32 input uniform in ``[0, 1)`` of ``shape`` from ``default_rng(seed)``."""
    return torch.from_numpy(np.random.default_rng(seed).random(size=shape).astype(np.float32))


def _tiny_reference_config(clip_args: list, frames: int, interaction: str) -> BIKEConfig:
    embed, res, vlayers, vwidth, patch, context, vocab, twidth, theads, tlayers = clip_args
    return BIKEConfig(num_classes=1, embed_dim=embed, image_size=res, vision_layers=vlayers, vision_width=vwidth,
                      vision_head_width=64, patch_size=patch, context_length=context, vocab_size=vocab,
                      text_width=twidth, text_heads=theads, text_layers=tlayers, num_frames=frames,
                      temporal_layers=6, temporal_heads=max(1, twidth // 64), frame_positions=context,
                      interaction=interaction, use_attributes=True, attribute_topk=1)


def _reference_check() -> dict:
    """Our BIKE against the authors' code (whwu95/BIKE), through the tables their code recorded.

    1. Layer tables (:mod:`videozoo.reference_tables`): the release's state dicts of the released
       configurations (``bike_vitb16_k400``, ``bike_vitb32_va_k400``), mapped through
       :func:`load_state_dict_from`, against ours, name by name and shape by shape, and the
       parameter counts.
    2. ``bike_tiny_outputs``: a tiny model with the weights their code was run with: the video
       branch's ``VCS`` and ``DP`` logits, the bidirectional ``NCELoss`` and the attribute head's
       cosines, against what their code computed (max abs difference).
    """
    from videozoo.data.tokenizer import tokenize
    from videozoo.reference_tables import compare_with_table, load_table
    from videozoo.registry import make_config

    tables = {}
    for name in ("bike_vitb16_k400", "bike_vitb32_va_k400"):
        table = load_table(name)
        with torch.device("meta"):
            ours = BIKE(make_config(table["videozoo_name"], "paper"))
        tables[name] = {"videozoo_name": table["videozoo_name"], **compare_with_table(
            table, load_state_dict_from, ours.state_dict(), sum(p.numel() for p in ours.parameters()))}
    tiny = load_table("bike_tiny_outputs")
    weights = seeded_state_dict([[n, s] for n, s, _ in tiny["entries"]], tiny["weight_seed"])
    sd = load_state_dict_from(weights)
    B, T = tiny["batch"], tiny["frames"]
    images = seeded_input(tiny["frames_shape"], tiny["input_seed"])
    video = images.view(B, T, *images.shape[1:]).transpose(1, 2)
    context = tiny["clip_args"][5]
    text = tokenize(tiny["captions"], context_length=context)
    sentences = tokenize(tiny["sentences"], context_length=context)
    expected = tiny["outputs"]
    diffs = {}
    for interaction, key in (("VCS", "vcs_logits"), ("DP", "dp_logits")):
        model = BIKE(_tiny_reference_config(tiny["clip_args"], T, interaction)).eval()
        model.load_state_dict(sd)
        with torch.no_grad():
            frames = model.encode_video(video)
            cls_emb, words = model.encode_text(text, return_tokens=True)
            logits = model.logit_scale.exp() * model.video_logits(frames, cls_emb, words)
            diffs[key] = (logits - torch.tensor(expected[key])).abs().max().item()
            if interaction == "VCS":
                loss = bike_nce_loss(logits, torch.tensor(tiny["labels"]))
                diffs["nce_loss"] = abs(loss.item() - expected["nce_loss"])
                cos = model.attribute_head(model.encode_text(sentences), cls_emb)
                diffs["attribute_cosines"] = (cos - torch.tensor(expected["attribute_cosines"])).abs().max().item()
    worst = max(diffs.values())
    tables_ok = all(t["passed"] and t["own_params"] == t["authors_params"] for t in tables.values())
    passed = tables_ok and worst <= tiny["tolerance"]
    counts = ", ".join(f"{t['videozoo_name']}: {t['matched']}/{t['entries']} entries map to ours with equal shapes, "
                       f"{t['own_params'] / 1e6:.6f} M params (release {t['authors_params'] / 1e6:.6f} M)"
                       for t in tables.values())
    return {
        "passed": bool(passed),
        "summary": (f"against the authors' code ({tiny['repository']} {tiny['commit'][:7]}): layer tables {counts}; "
                    f"tiny model with the weights their code ran with: VCS and DP logits, NCELoss and attribute-head "
                    f"cosines, max abs diff {worst:.1e} (tolerance {tiny['tolerance']:g})"),
        "reference": (f"{tiny['repository']} at {tiny['commit']} ({', '.join(tiny['files'])}): tables "
                      f"bike_vitb16_k400, bike_vitb32_va_k400 and bike_tiny_outputs in videozoo/reference_tables, "
                      f"made by scripts/reference_tables/bike.py"),
        "max_abs_diff": worst,
        "tolerance": tiny["tolerance"],
        "max_abs_diff_by_output": diffs,
        "tables": tables,
        "expected": {"max_abs_diff": f"<= {tiny['tolerance']:g}", "layer_tables": "every entry maps, equal shapes",
                     "params": "equal to the release's"},
    }


register_check("wu2023bidirectional", "reference", evidence="independent-reference")(_reference_check)

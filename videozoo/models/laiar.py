"""LaIAR: language-model-guided interpretable video action reasoning.

Paper: Ning Wang, Guangming Zhu, HS Li, Liang Zhang, Syed Afaq Ali Shah, Mohammed Bennamoun,
"Language Model Guided Interpretable Video Action Reasoning", CVPR 2024, arXiv 2404.01591.
The repository the paper names (github.com/NingWang2049/LaIAR) holds no model code (a README
and an unrelated notebook at commit 8e266ac), so this file restates the method from the paper's
description.

LaIAR trains two models side by side and keeps only one (the paper's Fig. 2):

* a **language model** that reads a symbolic description of each frame -- the clip's
  spatio-temporal scene graph, relation triplets written as words -- and
* a **video model** that reads the frames.

Both pass their per-frame *relation tokens* through one shared **DT-Former**, which picks the
key relation tokens of each frame and the key frames (the relational transitions that decide
the action) and reasons over time.  Knowledge moves from the language model to the video model
by three terms: a **joint embedding space** (the video model's frame tokens are
pulled onto the language model's, which are text embeddings of the relations), **token
selection supervision** (the video model's choice of key frames follows the language model's)
and **cross-modal learning** (the video model's class distribution follows the language
model's).  At test time only the video model runs; its selection scores say which frames and
relation tokens it based its decision on.

On a CLIP (:mod:`videozoo.models.clip`):

* video relation tokens: each frame's patch tokens (projected into the joint space) through a
  linear map ``visual_proj``;
* language relation tokens: the text-tower embedding of each frame's description (for the
  synthetic clips, :func:`videozoo.data.scene_graphs.describe_frames`: ``"red object at middle
  left"``);
* DT-Former (:class:`DTFormer`, shared): a learned query pools the relation tokens of each frame
  by cross-attention (token selection within the frame), a linear score and a softmax over
  frames give the frame selection ``g``, a temporal transformer with learned frame positions
  (:class:`videozoo.layers.temporal_transformer.FrameTransformer`) reasons over the frame
  tokens, and their ``g``-weighted sum, layer-normalised, is the clip's output;
* classes: the output is compared with the caption embeddings (cosine, CLIP's temperature);
* loss: InfoNCE of the video model + InfoNCE of the language model + ``w_joint`` mean
  ``(1 - cos)`` between the two models' frame tokens + ``w_select`` ``KL(g_lang || g_video)`` +
  ``w_transfer`` ``KL(p_lang || p_video)`` of the class distributions, the language model's side
  of the three transfer terms without gradient (it is the teacher).

What is simplified and what could not be checked: the paper's video model reads relation
features of detected human-object pairs and its language model embeds annotated triplets; here
CLIP patch tokens and CLIP text embeddings of one phrase per frame stand for them.  Selection is
soft (softmax weights), not a hard top-k.  The paper's method section was read through its
abstract and published summaries (shared DT-Former, the three transfer terms, video-only
inference), not its full equations, so the forms above are this file's reading, and the
reference check compares the module with an independent restatement of these equations.

Paper configuration: CLIP ViT-B/16, 16 frames of 224x224, a 2-block DT-Former (this file's
choice).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.layers.cross_attention import CrossBlock
from videozoo.layers.temporal_transformer import FrameTransformer
from videozoo.models.clip import CLIP, CLIP_MEAN, CLIP_STD, CLIPConfig, QuickGELU, contrastive_loss, normalize_pixels
from videozoo.registry import register_check, register_model
from videozoo.references.laiar import restated_loss

__all__ = ["LaIARConfig", "LaIAR", "DTFormer", "laiar"]


@dataclass
class LaIARConfig(CLIPConfig):
    """Hyper-parameters of LaIAR: CLIP's (:class:`videozoo.models.clip.CLIPConfig`) and LaIAR's own.

    Attributes:
        dtformer_layers: Temporal blocks of the DT-Former.
        dtformer_heads: Heads of its pooling and temporal attentions.
        w_joint: Weight of the joint-embedding term.
        w_select: Weight of the token-selection supervision term.
        w_transfer: Weight of the cross-modal learning term.
    """

    num_frames: int = 16
    patch_size: int = 16
    dtformer_layers: int = 2
    dtformer_heads: int = 8
    w_joint: float = 1.0
    w_select: float = 1.0
    w_transfer: float = 1.0

    @classmethod
    def paper(cls) -> "LaIARConfig":
        """CLIP ViT-B/16, 16 frames at 224 px, a 2-block DT-Former."""
        return cls()

    @classmethod
    def tiny(cls) -> "LaIARConfig":
        """CLIP's tiny towers (8 frames of 32x32, 8x8 patches, 16-token context), a 1-block DT-Former."""
        base = {f.name: getattr(CLIPConfig.tiny(), f.name) for f in fields(CLIPConfig)}
        return cls(**{**base, "dtformer_layers": 1, "dtformer_heads": 4})

    def clip_config(self) -> CLIPConfig:
        """The CLIP part of this config: the towers that pre-trained CLIP weights load into."""
        return CLIPConfig(**{f.name: getattr(self, f.name) for f in fields(CLIPConfig)})


class DTFormer(nn.Module):
    """The DT-Former shared by LaIAR's video and language models.

    Per frame, a learned query pools the ``R`` relation tokens by cross-attention
    (:class:`videozoo.layers.cross_attention.CrossBlock`); ``g = softmax_t(w^T f_t + b)`` scores
    the frames; a temporal transformer with frame positions (residual) reasons over the frame
    tokens ``f``; the output is ``LN(sum_t g_t h_t)``.

    Shapes: ``(B, T, R, D)`` relation tokens -> output ``(B, D)``, frame tokens ``(B, T, D)``,
    selection ``(B, T)`` (rows sum to one).
    """

    def __init__(self, dim: int, num_heads: int, depth: int, max_frames: int):
        super().__init__()
        self.query = nn.Parameter(0.02 * torch.randn(dim))
        self.pool = CrossBlock(dim, num_heads, act=QuickGELU)
        self.select = nn.Linear(dim, 1)
        self.temporal = FrameTransformer(dim, depth, num_heads, max_frames, act=QuickGELU)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, T, R, D = tokens.shape
        q = self.query.to(tokens.dtype).view(1, 1, D).repeat(B * T, 1, 1)    # a copy: views of a parameter upset hooks
        frames = self.pool(q, tokens.reshape(B * T, R, D)).view(B, T, D)
        selection = self.select(frames).squeeze(-1).softmax(dim=-1)
        h = self.temporal(frames)
        return self.norm((selection.unsqueeze(-1) * h).sum(dim=1)), frames, selection


class LaIAR(CLIP):
    """LaIAR (arXiv 2404.01591) on a :class:`videozoo.models.clip.CLIP` (ViT image tower).

    Called as ``model(video, text)``: ``(B, 3, T, H, W)`` normalised clips and ``(K, L)`` class
    caption ids -> ``(B, K)`` logits of the video model alone.  :meth:`contrastive_loss` trains
    both models and the transfer between them.
    """

    def __init__(self, config: LaIARConfig):
        if config.vision_arch != "vit":
            raise ValueError("LaIARConfig: the relation tokens need a ViT image tower (vision_arch 'vit')")
        if config.embed_dim % config.dtformer_heads:
            raise ValueError(f"LaIARConfig: embed_dim {config.embed_dim} is not a multiple of dtformer_heads "
                             f"{config.dtformer_heads}")
        super().__init__(config)
        from videozoo.data.scene_graphs import PHRASES
        from videozoo.data.tokenizer import tokenize

        D = config.embed_dim
        self.visual_proj = nn.Linear(D, D)
        self.dtformer = DTFormer(D, config.dtformer_heads, config.dtformer_layers, config.num_frames)
        self.register_buffer("phrase_ids", tokenize(list(PHRASES), context_length=config.context_length),
                             persistent=False)

    def video_model(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The video model: DT-Former over the patch tokens of each frame.

        Args:
            video: ``(B, 3, T, H, W)`` normalised clips.

        Returns:
            Output ``(B, D)``, frame tokens ``(B, T, D)``, frame selection ``(B, T)``.
        """
        _, patches = self.encode_video(video, return_tokens=True)                          # (B, T, N, D)
        return self.dtformer(self.visual_proj(patches))

    def language_model(self, descriptions: torch.Tensor, phrase_ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The language model: DT-Former over the text embeddings of each frame's description.

        Args:
            descriptions: ``(B, T)`` indices into ``phrase_ids``.
            phrase_ids: ``(P, L)`` token ids of the phrases.

        Returns:
            Output ``(B, D)``, frame tokens ``(B, T, D)``, frame selection ``(B, T)``.
        """
        phrases = self.encode_text(phrase_ids)                                             # (P, D)
        return self.dtformer(phrases[descriptions].unsqueeze(2))                           # (B, T, 1, D)

    def describe(self, video: torch.Tensor) -> torch.Tensor:
        """Frame descriptions ``(B, T)`` (indices into :data:`videozoo.data.scene_graphs.PHRASES`) of
        CLIP-normalised synthetic clips (the stand-in for annotated scene graphs)."""
        from videozoo.data.scene_graphs import describe_frames

        shape = (1, 3, 1, 1, 1)
        mean = torch.tensor(CLIP_MEAN, dtype=video.dtype, device=video.device).view(shape)
        std = torch.tensor(CLIP_STD, dtype=video.dtype, device=video.device).view(shape)
        return describe_frames(video * std + mean)

    def forward(self, video: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """``(B, K)`` logits of the video model: clips ``(B, 3, T, H, W)`` against captions ``(K, L)``.

        Raises:
            ValueError: bad shapes, frame count, image size, an empty class list or a caption
                longer than the context.
        """
        if video.dim() != 5:
            raise ValueError(f"video must be (B, 3, T, H, W), got shape {tuple(video.shape)}")
        out, _, _ = self.video_model(video)
        return self.logits(out, self.encode_text(text))

    def loss_terms(self, video: torch.Tensor, text: torch.Tensor, descriptions: torch.Tensor | None = None,
                   phrase_ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Every term of LaIAR's training loss on ``B`` matched (clip, caption) pairs.

        Args:
            video: ``(B, 3, T, H, W)`` normalised clips.
            text: ``(B, L)`` caption ids, one per clip.
            descriptions: ``(B, T)`` per-frame phrase indices (default: :meth:`describe`).
            phrase_ids: ``(P, L)`` phrase token ids (default: the synthetic clips' phrases).

        Returns:
            ``{"video", "language", "joint", "select", "transfer"}`` scalar terms.
        """
        if video.shape[0] != text.shape[0]:
            raise ValueError(f"need one caption per clip: {video.shape[0]} clips, {text.shape[0]} captions")
        descriptions = self.describe(video) if descriptions is None else descriptions
        phrase_ids = self.phrase_ids if phrase_ids is None else phrase_ids
        classes = self.encode_text(text)
        out_v, frames_v, select_v = self.video_model(video)
        out_l, frames_l, select_l = self.language_model(descriptions, phrase_ids)
        logits_v, logits_l = self.logits(out_v, classes), self.logits(out_l, classes)
        teacher_sel, teacher_p = select_l.detach(), logits_l.detach().softmax(dim=-1)
        return {
            "video": contrastive_loss(logits_v),
            "language": contrastive_loss(logits_l),
            "joint": (1 - F.cosine_similarity(frames_v, frames_l.detach(), dim=-1)).mean(),
            "select": F.kl_div(select_v.clamp_min(1e-12).log(), teacher_sel, reduction="batchmean"),
            "transfer": F.kl_div(logits_v.log_softmax(dim=-1), teacher_p, reduction="batchmean"),
        }

    def contrastive_loss(self, video: torch.Tensor, text: torch.Tensor, descriptions: torch.Tensor | None = None,
                         phrase_ids: torch.Tensor | None = None) -> torch.Tensor:
        """LaIAR's training loss: both models' InfoNCE and the weighted transfer terms (:meth:`loss_terms`)."""
        t = self.loss_terms(video, text, descriptions, phrase_ids)
        c = self.config
        return t["video"] + t["language"] + c.w_joint * t["joint"] + c.w_select * t["select"] + c.w_transfer * t["transfer"]


def _clip_input(config: LaIARConfig, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard input: CLIP-normalised clips and ``num_classes`` captions."""
    from videozoo.data.tokenizer import tokenize

    captions = [f"a video of class {i}" for i in range(config.num_classes)]
    return normalize_pixels(clip), tokenize(captions, context_length=config.context_length)


@register_model(
    "wang2024language",
    alias="laiar",
    stage=3,
    config=LaIARConfig,
    clip_to_input=_clip_input,
    zero_shot={
        "role": "model",
        "control": "clip",
        "expect": {"heldout_top1_pct": ">= 55", "direction_top1_pct": ">= 65"},
        "rationale": "the DT-Former reasons over the frames with learned frame positions, and the language model it "
                     "learns from reads the object's position frame by frame: the video model can tell a clip from "
                     "its time reversal, so held-out pairs should be classified above the frame-averaging "
                     "control's 50 % ceiling and the direction above chance",
    },
)
def laiar(config: LaIARConfig) -> LaIAR:
    """Build a :class:`LaIAR` from ``config``."""
    return LaIAR(config)


# --------------------------------------------------------------------------- reference check


def _reference_check() -> dict:
    """The tiny model's logits and loss terms against the equations restated in
    :mod:`videozoo.references.laiar` (same weights), float64."""
    from videozoo.data.captions import make_caption_clips
    from videozoo.data.tokenizer import tokenize
    from videozoo.registry import make_config

    torch.manual_seed(0)
    cfg = make_config("laiar", "tiny", dtformer_layers=2)
    model = LaIAR(cfg).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        labels = torch.tensor([1, 22, 40])
        video = normalize_pixels(make_caption_clips(labels, frames=cfg.num_frames, size=cfg.image_size, seed=5).double())
        text = tokenize(["a red square moving left", "a green circle moving down", "a yellow triangle moving right"],
                        context_length=cfg.context_length)
        ours = model.loss_terms(video, text)
        ours["logits"] = model(video, text)
        ours["total"] = model.contrastive_loss(video, text)
        _, patches = model.encode_video(video, return_tokens=True)
        ref = restated_loss(model.state_dict(), patches, model.encode_text(model.phrase_ids), model.describe(video),
                            model.encode_text(text), model.temperature_scale(), cfg.dtformer_heads,
                            (cfg.w_joint, cfg.w_select, cfg.w_transfer))
    diffs = {k: (ours[k] - ref[k]).abs().max().item() for k in ref}
    worst = max(diffs.values())
    tol = 1e-9
    return {
        "passed": worst <= tol,
        "summary": (f"LaIAR video-model logits and every loss term (both InfoNCE, joint embedding, token-selection "
                    f"supervision, cross-modal transfer) vs the module docstring's equations restated with explicit "
                    f"loops, matmul attention, LayerNorm and the KL / InfoNCE definitions (no videozoo module), same "
                    f"weights, float64: max abs diff {worst:.1e} (tolerance {tol:g}); no model code is released and the "
                    f"restated equations are this file's reading of the paper"),
        "reference": "restated_loss in videozoo/references/laiar.py: plain tensor operations over the parameter tensors",
        "max_abs_diff": worst,
        "tolerance": tol,
        "max_abs_diff_by_output": diffs,
        "expected": {"max_abs_diff": f"<= {tol:g}"},
    }


register_check("wang2024language", "reference", evidence="independent-reference")(_reference_check)

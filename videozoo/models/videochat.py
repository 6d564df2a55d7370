"""VideoChat (VideoChat-Embed): EVA ViT-g frames, global relation aggregation, Q-Former, Vicuna.

Paper: "VideoChat: Chat-Centric Video Understanding", Li, He, Wang, Li, Wang, Luo, Wang, Wang,
Qiao, arXiv 2305.06355.

VideoChat-Embed turns a video into LLM tokens with a video foundation model and a learnable
interface; this file follows the paper and its release (OpenGVLab/Ask-Anything, ``video_chat``:
``models/videochat_it.py``, ``models/eva_vit.py``, ``scripts/config_7b_stage2.py``):

* Frames: ``T = 8`` frames at 224 px, each through the EVA-CLIP ViT-g/14 of BLIP-2 (39 blocks,
  width 1408; no temporal down-sampling, no local relation aggregation in the released
  configuration): ``(T, 1 + 256, 1408)`` tokens per block.
* Temporal relation aggregation (:class:`GlobalRelationAggregator`, UniFormerV2's global MHRA,
  arXiv 2211.09552): a learned video token is updated by one aggregation layer after each of
  the last ``k = 8`` blocks; each layer adds a depth-wise 3x3x3 convolution (a dynamic
  position encoding that sees neighbouring frames) to that block's patch tokens, then lets the
  video token cross-attend to all ``T (1 + 256)`` tokens and passes it through an MLP.  It is
  the only path through which frame order reaches the LLM: the Q-Former below attends to the
  frame tokens as a set.
* The video token is appended to the last block's frame tokens, ``T (1 + 256) + 1`` tokens,
  LayerNorm (BLIP-2's ``ln_vision``; ``Blip2VisionModel.post_layernorm`` here).
* Q-Former (``Blip2QFormerModel``): BLIP-2's 32 learned queries plus 64 extra ones, 96 tokens
  of width 768; a linear layer maps them to the LLM (Vicuna-7B v0; VideoChat-13B uses
  StableVicuna-13B, variant ``videochat_13b``).
* The LLM reads them in the template of the release: ``###Human: <Video><video></Video>
  ###Human: question ###Assistant: answer###``.

What is videozoo's own: the aggregation and the prompt; the ViT, Q-Former and LLM are
``transformers`` modules with random weights.  Simplifications: the paper freezes the ViT and
the Q-Former (and the LLM), training the aggregator, the extra queries and the projection;
here everything is trainable and the tiny models are trained end to end; the release's image
path (``<Image>``, one frame) is not separate (a one-frame clip goes through the same code).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn

from videozoo.layers.llm import LLMConfig
from videozoo.layers.projector import Projector
from videozoo.layers.prompt import ConversationTemplate
from videozoo.layers.qformer import QFormerConfig, QueryTransformer
from videozoo.layers.video_llm import DEFAULT_QUESTION, VideoLLM, prompt_input_ids, tokenizer_for
from videozoo.layers.vision import VisionTowerConfig, build_vision_tower, frame_tokens, normalise_frames
from videozoo.registry import Reported, register_check, register_model, register_variant

__all__ = ["VideoChatConfig", "VideoChat", "GlobalRelationAggregator", "VIDEOCHAT_TEMPLATE", "videochat"]

VIDEOCHAT_TEMPLATE = ConversationTemplate(
    name="videochat",
    system="",
    roles=("Human", "Assistant"),
    sep="###",
    stop="###",
    video_turns=("<Video><video></Video>\n", "{question}\n"),
    followup_turn="{question}\n",
    markers=("<Video>", "</Video>", "###"),
    source="authors' code: video_chat/conversation.py (Chat.upload_video, get_prompt) and models/videochat_it.py",
)
"""VideoChat's ``###``-separated template (Vicuna v0 style), video first, then the question."""


@dataclass
class VideoChatConfig:
    """Hyper-parameters of VideoChat-Embed (the release's ``config_7b_stage2.py``).

    Attributes:
        num_frames: Frames ``T`` per clip (8).
        vision: The frame encoder (EVA ViT-g/14 as in BLIP-2).
        aggregation_layers: Global aggregation layers, on the last blocks (8).
        aggregation_mlp_ratio: Their MLP width / token width (as the ViT's, 6144 / 1408).
        aggregation_dropout: Dropout inside their MLP (0.5).
        qformer: The Q-Former (BLIP-2's: 32 queries, BERT-base).
        extra_queries: Learned queries added to the Q-Former's (64).
        llm: The language model (Vicuna-7B v0, LLaMA-7B's shape).
    """

    num_frames: int = 8
    vision: VisionTowerConfig = field(default_factory=VisionTowerConfig.eva_vit_g14)
    aggregation_layers: int = 8
    aggregation_mlp_ratio: float = 6144 / 1408
    aggregation_dropout: float = 0.5
    qformer: QFormerConfig = field(default_factory=QFormerConfig.blip2)
    extra_queries: int = 64
    llm: LLMConfig = field(default_factory=LLMConfig.vicuna_7b)

    @classmethod
    def paper(cls) -> "VideoChatConfig":
        """The release's 7B model: 8 frames, EVA ViT-g, 8 aggregation layers, 32 + 64 queries, Vicuna-7B v0."""
        return cls()

    @classmethod
    def tiny(cls) -> "VideoChatConfig":
        """8 frames of 32x32, a 3-block EVA-style ViT of width 64, 2 aggregation layers, 8 + 8 queries, a tiny LLM."""
        return cls(vision=VisionTowerConfig.tiny("eva"), aggregation_layers=2, aggregation_mlp_ratio=2.0,
                   aggregation_dropout=0.0, qformer=QFormerConfig.tiny(), extra_queries=8, llm=LLMConfig.tiny())

    @property
    def num_video_tokens(self) -> int:
        """Q-Former outputs per clip (96 for the paper config)."""
        return self.qformer.num_queries + self.extra_queries

    def clip_shape(self) -> tuple[int, int, int, int]:
        """Standard videozoo clip ``(3, T, H, W)`` that :func:`clip_to_input` turns into the input."""
        return (3, self.num_frames, self.vision.image_size, self.vision.image_size)

    def input_shape(self) -> tuple[int, int, int, int]:
        """Per-sample video input ``(3, T, H, W)`` (normalised frames; the prompt ids come with it)."""
        return self.clip_shape()

    def output_shape(self, batch: int) -> tuple[int, int, int]:
        """Logits ``(batch, L, V)`` for the prompt of :func:`clip_to_input`."""
        length = prompt_input_ids(VIDEOCHAT_TEMPLATE, self.num_video_tokens, 1).shape[1]
        return (batch, length, max(self.llm.vocab_size, len(tokenizer_for(VIDEOCHAT_TEMPLATE))))


class GlobalRelationAggregator(nn.Module):
    """One global multi-head relation aggregation layer (UniFormerV2 global MHRA, as VideoChat uses it).

    Updates the video token from one block's tokens of all frames: dynamic position encoding
    (depth-wise 3x3x3 convolution over ``(T, h, w)``, added to the patch tokens), cross-attention
    of the video token to every token, MLP; pre-norm and residual (see
    :mod:`videozoo.references.videochat` for the equations).  As in the release, the attention's
    output projection and the MLP's last layer start at zero, so the layer starts as the identity.

    Args:
        width: Token width ``C``. heads: Attention heads. mlp_dim: MLP hidden width.
        dropout: Dropout after the MLP's activation.
    """

    def __init__(self, width: int, heads: int, mlp_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dpe = nn.Conv3d(width, width, kernel_size=3, padding=1, groups=width)
        self.ln_1 = nn.LayerNorm(width)
        self.ln_2 = nn.LayerNorm(width)
        self.ln_3 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.fc1 = nn.Linear(width, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, width)
        self.dropout = nn.Dropout(dropout)
        nn.init.zeros_(self.dpe.bias)
        nn.init.xavier_uniform_(self.attn.in_proj_weight)
        nn.init.zeros_(self.attn.out_proj.weight)
        nn.init.zeros_(self.attn.out_proj.bias)
        nn.init.xavier_uniform_(self.fc1.weight)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, query: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Update the video token.

        Args:
            query: ``(B, 1, C)`` the video token.
            tokens: ``(B, T, 1 + h w, C)`` one block's tokens of every frame (class token first).

        Returns:
            ``(B, 1, C)``.
        """
        B, T, L, C = tokens.shape
        side = int(round((L - 1) ** 0.5))
        y = self.ln_3(tokens)
        patches = y[:, :, 1:].permute(0, 3, 1, 2).reshape(B, C, T, side, side)
        patches = patches + self.dpe(patches)
        patches = patches.reshape(B, C, T, L - 1).permute(0, 2, 3, 1)
        y = torch.cat([y[:, :, :1], patches], dim=2).reshape(B, T * L, C)
        query = query + self.attn(self.ln_1(query), y, y, need_weights=False)[0]
        return query + self.fc2(self.dropout(nn.functional.gelu(self.fc1(self.ln_2(query)))))


class VideoChat(VideoLLM):
    """VideoChat-Embed (arXiv 2305.06355): ``forward(video, input_ids, attention_mask=None) -> logits``.

    ``video``: ``(B, 3, T, H, W)`` frames normalised with CLIP's mean and std; ``input_ids``
    ``(B, L)`` from :meth:`prompt`; logits ``(B, L, V)``.
    Modules: ``vision_tower`` (``Blip2VisionModel``), ``video_query`` and ``aggregation`` (the
    global relation aggregation), ``qformer`` (:class:`videozoo.layers.qformer.QueryTransformer`)
    with ``extra_query_tokens``, ``llm_proj``, ``llm`` (``LlamaForCausalLM``).
    """

    def __init__(self, config: VideoChatConfig) -> None:
        super().__init__(config.llm, VIDEOCHAT_TEMPLATE)
        self.config = config
        v = config.vision
        if config.aggregation_layers > v.depth:
            raise ValueError(f"aggregation_layers {config.aggregation_layers} > vision depth {v.depth}")
        self.vision_tower = build_vision_tower(v)
        self.video_query = nn.Parameter(torch.zeros(1, 1, v.width))
        mlp = round(config.aggregation_mlp_ratio * v.width)
        self.aggregation = nn.ModuleList(GlobalRelationAggregator(v.width, v.heads, mlp, config.aggregation_dropout)
                                         for _ in range(config.aggregation_layers))
        self.qformer = QueryTransformer(config.qformer, encoder_width=v.width)
        self.extra_query_tokens = nn.Parameter(torch.zeros(1, config.extra_queries, config.qformer.hidden_size))
        self.llm_proj = Projector(config.qformer.hidden_size, config.llm.hidden_size, "linear")

    @property
    def num_video_tokens(self) -> int:
        return self.config.num_video_tokens

    def visual_tokens(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` -> ``(B, T (1 + N) + 1, C)``: frame tokens and the video token, normalised.

        The last ``aggregation_layers`` blocks' tokens feed the aggregation layers in order; the
        last block's tokens of every frame, followed by the video token, go through the
        LayerNorm that BLIP-2 puts before its Q-Former.
        """
        k = self.config.aggregation_layers
        blocks = frame_tokens(self.vision_tower, video, layers=tuple(range(-max(k, 1), 0)))  # (B, T, 1 + N, C) each
        tokens = [blocks[-1].flatten(1, 2)]
        if k:
            q = self.video_query.repeat(video.shape[0], 1, 1)  # not a view (see QueryTransformer.forward)
            for layer, x in zip(self.aggregation, blocks):
                q = layer(q, x)
            tokens.append(q)
        return self.vision_tower.post_layernorm(torch.cat(tokens, dim=1))

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` -> ``(B, Q + Q', D_llm)``: ViT, aggregation, Q-Former, projection."""
        return self.llm_proj(self.qformer(self.visual_tokens(video), self.extra_query_tokens))


def clip_to_input(config: VideoChatConfig, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard clip ``(B, 3, T, H, W)`` in [0, 1] -> ``(normalised frames, prompt ids (B, L))``."""
    video = normalise_frames(clip, config.vision.image_size)
    return video, prompt_input_ids(VIDEOCHAT_TEMPLATE, config.num_video_tokens, clip.shape[0], DEFAULT_QUESTION)


@register_model(
    "li2023videochat",
    alias="videochat",
    stage=4,
    config=VideoChatConfig,
    reported=(Reported("params_m", 7000.0, "authors' release name VideoChat-7B (OpenGVLab/Ask-Anything)",
                       note="7B names the LLM alone (Vicuna-7B v0, LLaMA-7B: 6.7 B, arXiv 2302.13971 Table 2); the "
                            "EVA ViT-g (~1.0 B), aggregation layers and Q-Former come on top, so the whole model's "
                            "count is not checked against it",
                       kind="release", tolerance_pct=None),),
    clip_to_input=clip_to_input,
    video_qa={"expected_min_pct": {"direction": 90.0, "colour": 90.0, "shape": 90.0},
              "control_max_pct": {"direction": 40.0}},
)
def videochat(config: VideoChatConfig) -> VideoChat:
    """Build a :class:`VideoChat` from ``config`` (random weights)."""
    return VideoChat(config)


register_variant(
    "videochat_13b", of="li2023videochat", paper_overrides={"llm": LLMConfig.vicuna_13b()},
    reported=(Reported("params_m", 13000.0, "authors' release name VideoChat-13B (OpenGVLab/Ask-Anything)",
                       note="13B names the LLM alone (StableVicuna-13B, LLaMA-13B: 13.0 B, arXiv 2302.13971 "
                            "Table 2); the vision side comes on top, so the whole model's count is not checked "
                            "against it",
                       kind="release", tolerance_pct=None),),
    description="VideoChat with StableVicuna-13B (the release's config_13b_stage2.py); the rest as the 7B model",
)


# --------------------------------------------------------------------------- checks


def _aggregator_params(layer: GlobalRelationAggregator) -> dict[str, torch.Tensor]:
    """Our aggregation layer's weights under the names of :func:`videozoo.references.videochat.aggregate`."""
    C = layer.ln_1.weight.shape[0]
    w, b = layer.attn.in_proj_weight, layer.attn.in_proj_bias
    p = {f"{n}.{k}": getattr(getattr(layer, n), k) for n in ("ln_1", "ln_2", "ln_3", "fc1", "fc2")
         for k in ("weight", "bias")}
    p.update({"dpe.weight": layer.dpe.weight[:, 0], "dpe.bias": layer.dpe.bias,
              "out_proj.weight": layer.attn.out_proj.weight, "out_proj.bias": layer.attn.out_proj.bias})
    for i, n in enumerate(("q_proj", "k_proj", "v_proj")):
        p[f"{n}.weight"], p[f"{n}.bias"] = w[i * C:(i + 1) * C], b[i * C:(i + 1) * C]
    return {k: v.detach() for k, v in p.items()}


def _reference_check() -> dict:
    """Tiny VideoChat against independent code with the same weights.

    * With one frame and no aggregation layer, VideoChat-Embed is BLIP-2: the logits must equal
      ``transformers.Blip2ForConditionalGeneration`` (LLaMA text model, 16 queries) with the
      same weights (vision tower, Q-Former, projection, LLM and the splicing all at once).
    * With 4 frames and 2 aggregation layers, the video tokens must equal a composition of a
      separately built ``Blip2VisionModel`` run frame by frame, the written-out aggregation of
      :mod:`videozoo.references.videochat` (float64), the LayerNorm, a separately built
      ``Blip2QFormerModel`` and the linear projection.
    * Greedy generation with the key/value cache equals generation without it and a plain
      arg-max loop.
    """
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2QFormerModel, Blip2VisionModel

    from videozoo.layers.generation import greedy_generate, greedy_generate_uncached
    from videozoo.references.videochat import aggregate, layer_norm

    tol = 1e-5
    measured: dict = {"tolerance": tol}
    gen = torch.Generator().manual_seed(0)

    # 1. one frame, no aggregation: BLIP-2
    torch.manual_seed(0)
    cfg1 = dataclasses.replace(VideoChatConfig.tiny(), num_frames=1, aggregation_layers=0)
    ours = VideoChat(cfg1).eval()
    video, ids = clip_to_input(cfg1, torch.rand(2, *cfg1.clip_shape(), generator=gen))
    blip_cfg = Blip2Config(vision_config=ours.vision_tower.config.to_dict(),
                           qformer_config=ours.qformer.qformer.config.to_dict(),
                           text_config=ours.llm.config.to_dict(), num_query_tokens=cfg1.num_video_tokens,
                           image_token_index=ours.video_token_id)
    blip = Blip2ForConditionalGeneration(blip_cfg).eval()
    blip.vision_model.load_state_dict(ours.vision_tower.state_dict())
    blip.qformer.load_state_dict(ours.qformer.qformer.state_dict())
    blip.language_projection.load_state_dict(ours.llm_proj.proj.state_dict())
    blip.language_model.load_state_dict(ours.llm.state_dict())
    with torch.no_grad():
        blip.query_tokens.copy_(torch.cat([ours.qformer.query_tokens, ours.extra_query_tokens], dim=1))
        measured["max_abs_diff_logits_vs_blip2"] = (
            ours(video, ids) - blip(pixel_values=video[:, :, 0], input_ids=ids).logits).abs().max().item()

    # 2. four frames, two aggregation layers: library parts + the written-out aggregation
    torch.manual_seed(1)
    cfg2 = dataclasses.replace(VideoChatConfig.tiny(), num_frames=4)
    ours = VideoChat(cfg2).eval()
    with torch.no_grad():  # give the zero-initialised parts values, so that they are exercised
        for p in [ours.video_query, ours.extra_query_tokens, *ours.aggregation.parameters()]:
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    video, ids = clip_to_input(cfg2, torch.rand(2, *cfg2.clip_shape(), generator=gen))
    tower = Blip2VisionModel(ours.vision_tower.config).eval()
    tower.load_state_dict(ours.vision_tower.state_dict())
    qformer = Blip2QFormerModel(ours.qformer.qformer.config).eval()
    qformer.load_state_dict(ours.qformer.qformer.state_dict())
    k, T = cfg2.aggregation_layers, cfg2.num_frames
    with torch.no_grad():
        got = ours.encode_video(video)
        hs = [tower(pixel_values=video[:, :, t], output_hidden_states=True).hidden_states for t in range(T)]
        expected = []
        for b in range(2):
            q = ours.video_query[0, 0].double()
            for j, layer in enumerate(ours.aggregation):
                block = torch.stack([hs[t][len(hs[t]) - k + j][b] for t in range(T)])   # (T, 1 + N, C)
                q = aggregate(q, block, _aggregator_params(layer), heads=cfg2.vision.heads)
            frames = torch.cat([hs[t][-1][b] for t in range(T)]).double()
            z = torch.cat([frames, q[None]])
            ln = tower.post_layernorm
            expected.append(layer_norm(z, ln.weight.double(), ln.bias.double(), ln.eps))
        z = torch.stack(expected).float()
        queries = torch.cat([ours.qformer.query_tokens, ours.extra_query_tokens], dim=1).expand(2, -1, -1)
        qout = qformer(query_embeds=queries, encoder_hidden_states=z).last_hidden_state
        ref = qout @ ours.llm_proj.proj.weight.T + ours.llm_proj.proj.bias
        measured["max_abs_diff_video_tokens"] = (got - ref).abs().max().item()

        stops, pad = ours.stop_token_ids, ours.tokenizer.pad_token_id
        emb = ours.embed(video, ids)
        cached = greedy_generate(ours.llm, emb, None, 12, stops, pad, use_cache=True)
        uncached = greedy_generate(ours.llm, emb, None, 12, stops, pad, use_cache=False)
        loop = greedy_generate_uncached(ours.llm, emb, 12, stops, pad)
    measured["generated_tokens"] = cached.shape[1]
    measured["kv_cache_equals_no_cache"] = bool(torch.equal(cached, uncached))
    measured["kv_cache_equals_argmax_loop"] = bool(torch.equal(cached, loop))
    worst = max(measured["max_abs_diff_logits_vs_blip2"], measured["max_abs_diff_video_tokens"])
    measured["max_abs_diff"] = worst
    same = measured["kv_cache_equals_no_cache"] and measured["kv_cache_equals_argmax_loop"]
    return {
        "passed": bool(worst <= tol and same),
        "summary": (f"tiny VideoChat with copied weights: one frame without aggregation vs "
                    f"transformers.Blip2ForConditionalGeneration (LLaMA text model), 4 frames with 2 aggregation "
                    f"layers vs Blip2VisionModel + a written-out global relation aggregation + Blip2QFormerModel: "
                    f"max abs diff {worst:.2e} (tolerance {tol:g}); greedy generation with KV cache "
                    f"{'equals' if same else 'differs from'} generation without cache ({cached.shape[1]} tokens)"),
        "reference": "transformers.Blip2ForConditionalGeneration; transformers.Blip2VisionModel; "
                     "transformers.Blip2QFormerModel; videozoo.references.videochat (written-out aggregation)",
        **measured,
    }


register_check("li2023videochat", "reference", evidence="independent-reference")(_reference_check)

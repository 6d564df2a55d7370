"""Video-ChatGPT: CLIP frame features, spatiotemporal pooling, a linear projector, Vicuna.

Paper: "Video-ChatGPT: Towards Detailed Video Understanding via Large Vision and Language
Models", Maaz, Rasheed, Khan, Khan, ACL 2024, arXiv 2306.05424.

Follows Sec. 3 (Video-ChatGPT architecture) and the authors' code (mbzuai-oryx/Video-ChatGPT):

* Each of the ``T`` frames (100 in the release) goes through CLIP ViT-L/14 at 224 px; the
  penultimate block's output, without the class token, is the frame's ``N = 256`` patch
  embeddings (as LLaVA selects them): ``x: (T, N, D)``, ``D = 1024``.
* Spatiotemporal pooling (:func:`spatiotemporal_pool`): the *temporal* features ``t`` are
  the per-frame means over the ``N`` patches, ``(T, D)``; the *spatial* features ``z`` are the
  per-patch means over the ``T`` frames, ``(N, D)``; the video is ``v = [t  z]``,
  ``T + N = 356`` tokens.
* A linear layer maps them to the LLM's width (``Q_v = W v``, 1024 -> 4096).
* The LLM (Vicuna-7B v1.1, LLaMA-7B's shape) reads them in place of the video placeholder
  of the ``video-chatgpt_v1`` template: ``SYSTEM USER: question <vid_start><video><vid_end>
  ASSISTANT: answer</s>``.

What is videozoo's own: the pooling and the prompt; CLIP is ``transformers.CLIPVisionModel``
and the LLM ``transformers.LlamaForCausalLM`` (random weights; see
:mod:`videozoo.layers.video_llm`).  Simplifications: the paper freezes CLIP and the LLM and
trains the projector only (here every part is trainable, and the tiny models are trained end
to end); videos shorter than 100 frames are not zero-padded to 100 temporal tokens as the
release's feature script does (the model takes ``num_frames`` frames); the tokenizer of the
tiny models is videozoo's word-level one, the paper config keeps LLaMA's vocabulary size plus
the three video tokens the release adds (``<vid_patch>``, ``<vid_start>``, ``<vid_end>``; here
the repeated token is called ``<video>``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from videozoo.layers.llm import LLMConfig
from videozoo.layers.projector import Projector
from videozoo.layers.prompt import ConversationTemplate
from videozoo.layers.video_llm import DEFAULT_QUESTION, VideoLLM, prompt_input_ids, tokenizer_for
from videozoo.layers.vision import VisionTowerConfig, build_vision_tower, frame_tokens, normalise_frames
from videozoo.registry import Reported, register_check, register_model

__all__ = ["VideoChatGPTConfig", "VideoChatGPT", "VIDEO_CHATGPT_V1", "spatiotemporal_pool", "video_chatgpt"]

VIDEO_CHATGPT_V1 = ConversationTemplate(
    name="video-chatgpt_v1",
    system=("You are Video-ChatGPT, a large vision-language assistant. You are able to understand the video content "
            "that the user provides, and assist the user with a variety of tasks using natural language.Follow the "
            "instructions carefully and explain your answers in detail based on the provided video."),
    roles=("USER", "ASSISTANT"),
    sep=" ",
    stop="</s>",
    video_turns=("{question}\n<vid_start><video><vid_end>",),
    markers=("<vid_start>", "<vid_end>"),
    source="authors' code: video_chatgpt/video_conversation.py (conv_video_chatgpt_v1) and inference.py",
)
"""The ``video-chatgpt_v1`` conversation template of the authors' code (Vicuna v1.1 style)."""


@dataclass
class VideoChatGPTConfig:
    """Hyper-parameters of Video-ChatGPT (paper Sec. 3 and the authors' release).

    Attributes:
        num_frames: Frames ``T`` sampled from a video (100).
        vision: The CLIP frame encoder (ViT-L/14 at 224 px).
        feature_layer: Index into CLIP's hidden states of the features used (-2: the
            penultimate block).
        llm: The language model (Vicuna-7B v1.1: LLaMA-7B's shape, 32000 + 3 tokens).
        projector: ``"linear"`` (the paper) or ``"mlp2x_gelu"``.
    """

    num_frames: int = 100
    vision: VisionTowerConfig = field(default_factory=VisionTowerConfig.clip_vit_l14)
    feature_layer: int = -2
    llm: LLMConfig = field(default_factory=lambda: dataclasses.replace(LLMConfig.vicuna_7b(), vocab_size=32003))
    projector: str = "linear"

    @classmethod
    def paper(cls) -> "VideoChatGPTConfig":
        """The release: 100 frames, CLIP ViT-L/14, linear projector, Vicuna-7B v1.1 (356 video tokens)."""
        return cls()

    @classmethod
    def tiny(cls) -> "VideoChatGPTConfig":
        """8 frames of 32x32, a 3-block CLIP of width 64 (16 patches), a 2-block LLM of width 64 (24 video tokens)."""
        return cls(num_frames=8, vision=VisionTowerConfig.tiny("clip"), llm=LLMConfig.tiny())

    @property
    def num_video_tokens(self) -> int:
        """``T + N`` (356 for the paper config)."""
        return self.num_frames + self.vision.num_patches

    def clip_shape(self) -> tuple[int, int, int, int]:
        """Standard videozoo clip ``(3, T, H, W)`` that :func:`clip_to_input` turns into the input."""
        return (3, self.num_frames, self.vision.image_size, self.vision.image_size)

    def input_shape(self) -> tuple[int, int, int, int]:
        """Per-sample video input ``(3, T, H, W)`` (normalised frames; the prompt ids come with it)."""
        return self.clip_shape()

    def output_shape(self, batch: int) -> tuple[int, int, int]:
        """Logits ``(batch, L, V)`` for the prompt of :func:`clip_to_input`."""
        tok = tokenizer_for(VIDEO_CHATGPT_V1)
        length = prompt_input_ids(VIDEO_CHATGPT_V1, self.num_video_tokens, 1).shape[1]
        return (batch, length, max(self.llm.vocab_size, len(tok)))


def spatiotemporal_pool(features: torch.Tensor) -> torch.Tensor:
    """Video-ChatGPT's video tokens from frame features (Sec. 3).

    Args:
        features: ``(B, T, N, D)`` patch embeddings of every frame.

    Returns:
        ``(B, T + N, D)``: first the temporal features (each frame's mean over its ``N``
        patches), then the spatial features (each patch position's mean over the ``T`` frames).
    """
    temporal = features.mean(dim=2)   # (B, T, D)
    spatial = features.mean(dim=1)    # (B, N, D)
    return torch.cat([temporal, spatial], dim=1)


class VideoChatGPT(VideoLLM):
    """Video-ChatGPT (arXiv 2306.05424, Sec. 3): ``forward(video, input_ids, attention_mask=None) -> logits``.

    ``video``: ``(B, 3, T, H, W)`` frames normalised with CLIP's mean and std
    (:func:`clip_to_input` / :func:`videozoo.layers.vision.normalise_frames`); ``input_ids``
    ``(B, L)`` from :meth:`prompt`; logits ``(B, L, V)``.
    Modules: ``vision_tower`` (``CLIPVisionModel``), ``projector``, ``llm`` (``LlamaForCausalLM``).
    """

    def __init__(self, config: VideoChatGPTConfig) -> None:
        super().__init__(config.llm, VIDEO_CHATGPT_V1)
        self.config = config
        self.vision_tower = build_vision_tower(config.vision)
        self.projector = Projector(config.vision.width, config.llm.hidden_size, config.projector)

    @property
    def num_video_tokens(self) -> int:
        return self.config.num_video_tokens

    def frame_features(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` -> ``(B, T, N, D)``: CLIP's ``feature_layer`` output without the class token.

        Raises:
            ValueError: if ``T`` is not ``config.num_frames`` (the prompt has ``T + N`` video positions).
        """
        if video.shape[2] != self.config.num_frames:
            raise ValueError(f"Video-ChatGPT config takes {self.config.num_frames} frames, got {video.shape[2]}")
        return frame_tokens(self.vision_tower, video, layers=(self.config.feature_layer,))[0][:, :, 1:]

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` -> ``(B, T + N, D_llm)``: CLIP features, pooling, projector."""
        return self.projector(spatiotemporal_pool(self.frame_features(video)))


def clip_to_input(config: VideoChatGPTConfig, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard clip ``(B, 3, T, H, W)`` in [0, 1] -> ``(normalised frames, prompt ids (B, L))``.

    The prompt asks :data:`videozoo.layers.video_llm.DEFAULT_QUESTION` in the
    ``video-chatgpt_v1`` template, with ``T + N`` video positions.
    """
    video = normalise_frames(clip, config.vision.image_size)
    return video, prompt_input_ids(VIDEO_CHATGPT_V1, config.num_video_tokens, clip.shape[0], DEFAULT_QUESTION)


@register_model(
    "maaz2024videochatgpt",
    alias="videochatgpt",
    stage=4,
    config=VideoChatGPTConfig,
    reported=(Reported("params_m", 7000.0, "paper, Sec. 3 and release name Video-ChatGPT-7B",
                       note="7B names the LLM alone (Vicuna-7B v1.1, LLaMA-7B: 6.7 B, arXiv 2302.13971 Table 2); "
                            "CLIP ViT-L/14 (0.3 B) and the projector come on top, so the whole model's count is "
                            "not checked against it",
                       kind="paper", tolerance_pct=None),),
    clip_to_input=clip_to_input,
    video_qa={"expected_min_pct": {"direction": 90.0, "colour": 90.0, "shape": 90.0},
              "control_max_pct": {"direction": 40.0}},
)
def video_chatgpt(config: VideoChatGPTConfig) -> VideoChatGPT:
    """Build a :class:`VideoChatGPT` from ``config`` (random weights)."""
    return VideoChatGPT(config)


# --------------------------------------------------------------------------- checks


def _reference_check() -> dict:
    """Tiny Video-ChatGPT against independent code with the same weights.

    * pooling and projector vs the float64 statement of Sec. 3 written as sums
      (:mod:`videozoo.references.video_chatgpt`) on the reference CLIP's features;
    * frame features vs a separately built ``transformers.CLIPVisionModel`` run frame by frame;
    * logits vs a separately built ``transformers.LlamaForCausalLM`` fed the prompt embeddings
      concatenated by hand around the video tokens;
    * greedy generation with the key/value cache vs without it (``generate(use_cache=False)``)
      vs a plain arg-max loop.
    """
    from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaForCausalLM

    from videozoo.layers.generation import greedy_generate, greedy_generate_uncached
    from videozoo.references.video_chatgpt import project, spatiotemporal_features

    tol = 1e-5
    torch.manual_seed(0)
    cfg = dataclasses.replace(VideoChatGPTConfig.tiny(), num_frames=5)
    model = VideoChatGPT(cfg).eval()
    gen = torch.Generator().manual_seed(0)
    video, ids = clip_to_input(cfg, torch.rand(2, *cfg.clip_shape(), generator=gen))
    measured: dict = {"tolerance": tol}
    with torch.no_grad():
        feats = model.frame_features(video)                       # (B, T, N, D)
        tokens = model.encode_video(video)                        # (B, T + N, D_llm)
        logits = model(video, ids)

        v = cfg.vision
        ref_tower = CLIPVisionModel(CLIPVisionConfig(
            hidden_size=v.width, intermediate_size=v.mlp_dim, num_hidden_layers=v.depth, num_attention_heads=v.heads,
            image_size=v.image_size, patch_size=v.patch_size, layer_norm_eps=v.layer_norm_eps,
            hidden_act="quick_gelu")).eval()
        ref_tower.load_state_dict(model.vision_tower.state_dict())
        ref_feats = torch.stack([ref_tower(pixel_values=video[:, :, t], output_hidden_states=True)
                                 .hidden_states[-2][:, 1:] for t in range(cfg.num_frames)], dim=1)
        measured["max_abs_diff_frame_features"] = (feats - ref_feats).abs().max().item()

        w, b = model.projector.proj.weight, model.projector.proj.bias
        ref_tokens = torch.stack([project(spatiotemporal_features(ref_feats[i]), w, b) for i in range(2)])
        measured["max_abs_diff_pooled_projected"] = (tokens.double() - ref_tokens).abs().max().item()

        ref_llm = LlamaForCausalLM(model.llm.config).eval()
        ref_llm.load_state_dict(model.llm.state_dict())
        where = (ids[0] == model.video_token_id).nonzero().flatten()
        start, end = int(where[0]), int(where[-1]) + 1
        text = ref_llm.get_input_embeddings()(ids)
        embeds = torch.cat([text[:, :start], tokens, text[:, end:]], dim=1)
        ref_logits = ref_llm(inputs_embeds=embeds).logits
        measured["max_abs_diff_logits"] = (logits - ref_logits).abs().max().item()

        stops, pad = model.stop_token_ids, model.tokenizer.pad_token_id
        emb = model.embed(video, ids)
        cached = greedy_generate(model.llm, emb, None, 12, stops, pad, use_cache=True)
        uncached = greedy_generate(model.llm, emb, None, 12, stops, pad, use_cache=False)
        loop = greedy_generate_uncached(model.llm, emb, 12, stops, pad)
    measured["generated_tokens"] = cached.shape[1]
    measured["kv_cache_equals_no_cache"] = bool(torch.equal(cached, uncached))
    measured["kv_cache_equals_argmax_loop"] = bool(torch.equal(cached, loop))
    diffs = [measured[k] for k in ("max_abs_diff_frame_features", "max_abs_diff_pooled_projected", "max_abs_diff_logits")]
    worst = max(diffs)
    measured["max_abs_diff"] = worst
    passed = worst <= tol and measured["kv_cache_equals_no_cache"] and measured["kv_cache_equals_argmax_loop"]
    return {
        "passed": bool(passed),
        "summary": (f"tiny Video-ChatGPT with copied weights: CLIP features vs transformers.CLIPVisionModel, pooling + "
                    f"projector vs a float64 statement of Sec. 3, logits vs transformers.LlamaForCausalLM: max abs diff "
                    f"{worst:.2e} (tolerance {tol:g}); greedy generation with KV cache "
                    f"{'equals' if measured['kv_cache_equals_no_cache'] and measured['kv_cache_equals_argmax_loop'] else 'differs from'}"
                    f" generation without cache ({cached.shape[1]} tokens)"),
        "reference": "transformers.CLIPVisionModel; transformers.LlamaForCausalLM; videozoo.references.video_chatgpt "
                     "(the paper's pooling written as sums, float64)",
        **measured,
    }


register_check("maaz2024videochatgpt", "reference", evidence="independent-reference")(_reference_check)

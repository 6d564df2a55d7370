"""The Transformer (encoder-decoder), with a classification interface for videozoo.

Paper: "Attention Is All You Need", Vaswani et al., NeurIPS 2017, arXiv 1706.03762.

Follows Sec. 3:

* Sec. 3.1: an encoder of ``N = 6`` layers (self-attention, position-wise feed-forward)
  and a decoder of 6 layers (masked self-attention, encoder-decoder attention,
  feed-forward); every sub-layer is ``LayerNorm(x + Dropout(Sublayer(x)))`` (post-norm),
  so there is no final LayerNorm after either stack.
* Sec. 3.2: scaled dot-product attention, multi-head with ``h = 8`` heads of width
  ``d_k = d_v = d_model / h`` (computed with ``scaled_dot_product_attention``).
* Sec. 3.3: feed-forward ``max(0, x W1 + b1) W2 + b2`` with ``d_ff = 2048``.
* Sec. 3.4: one embedding matrix shared by the source embedding, the target embedding and
  the pre-softmax projection; embeddings are multiplied by ``sqrt(d_model)``.
* Sec. 3.5: sinusoidal position encodings added to the embeddings, then dropout.

Base model (Table 3): ``d_model 512, d_ff 2048, h 8, N 6, P_drop 0.1``; with a shared
37000-token vocabulary (the WMT 2014 English-German byte-pair vocabulary of Sec. 5.1).

Classification interface (our choice, not in the paper).  The registered model
:class:`TransformerClassifier` is the encoder-decoder used as a sequence classifier: the
encoder reads a source sequence, the decoder decodes a single query token (a reserved
``[CLS]`` id of the shared vocabulary, at position 0), and a linear head maps the decoder's
output to ``num_classes`` logits.  The source sequence comes from a clip in one of two ways
(config ``source``):

* ``"tokens"`` (paper config): token ids.  A clip is turned into ids by
  :func:`clip_to_tokens`: every frame is average-pooled to a ``token_grid x token_grid``
  grey image whose values are quantised into the vocabulary (one token per cell, frames in
  order), so the 37000-word shared embedding is used as in the paper.
* ``"tubelets"`` (tiny config): the clip is cut into non-overlapping ``tubelet_t x
  patch_size x patch_size`` tubelets, each linearly projected to ``d_model`` (the tubelet
  embedding of ViViT, arXiv 2103.15691 Sec. 3.2; ``tubelet_t = 1`` is a ViT patch embedding
  applied frame by frame).  Tokens are read tubelet slice after slice, patches in raster
  order, and the 1-D sinusoidal positions of Sec. 3.5 are all that tells the encoder which
  time and place a token comes from.

:func:`load_state_dict_from` maps ``torch.nn.Transformer`` (``batch_first=True``,
``norm_first=False``) weights onto the encoder-decoder core (:class:`EncoderDecoder`);
``nn.Transformer`` always appends a final LayerNorm to each stack, which the paper's
post-norm model does not have, so the reference is built with ``encoder.norm`` and
``decoder.norm`` set to ``None``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from videozoo.registry import Reported, register_check, register_model

__all__ = [
    "TransformerConfig", "MultiHeadAttention", "EncoderLayer", "DecoderLayer", "EncoderDecoder",
    "Seq2SeqTransformer", "TransformerClassifier", "sinusoidal_positions", "clip_to_tokens",
    "transformer", "load_state_dict_from",
]

PAD_ID = 0
CLS_ID = 1
FIRST_PIXEL_ID = 2


@dataclass
class TransformerConfig:
    """Hyper-parameters of the Transformer and of its classification interface.

    Attributes:
        num_classes: Output classes of the classification head.
        vocab_size: Size of the shared source/target vocabulary (ids 0 = pad, 1 = [CLS]).
        d_model: Model width.
        num_heads: Attention heads ``h``.
        num_encoder_layers: Encoder layers ``N``.
        num_decoder_layers: Decoder layers ``N``.
        d_ff: Feed-forward inner width.
        dropout: ``P_drop`` on every sub-layer output and on the embedding sums (Sec. 5.4).
        layer_norm_eps: LayerNorm epsilon.
        max_len: Longest sequence the position table covers.
        source: ``"tokens"`` (ids from :func:`clip_to_tokens`) or ``"tubelets"`` (tubelet tokens).
        num_frames: ``T`` of the input clip.
        img_size: ``H = W`` of the input clip.
        token_grid: ``"tokens"`` source: grid cells per frame side (``T * token_grid^2`` ids).
        tubelet_t: ``"tubelets"`` source: temporal extent of a tubelet in frames.
        patch_size: ``"tubelets"`` source: spatial side of a tubelet in pixels.
    """

    num_classes: int = 400
    vocab_size: int = 37000
    d_model: int = 512
    num_heads: int = 8
    num_encoder_layers: int = 6
    num_decoder_layers: int = 6
    d_ff: int = 2048
    dropout: float = 0.1
    layer_norm_eps: float = 1e-5
    max_len: int = 1024
    source: str = "tokens"
    num_frames: int = 8
    img_size: int = 64
    token_grid: int = 8
    tubelet_t: int = 2
    patch_size: int = 8

    @classmethod
    def paper(cls) -> "TransformerConfig":
        """Base model of Table 3 with a 37000-token shared vocabulary; clips of 8x64x64 read as 512 tokens."""
        return cls()

    @classmethod
    def tiny(cls) -> "TransformerConfig":
        """Tubelet-token model: 8 frames of 32x32 in 2x8x8 tubelets -> 64 tokens, d_model 32, 2+1 layers."""
        return cls(num_classes=8, vocab_size=8, d_model=32, num_heads=4, num_encoder_layers=2,
                   num_decoder_layers=1, d_ff=64, dropout=0.0, max_len=64, source="tubelets",
                   num_frames=8, img_size=32, tubelet_t=2, patch_size=8)

    def input_shape(self) -> tuple[int, ...]:
        """Per-sample clip ``(3, T, H, W)`` that :func:`clip_to_input` turns into the source."""
        return (3, self.num_frames, self.img_size, self.img_size)


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """Sinusoidal position encodings (Sec. 3.5).

    ``PE[pos, 2i] = sin(pos / 10000^(2i / d_model))``, ``PE[pos, 2i + 1] = cos(...)``.

    Returns:
        ``(length, d_model)`` float32.
    """
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    inv_freq = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(pos * inv_freq)
    pe[:, 1::2] = torch.cos(pos * inv_freq)[:, : d_model // 2]
    return pe


def _additive_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """``torch.nn.Transformer`` mask convention -> additive float mask (``True`` = not allowed)."""
    if mask is None or mask.dtype != torch.bool:
        return mask if mask is None else mask.to(dtype)
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))


def _combine(attn_mask: torch.Tensor | None, key_padding_mask: torch.Tensor | None, dtype) -> torch.Tensor | None:
    """Merge an ``(L, S)`` attention mask and a ``(B, S)`` key padding mask into ``(B, 1, L, S)`` or ``(L, S)``."""
    m = _additive_mask(attn_mask, dtype)
    if key_padding_mask is not None:
        pad = _additive_mask(key_padding_mask, dtype)[:, None, None, :]  # (B, 1, 1, S)
        m = pad if m is None else m + pad
    return m


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Sec. 3.2.2) with separate query/key/value projections.

    Args:
        d_model: Width ``D``. num_heads: ``h`` (must divide ``D``).
        dropout: Dropout on the attention weights (0 in our configs).

    Raises:
        ValueError: if ``num_heads`` does not divide ``d_model``.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} not divisible by num_heads {num_heads}")
        self.num_heads, self.dropout = num_heads, dropout
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, query: torch.Tensor, key_value: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attention of ``query (B, L, D)`` over ``key_value (B, S, D)``.

        Args:
            mask: Optional additive float mask broadcastable to ``(B, h, L, S)``.

        Returns:
            ``(B, L, D)``.
        """
        B, L, D = query.shape
        S, h = key_value.shape[1], self.num_heads
        q = self.q_proj(query).reshape(B, L, h, D // h).transpose(1, 2)
        k = self.k_proj(key_value).reshape(B, S, h, D // h).transpose(1, 2)
        v = self.v_proj(key_value).reshape(B, S, h, D // h).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(B, L, D))


class EncoderLayer(nn.Module):
    """Post-norm encoder layer (Sec. 3.1): ``x = LN(x + SelfAttn(x)); x = LN(x + FFN(x))``.

    Shapes: ``(B, S, D) -> (B, S, D)``.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float, eps: float):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.norm2 = nn.LayerNorm(d_model, eps=eps)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x: (B, S, D)``; ``mask``: additive, broadcastable to ``(B, h, S, S)``."""
        x = self.norm1(x + self.drop(self.self_attn(x, x, mask)))
        return self.norm2(x + self.drop(self.linear2(self.drop(F.relu(self.linear1(x))))))


class DecoderLayer(nn.Module):
    """Post-norm decoder layer (Sec. 3.1): masked self-attention, encoder-decoder attention, FFN.

    Shapes: ``y (B, L, D)``, ``memory (B, S, D)`` -> ``(B, L, D)``.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float, eps: float):
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model, num_heads)
        self.cross_attn = MultiHeadAttention(d_model, num_heads)
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.norm2 = nn.LayerNorm(d_model, eps=eps)
        self.norm3 = nn.LayerNorm(d_model, eps=eps)
        self.drop = nn.Dropout(dropout)

    def forward(self, y: torch.Tensor, memory: torch.Tensor, self_mask=None, memory_mask=None) -> torch.Tensor:
        """``y: (B, L, D)``, ``memory: (B, S, D)``; masks additive, ``(B|1, h|1, L, L)`` / ``(.., L, S)``."""
        y = self.norm1(y + self.drop(self.self_attn(y, y, self_mask)))
        y = self.norm2(y + self.drop(self.cross_attn(y, memory, memory_mask)))
        return self.norm3(y + self.drop(self.linear2(self.drop(F.relu(self.linear1(y))))))


class _Stack(nn.Module):
    """A list of layers under ``.layers`` (mirrors ``nn.TransformerEncoder`` / ``Decoder`` key names)."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)


class EncoderDecoder(nn.Module):
    """The encoder-decoder core of Sec. 3.1 on already-embedded sequences (no final LayerNorm).

    Masks follow ``torch.nn.Transformer``: ``src_mask (S, S)`` / ``tgt_mask (L, L)`` /
    ``memory_mask (L, S)`` boolean (``True`` = not allowed) or additive float;
    ``*_key_padding_mask (B, S|L)`` boolean (``True`` = padding).
    """

    def __init__(self, d_model: int, num_heads: int, num_encoder_layers: int, num_decoder_layers: int,
                 d_ff: int, dropout: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.encoder = _Stack([EncoderLayer(d_model, num_heads, d_ff, dropout, eps) for _ in range(num_encoder_layers)])
        self.decoder = _Stack([DecoderLayer(d_model, num_heads, d_ff, dropout, eps) for _ in range(num_decoder_layers)])

    def encode(self, src: torch.Tensor, src_mask=None, src_key_padding_mask=None) -> torch.Tensor:
        """``src: (B, S, D)`` -> memory ``(B, S, D)``."""
        mask = _combine(src_mask, src_key_padding_mask, src.dtype)
        for layer in self.encoder.layers:
            src = layer(src, mask)
        return src

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor, tgt_mask=None, memory_mask=None,
               tgt_key_padding_mask=None, memory_key_padding_mask=None) -> torch.Tensor:
        """``tgt: (B, L, D)``, ``memory: (B, S, D)`` -> ``(B, L, D)``."""
        self_mask = _combine(tgt_mask, tgt_key_padding_mask, tgt.dtype)
        cross_mask = _combine(memory_mask, memory_key_padding_mask, tgt.dtype)
        for layer in self.decoder.layers:
            tgt = layer(tgt, memory, self_mask, cross_mask)
        return tgt

    def forward(self, src: torch.Tensor, tgt: torch.Tensor, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None) -> torch.Tensor:
        """``src: (B, S, D)``, ``tgt: (B, L, D)`` -> decoder output ``(B, L, D)``."""
        memory = self.encode(src, src_mask, src_key_padding_mask)
        return self.decode(tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask)


class Seq2SeqTransformer(nn.Module):
    """Token-level Transformer (Sec. 3): shared embedding, sinusoidal positions, tied output projection.

    ``forward(src_ids (B, S), tgt_ids (B, L))`` -> next-token logits ``(B, L, vocab_size)``
    (causal target mask; source padding with id 0 is masked).
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        c = config
        self.config = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model)
        nn.init.normal_(self.embed.weight, std=c.d_model ** -0.5)
        self.register_buffer("positions", sinusoidal_positions(c.max_len, c.d_model), persistent=False)
        self.drop = nn.Dropout(c.dropout)
        self.core = EncoderDecoder(c.d_model, c.num_heads, c.num_encoder_layers, c.num_decoder_layers, c.d_ff,
                                   c.dropout, c.layer_norm_eps)

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids: (B, S)`` long -> ``(B, S, D)``: ``embed * sqrt(D) + PE`` then dropout (Sec. 3.4-3.5)."""
        return self.embed_vectors(self.embed(ids) * math.sqrt(self.config.d_model))

    def embed_vectors(self, x: torch.Tensor) -> torch.Tensor:
        """Add the sinusoidal positions to ``x: (B, S, D)`` and apply dropout.

        Raises:
            ValueError: if ``S`` exceeds ``max_len``.
        """
        if x.shape[1] > self.positions.shape[0]:
            raise ValueError(f"sequence of {x.shape[1]} exceeds max_len {self.positions.shape[0]}")
        return self.drop(x + self.positions[: x.shape[1]].to(x.dtype))

    def forward(self, src_ids: torch.Tensor, tgt_ids: torch.Tensor) -> torch.Tensor:
        """``src_ids: (B, S)``, ``tgt_ids: (B, L)`` -> logits ``(B, L, vocab_size)``."""
        L = tgt_ids.shape[1]
        causal = torch.ones(L, L, dtype=torch.bool, device=tgt_ids.device).triu(1)
        y = self.core(self.embed_tokens(src_ids), self.embed_tokens(tgt_ids), tgt_mask=causal,
                      src_key_padding_mask=src_ids == PAD_ID, memory_key_padding_mask=src_ids == PAD_ID)
        return y @ self.embed.weight.t()  # pre-softmax projection shares the embedding (Sec. 3.4)


def clip_to_tokens(config: TransformerConfig, clip: torch.Tensor) -> torch.Tensor:
    """Read a clip as a token sequence (our stand-in for a sentence).

    Args:
        clip: ``(B, 3, T, H, W)`` in ``[0, 1]``; ``H`` divisible by ``config.token_grid``.

    Returns:
        ``(B, T * token_grid^2)`` long ids in ``[2, vocab_size)``: the grey level of each grid
        cell, quantised uniformly, frames in temporal order, cells in raster order.
    """
    B, C, T, H, W = clip.shape
    g = config.token_grid
    grey = F.adaptive_avg_pool2d(clip.mean(dim=1).reshape(B * T, 1, H, W), g).reshape(B, T * g * g)
    levels = config.vocab_size - FIRST_PIXEL_ID
    return FIRST_PIXEL_ID + (grey.clamp(0, 1) * (levels - 1)).round().long()


class TransformerClassifier(nn.Module):
    """Encoder-decoder Transformer as a clip classifier (see the module docstring).

    ``forward(src)`` with ``src`` either token ids ``(B, S)`` (long) or a clip
    ``(B, 3, T, H, W)`` in ``[0, 1]`` (tokenised by :func:`clip_to_tokens` for
    ``source="tokens"``, embedded tubelet by tubelet for ``source="tubelets"``); returns
    logits ``(B, num_classes)`` read from the decoder output of a single ``[CLS]`` query.

    Raises:
        ValueError: unknown ``source``; ``num_frames`` / ``img_size`` not divisible by the
            tubelet size; token ids given to a ``"tubelets"`` model.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        if config.source not in ("tokens", "tubelets"):
            raise ValueError(f"source must be 'tokens' or 'tubelets', got {config.source!r}")
        self.config = config
        self.seq2seq = Seq2SeqTransformer(config)
        if config.source == "tubelets":
            size = (config.tubelet_t, config.patch_size, config.patch_size)
            if config.num_frames % size[0] or config.img_size % size[1]:
                raise ValueError(f"clip {config.num_frames}x{config.img_size}x{config.img_size} is not divisible "
                                 f"by the tubelet {size[0]}x{size[1]}x{size[2]}")
            self.tubelet_embed = nn.Conv3d(3, config.d_model, kernel_size=size, stride=size)
        self.head = nn.Linear(config.d_model, config.num_classes)

    def tubelet_tokens(self, clip: torch.Tensor) -> torch.Tensor:
        """``clip: (B, 3, T, H, W)`` -> tokens ``(B, n_t * N, D)``; ``n_t = T / tubelet_t``,
        ``N = (H / patch_size)^2``; token ``i * N + n`` is patch ``n`` (raster order) of slice ``i``."""
        x = self.tubelet_embed(clip)  # (B, D, n_t, h, w)
        return x.flatten(2).transpose(1, 2)

    def forward(self, src: torch.Tensor) -> torch.Tensor:
        """``src: (B, S)`` ids or ``(B, 3, T, H, W)`` clip -> logits ``(B, num_classes)``."""
        s2s = self.seq2seq
        padding = None
        if src.dim() == 5 and self.config.source == "tubelets":
            x = s2s.embed_vectors(self.tubelet_tokens(src))
        else:
            if src.dim() == 5:
                src = clip_to_tokens(self.config, src)
            if self.config.source == "tubelets":
                raise ValueError("a 'tubelets' model takes clips (B, 3, T, H, W), not token ids")
            x = s2s.embed_tokens(src)
            padding = src == PAD_ID
        query = s2s.embed_tokens(torch.full((src.shape[0], 1), CLS_ID, dtype=torch.long, device=src.device))
        y = s2s.core(x, query, src_key_padding_mask=padding, memory_key_padding_mask=padding)  # (B, 1, D)
        return self.head(y[:, 0])


def clip_to_input(config: TransformerConfig, clip: torch.Tensor) -> torch.Tensor:
    """Standard clip ``(B, 3, T, H, W)`` -> model input: token ids ``(B, S)`` or the clip itself (tubelets)."""
    return clip_to_tokens(config, clip) if config.source == "tokens" else clip


@register_model(
    "vaswani2017attention",
    alias="transformer",
    stage=2,
    config=TransformerConfig,
    reported=(Reported("params_m", 65.0, "paper, Table 3",
                       note="base model, shared 37000-token embedding; ours adds a 400-class head",
                       kind="paper", tolerance_pct=1.5),),
    temporal=True,
    clip_to_input=clip_to_input,
    motion={"lr": 1e-3, "max_steps": 5000, "n_train": 4000},
)
def transformer(config: TransformerConfig) -> TransformerClassifier:
    """Build a :class:`TransformerClassifier` from ``config``."""
    return TransformerClassifier(config)


# --------------------------------------------------------------------------- key mapping


def load_state_dict_from(library: str, state_dict: dict) -> dict:
    """Convert a ``torch.nn.Transformer`` state dict into :class:`EncoderDecoder` keys.

    ``in_proj_weight`` / ``in_proj_bias`` (query, key, value stacked) are split into
    ``q_proj``, ``k_proj``, ``v_proj``; ``multihead_attn`` becomes ``cross_attn``.

    Args:
        library: ``"torch"``.
        state_dict: ``nn.Transformer(..., batch_first=True, norm_first=False)`` state dict
            built with ``encoder.norm = decoder.norm = None`` (the paper has no final norm).

    Returns:
        A dict for ``EncoderDecoder.load_state_dict``.

    Raises:
        ValueError: unknown ``library``, or the state dict has a final encoder/decoder norm.
    """
    if library != "torch":
        raise ValueError(f"unknown library {library!r}; expected 'torch'")
    out: dict = {}
    for key, value in state_dict.items():
        if key.startswith(("encoder.norm.", "decoder.norm.")):
            raise ValueError("post-norm Transformer has no final LayerNorm; set encoder.norm = decoder.norm = None")
        key = key.replace("multihead_attn", "cross_attn")
        if key.endswith(("in_proj_weight", "in_proj_bias")):
            base, kind = key.rsplit(".", 1)
            suffix = "weight" if kind == "in_proj_weight" else "bias"
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
                out[f"{base}.{name}.{suffix}"] = part
        else:
            out[key] = value
    return out


# --------------------------------------------------------------------------- checks


def _reference_check() -> dict:
    """Our encoder-decoder core vs ``torch.nn.Transformer`` (post-norm, batch_first) with masks."""
    torch.manual_seed(0)
    D, h, ne, nd, ff = 32, 4, 2, 2, 64
    ref = nn.Transformer(D, h, ne, nd, ff, dropout=0.0, batch_first=True, norm_first=False)
    ref.encoder.norm = None
    ref.decoder.norm = None
    ref.train()  # dropout is 0, so training mode is deterministic and avoids the fused inference path
    ours = EncoderDecoder(D, h, ne, nd, ff, dropout=0.0).eval()
    ours.load_state_dict(load_state_dict_from("torch", ref.state_dict()))
    B, S, L = 3, 7, 5
    src, tgt = torch.randn(B, S, D), torch.randn(B, L, D)
    src_pad = torch.zeros(B, S, dtype=torch.bool)
    src_pad[0, -2:] = True
    src_pad[2, -4:] = True
    tgt_pad = torch.zeros(B, L, dtype=torch.bool)
    tgt_pad[1, -1] = True
    causal = torch.ones(L, L, dtype=torch.bool).triu(1)  # True = may not attend (future positions)
    with torch.no_grad():
        expected = ref(src, tgt, tgt_mask=causal, src_key_padding_mask=src_pad,
                       tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)
        got = ours(src, tgt, tgt_mask=causal, src_key_padding_mask=src_pad,
                   tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad)
    diff = (got - expected).abs().max().item()
    tol = 1e-5
    return {
        "passed": bool(diff <= tol),
        "summary": f"encoder-decoder core vs torch.nn.Transformer (post-norm, no final norms) with copied "
        f"weights, causal target mask and padding masks: max abs diff {diff:.2e} (tolerance {tol:g})",
        "reference": "torch.nn.Transformer",
        "max_abs_diff": diff,
        "tolerance": tol,
    }


register_check("vaswani2017attention", "reference", evidence="independent-reference")(_reference_check)

"""Stage 2 ViT family (Transformer, ViT, ViViT, TimeSformer): parity with independent implementations.

Every reference comparison copies random weights into an independent implementation
(torch.nn.Transformer, timm, Hugging Face transformers, or an explicit softmax computation
written here) and compares outputs; tiny configs only, CPU only.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from functools import partial

import pytest
import torch
from torch import nn

import videozoo
from videozoo.layers.attention import Attention, Block
from videozoo.models import timesformer as tsf
from videozoo.models import transformer as tfm
from videozoo.models import vit as vitm
from videozoo.models import vivit as vvm

TOL = 1e-5


def _explicit_attention(x: torch.Tensor, qkv: nn.Linear, proj: nn.Linear, heads: int, allowed=None) -> torch.Tensor:
    """Multi-head self-attention written out with matmul + softmax; ``allowed (h|1, L, L)`` bool."""
    B, L, D = x.shape
    q, k, v = qkv(x).reshape(B, L, 3, heads, D // heads).permute(2, 0, 3, 1, 4)
    logits = q @ k.transpose(-1, -2) / math.sqrt(D // heads)
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    out = logits.softmax(-1) @ v
    return proj(out.transpose(1, 2).reshape(B, L, D))


# --------------------------------------------------------------------------- shared layers


def test_attention_matches_explicit_softmax_with_mask():
    torch.manual_seed(0)
    attn = Attention(32, 4).eval()
    x = torch.randn(2, 6, 32)
    allowed = torch.rand(6, 6) > 0.3
    allowed |= torch.eye(6, dtype=torch.bool)
    with torch.no_grad():
        assert (attn(x) - _explicit_attention(x, attn.qkv, attn.proj, 4)).abs().max() < TOL
        got = attn(x, attn_mask=allowed)
        assert (got - _explicit_attention(x, attn.qkv, attn.proj, 4, allowed)).abs().max() < TOL
    with pytest.raises(ValueError):
        Attention(30, 4)


def test_block_is_pre_norm_residual():
    torch.manual_seed(0)
    blk = Block(16, 2).eval()
    x = torch.randn(3, 5, 16)
    with torch.no_grad():
        y = x + _explicit_attention(blk.norm1(x), blk.attn.qkv, blk.attn.proj, 2)
        y = y + blk.mlp.fc2(nn.functional.gelu(blk.mlp.fc1(blk.norm2(y))))
        assert (blk(x) - y).abs().max() < TOL


# --------------------------------------------------------------------------- ViT


def _timm_vit(cfg):
    tv = pytest.importorskip("timm.models.vision_transformer")
    return tv.VisionTransformer(img_size=cfg.img_size, patch_size=cfg.patch_size, embed_dim=cfg.embed_dim,
                                depth=cfg.depth, num_heads=cfg.num_heads, num_classes=cfg.num_classes).eval()


def test_vit_matches_timm_and_is_sensitive_to_weights():
    torch.manual_seed(0)
    cfg = vitm.ViTConfig.tiny()
    ref = _timm_vit(cfg)
    ours = vitm.VisionTransformer(cfg).eval()
    ours.load_state_dict(vitm.load_state_dict_from("timm", ref.state_dict()))  # strict
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert (ours.forward_features(x) - ref.forward_features(x)).abs().max() < TOL
        assert (ours(x) - ref(x)).abs().max() < TOL
        ours.blocks[0].attn.qkv.weight.add_(0.5 * torch.randn_like(ours.blocks[0].attn.qkv.weight))
        assert (ours(x) - ref(x)).abs().max() > 1e-4  # the comparison can fail


def test_vit_matches_hf_both_key_layouts():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = dataclasses.replace(vitm.ViTConfig.tiny(), num_classes=5)
    hf = transformers.ViTForImageClassification(transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, layer_norm_eps=1e-6, num_labels=5, hidden_act="gelu")).eval()
    sd = hf.state_dict()
    ours = vitm.VisionTransformer(cfg).eval()
    ours.load_state_dict(vitm.load_state_dict_from("hf", sd))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = hf(pixel_values=x).logits
        assert (ours(x) - expected).abs().max() < TOL
    # the older HF layout (encoder.layer.i.attention.attention.query ...) maps to the same model
    old = {}
    names = {"attention.q_proj": "attention.attention.query", "attention.k_proj": "attention.attention.key",
             "attention.v_proj": "attention.attention.value", "attention.o_proj": "attention.output.dense",
             "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
    for k, v in sd.items():
        if k.startswith("vit.layers."):
            i, rest = k[len("vit.layers."):].split(".", 1)
            stem, kind = rest.rsplit(".", 1)
            k = f"vit.encoder.layer.{i}.{names.get(stem, stem)}.{kind}"
        old[k] = v
    if any(k.startswith("vit.layers.") for k in sd):
        ours_old = vitm.VisionTransformer(cfg).eval()
        ours_old.load_state_dict(vitm.load_state_dict_from("hf", old))
        with torch.no_grad():
            assert (ours_old(x) - expected).abs().max() < TOL
    with pytest.raises(ValueError):
        vitm.load_state_dict_from("jax", sd)


def test_vit_reads_middle_frame_only():
    spec = videozoo.get_spec("vit")
    cfg = vitm.ViTConfig.tiny()
    clip = torch.rand(2, 3, 8, 32, 32)
    img = spec.clip_to_input(cfg, clip)
    assert torch.equal(img, clip[:, :, 4])
    assert not spec.temporal


# --------------------------------------------------------------------------- ViViT


def test_vivit_paper_config_is_the_factorised_encoder_and_variants_are_models_1_to_4():
    assert vvm.ViViTConfig.paper().variant == "factorised-encoder"
    table2 = {"vivit_b_st": 88.9, "vivit_b_fe": 115.1, "vivit_b_fsa": 117.3, "vivit_b_fdp": 88.9}
    for name, params in table2.items():
        spec = videozoo.get_spec(name)
        assert spec.reported[0].value == params and "Table 2" in spec.reported[0].source
        with torch.device("meta"):
            model = videozoo.create(name)
        assert abs(sum(p.numel() for p in model.parameters()) / 1e6 - params) / params < 0.005
        assert videozoo.make_config(name, "tiny").variant == model.config.variant


def test_vivit_spatio_temporal_matches_hf():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = dataclasses.replace(vvm.ViViTConfig.tiny(), num_classes=5, variant="spatio-temporal")
    hf = transformers.VivitForVideoClassification(transformers.VivitConfig(
        image_size=32, num_frames=8, tubelet_size=[2, 8, 8], hidden_size=32, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=128, num_labels=5)).eval()  # HF default: gelu_fast (tanh)
    ours = vvm.ViViT(cfg).eval()
    ours.load_state_dict(vvm.load_state_dict_from("hf", hf.state_dict()))
    x = torch.rand(2, 3, 8, 32, 32)
    with torch.no_grad():
        out = hf(pixel_values=x.transpose(1, 2), output_hidden_states=True)
        assert (ours(x) - out.logits).abs().max() < TOL
        assert (ours.forward_features(x) - hf.vivit.layernorm(out.hidden_states[-1])[:, 0]).abs().max() < TOL


def test_vivit_reference_check_passes_and_can_fail(monkeypatch):
    spec = videozoo.get_spec("vivit")
    assert spec.check_evidence == {"reference": "independent-reference", "inflation": "independent-reference"}
    res = spec.checks["reference"]()
    assert res["passed"], res["summary"]
    assert sorted(res["models"]) == ["vivit_b_fdp", "vivit_b_fe", "vivit_b_fsa", "vivit_b_st"]
    assert all(not m["differing_keys"] and m["params"] == m["authors_params"] for m in res["models"].values())
    # spatial heads first (the opposite of scenic's split) must show in model 4's logits only
    def spatial_heads_first(self, x):
        B, nt, N, D = x.shape
        q, k, v = self.qkv(x).reshape(B, nt, N, 3, self.num_heads, self.head_dim).permute(3, 0, 4, 1, 2, 5)
        half = self.num_heads // 2
        out_s = nn.functional.scaled_dot_product_attention(q[:, :half], k[:, :half], v[:, :half])
        qt, kt, vt = (z[:, half:].transpose(2, 3) for z in (q, k, v))
        out_t = nn.functional.scaled_dot_product_attention(qt, kt, vt).transpose(2, 3)
        return self.proj(torch.cat([out_s, out_t], dim=1).permute(0, 2, 3, 1, 4).reshape(B, nt, N, D))

    monkeypatch.setattr(vvm.FactorisedDotProductAttention, "forward", spatial_heads_first)
    res = spec.checks["reference"]()
    assert not res["passed"] and res["models"]["vivit_b_fdp"]["max_abs_diff"] > 1e-3
    assert res["models"]["vivit_b_st"]["max_abs_diff"] <= 1e-4


def test_vivit_scenic_keys_load_strictly_for_every_model():
    from videozoo.reference_tables import seeded_state_dict

    for name, rec in vvm._reference_table()["models"].items():
        vec = rec["test_vector"]
        cfg = vvm.ViViTConfig(**vec["videozoo_config"])
        vvm.ViViT(cfg).load_state_dict(vvm.load_state_dict_from("scenic", seeded_state_dict(vec["layer_table"], 0), cfg))
    with pytest.raises(ValueError, match="unknown library"):
        vvm.load_state_dict_from("timm", {})


def test_vivit_factorised_dot_product_matches_masked_full_attention():
    torch.manual_seed(0)
    nt, N, D, h = 3, 4, 16, 4
    attn = vvm.FactorisedDotProductAttention(D, h).eval()
    x = torch.randn(2, nt, N, D)
    t_idx = torch.arange(nt).repeat_interleave(N)  # token order (t, n)
    s_idx = torch.arange(N).repeat(nt)
    same_frame = t_idx[:, None] == t_idx[None, :]
    same_place = s_idx[:, None] == s_idx[None, :]
    allowed = torch.stack([same_place] * (h // 2) + [same_frame] * (h // 2))  # (h, L, L): temporal heads first
    with torch.no_grad():
        expected = _explicit_attention(x.reshape(2, nt * N, D), attn.qkv, attn.proj, h, allowed)
        assert (attn(x).reshape(2, nt * N, D) - expected).abs().max() < TOL


def test_vivit_factorised_self_attention_block_matches_masked_attentions():
    torch.manual_seed(0)
    nt, N, D, h = 3, 4, 16, 2
    cfg = dataclasses.replace(vvm.ViViTConfig.tiny(), embed_dim=D, num_heads=h, mlp_ratio=2.0)
    blk = vvm.FactorisedSelfAttentionBlock(cfg, nn.LayerNorm).eval()
    x = torch.randn(2, nt, N, D)
    t_idx = torch.arange(nt).repeat_interleave(N)
    s_idx = torch.arange(N).repeat(nt)
    same_frame = (t_idx[:, None] == t_idx[None, :])[None]
    same_place = (s_idx[:, None] == s_idx[None, :])[None]
    with torch.no_grad():
        z = x.reshape(2, nt * N, D)
        s = blk.spatial
        z = z + _explicit_attention(s.norm1(z), s.attn.qkv, s.attn.proj, h, same_frame)
        ta = blk.temporal_attn
        z = z + _explicit_attention(blk.temporal_norm(z), ta.qkv, ta.proj, h, same_place)
        z = z + s.mlp(s.norm2(z))
        assert (blk(x).reshape(2, nt * N, D) - z).abs().max() < TOL


@pytest.mark.parametrize("variant", vvm.VARIANTS)
@pytest.mark.parametrize("embedding", vvm.EMBEDDINGS)
def test_vivit_variants_run_and_see_time(variant, embedding):
    torch.manual_seed(0)
    model = videozoo.create("vivit", "tiny", variant=variant, embedding=embedding).eval()
    nn.init.normal_(model.head.weight, std=0.5)  # the classifier starts at zero, as in scenic
    x = torch.rand(2, 3, 8, 32, 32)
    y = model(x)
    assert y.shape == (2, 8) and torch.isfinite(y).all()
    with torch.no_grad():
        assert (model(x.flip(2)) - y).abs().max() > 1e-6  # every variant is sensitive to frame order
    with pytest.raises(ValueError):
        videozoo.create("vivit", "tiny", variant="axial")


def _timm_vit_tanh(cfg):
    tv = pytest.importorskip("timm.models.vision_transformer")
    return tv.VisionTransformer(img_size=cfg.img_size, patch_size=cfg.patch_size, embed_dim=cfg.embed_dim,
                                depth=cfg.depth, num_heads=cfg.num_heads, num_classes=5,
                                act_layer=partial(nn.GELU, approximate="tanh"),
                                norm_layer=partial(nn.LayerNorm, eps=1e-6)).eval()


@pytest.mark.parametrize("method", ["central-frame", "filter-inflation"])
def test_vivit_inflation_reproduces_vit(method):
    torch.manual_seed(0)
    cfg = dataclasses.replace(vvm.ViViTConfig.tiny(), variant="factorised-encoder", tubelet_t=4)
    image_model = _timm_vit_tanh(cfg)
    model = vvm.init_from_vit(vvm.ViViT(cfg).eval(), image_model.state_dict(), method=method)
    frame = torch.rand(2, 3, 32, 32)
    clip = frame.unsqueeze(2).repeat(1, 1, 8, 1, 1)
    with torch.no_grad():
        tokens = model.patch_embed(clip)
        assert (tokens - image_model.patch_embed(frame).unsqueeze(1)).abs().max() < TOL
        feats = model.spatial_features(tokens)
        assert (feats - image_model.forward_features(frame).unsqueeze(1)).abs().max() < TOL
    w = model.patch_embed.proj.weight
    if method == "central-frame":  # zero except the centre slice floor(t / 2) = 2
        assert torch.equal(w[:, :, 2], image_model.patch_embed.proj.weight)
        assert w[:, :, [0, 1, 3]].abs().max() == 0
    else:
        assert torch.allclose(w.sum(dim=2), image_model.patch_embed.proj.weight, atol=1e-6)


def test_vivit_inflation_check_registered_and_passes():
    spec = videozoo.get_spec("arnab2021vivit")
    assert set(spec.checks) == {"reference", "inflation"}
    result = spec.checks["inflation"]()
    assert result["passed"], result["summary"]


# --------------------------------------------------------------------------- TimeSformer


@pytest.mark.parametrize("attention", tsf.ATTENTIONS)
def test_timesformer_matches_hf(attention):
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = dataclasses.replace(tsf.TimeSformerConfig.tiny(), num_classes=5, attention=attention)
    hf = tsf.reference_model(cfg)
    ours = tsf.TimeSformer(cfg).eval()
    ours.load_state_dict(tsf.load_state_dict_from("hf", hf.state_dict()))
    x = torch.rand(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert (ours(x) - tsf.hf_logits(hf, x)).abs().max() < TOL
        if attention != "space-only":
            # every token: HF orders patches position-major, frame-minor
            cls, tokens = ours.encode(x)
            hf_last = hf.timesformer(pixel_values=x.transpose(1, 2), output_hidden_states=True).hidden_states[-1]
            n = (cfg.img_size // cfg.patch_size) ** 2
            hf_tokens = hf_last[:, 1:].reshape(2, n, 8, cfg.embed_dim).transpose(1, 2)
            assert (tokens - hf_tokens).abs().max() < TOL
            assert (cls[:, 0] - hf_last[:, 0]).abs().max() < TOL


def test_timesformer_space_only_ignores_order_divided_does_not():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 32, 32)
    with torch.no_grad():
        s = videozoo.create("timesformer", "tiny", attention="space-only").eval()
        assert (s(x) - s(x.flip(2))).abs().max() < 1e-5
        d = videozoo.create("timesformer", "tiny").eval()
        nn.init.normal_(d.time_embed, std=0.5)
        assert (d(x) - d(x.flip(2))).abs().max() > 1e-4


def test_timesformer_init_from_vit_and_checks():
    torch.manual_seed(0)
    cfg = tsf.TimeSformerConfig.tiny()
    image_model = vitm.VisionTransformer(tsf.image_config(cfg)).eval()
    model = tsf.init_from_vit(tsf.TimeSformer(cfg).eval(), image_model.state_dict())
    frame = torch.rand(2, 3, 32, 32)
    clip = frame.unsqueeze(2).repeat(1, 1, 8, 1, 1)
    with torch.no_grad():
        _, tokens = model.encode(clip)
        vit_tokens = image_model.forward_features(frame)
        assert (model.norm(tokens) - vit_tokens[:, None, 1:]).abs().max() < TOL
        assert (model.forward_features(clip) - vit_tokens[:, 0]).abs().max() < TOL
        # the temporal attention starts as a copy of the spatial one
        for blk in model.blocks:
            assert torch.equal(blk.temporal_attn.qkv.weight, blk.attn.qkv.weight)
            assert blk.temporal_fc.weight.abs().max() == 0
    spec = videozoo.get_spec("timesformer")
    assert spec.checks["inflation"]()["passed"]


# --------------------------------------------------------------------------- Transformer


def test_sinusoidal_positions_formula():
    pe = tfm.sinusoidal_positions(7, 6)
    for pos in range(7):
        for i in range(3):
            angle = pos / 10000 ** (2 * i / 6)
            assert abs(pe[pos, 2 * i] - math.sin(angle)) < 1e-6
            assert abs(pe[pos, 2 * i + 1] - math.cos(angle)) < 1e-6


def test_encoder_decoder_matches_torch_transformer_with_masks():
    torch.manual_seed(0)
    ref = nn.Transformer(32, 4, 2, 2, 64, dropout=0.0, batch_first=True, norm_first=False)
    with pytest.raises(ValueError):  # the paper's post-norm model has no final LayerNorm
        tfm.load_state_dict_from("torch", ref.state_dict())
    ref.encoder.norm = None
    ref.decoder.norm = None
    ref.train()  # dropout 0: deterministic, and avoids the fused inference path
    ours = tfm.EncoderDecoder(32, 4, 2, 2, 64, dropout=0.0)
    ours.load_state_dict(tfm.load_state_dict_from("torch", ref.state_dict()))
    src, tgt = torch.randn(2, 6, 32), torch.randn(2, 4, 32)
    src_pad = torch.tensor([[False] * 4 + [True] * 2, [False] * 6])
    causal = torch.ones(4, 4, dtype=torch.bool).triu(1)
    memory_mask = torch.zeros(4, 6)
    memory_mask[0, 1] = float("-inf")
    kwargs = dict(tgt_mask=causal, memory_mask=memory_mask, src_key_padding_mask=src_pad,
                  memory_key_padding_mask=src_pad)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert (ours(src, tgt, **kwargs) - ref(src, tgt, **kwargs)).abs().max() < TOL
        assert (ours(src, tgt) - ref(src, tgt)).abs().max() < TOL


def test_seq2seq_shares_embedding_and_is_causal():
    torch.manual_seed(0)
    model = tfm.Seq2SeqTransformer(tfm.TransformerConfig.tiny()).eval()
    src, tgt = torch.randint(2, 8, (2, 5)), torch.randint(2, 8, (2, 4))
    with torch.no_grad():
        logits = model(src, tgt)
        assert logits.shape == (2, 4, 8)
        changed = tgt.clone()
        changed[:, -1] = (changed[:, -1] - 1) % 6 + 2
        assert (model(src, changed)[:, :-1] - logits[:, :-1]).abs().max() < 1e-6  # no peeking ahead
        emb = model.embed(tgt) * math.sqrt(32) + tfm.sinusoidal_positions(4, 32)
        assert (model.embed_tokens(tgt) - emb).abs().max() < 1e-5


def test_transformer_classifier_inputs():
    torch.manual_seed(0)
    spec = videozoo.get_spec("vaswani2017attention")
    tiny = videozoo.create("transformer", "tiny").eval()
    clip = torch.rand(2, 3, 8, 32, 32)
    with torch.no_grad():
        y = tiny(spec.clip_to_input(tiny.config, clip))
        assert y.shape == (2, 8)
        assert (tiny(clip.flip(2)) - y).abs().max() > 1e-6  # frame order matters through the positions
    cfg = dataclasses.replace(tfm.TransformerConfig.tiny(), source="tokens", vocab_size=50, token_grid=4, max_len=128)
    ids = spec.clip_to_input(cfg, clip)
    assert ids.shape == (2, 8 * 16) and ids.min() >= 2 and ids.max() < 50
    grey = clip.mean(1)[0, 0, :8, :8].mean()  # first cell of the first frame
    assert ids[0, 0] == 2 + round(float(grey) * 47)
    model = tfm.TransformerClassifier(cfg).eval()
    with torch.no_grad():
        assert (model(ids) - model(clip)).abs().max() == 0


def test_transformer_tubelet_tokens_order():
    """Token i * N + n is patch n (raster order) of tubelet slice i, embedded on its own."""
    torch.manual_seed(0)
    model = videozoo.create("transformer", "tiny").eval()
    cfg = model.config
    assert cfg.source == "tubelets"
    t, p, side = cfg.tubelet_t, cfg.patch_size, cfg.img_size // cfg.patch_size
    clip = torch.rand(2, 3, cfg.num_frames, cfg.img_size, cfg.img_size)
    with torch.no_grad():
        tokens = model.tubelet_tokens(clip)
        assert tokens.shape == (2, cfg.num_frames // t * side ** 2, cfg.d_model)
        i, row, col = 3, 2, 1
        tube = clip[:, :, i * t:(i + 1) * t, row * p:(row + 1) * p, col * p:(col + 1) * p]
        w, b = model.tubelet_embed.weight, model.tubelet_embed.bias  # (D, 3, t, p, p), (D,)
        k = i * side ** 2 + row * side + col
        assert (tokens[:, k] - (tube.flatten(1) @ w.flatten(1).t() + b)).abs().max() < 1e-5
        moved = clip.clone()
        moved[:, :, i * t, row * p:(row + 1) * p, col * p:(col + 1) * p] = 0  # one frame of one tubelet
        changed = (model.tubelet_tokens(moved) - tokens).abs().amax(dim=(0, 2)) > 0
        assert changed.nonzero().flatten().tolist() == [k]
    with pytest.raises(ValueError, match="not divisible by the tubelet"):
        tfm.TransformerClassifier(dataclasses.replace(cfg, patch_size=5))
    with pytest.raises(ValueError, match="takes clips"):
        model(torch.full((2, 10), 3, dtype=torch.long))


def test_registry_builds_and_checks():
    for alias in ("transformer", "vit", "vivit", "timesformer"):
        spec = videozoo.get_spec(alias)
        model = videozoo.create(alias, "tiny")
        cfg = videozoo.make_config(alias, "tiny")
        clip = torch.rand(2, *getattr(cfg, "clip_shape", cfg.input_shape)())
        inp = spec.clip_to_input(cfg, clip) if spec.clip_to_input else clip
        out = model(inp)
        out.sum().backward()
        assert out.shape == (2, cfg.num_classes)
        assert 1_000 < sum(p.numel() for p in model.parameters()) < 1_000_000
    result = videozoo.get_spec("vaswani2017attention").checks["reference"]()
    assert result["passed"], result["summary"]

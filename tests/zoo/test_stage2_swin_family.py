"""Tests of the Stage 2 hierarchical / hybrid video transformers: Swin, Video Swin, MTV, UniFormer, UniFormerV2.

Every comparison is against an independent computation: timm / torchvision implementations with the
same weights, explicit loops and einsums, or ``torch.nn.MultiheadAttention``.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
from torch import nn

import videozoo
from videozoo.layers.attention import QuickGELU
from videozoo.models import mtv as mtv_mod
from videozoo.models import swin as swin_mod
from videozoo.models import uniformer as uf_mod
from videozoo.models import uniformerv2 as uf2_mod
from videozoo.models import video_swin as vswin_mod
from videozoo.layers import window_attention as wa
from videozoo.references.uniformer import neighbourhood_sum

ALIASES = ["swin", "video_swin", "mtv", "uniformer", "uniformerv2"]


# ----------------------------------------------------------------------------- all five: registry and tiny runs


@pytest.mark.parametrize("alias", ALIASES)
def test_tiny_forward_backward(alias):
    torch.manual_seed(0)
    spec = videozoo.get_spec(alias)
    cfg = videozoo.make_config(alias, "tiny")
    model = videozoo.create(alias, "tiny")
    n_params = sum(p.numel() for p in model.parameters())
    assert 1_000 <= n_params <= 1_000_000
    clip = torch.rand(2, 3, 8, 32, 32)
    inp = spec.clip_to_input(cfg, clip) if spec.clip_to_input else clip
    assert tuple(inp.shape[1:]) == tuple(cfg.input_shape())
    out = model(inp)
    assert out.shape == (2, cfg.num_classes)
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_registry_keys_and_temporal_flags():
    assert videozoo.get_spec("swin").key == "liu2021swin" and videozoo.get_spec("swin").temporal is False
    assert videozoo.get_spec("video_swin").key == "liu2022video"
    assert videozoo.get_spec("mtv").key == "yan2022multiview"
    assert videozoo.get_spec("uniformer").key == "li2022uniformer"
    assert videozoo.get_spec("uniformerv2").key == "li2023uniformerv2"
    for alias in ["video_swin", "mtv", "uniformer", "uniformerv2"]:
        assert videozoo.get_spec(alias).temporal is True


# ----------------------------------------------------------------------------- Swin


def test_swin_middle_frame_is_the_middle_frame():
    cfg = swin_mod.SwinConfig.tiny()
    clip = torch.rand(2, 3, 8, 32, 32)
    assert torch.equal(swin_mod.middle_frame(cfg, clip), clip[:, :, 4])


@pytest.mark.parametrize("size,window,shift", [((8, 8), (4, 4), (2, 2)), ((4, 8, 8), (2, 4, 4), (1, 2, 2)),
                                               ((4, 8, 8), (4, 4, 4), (0, 2, 2))])
def test_shifted_window_mask_brute_force(size, window, shift):
    """Two tokens of a shifted window may attend to each other iff, on every axis, both or neither wrapped around."""
    mask = wa.shifted_window_mask(size, window, shift)
    d = len(size)
    # enumerate windows in the same (row-major) order and tokens inside each window in row-major order
    win_starts = list(itertools.product(*[range(0, s, m) for s, m in zip(size, window)]))
    offsets = list(itertools.product(*[range(m) for m in window]))
    assert mask.shape == (len(win_starts), len(offsets), len(offsets))
    for w_idx, start in enumerate(win_starts):
        for i, oi in enumerate(offsets):
            for j, oj in enumerate(offsets):
                pi = [start[a] + oi[a] for a in range(d)]
                pj = [start[a] + oj[a] for a in range(d)]
                same = all(((pi[a] + shift[a]) >= size[a]) == ((pj[a] + shift[a]) >= size[a]) for a in range(d))
                assert (mask[w_idx, i, j] == 0) == same


def test_relative_position_index_brute_force():
    window = (2, 3, 3)
    idx = wa.relative_position_index(window)
    coords = list(itertools.product(*[range(m) for m in window]))
    table = {}
    for i, ci in enumerate(coords):
        for j, cj in enumerate(coords):
            rel = tuple(a - b for a, b in zip(ci, cj))
            # same relative offset <=> same table row
            table.setdefault(rel, set()).add(int(idx[i, j]))
    assert all(len(v) == 1 for v in table.values())
    assert len({next(iter(v)) for v in table.values()}) == len(table) == (3 * 5 * 5)
    assert int(idx.max()) == 3 * 5 * 5 - 1


def test_swin_matches_timm_tiny_config():
    timm_swin = pytest.importorskip("timm.models.swin_transformer")
    torch.manual_seed(1)
    cfg = swin_mod.SwinConfig.tiny()
    ref = timm_swin.SwinTransformer(img_size=cfg.img_size, patch_size=cfg.patch_size, embed_dim=cfg.embed_dim,
                                    depths=cfg.depths, num_heads=cfg.num_heads, window_size=cfg.window_size,
                                    num_classes=cfg.num_classes).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "relative_position_bias_table" in name:
                p.normal_(0, 1.0)
    ours = swin_mod.SwinTransformer(cfg).eval()
    ours.load_state_dict(swin_mod.load_state_dict_from("timm", ref.state_dict()))
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max().item() <= 1e-5
        # sensitivity: dropping the shifted-window mask must change the result
        for blk in ours.layers[0].blocks:
            blk.attn_mask = None
        assert (ours.forward_features(x) - ref.forward_features(x)).abs().max().item() > 1e-3


def test_swin_registered_reference_check():
    spec = videozoo.get_spec("swin")
    assert spec.check_evidence["reference"] == "independent-reference"
    res = spec.checks["reference"]()
    assert res["passed"], res["summary"]
    assert res["max_abs_diff"] <= res["tolerance"] == 1e-5
    assert {n: t["differing_keys"] for n, t in res["layer_tables"].items()} == {"swin_t": [], "swin_s": [], "swin_b": []}


def test_swin_sizes_are_registered_with_the_paper_figures():
    expected = {"swin_t": (29.0, 28.3), "swin_s": (50.0, 49.6), "swin_b": (88.0, 87.8)}
    for name, (paper, ours) in expected.items():
        spec = videozoo.get_spec(name)
        assert [r.value for r in spec.reported if r.metric == "params_m"][0] == paper
        with torch.device("meta"):
            model = videozoo.create(name)
        assert abs(sum(p.numel() for p in model.parameters()) / 1e6 - ours) < 0.05
    assert videozoo.make_config("swin_b", "tiny") == swin_mod.SwinConfig.tiny()  # sizes apply to paper() only


def test_swin_layer_table_comparison_can_fail(monkeypatch):
    """A key mapping that loses the classifier makes the layer tables differ."""
    real = swin_mod.load_state_dict_from
    monkeypatch.setattr(swin_mod, "load_state_dict_from",
                        lambda lib, sd: {k: v for k, v in real(lib, sd).items() if not k.startswith("head.")})
    assert swin_mod._layer_table_gap("swin_t")["differing_keys"] == ["head.bias", "head.weight"]


def test_swin_unknown_library():
    with pytest.raises(ValueError):
        swin_mod.load_state_dict_from("mmcv", {})


# ----------------------------------------------------------------------------- Video Swin


def test_video_swin_matches_torchvision_tiny_config():
    from torchvision.models.video.swin_transformer import SwinTransformer3d

    torch.manual_seed(2)
    cfg = vswin_mod.VideoSwinConfig.tiny()
    ref = SwinTransformer3d(patch_size=list(cfg.patch_size), embed_dim=cfg.embed_dim, depths=list(cfg.depths),
                            num_heads=list(cfg.num_heads), window_size=list(cfg.window_size),
                            stochastic_depth_prob=0.0, num_classes=cfg.num_classes).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            if "relative_position_bias_table" in name:
                p.normal_(0, 1.0)
    ours = vswin_mod.VideoSwinTransformer(cfg).eval()
    ours.load_state_dict(vswin_mod.load_state_dict_from("torchvision", ref.state_dict()))
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max().item() <= 1e-5


def test_video_swin_registered_reference_check():
    res = videozoo.get_spec("video_swin").checks["reference"]()
    assert res["passed"], res["summary"]


def test_video_swin_merging_is_spatial_only_and_sees_time_order():
    torch.manual_seed(3)
    model = vswin_mod.VideoSwinTransformer(vswin_mod.VideoSwinConfig.tiny()).eval()
    x = torch.rand(2, 3, 8, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 4, 4, 4, 32)  # T/2 by the tubelet, then kept; H, W halved once more
        assert (model(x) - model(x.flip(2))).abs().max() > 1e-6


def test_video_swin_paper_config_shapes():
    cfg = vswin_mod.VideoSwinConfig.paper()
    assert cfg.patch_size == (2, 4, 4) and cfg.window_size == (8, 7, 7) and cfg.input_shape() == (3, 32, 224, 224)


# ----------------------------------------------------------------------------- UniFormer


def test_uniformer_local_mhra_equals_explicit_neighbourhood_sum():
    assert uf_mod.check_local_mhra(seed=4) <= 1e-5


def test_explicit_local_aggregation_is_sensitive_to_kernel_orientation():
    torch.manual_seed(5)
    x = torch.randn(1, 3, 4, 5, 5)
    conv = nn.Conv3d(3, 3, 3, padding=1, groups=3)
    ok = neighbourhood_sum(x, conv.weight, conv.bias)
    flipped = neighbourhood_sum(x, conv.weight.flip(-1), conv.bias)
    with torch.no_grad():
        assert (conv(x) - ok).abs().max() <= 1e-5
        assert (conv(x) - flipped).abs().max() > 1e-3


def test_uniformer_global_mhra_equals_multihead_attention():
    assert uf_mod.check_global_mhra(seed=6) <= 1e-5


def test_uniformer_dpe_is_residual_depthwise_conv():
    torch.manual_seed(7)
    cfg = uf_mod.UniFormerConfig.tiny()
    blk = uf_mod.LocalBlock(16, cfg).eval()
    x = torch.randn(2, 16, 4, 6, 6)
    with torch.no_grad():
        after_dpe = x + neighbourhood_sum(x, blk.dpe.conv.weight, blk.dpe.conv.bias)
        y = after_dpe + blk.mhra(blk.norm1(after_dpe))
        expected = y + blk.ffn(blk.norm2(y))
        assert blk(x).shape == x.shape
        assert (blk(x) - expected).abs().max() <= 1e-5


def test_uniformer_stage_types_and_shapes():
    model = uf_mod.UniFormer(uf_mod.UniFormerConfig.tiny()).eval()
    assert all(isinstance(b, uf_mod.LocalBlock) for s in model.stages[:2] for b in s)
    assert all(isinstance(b, uf_mod.GlobalBlock) for s in model.stages[2:] for b in s)
    with torch.no_grad():
        assert model.forward_features(torch.rand(2, 3, 8, 32, 32)).shape == (2, 64, 4, 1, 1)


def test_uniformer_paper_config_matches_survey_params():
    with torch.device("meta"):
        model = uf_mod.UniFormer(uf_mod.UniFormerConfig.paper())
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(params_m - 49.8) / 49.8 < 0.01


# ----------------------------------------------------------------------------- UniFormerV2


def test_uniformerv2_recipes_have_the_release_parameter_counts():
    """paper() and both variants are the release's recipes: counts equal the authors' code's (114.55 M, 162.99 M)."""
    counts = {}
    for name in ("uniformerv2", "uniformerv2_b16_k400", "uniformerv2_b16_ssv2"):
        with torch.device("meta"):
            counts[name] = sum(p.numel() for p in videozoo.create(name).parameters())
        reported = [r.value for r in videozoo.get_spec(name).reported if r.metric == "params_m"]
        assert abs(counts[name] / 1e6 - reported[0]) / reported[0] < 0.005
    assert counts == {"uniformerv2": 114_552_208, "uniformerv2_b16_k400": 114_552_208, "uniformerv2_b16_ssv2": 162_992_814}
    ssv2 = videozoo.make_config("uniformerv2_b16_ssv2", "paper")
    assert (ssv2.lmhra, ssv2.temporal_downsample, ssv2.num_global, ssv2.num_frames) == ("double", True, 8, 16)
    tiny = videozoo.make_config("uniformerv2_b16_ssv2", "tiny")
    assert (tiny.lmhra, tiny.temporal_downsample, tiny.num_global) == ("double", True, 2)


def test_uniformerv2_reference_check_passes_and_can_fail(monkeypatch):
    spec = videozoo.get_spec("uniformerv2")
    assert spec.check_evidence == {"reference": "independent-reference", "inflation": "independent-reference"}
    res = spec.checks["reference"]()
    assert res["passed"], res["summary"]
    assert all(not t["differing_keys"] for t in res["tables"].values())
    # an LT_MHRA whose temporal convolution looks one frame too far must change the double-LT_MHRA logits
    monkeypatch.setattr(uf2_mod.LocalTemporalMHRA, "forward",
                        lambda self, x: self.expand(self.temporal(self.reduce(self.norm(x))).roll(1, dims=2)))
    res = spec.checks["reference"]()
    assert not res["passed"] and res["outputs"]["ssv2_design"]["max_abs_diff"] > 1e-4
    assert res["outputs"]["k400_design"]["max_abs_diff"] <= 1e-5  # that design has no LT_MHRA


def test_uniformerv2_reference_tables_catch_a_missing_parameter(monkeypatch):
    ref = uf2_mod._reference_table()
    ref["recipes"]["k400_b16_f8x224"]["layer_table"] = [
        row for row in ref["recipes"]["k400_b16_f8x224"]["layer_table"] if row[0] != "transformer.balance"]
    monkeypatch.setattr(uf2_mod, "_reference_table", lambda: ref)
    res = videozoo.get_spec("uniformerv2").checks["reference"]()
    assert not res["passed"] and res["tables"]["k400_b16_f8x224"]["differing_keys"] == ["balance"]


def test_uniformerv2_release_keys_load_strictly_and_unknown_keys_fail():
    from videozoo.reference_tables import seeded_state_dict

    vec = uf2_mod._reference_table()["test_vectors"]["ssv2_design"]
    model = uf2_mod.UniFormerV2(uf2_mod.UniFormerV2Config(**vec["videozoo_config"]))
    release = {"backbone." + k: v for k, v in seeded_state_dict(vec["layer_table"], 0).items()}
    model.load_state_dict(uf2_mod.load_state_dict_from("uniformerv2", release))  # strict: every key has a place
    with pytest.raises(ValueError, match="no counterpart"):
        uf2_mod.load_state_dict_from("uniformerv2", {"transformer.extra.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="unknown library"):
        uf2_mod.load_state_dict_from("timm", {})


def test_uniformerv2_inflation_check_passes_and_breaks_when_lmhra_is_not_zero():
    open_clip = pytest.importorskip("open_clip")
    res = videozoo.get_spec("uniformerv2").checks["inflation"]()
    assert res["passed"], res["summary"]
    assert res["unloaded_clip_keys"] == {"none": [], "double": []}
    torch.manual_seed(8)
    vit = open_clip.transformer.VisionTransformer(image_size=16, patch_size=8, width=24, layers=2, heads=2,
                                                  mlp_ratio=4.0, output_dim=8, act_layer=QuickGELU).eval()
    cfg = uf2_mod.UniFormerV2Config(num_classes=5, num_frames=4, img_size=16, patch_size=8, embed_dim=24, depth=2,
                                    num_heads=2, num_global=1, lmhra="double")
    model = uf2_mod.UniFormerV2(cfg).eval()
    model.load_state_dict(uf2_mod.load_state_dict_from("clip", vit.state_dict()), strict=False)
    clip = torch.rand(2, 3, 4, 16, 16)  # four different frames
    with torch.no_grad():
        ref = vit.forward_intermediates(clip.transpose(1, 2).reshape(8, 3, 16, 16), intermediates_only=True,
                                        output_fmt="NLC", output_extra_tokens=True)
        last = torch.cat([ref["image_intermediates_prefix"][-1], ref["image_intermediates"][-1]], 1)
        assert (model.forward_features(clip)[1] - last).abs().max() <= 1e-5  # zero-init: frame-wise CLIP ViT
        for blk in model.blocks:
            nn.init.normal_(blk.lmhra1.expand.weight, std=0.5)
        assert (model.forward_features(clip)[1] - last).abs().max() > 1e-3


def test_uniformerv2_clip_patch_kernel_is_inflated_at_the_centre():
    cfg = videozoo.make_config("uniformerv2_b16_ssv2", "tiny")
    w = torch.randn(32, 3, 8, 8)
    sd = uf2_mod.load_state_dict_from("clip", {"visual.conv1.weight": w}, config=cfg)
    k = sd["patch_embed.proj.weight"]
    assert k.shape == (32, 3, 3, 8, 8) and torch.equal(k[:, :, 1], w) and k[:, :, [0, 2]].abs().max() == 0


def test_uniformerv2_temporal_downsampling_halves_the_frames():
    model = videozoo.create("uniformerv2_b16_ssv2", "tiny").eval()
    assert model.frames == 4
    with torch.no_grad():
        assert model.embed(torch.rand(2, 3, 8, 32, 32)).shape == (2 * 4, 1 + 16, 32)
    with pytest.raises(ValueError, match="even num_frames"):
        uf2_mod.UniFormerV2(dataclasses.replace(videozoo.make_config("uniformerv2_b16_ssv2", "tiny"), num_frames=7))


def _explicit_lt_mhra(m: "uf2_mod.LocalTemporalMHRA", x: torch.Tensor) -> torch.Tensor:
    """Eq. 1's LT_MHRA written out: BatchNorm from its statistics, einsum, an explicit temporal sum."""
    bn = m.norm
    view = (1, -1, 1, 1, 1)
    y = (x - bn.running_mean.view(view)) / torch.sqrt(bn.running_var.view(view) + bn.eps) * bn.weight.view(view) \
        + bn.bias.view(view)
    r = torch.einsum("oc,bcthw->bothw", m.reduce.weight[:, :, 0, 0, 0], y) + m.reduce.bias.view(view)
    k, t = m.temporal.weight.shape[2], r.shape[2]
    conv = m.temporal.bias.view(view).expand_as(r).clone()
    for ti in range(t):
        for j in range(k):
            if 0 <= ti + j - k // 2 < t:
                conv[:, :, ti] += m.temporal.weight[:, 0, j, 0, 0].view(1, -1, 1, 1) * r[:, :, ti + j - k // 2]
    return torch.einsum("oc,bcthw->bothw", m.expand.weight[:, :, 0, 0, 0], conv) + m.expand.bias.view(view)


def test_uniformerv2_lt_mhra_equals_explicit_computation():
    torch.manual_seed(0)
    m = uf2_mod.LocalTemporalMHRA(6, reduction=1.5, kernel=3).eval()
    with torch.no_grad():
        for p in (m.expand.weight, m.expand.bias, m.norm.weight, m.norm.bias, m.norm.running_mean):
            p.normal_()
        m.norm.running_var.uniform_(0.5, 2.0)
        x = torch.randn(2, 6, 5, 3, 4)
        assert (m(x) - _explicit_lt_mhra(m, x)).abs().max() <= 1e-5


def test_uniformerv2_cross_attention_equals_torch_multihead_attention():
    torch.manual_seed(0)
    m = uf2_mod.CrossAttention(32, 4).eval()
    ref = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.2)
        ref.in_proj_weight.copy_(torch.cat([m.q.weight, m.kv.weight]))
        ref.in_proj_bias.copy_(torch.cat([m.q.bias, m.kv.bias]))
        ref.out_proj.weight.copy_(m.proj.weight)
        ref.out_proj.bias.copy_(m.proj.bias)
        q, kv = torch.randn(2, 1, 32), torch.randn(2, 3 * 17, 32)
        assert (m(q, kv) - ref(q, kv, kv, need_weights=False)[0]).abs().max() <= 1e-5


def test_uniformerv2_global_blocks_start_as_identity_and_balance_is_per_channel():
    model = videozoo.create("uniformerv2", "tiny").eval()
    assert model.balance.shape == (32,) and not model.balance.any() and not model.query.any()
    for blk in model.global_blocks:
        assert not blk.attn.proj.weight.any() and not blk.mlp.fc2.weight.any() and not blk.dpe.bias.any()
    with torch.no_grad():
        query, tokens = model.forward_features(torch.rand(2, 3, 8, 32, 32))
    assert not query.any()  # zero query through identity blocks


def test_uniformerv2_lmhra_mixes_only_along_time():
    torch.manual_seed(9)
    lt = uf2_mod.LocalTemporalMHRA(6, 1.5, 3).eval()
    nn.init.normal_(lt.expand.weight)
    x = torch.randn(1, 6, 5, 3, 3)
    with torch.no_grad():
        base = lt(x)
        x2 = x.clone()
        x2[:, :, 2, 1, 1] += 1.0  # perturb one position at t=2
        diff = (lt(x2) - base).abs().sum(1)  # (1, T, h, w)
    changed = (diff > 1e-6).nonzero()[:, 1:].tolist()
    assert sorted(changed) == [[1, 1, 1], [2, 1, 1], [3, 1, 1]]


def test_uniformerv2_global_block_attends_to_all_frames():
    torch.manual_seed(10)
    cfg = uf2_mod.UniFormerV2Config.tiny()
    blk = uf2_mod.GlobalUniBlock(cfg).eval()
    with torch.no_grad():
        for p in (blk.attn.proj.weight, blk.mlp.fc2.weight):
            p.normal_(0, 0.2)
    tokens = torch.randn(2 * cfg.num_frames, 1 + 16, cfg.embed_dim)
    q = torch.randn(2, 1, cfg.embed_dim)
    with torch.no_grad():
        out = blk(q, tokens, cfg.num_frames, (4, 4))
        tokens2 = tokens.clone()
        tokens2[cfg.num_frames - 1, 5] += 1.0  # last frame of sample 0
        out2 = blk(q, tokens2, cfg.num_frames, (4, 4))
    assert out.shape == (2, 1, cfg.embed_dim)
    assert (out2[0] - out[0]).abs().max() > 1e-6 and torch.equal(out2[1], out[1])

# ----------------------------------------------------------------------------- MTV


def test_mtv_paper_config_is_the_k400_recipe_with_scenics_parameter_count():
    cfg = mtv_mod.MTVConfig.paper()
    assert (cfg.tubelet_t, cfg.view_dims, cfg.fusion_layers) == ((8, 4, 2), (192, 384, 768), (5, 11))
    with torch.device("meta"):
        model = mtv_mod.MTV(cfg)
    assert sum(p.numel() for p in model.parameters()) == 304_270_864
    assert model.global_norm.normalized_shape == (192 + 384 + 768,)
    assert [c.shape for c in model.cls_tokens] == [(1, 4, 1, 192), (1, 8, 1, 384), (1, 16, 1, 768)]
    assert model.slices == 4 and model.global_pos.shape == (1, 1 + 16, 1344)


def test_mtv_tokenization_per_slice():
    model = mtv_mod.MTV(mtv_mod.MTVConfig.tiny())
    views = model.tokenize(torch.rand(2, 3, 8, 32, 32))
    # 2 slices; view 0 (t=4) has 1 temporal index per slice, view 1 (t=2) has 2, each with its class token
    assert [tuple(v.shape) for v in views] == [(2 * 2, 1 + 16, 24), (2 * 2, 2 * (1 + 16), 32)]


def test_mtv_reference_check_passes_and_can_fail(monkeypatch):
    spec = videozoo.get_spec("mtv")
    assert spec.check_evidence == {"reference": "independent-reference"}
    res = spec.checks["reference"]()
    assert res["passed"], res["summary"]
    assert res["differing_keys"] == [] and res["params"] == res["authors_params"] == 304_270_864
    # repeating each view's class tokens in place (instead of tiling the sequence) must change the logits
    real = mtv_mod.MTV.global_input

    def interleaved(self, views):
        b = views[0].shape[0] // self.slices
        n_max = max(self.time_steps)
        merged = [z.reshape(b, n, -1, z.shape[-1])[:, :, 0].repeat_interleave(n_max // n, dim=1)
                  for z, n in zip(views, self.time_steps)]
        return torch.cat([self.global_cls.expand(b, -1, -1), torch.cat(merged, -1)], 1) + self.global_pos

    monkeypatch.setattr(mtv_mod.MTV, "global_input", interleaved)
    res = spec.checks["reference"]()
    assert not res["passed"] and res["max_abs_diff"] > 1e-3
    monkeypatch.setattr(mtv_mod.MTV, "global_input", real)


def test_mtv_scenic_keys_load_strictly():
    from videozoo.reference_tables import seeded_state_dict

    vec = mtv_mod._reference_table()["test_vector"]
    cfg = mtv_mod.MTVConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in vec["videozoo_config"].items()})
    mtv_mod.MTV(cfg).load_state_dict(mtv_mod.load_state_dict_from("scenic", seeded_state_dict(vec["layer_table"], 0),
                                                                  cfg))
    with pytest.raises(ValueError, match="unknown library"):
        mtv_mod.load_state_dict_from("timm", {})


def test_mtv_cva_and_classifier_start_at_zero():
    model = mtv_mod.MTV(mtv_mod.MTVConfig.tiny())
    for layer in model.layers:
        if layer.cva is not None:
            assert all(not a.proj.weight.any() and not a.proj.bias.any() for a in layer.cva.attns)
    assert not model.head.weight.any()
    w = model.embeds[1].weight  # tubelet t = 2: only the central frame (index 1) is non-zero
    assert not w[:, :, 0].any() and w[:, :, 1].abs().sum() > 0


def test_mtv_cva_queries_view_i_with_keys_from_view_i_plus_1():
    """CVA changes view i from view i+1's tokens; the last view is never updated by it."""
    torch.manual_seed(13)
    fusion = mtv_mod.CrossViewFusion((12, 16), (2, 2)).eval()
    with torch.no_grad():
        for a in fusion.attns:
            a.proj.weight.normal_()
    v0, v1 = torch.randn(2, 5, 12), torch.randn(2, 9, 16)
    with torch.no_grad():
        out = fusion([v0, v1])
        out2 = fusion([v0, v1 + torch.randn_like(v1)])
    assert torch.equal(out[1], v1) and (out[0] - out2[0]).abs().max() > 1e-4


def test_mtv_global_input_tiles_class_tokens_in_time():
    torch.manual_seed(14)
    model = mtv_mod.MTV(mtv_mod.MTVConfig.tiny()).eval()
    with torch.no_grad():
        views = model.encode_views(torch.rand(2, 3, 8, 32, 32))
        g = model.global_input(views)
    pos = model.global_pos[:, 1:]
    # view 0 has 2 temporal indices (a, b), view 1 has 4: view 0's part of the sequence is a, b, a, b
    v0 = views[0].reshape(2, 2, 17, 24)[:, :, 0]
    assert torch.equal(g[:, 1:, :24], torch.cat([v0, v0], dim=1) + pos[..., :24])
    assert torch.equal(g[:, 1:, 24:], views[1].reshape(2, 4, 17, 32)[:, :, 0] + pos[..., 24:])

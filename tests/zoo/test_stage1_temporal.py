"""Tests of the temporal 2D-CNN family: TSM, TEA, TDN and their shared temporal ResNet.

Every numerical test compares with a computation written independently here (explicit loops
over segments, torchvision / timm models with the same weights); CPU and tiny inputs only.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18, resnet50
from torchvision.models.resnet import BasicBlock

import videozoo
from videozoo.layers.temporal_resnet import TemporalResNet, load_torchvision_resnet, segment_center_indices
from videozoo.models import tdn as tdn_mod
from videozoo.models import tea as tea_mod
from videozoo.models import tsm as tsm_mod
from videozoo.testing import randomise_batchnorm


def _max_rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max abs difference relative to the scale of ``b`` (random BN statistics make logits large)."""
    return ((a - b).abs().max() / b.abs().max().clamp(min=1.0)).item()


# ----------------------------------------------------------------------------- shared layer


def test_segment_center_indices():
    assert segment_center_indices(8, 8).tolist() == list(range(8))
    assert segment_center_indices(40, 8).tolist() == [2, 7, 12, 17, 22, 27, 32, 37]
    assert segment_center_indices(10, 3).tolist() == [1, 5, 8]  # floor(1.67), floor(5), floor(8.33)
    with pytest.raises(ValueError):
        segment_center_indices(0, 3)


def test_identity_temporal_resnet18_equals_torchvision():
    torch.manual_seed(0)
    tv = resnet18(num_classes=10).eval()
    randomise_batchnorm(tv, torch.Generator().manual_seed(0))
    ours = TemporalResNet(BasicBlock, (2, 2, 2, 2), n_segment=4, num_classes=10).eval()
    missing = load_torchvision_resnet(ours, tv.state_dict())
    assert missing == []  # no temporal modules, every entry comes from torchvision
    x = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        expected = tv(x.flatten(0, 1)).view(2, 4, 10).mean(1)  # per-frame ResNet, mean over segments
        assert _max_rel_diff(ours(x), expected) <= 1e-6


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def test_temporal_module_acts_on_residual_branch_only():
    # a temporal module that blanks its input leaves only the shortcut: block(x) = relu(x)
    # (eval-mode BN with default statistics maps 0 to 0); before conv1, not after it
    from videozoo.layers.temporal_resnet import TemporalBasicBlock, TemporalBottleneck

    x = torch.randn(4, 16, 6, 6)
    for cls, planes in ((TemporalBasicBlock, 16), (TemporalBottleneck, 4)):
        blk = cls(16, planes, temporal=_Zero()).eval()
        with torch.no_grad():
            assert torch.equal(blk(x), torch.relu(x))
            blk.temporal = nn.Identity()
            assert not torch.equal(blk(x), torch.relu(x))


def test_load_torchvision_resnet_reports_unloaded_and_rejects_unknown():
    tv = resnet18(num_classes=1000)
    cfg = tsm_mod.TSMConfig(layers=(2, 2, 2, 2), bottleneck=False, num_classes=5, n_segment=2)
    model = tsm_mod.TSM(cfg)
    missing = load_torchvision_resnet(model, tv.state_dict())
    assert missing == ["fc.bias", "fc.weight"]  # 1000-class head skipped, shift has no params
    assert torch.equal(model.layer3[1].conv2.weight, tv.layer3[1].conv2.weight)
    with pytest.raises(KeyError):
        load_torchvision_resnet(model, {"layer9.weight": torch.zeros(1)})
    with pytest.raises(ValueError):
        TemporalResNet(BasicBlock, (1, 1, 1, 1), n_segment=4, num_classes=3)(torch.randn(1, 3, 3, 32, 32))


# ----------------------------------------------------------------------------- TSM


def _shift_loop(x: torch.Tensor, n: int, fold_div: int, online: bool) -> torch.Tensor:
    """Temporal shift written per segment and channel block."""
    nt, c, h, w = x.shape
    fold = c // fold_div
    out = torch.zeros_like(x)
    for b in range(nt // n):
        for t in range(n):
            i = b * n + t
            if online:
                if t > 0:
                    out[i, :fold] = x[i - 1, :fold]
                out[i, fold:] = x[i, fold:]
            else:
                if t < n - 1:
                    out[i, :fold] = x[i + 1, :fold]
                if t > 0:
                    out[i, fold : 2 * fold] = x[i - 1, fold : 2 * fold]
                out[i, 2 * fold :] = x[i, 2 * fold :]
    return out


@pytest.mark.parametrize("online", [False, True])
@pytest.mark.parametrize("fold_div,channels", [(8, 16), (4, 12), (8, 10)])
def test_temporal_shift_matches_loop_and_roll(online, fold_div, channels):
    x = torch.randn(3 * 5, channels, 2, 3)
    out = tsm_mod.temporal_shift(x, 5, fold_div, online)
    assert torch.equal(out, _shift_loop(x, 5, fold_div, online))
    from videozoo.references.tsm import shift_loop

    assert torch.equal(out, shift_loop(x, 5, fold_div, online))


def test_temporal_shift_moves_time_stamps():
    # channel values = segment index + 1; after the shift, block 0 holds t+2 (next segment),
    # block 1 holds t (previous segment), zeros where the shift leaves the clip
    n, c = 4, 8
    x = (torch.arange(n, dtype=torch.float32) + 1).view(n, 1, 1, 1).expand(n, c, 1, 1).contiguous()
    out = tsm_mod.temporal_shift(x, n, fold_div=4)[:, :, 0, 0]
    assert out[:, 0].tolist() == [2, 3, 4, 0]
    assert out[:, 2].tolist() == [0, 1, 2, 3]
    assert out[:, 4].tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError):
        tsm_mod.temporal_shift(torch.randn(6, 8, 1, 1), 4)


def test_tsm_r50_without_shift_equals_torchvision_resnet50():
    torch.manual_seed(0)
    tv = resnet50(num_classes=7).eval()
    randomise_batchnorm(tv, torch.Generator().manual_seed(1))
    cfg = tsm_mod.TSMConfig(num_classes=7, n_segment=3, shift=False)
    model = videozoo.create("tsm", cfg).eval()
    model.load_state_dict(tsm_mod.load_state_dict_from("torchvision", tv.state_dict()))
    x = torch.rand(2, 3, 3, 32, 32)
    with torch.no_grad():
        expected = tv(x.flatten(0, 1)).view(2, 3, 7).mean(1)
        assert _max_rel_diff(model(x), expected) <= 1e-6
        # with the shift on (same weights) the output differs: the shift is really inserted
        shifted = videozoo.create("tsm", tsm_mod.TSMConfig(num_classes=7, n_segment=3)).eval()
        shifted.load_state_dict(model.state_dict())
        assert _max_rel_diff(shifted(x), expected) > 1e-3


def test_tsm_official_key_mapping_roundtrip():
    model = videozoo.create("tsm", "tiny")
    sd = model.state_dict()
    official = {}
    for k, v in sd.items():
        if k.startswith("fc."):
            official["module.new_fc." + k[3:]] = v
        else:
            official["module.base_model." + k.replace(".conv1.", ".conv1.net.")] = v
    mapped = tsm_mod.load_state_dict_from("tsm", official)
    assert set(mapped) == set(sd) and all(torch.equal(mapped[k], sd[k]) for k in sd)
    with pytest.raises(ValueError):
        tsm_mod.load_state_dict_from("mmaction", sd)


def test_tsm_paper_params_match_survey():
    model = videozoo.create("tsm", "paper")
    params_m = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(params_m - 24.3) / 24.3 < 0.01  # survey Table 1: 24.3 M
    # = torchvision resnet50 with a 400-class head (the shift adds no parameter)
    assert sum(p.numel() for p in resnet50(num_classes=400).parameters()) == sum(p.numel() for p in model.parameters())


def test_clip_to_segments_picks_centre_frames():
    cfg = tsm_mod.TSMConfig.tiny()
    clip = torch.rand(2, 3, 16, 8, 8)
    seg = tsm_mod.clip_to_segments(cfg, clip)
    assert seg.shape == (2, 8, 3, 8, 8)
    for k in range(8):
        assert torch.equal(seg[:, k], clip[:, :, 2 * k + 1])  # floor((k + .5) * 16 / 8)


# ----------------------------------------------------------------------------- TEA


def test_motion_excitation_matches_explicit_computation():
    torch.manual_seed(0)
    n, c = 4, 32
    me = tea_mod.MotionExcitation(c, n, reduction=8).eval()
    randomise_batchnorm(me, torch.Generator().manual_seed(2))
    x = torch.randn(2 * n, c, 5, 5)
    with torch.no_grad():
        xr = F.batch_norm(F.conv2d(x, me.squeeze.weight), me.bn.running_mean, me.bn.running_var,
                          me.bn.weight, me.bn.bias, False, 0.0, me.bn.eps)
        expected = torch.empty_like(x)
        for b in range(2):
            for t in range(n):
                i = b * n + t
                if t == n - 1:
                    m = torch.zeros(xr.shape[1])
                else:  # depthwise 3x3 conv of the next segment minus the current one
                    nxt = torch.stack([F.conv2d(xr[i + 1, j][None, None], me.transform.weight[j][None], padding=1)[0, 0]
                                       for j in range(xr.shape[1])])
                    m = (nxt - xr[i]).mean(dim=(1, 2))
                a = 2 * torch.sigmoid(me.expand.weight[:, :, 0, 0] @ m) - 1
                expected[i] = x[i] + x[i] * a[:, None, None]
        assert torch.allclose(me(x), expected, atol=1e-5, rtol=0)
        assert torch.allclose(tea_mod.me_loop_reference(me, x), expected, atol=1e-5, rtol=0)


def test_temporal_conv1d_is_channelwise_3tap_filter():
    torch.manual_seed(0)
    n, c = 5, 6
    tc = tea_mod.TemporalConv1d(c, n)
    x = torch.randn(2 * n, c, 3, 2)
    assert torch.equal(tc(x), x)  # identity initialisation
    with torch.no_grad():
        # same weights in a depthwise nn.Conv1d run along N for every pixel
        conv = nn.Conv1d(c, c, 3, padding=1, groups=c, bias=False)
        conv.weight.normal_()
        tc.weight.copy_(conv.weight)
        seq = x.view(2, n, c, 3, 2).permute(0, 3, 4, 2, 1).reshape(-1, c, n)
        via_conv = conv(seq).view(2, 3, 2, c, n).permute(0, 4, 3, 1, 2).reshape_as(x)
        assert torch.allclose(tc(x), via_conv, atol=1e-6)
        tc.weight.normal_()
        w = tc.weight[:, 0]  # (C, 3)
        v = x.view(2, n, c, 3, 2)
        expected = torch.zeros_like(v)
        for t in range(n):
            for k, s in enumerate((t - 1, t, t + 1)):
                if 0 <= s < n:
                    expected[:, t] += w[:, k].view(1, c, 1, 1) * v[:, s]
        assert torch.allclose(tc(x), expected.view_as(x), atol=1e-6)


@pytest.mark.parametrize("stride,inplanes", [(1, 256), (2, 128), (1, 64)])
def test_tea_block_without_temporal_parts_equals_timm_res2net_block(stride, inplanes):
    timm_res2net = pytest.importorskip("timm.models.res2net")
    torch.manual_seed(0)
    planes = 64
    downsample = None
    if stride != 1 or inplanes != planes * 4:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
    ref = timm_res2net.Bottle2neck(inplanes, planes, stride, downsample, base_width=26, scale=4,
                                   norm_layer=nn.BatchNorm2d).eval()
    randomise_batchnorm(ref, torch.Generator().manual_seed(3))
    ours = tea_mod.TEABlock(inplanes, planes, stride, None if downsample is None else nn.Sequential(
        nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4)), n_segment=4,
        me=False, mta=True).eval()
    missing, unexpected = ours.load_state_dict(tea_mod.load_state_dict_from("timm", ref.state_dict()), strict=False)
    assert unexpected == [] and all(k.startswith("tconvs.") for k in missing)
    x = torch.randn(4, inplanes, 8, 8)
    with torch.no_grad():
        assert (ours(x) - ref(x)).abs().max().item() <= 1e-5
        assert (ours(x) - tea_mod.res2net_block_reference(ours, x)).abs().max().item() <= 1e-5
        # a non-identity temporal conv changes the result (MTA really mixes segments)
        ours.tconvs[1].weight.normal_()
        assert (ours(x) - ref(x)).abs().max().item() > 1e-3


def test_tea_paper_params_are_res2net50_plus_me():
    timm = pytest.importorskip("timm")
    model = videozoo.create("tea", "paper")
    ref = timm.create_model("res2net50_26w_4s", pretrained=False, num_classes=400)
    me_params = sum(p.numel() for n, p in model.named_parameters() if ".me." in n)
    tconv_params = sum(p.numel() for n, p in model.named_parameters() if ".tconvs." in n)
    assert me_params > 0 and tconv_params > 0
    n_ref = sum(p.numel() for p in ref.parameters())
    assert sum(p.numel() for p in model.parameters()) == n_ref + me_params + tconv_params


# ----------------------------------------------------------------------------- TDN


def test_clip_to_tdn_input_windows():
    cfg = tdn_mod.TDNConfig.paper()
    assert cfg.input_shape() == (3, 40, 224, 224)
    clip = torch.rand(1, 3, 40, 4, 4)
    x = tdn_mod.clip_to_tdn_input(cfg, clip)
    assert x.shape == (1, 8, 5, 3, 4, 4)
    assert torch.equal(x.flatten(1, 2), clip.transpose(1, 2))  # windows tile the 40 frames
    tiny = tdn_mod.TDNConfig.tiny()
    clip = torch.rand(2, 3, 8, 4, 4)
    x = tdn_mod.clip_to_tdn_input(tiny, clip)
    for k in range(8):
        for j in range(5):
            assert torch.equal(x[:, k, j], clip[:, :, min(max(k + j - 2, 0), 7)])


def test_short_term_tdm_is_zero_on_static_video_and_not_on_motion():
    s = tdn_mod.ShortTermTDM(5, 8, kernel=3, stride=1, pool=False).eval()
    still = torch.rand(1, 1, 3, 16, 16).expand(2, 5, 3, 16, 16)
    assert torch.equal(s(still, (16, 16)), torch.zeros(2, 8, 16, 16))
    moving = torch.rand(2, 5, 3, 16, 16)
    diffs = (moving[:, 1:] - moving[:, :-1]).flatten(1, 2)
    with torch.no_grad():
        expected = F.interpolate(F.relu(s.bn(s.conv(F.avg_pool2d(diffs, 2)))), size=(16, 16), mode="bilinear")
        assert torch.allclose(s(moving, (16, 16)), expected, atol=1e-6)


def test_long_term_tdm_differences_match_loop():
    torch.manual_seed(0)
    n = 4
    m = tdn_mod.LongTermTDM(16, n, reduction=4).eval()
    randomise_batchnorm(m, torch.Generator().manual_seed(4))
    x = torch.randn(2 * n, 16, 6, 6)
    with torch.no_grad():
        fwd, bwd = m.differences(x)
        xr = m.bn(m.squeeze(x))
        for b in range(2):
            for t in range(n):
                i = b * n + t
                kf = m.transform(xr[i + 1 : i + 2])[0] - xr[i] if t < n - 1 else torch.zeros_like(xr[i])
                kb = m.transform(xr[i - 1 : i])[0] - xr[i] if t > 0 else torch.zeros_like(xr[i])
                assert torch.allclose(fwd[i], kf, atol=1e-6) and torch.allclose(bwd[i], kb, atol=1e-6)
        # excitation lies in (-1/2, 1/2) around the identity: out / x in (0.5, 1.5)
        out = m(x)
        ratio = out[x.abs() > 1e-3] / x[x.abs() > 1e-3]
        assert ratio.min() > 0.5 and ratio.max() < 1.5


def test_tdn_r50_without_tdms_equals_torchvision_resnet50():
    torch.manual_seed(0)
    tv = resnet50(num_classes=5).eval()
    randomise_batchnorm(tv, torch.Generator().manual_seed(5))
    cfg = tdn_mod.TDNConfig(num_classes=5, n_segment=2, clip_frames=10, stdm=False, ltdm=False)
    model = videozoo.create("tdn", cfg).eval()
    model.load_state_dict(tdn_mod.load_state_dict_from("torchvision", tv.state_dict()))
    clip = torch.rand(1, 3, 10, 32, 32)
    with torch.no_grad():
        out = model(tdn_mod.clip_to_tdn_input(cfg, clip))
        key_frames = clip[:, :, [2, 7]].transpose(1, 2).flatten(0, 1)  # (2, 3, 32, 32)
        expected = tv(key_frames).mean(0, keepdim=True)
        assert _max_rel_diff(out, expected) <= 1e-6


# ----------------------------------------------------------------------------- all three


@pytest.mark.parametrize("name", ["tsm", "tea", "tdn"])
def test_tiny_forward_backward_and_time_order(name):
    spec = videozoo.get_spec(name)
    cfg = videozoo.make_config(name, "tiny")
    torch.manual_seed(0)
    model = spec.builder(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    assert 5_000 < n_params < 1_000_000
    clip = torch.rand(2, *cfg.input_shape())
    out = model(spec.clip_to_input(cfg, clip))
    assert out.shape == (2, cfg.num_classes)
    out.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        fwd = model(spec.clip_to_input(cfg, clip))
        rev = model(spec.clip_to_input(cfg, clip.flip(2)))
    # the same frames in reversed order must give different scores (temporal modelling)
    assert (fwd - rev).abs().max().item() > 1e-4


def test_tsm_without_shift_is_order_agnostic():
    cfg = videozoo.make_config("tsm", "tiny", shift=False)
    model = videozoo.create("tsm", cfg).eval()
    clip = torch.rand(2, *cfg.input_shape())
    with torch.no_grad():
        fwd = model(tsm_mod.clip_to_segments(cfg, clip))
        rev = model(tsm_mod.clip_to_segments(cfg, clip.flip(2)))
    assert torch.allclose(fwd, rev, atol=1e-5)


def test_tea_shift_initialisation_equals_tsm_shift():
    """TEA's default start for MTA's temporal convs is TSM's bi-directional shift."""
    from videozoo.models.tsm import temporal_shift

    torch.manual_seed(0)
    n, c = 8, 16
    holder = nn.Sequential(tea_mod.TemporalConv1d(c, n))
    tea_mod.init_temporal_convs(holder, "shift")
    x = torch.randn(2 * n, c, 3, 3)
    assert torch.equal(holder(x), temporal_shift(x, n, fold_div=8))
    tea_mod.init_temporal_convs(holder, "identity")
    assert torch.equal(holder(x), x)
    with pytest.raises(ValueError):
        tea_mod.init_temporal_convs(holder, "random")

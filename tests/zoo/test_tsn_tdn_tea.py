"""TSN (BN-Inception), TDN and TEA against their authors' releases and restated equations.

References used here, none of them the models' own code:

* the layer tables of the authors' releases (``videozoo/reference_tables/*.json``, made by
  building the authors' code), mapped with each model's key-mapping function;
* torchvision / timm models with the same weights;
* the release's equations restated below in plain ``torch.nn.functional`` (the ``_restated_*``
  functions import nothing from videozoo and only read the modules' weights).

CPU, tiny inputs, random weights.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import videozoo
from videozoo.layers.temporal_conv import TemporalShiftConv
from videozoo.models import tdn as tdn_mod
from videozoo.models import tea as tea_mod
from videozoo.models import tsn as tsn_mod
from videozoo.reference_tables import compare_with_table, load_table
from videozoo.testing import randomise_batchnorm


def _bn(mod: nn.BatchNorm2d, y: torch.Tensor) -> torch.Tensor:
    """Eval-mode batch norm from a module's tensors."""
    return F.batch_norm(y, mod.running_mean, mod.running_var, mod.weight, mod.bias, False, 0.0, mod.eps)


def _restated_temporal_conv(w: torch.Tensor, x: torch.Tensor, n: int) -> torch.Tensor:
    """``y[t] = w0 x[t-1] + w1 x[t] + w2 x[t+1]`` per channel, zeros outside, by explicit loops.
    ``w: (C, 1, 3)``, ``x: (B*N, C, H, W)``."""
    v = x.view(-1, n, *x.shape[1:])
    y = torch.zeros_like(v)
    for t in range(n):
        for k, s in enumerate((t - 1, t, t + 1)):
            if 0 <= s < n:
                y[:, t] += w[:, 0, k].view(1, -1, 1, 1) * v[:, s]
    return y.view_as(x)


def _randomise(module: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    randomise_batchnorm(module, gen)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, TemporalShiftConv):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 0.5)
    return module


# ----------------------------------------------------------------------------- shared layer


def test_temporal_shift_conv_equals_depthwise_conv1d_and_loops():
    torch.manual_seed(0)
    n, c = 5, 6
    layer = TemporalShiftConv(c, n)
    x = torch.randn(2 * n, c, 3, 2)
    assert torch.equal(layer(x), x)  # identity start
    with torch.no_grad():
        conv = nn.Conv1d(c, c, 3, padding=1, groups=c, bias=False)
        conv.weight.normal_()
        layer.weight.copy_(conv.weight)
        seq = x.view(2, n, c, 3, 2).permute(0, 3, 4, 2, 1).reshape(-1, c, n)  # the release's layout
        via_conv = conv(seq).view(2, 3, 2, c, n).permute(0, 4, 3, 1, 2).reshape_as(x)
        torch.testing.assert_close(layer(x), via_conv, atol=1e-6, rtol=0)
        torch.testing.assert_close(layer(x), _restated_temporal_conv(layer.weight, x, n), atol=1e-6, rtol=0)


@pytest.mark.parametrize("channels,fold", [(16, 2), (26, 13), (8, 0)])
def test_temporal_shift_conv_starts_as_a_shift(channels, fold):
    n = 4
    layer = TemporalShiftConv(channels, n, fold_next=fold, fold_prev=fold)
    x = torch.randn(2 * n, channels, 2, 2)
    v = x.view(2, n, channels, 2, 2)
    zero = torch.zeros_like(v[:, :1])
    expected = v.clone()
    expected[:, :, :fold] = torch.cat([v[:, 1:, :fold], zero[:, :, :fold]], 1)  # reads t + 1
    expected[:, :, fold:2 * fold] = torch.cat([zero[:, :, fold:2 * fold], v[:, :-1, fold:2 * fold]], 1)  # t - 1
    assert torch.equal(layer(x), expected.view_as(x))
    with pytest.raises(ValueError):
        TemporalShiftConv(channels, n, fold_next=channels, fold_prev=1)


# ----------------------------------------------------------------------------- layer tables


@pytest.mark.parametrize("name,table,library", [
    ("tdn", "tdn_r50_k400", "tdn"),
    ("tea", "tea_r2n50_k400", "tea"),
    ("tsn", "tsn_bninception_ucf101", "tsn-pytorch"),
])
def test_paper_config_matches_the_authors_layer_table(name, table, library):
    spec = videozoo.get_spec(name)
    mod = {"tdn": tdn_mod, "tea": tea_mod, "tsn": tsn_mod}[name]
    with torch.device("meta"):
        model = spec.builder(videozoo.make_config(name, "paper"))
    own = sum(p.numel() for p in model.parameters())
    t = load_table(table)
    r = compare_with_table(t, lambda sd: mod.load_state_dict_from(library, sd), model.state_dict(), own)
    assert r["passed"], r
    assert r["matched"] == len(model.state_dict())
    assert own == t["params"] - r["dropped_params"]
    assert abs(r["params_gap_pct"]) <= 0.5
    assert t["commit"] and t["repository"].startswith("https://github.com/")


def test_layer_table_comparison_can_fail():
    t = load_table("tea_r2n50_k400")
    with torch.device("meta"):
        model = tea_mod.TEA(tea_mod.TEAConfig.paper())
        paper_me = tea_mod.TEA(tea_mod.TEAConfig(me_formula="paper"))
    own = sum(p.numel() for p in model.parameters())

    def forget_one(sd):
        out = tea_mod.load_state_dict_from("tea", sd)
        out.pop("layer1.0.me.expand.weight")
        return out

    r = compare_with_table(t, forget_one, model.state_dict(), own)
    assert not r["passed"] and r["missing"] == ["layer1.0.me.expand.weight"]
    r = compare_with_table(t, lambda sd: tea_mod.load_state_dict_from("tea", sd), paper_me.state_dict(), own)
    assert not r["passed"] and all(".me.expand_bn." in k for k in r["unexpected"])  # the paper's ME has no BN
    bad = dict(t, entries=[list(e) for e in t["entries"]])
    bad["entries"][0][1] = [63, 3, 7, 7]
    r = compare_with_table(bad, lambda sd: tea_mod.load_state_dict_from("tea", sd), model.state_dict(), own)
    assert not r["passed"] and r["shape_mismatches"][0].startswith("conv1.weight")
    with pytest.raises(FileNotFoundError, match="tdn_r50_k400"):
        load_table("no_such_table")


@pytest.mark.parametrize("name", ["tdn", "tea", "tsn"])
def test_registered_reference_check_passes_and_is_independent(name):
    spec = videozoo.get_spec(name)
    assert spec.check_evidence["reference"] == "independent-reference"
    r = spec.checks["reference"]()
    assert r["passed"], r["summary"]
    assert r["layer_table"]["missing"] == [] and r["layer_table"]["unexpected"] == []


# ----------------------------------------------------------------------------- TDN


def _restated_ltdm(m: tdn_mod.LongTermTDM, x: torch.Tensor) -> torch.Tensor:
    """The release's mSEModule (MCG-NJU/TDN ops/base_module.py), segment by segment."""
    n = m.n_segment
    xr = _bn(m.squeeze_bn, F.conv2d(x, m.squeeze.weight))
    groups = xr.shape[1]
    k_xr = F.conv2d(xr, m.transform.weight, padding=1, groups=groups)
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        t = i % n
        excite = 0
        for nb in (t + 1, t - 1):  # forward, backward
            d = k_xr[i - t + nb] - xr[i] if 0 <= nb < n else torch.zeros_like(xr[i])
            d = d[None]
            s1 = _bn(m.scale1_bn, F.conv2d(d, m.scale1_conv.weight, padding=1))
            s2 = _bn(m.scale2_bn, F.conv2d(F.avg_pool2d(d, 2), m.scale2_conv.weight, padding=1))
            s2 = s2.repeat_interleave(2, -1).repeat_interleave(2, -2)  # nearest x2 (even sizes here)
            y = _bn(m.expand_bn, F.conv2d(d / 3 + s2 / 3 + s1 / 3, m.expand.weight))
            excite = excite + 0.5 * (torch.sigmoid(y) - 0.5)
        out[i] = x[i] + x[i] * excite[0]
    return out


def test_long_term_tdm_matches_restated_release_equations():
    torch.manual_seed(0)
    m = _randomise(tdn_mod.LongTermTDM(32, 4, reduction=4), 1).eval()
    x = torch.randn(8, 32, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(m(x), _restated_ltdm(m, x), atol=1e-5, rtol=1e-5)
        # with every input the same in all segments, the differences are K*x - x, not zero, but
        # the end segments see a zero difference in one direction: check the two ends differ
        # from the middle, i.e. the module really looks across segments
        same = x[:1].expand(8, -1, -1, -1).contiguous()
        out = m(same)
        assert (out[0] - out[1]).abs().max() > 1e-4 and (out[1] - out[2]).abs().max() < 1e-5


def test_tdn_bottleneck_matches_restated_block():
    torch.manual_seed(0)
    n = 4
    ds = nn.Sequential(nn.Conv2d(64, 128, 1, 2, bias=True), nn.BatchNorm2d(128))
    blk = tdn_mod.TDNBottleneck(64, 32, 2, ds, n_segment=n, ltdm=True, reduction=4)
    w = blk.shift.weight[:, 0]  # starts as TSM's shift: 1/8 reads t+1, 1/8 reads t-1
    assert w[:4, 2].eq(1).all() and w[4:8, 0].eq(1).all() and w[8:, 1].eq(1).all() and w.sum() == 32
    blk = _randomise(blk, 2).eval()
    x = torch.randn(2 * n, 64, 8, 8)
    with torch.no_grad():
        y = F.relu(_bn(blk.bn1, F.conv2d(x, blk.conv1.weight, blk.conv1.bias)))
        y = _restated_temporal_conv(blk.shift.weight, _restated_ltdm(blk.ltdm, y), n)
        y = F.relu(_bn(blk.bn2, F.conv2d(y, blk.conv2.weight, blk.conv2.bias, stride=2, padding=1)))
        y = _bn(blk.bn3, F.conv2d(y, blk.conv3.weight, blk.conv3.bias))
        sc = _bn(ds[1], F.conv2d(x, ds[0].weight, ds[0].bias, stride=2))
        torch.testing.assert_close(blk(x), F.relu(y + sc), atol=1e-5, rtol=1e-5)


def test_tdn_stdm_fusions_match_restated_forward():
    """The release's TDN_Net.forward: differences of 5 frames, avg-pool 2, conv-BN-ReLU, max-pool,
    nearest upsampling, a * rgb + b * diff after the stem and again after layer1."""
    torch.manual_seed(0)
    cfg = tdn_mod.TDNConfig(num_classes=5, n_segment=4, clip_frames=20, layers=(1, 1, 1, 1), widths=(8, 16, 32, 64),
                            stem_width=8, ltdm_reduction=4, fusion=(0.75, 0.25))
    model = _randomise(tdn_mod.TDN(cfg), 3).eval()
    x = torch.rand(1, 4, 5, 3, 64, 64)
    with torch.no_grad():
        f = x.flatten(0, 1)
        rgb = F.max_pool2d(F.relu(_bn(model.bn1, F.conv2d(f[:, 2], model.conv1.weight, model.conv1.bias, 2, 3))), 3, 2, 1)
        d = torch.cat([f[:, 1] - f[:, 0], f[:, 2] - f[:, 1], f[:, 3] - f[:, 2], f[:, 4] - f[:, 3]], 1)
        d = F.max_pool2d(F.relu(_bn(model.stdm.bn, F.conv2d(F.avg_pool2d(d, 2), model.stdm.conv.weight, None, 2, 3))), 3, 2, 1)
        assert d.shape[-1] * 2 == rgb.shape[-1]
        up = lambda t: t.repeat_interleave(2, -1).repeat_interleave(2, -2)  # nearest x2
        h = model.layer1(0.75 * rgb + 0.25 * up(d))
        h = 0.75 * h + 0.25 * up(model.stdm.layer1(d))
        h = model.layer4(model.layer3(model.layer2(h))).mean((2, 3))
        expected = model.fc(h).view(1, 4, -1).mean(1)
        torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)


def test_tdn_rgb_path_without_tdms_equals_torchvision_resnet50():
    from torchvision.models import resnet50

    torch.manual_seed(0)
    tv = resnet50(num_classes=5).eval()
    randomise_batchnorm(tv, torch.Generator().manual_seed(5))
    cfg = tdn_mod.TDNConfig(num_classes=5, n_segment=2, clip_frames=10, stdm=False, ltdm=False)
    model = videozoo.create("tdn", cfg).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.zero_()
    missing, unexpected = model.load_state_dict(tdn_mod.load_state_dict_from("torchvision", tv.state_dict()),
                                                strict=False)
    assert unexpected == [] and all(k.endswith(".bias") for k in missing)
    clip = torch.rand(1, 3, 10, 32, 32)
    with torch.no_grad():
        out = model(tdn_mod.clip_to_tdn_input(cfg, clip))
        expected = tv(clip[:, :, [2, 7]].transpose(1, 2).flatten(0, 1)).mean(0, keepdim=True)
    torch.testing.assert_close(out, expected, atol=1e-5 * expected.abs().max().item(), rtol=0)


def test_tdn_checkpoint_keys_map_to_ours():
    sd = {"module.base_model.conv1_temp.weight": 0, "module.base_model.conv1_5.0.weight": 1,
          "module.base_model.conv1_5.1.running_mean": 2, "module.base_model.resnext_layer1.2.conv3.bias": 3,
          "module.base_model.layer3_bak.1.mse.conv3_smallscale4.weight": 4,
          "module.base_model.layer3_bak.1.mse.bn3.running_var": 5,
          "module.base_model.layer2_bak.0.shift.conv.weight": 6, "module.new_fc.bias": 7,
          "base_model.layer4_bak.0.downsample.0.bias": 8}
    assert tdn_mod.load_state_dict_from("tdn", sd) == {
        "stdm.conv.weight": 1, "stdm.bn.running_mean": 2, "stdm.layer1.2.conv3.bias": 3,
        "layer3.1.ltdm.scale1_conv.weight": 4, "layer3.1.ltdm.expand_bn.running_var": 5,
        "layer2.0.shift.weight": 6, "fc.bias": 7, "layer4.0.downsample.0.bias": 8}
    with pytest.raises(ValueError):
        tdn_mod.load_state_dict_from("mmaction", sd)


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


# ----------------------------------------------------------------------------- TEA


def _restated_me(me: tea_mod.MotionExcitation, x: torch.Tensor, formula: str) -> torch.Tensor:
    """TEA's ME (arXiv 2004.01398 eqs. 1-4; the release's MEModule for ``formula='released'``)."""
    n = me.n_segment
    xr = _bn(me.bn, F.conv2d(x, me.squeeze.weight))
    out = torch.empty_like(x)
    for i in range(x.shape[0]):
        t = i % n
        if t < n - 1:
            m = F.conv2d(xr[i + 1:i + 2], me.transform.weight, padding=1, groups=xr.shape[1]) - xr[i:i + 1]
        else:
            m = torch.zeros_like(xr[i:i + 1])
        a = F.conv2d(m.mean((2, 3), keepdim=True), me.expand.weight)
        a = torch.sigmoid(_bn(me.expand_bn, a)) - 0.5 if formula == "released" else 2 * torch.sigmoid(a) - 1
        out[i] = x[i] + x[i] * a[0]
    return out


@pytest.mark.parametrize("formula", ["released", "paper"])
def test_motion_excitation_matches_restated_equations(formula):
    torch.manual_seed(0)
    me = _randomise(tea_mod.MotionExcitation(32, 4, reduction=8, formula=formula), 2).eval()
    assert (me.expand_bn is None) == (formula == "paper")
    x = torch.randn(8, 32, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(me(x), _restated_me(me, x, formula), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        tea_mod.MotionExcitation(32, 4, formula="2sigma")


@pytest.mark.parametrize("stride,inplanes", [(1, 256), (2, 128)])
def test_tea_block_matches_restated_block(stride, inplanes):
    """The release's Bottle2neckShift: ME, then per fragment a temporal conv before the 3x3 conv,
    and a temporal conv on the passed-on fragment (before the pooling of a stage's first block)."""
    torch.manual_seed(0)
    n, planes = 4, 64
    ds = None
    if stride != 1 or inplanes != planes * 4:
        ds = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
    blk = _randomise(tea_mod.TEABlock(inplanes, planes, stride, ds, n_segment=n, me_reduction=16), 3).eval()
    x = torch.randn(2 * n, inplanes, 8, 8)
    w = blk.width
    with torch.no_grad():
        y = _restated_me(blk.me, F.relu(_bn(blk.bn1, F.conv2d(x, blk.conv1.weight))), "released")
        parts = [y[:, i * w:(i + 1) * w] for i in range(4)]
        outs, sp = [], None
        for i in range(3):
            sp = parts[i] if (i == 0 or ds is not None) else sp + parts[i]
            sp = _restated_temporal_conv(blk.tconvs[i].weight, sp, n)
            sp = F.relu(_bn(blk.bns[i], F.conv2d(sp, blk.convs[i].weight, stride=stride, padding=1)))
            outs.append(sp)
        last = _restated_temporal_conv(blk.tconvs[3].weight, parts[3], n)
        outs.append(F.avg_pool2d(last, 3, stride, 1) if ds is not None else last)
        y = _bn(blk.bn3, F.conv2d(torch.cat(outs, 1), blk.conv3.weight))
        sc = x if ds is None else _bn(ds[1], F.conv2d(x, ds[0].weight, stride=stride))
        torch.testing.assert_close(blk(x), F.relu(y + sc), atol=1e-5, rtol=1e-5)


def test_tea_temporal_convs_start_as_the_release():
    blk = tea_mod.TEABlock(256, 64, n_segment=8)
    w = blk.width  # 26
    for tc in blk.tconvs[:3]:  # the convolved fragments: identity
        assert torch.equal(tc.weight[:, 0], torch.tensor([[0.0, 1.0, 0.0]]).expand(w, 3))
    last = blk.tconvs[3].weight[:, 0]  # the passed-on fragment: half reads t+1, half t-1
    assert torch.equal(last[: w // 2], torch.tensor([[0.0, 0.0, 1.0]]).expand(w // 2, 3))
    assert torch.equal(last[w // 2:], torch.tensor([[1.0, 0.0, 0.0]]).expand(w - w // 2, 3))
    ident = tea_mod.TEABlock(256, 64, n_segment=8, tconv_init="identity")
    assert all(torch.equal(tc.weight[:, 0, 1], torch.ones(w)) for tc in ident.tconvs)
    with pytest.raises(ValueError):
        tea_mod.TEABlock(256, 64, tconv_init="shift")


@pytest.mark.parametrize("stride,inplanes", [(1, 256), (2, 128), (1, 64)])
def test_tea_block_without_temporal_parts_equals_timm_res2net_block(stride, inplanes):
    timm_res2net = pytest.importorskip("timm.models.res2net")
    torch.manual_seed(0)
    planes = 64

    def downsample():
        if stride == 1 and inplanes == planes * 4:
            return None
        return nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))

    ref = timm_res2net.Bottle2neck(inplanes, planes, stride, downsample(), base_width=26, scale=4,
                                   norm_layer=nn.BatchNorm2d).eval()
    randomise_batchnorm(ref, torch.Generator().manual_seed(3))
    ours = tea_mod.TEABlock(inplanes, planes, stride, downsample(), n_segment=4, me=False,
                            tconv_init="identity").eval()
    missing, unexpected = ours.load_state_dict(tea_mod.load_state_dict_from("timm", ref.state_dict()), strict=False)
    assert unexpected == [] and all(k.startswith("tconvs.") for k in missing)
    x = torch.randn(4, inplanes, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)
        ours.tconvs[3].reset_to_shift(13, 13)  # the release's start of the passed-on fragment mixes segments
        assert (ours(x) - ref(x)).abs().max().item() > 1e-3


def test_tea_paper_me_variant():
    paper = videozoo.create("tea", "paper")
    variant = videozoo.create("tea_r2n50_paper_me", "paper")
    assert variant.config.me_formula == "paper" and paper.config.me_formula == "released"
    bn3 = sum(p.numel() for n, p in paper.named_parameters() if ".me.expand_bn." in n)
    # weight and bias of a BN over width * scale = 104, 208, 416, 832 channels in 3, 4, 6, 3 blocks
    assert bn3 == 2 * (104 * 3 + 208 * 4 + 416 * 6 + 832 * 3) == 12272
    assert sum(p.numel() for p in variant.parameters()) == sum(p.numel() for p in paper.parameters()) - bn3
    assert videozoo.make_config("tea_r2n50_paper_me", "tiny").me_formula == "paper"
    reported = videozoo.get_spec("tea_r2n50_paper_me").reported[0].value
    assert abs(reported - sum(p.numel() for p in variant.parameters()) / 1e6) < 1e-3


def test_tea_checkpoint_keys_map_to_ours():
    sd = {"module.base_model.layer2.0.me.conv1.weight": 0, "module.base_model.layer2.0.me.bn1.running_mean": 1,
          "module.base_model.layer2.0.me.conv2.weight": 2, "module.base_model.layer2.0.me.bn3.bias": 3,
          "module.base_model.layer2.0.shifts.3.conv.weight": 4, "module.base_model.layer2.0.convs.1.weight": 5,
          "module.new_fc.weight": 6, "base_model.bn1.weight": 7}
    assert tea_mod.load_state_dict_from("tea", sd) == {
        "layer2.0.me.squeeze.weight": 0, "layer2.0.me.bn.running_mean": 1, "layer2.0.me.transform.weight": 2,
        "layer2.0.me.expand_bn.bias": 3, "layer2.0.tconvs.3.weight": 4, "layer2.0.convs.1.weight": 5,
        "fc.weight": 6, "bn1.weight": 7}


# ----------------------------------------------------------------------------- TSN


def _restated_inception(block: tsn_mod.InceptionBN, x: torch.Tensor, pool: str, stride: int) -> torch.Tensor:
    """A BN-Inception module (arXiv 1502.03167, Fig. 5) with Caffe pooling (output size rounded up)."""

    def unit(u, y, stride=1, pad=0):
        return F.relu(_bn(u.bn, F.conv2d(y, u.conv.weight, u.conv.bias, stride, pad)))

    outs = [] if block.branch1x1 is None else [unit(block.branch1x1, x)]
    outs.append(unit(block.branch3x3, unit(block.branch3x3_reduce, x), stride, 1))
    outs.append(unit(block.branch3x3dbl_2, unit(block.branch3x3dbl_1, unit(block.branch3x3dbl_reduce, x), 1, 1), stride, 1))
    if stride == 2:
        p = F.max_pool2d(x, 3, 2, ceil_mode=True)
    elif pool == "avg":
        p = F.avg_pool2d(x, 3, 1, 1, ceil_mode=True, count_include_pad=True)
    else:
        p = F.max_pool2d(x, 3, 1, 1, ceil_mode=True)
    outs.append(p if block.branch_pool_proj is None else unit(block.branch_pool_proj, p))
    return torch.cat(outs, 1)


@pytest.mark.parametrize("row", [0, 2, 9])  # 3a (avg + proj), 3c (stride 2, pass-through), 5b (max + proj)
def test_bn_inception_module_matches_restated_module(row):
    torch.manual_seed(0)
    name, c1, c3r, c3, d3r, d3, pool, proj, stride = tsn_mod._BN_INCEPTION_MODULES[row]
    in_ch = 48
    block = _randomise(tsn_mod.InceptionBN(in_ch, c1, c3r, c3, d3r, d3, pool, proj, stride), 4).eval()
    x = torch.randn(2, in_ch, 8, 8)  # 3x3/2 pooling rounded down would give 3x3 here, not 4x4
    with torch.no_grad():
        out = block(x)
        torch.testing.assert_close(out, _restated_inception(block, x, pool, stride), atol=1e-5, rtol=1e-5)
    assert out.shape[1] == block.out_channels == c1 + c3 + d3 + (proj or in_ch)
    assert out.shape[-1] == (4 if stride == 2 else 8)


def test_bn_inception_shapes_and_flow_input():
    net = tsn_mod.BNInception().eval()
    with torch.no_grad():
        feats = {}
        net.inception5b.register_forward_hook(lambda m, i, o: feats.update({"5b": o.shape}))
        out = net(torch.rand(1, 3, 224, 224))
    assert out.shape == (1, 1024) and feats["5b"] == (1, 1024, 7, 7)
    flow = tsn_mod.TSN(tsn_mod.TSNConfig(modality="flow"))
    assert flow.backbone.conv1.conv.weight.shape == (64, 10, 7, 7)
    sd = tsn_mod.cross_modality_init(tsn_mod.TSN(tsn_mod.TSNConfig()).state_dict())
    assert sd["backbone.conv1.conv.weight"].shape == (64, 10, 7, 7)
    flow.load_state_dict(sd)


def test_tsn_checkpoint_keys_map_to_ours():
    sd = {"module.base_model.conv1_7x7_s2.weight": 0, "module.base_model.conv1_7x7_s2_bn.running_var": 1,
          "module.base_model.conv2_3x3_reduce_bn.bias": 2, "module.base_model.conv2_3x3.bias": 3,
          "module.base_model.inception_3a_1x1.weight": 4, "module.base_model.inception_3c_3x3_reduce_bn.weight": 5,
          "module.base_model.inception_4e_double_3x3_2.bias": 6, "module.base_model.inception_5b_pool_proj_bn.bias": 7,
          "module.new_fc.weight": 8, "base_model.layer1.0.conv1.weight": 9}
    assert tsn_mod.load_state_dict_from("tsn-pytorch", sd) == {
        "backbone.conv1.conv.weight": 0, "backbone.conv1.bn.running_var": 1, "backbone.conv2_reduce.bn.bias": 2,
        "backbone.conv2.conv.bias": 3, "backbone.inception3a.branch1x1.conv.weight": 4,
        "backbone.inception3c.branch3x3_reduce.bn.weight": 5, "backbone.inception4e.branch3x3dbl_2.conv.bias": 6,
        "backbone.inception5b.branch_pool_proj.bn.bias": 7, "fc.weight": 8, "backbone.layer1.0.conv1.weight": 9}


def test_tsn_variants():
    assert videozoo.make_config("tsn", "paper").backbone == "bninception"
    assert videozoo.make_config("tsn_r50", "paper").backbone == "resnet50"
    assert videozoo.make_config("tsn_r50", "tiny").backbone == "small"
    with torch.device("meta"):
        r50 = videozoo.create("tsn_r50", "paper")
    reported = videozoo.get_spec("tsn_r50").reported[0].value
    assert abs(sum(p.numel() for p in r50.parameters()) / 1e6 - reported) / reported < 0.005

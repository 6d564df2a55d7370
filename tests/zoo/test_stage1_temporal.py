"""Tests of the temporal 2D-CNN family: TSM, the shared temporal ResNet, and all three tiny models.

TEA and TDN have their own tests in ``test_tsn_tdn_tea.py``.

Every numerical test compares with a computation written independently here (explicit loops
over segments, torchvision / timm models with the same weights); CPU and tiny inputs only.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18, resnet50
from torchvision.models.resnet import BasicBlock

import videozoo
from videozoo.layers.temporal_resnet import TemporalResNet, load_torchvision_resnet, segment_center_indices
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


# TEA and TDN: tests/zoo/test_tsn_tdn_tea.py


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
    # the same frames in reversed order must give different scores (temporal modelling); relative,
    # as TEA and TDN start their classifier at N(0, 0.001) like their releases
    assert (fwd - rev).abs().max().item() > 1e-3 * fwd.abs().max().item()


def test_tsm_without_shift_is_order_agnostic():
    cfg = videozoo.make_config("tsm", "tiny", shift=False)
    model = videozoo.create("tsm", cfg).eval()
    clip = torch.rand(2, *cfg.input_shape())
    with torch.no_grad():
        fwd = model(tsm_mod.clip_to_segments(cfg, clip))
        rev = model(tsm_mod.clip_to_segments(cfg, clip.flip(2)))
    assert torch.allclose(fwd, rev, atol=1e-5)

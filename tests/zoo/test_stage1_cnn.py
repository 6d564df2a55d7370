"""Tests of the Stage-1 CNN models: Two-Stream ConvNet, TSN, C3D, I3D (tiny configs, CPU)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import videozoo
from videozoo.registry import get_spec, make_config

torchvision = pytest.importorskip("torchvision")

STAGE1_CNN = ["two_stream", "tsn", "c3d", "i3d"]


def _model_input(name: str, cfg, batch: int = 2, seed: int = 0):
    spec = get_spec(name)
    g = torch.Generator().manual_seed(seed)
    clip = torch.rand(batch, *cfg.input_shape(), generator=g)
    inp = spec.clip_to_input(cfg, clip) if spec.clip_to_input else clip
    return inp if isinstance(inp, tuple) else (inp,)


@pytest.mark.parametrize("name", STAGE1_CNN)
def test_tiny_forward_backward(name):
    torch.manual_seed(0)
    cfg = make_config(name, "tiny")
    model = videozoo.create(name, cfg)
    n_params = sum(p.numel() for p in model.parameters())
    assert 1_000 <= n_params <= 1_000_000
    inp = _model_input(name, cfg)
    out = model(*inp)
    assert out.shape == (2, cfg.num_classes)
    F.cross_entropy(out, torch.tensor([0, 1])).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", STAGE1_CNN)
def test_registered_under_paper_key(name):
    spec = get_spec(name)
    assert get_spec(spec.key) is spec
    assert spec.source_file == f"videozoo/models/{name}.py"
    assert spec.temporal is (name != "tsn")


# ---------------------------------------------------------------- C3D


def test_c3d_param_count_matches_fig3_arithmetic():
    from videozoo.models.c3d import C3D, C3DConfig

    cfg = C3DConfig.paper()
    with torch.device("meta"):
        model = C3D(cfg)
    chans = [3, 64, 128, 256, 256, 512, 512, 512, 512]
    conv = sum(cin * cout * 27 + cout for cin, cout in zip(chans[:-1], chans[1:]))
    fc = (512 * 1 * 4 * 4 + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * 487
    assert sum(p.numel() for p in model.parameters()) == conv + fc
    with torch.device("meta"):
        pool5 = model.forward_features(torch.empty(1, 3, 16, 112, 112))
    assert tuple(pool5.shape) == (1, 512, 1, 4, 4)


def test_c3d_matches_functional_reference():
    result = get_spec("c3d").checks["reference"]()
    assert result["passed"], result["summary"]


def test_c3d_is_sensitive_to_frame_order():
    from videozoo.models.c3d import C3D, C3DConfig

    torch.manual_seed(0)
    cfg = replace(C3DConfig.tiny(), batch_norm=False, dropout=0.0)
    model = C3D(cfg).eval()
    x = torch.rand(2, *cfg.input_shape())
    x[:, :, :4] = 0.0  # first half of the clip dark, second half bright
    with torch.no_grad():
        a, b = model.forward_features(x), model.forward_features(x.flip(2))
    assert (a - b).abs().max() > 1e-3 * a.abs().max()


# ---------------------------------------------------------------- I3D


def test_i3d_paper_shapes_and_survey_params():
    from videozoo.models.i3d import I3D, I3DConfig

    cfg = I3DConfig.paper()
    with torch.device("meta"):
        two = videozoo.create("i3d", cfg)
        rgb = I3D(replace(cfg, two_stream=False))
        feats = rgb.forward_features(torch.empty(1, 3, 64, 224, 224))
    assert tuple(feats.shape) == (1, 1024, 8, 7, 7)  # Fig. 3: 64 frames -> 8 temporal positions
    n = sum(p.numel() for p in two.parameters()) / 1e6
    assert abs(n - 25.0) / 25.0 < 0.05  # survey Table 1: Two-Stream I3D 25.0 M


def test_i3d_boring_video_equals_googlenet():
    from videozoo.models.i3d import _randomised_googlenet, boring_video_diff

    torch.manual_seed(0)
    g = _randomised_googlenet()
    rep = boring_video_diff("replicate", frames=4, size=32, googlenet=g)
    assert rep["max_abs_diff"] < 1e-4 * max(1.0, rep["max_abs_ref"])
    # With zero padding in time the border frames see fewer real frames: equality breaks.
    zeros = boring_video_diff("zeros", frames=4, size=32, googlenet=g)
    assert zeros["max_abs_diff"] > 1e-2


def test_i3d_inflation_repeats_and_rescales():
    from videozoo.models.i3d import I3D, I3DConfig, inflate_from_2d

    torch.manual_seed(0)
    g = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True, num_classes=400)
    cfg = replace(I3DConfig.paper(), two_stream=False)
    sd = inflate_from_2d(g.state_dict(), cfg)
    model = I3D(cfg)
    model.load_state_dict(sd, strict=True)
    w2 = g.conv1.conv.weight.detach()
    w3 = model.conv1.conv.weight.detach()
    assert w3.shape == (64, 3, 7, 7, 7)
    for t in range(7):
        torch.testing.assert_close(w3[:, :, t], w2 / 7)
    w2b = g.inception4a.branch2[1].conv.weight.detach()
    assert model.inception4a.branch2[1].conv.weight.shape[2] == 3
    torch.testing.assert_close(model.inception4a.branch2[1].conv.weight[:, :, 1], w2b / 3)
    torch.testing.assert_close(model.logits.weight.flatten(1), g.fc.weight)


def test_i3d_two_stream_averages_streams():
    from videozoo.models.i3d import I3DConfig, clip_to_input

    torch.manual_seed(0)
    cfg = replace(I3DConfig.tiny(), two_stream=True)
    model = videozoo.create("i3d", cfg).eval()
    rgb, flow = clip_to_input(cfg, torch.rand(2, *cfg.input_shape()))
    assert flow.shape == (2, 2, cfg.frames - 1, cfg.size, cfg.size)
    with torch.no_grad():
        expected = (model.rgb(rgb) + model.flow(flow)) / 2
        torch.testing.assert_close(model(rgb, flow), expected)


# ---------------------------------------------------------------- Two-stream


def test_two_stream_reference_check():
    result = get_spec("two_stream").checks["reference"]()
    assert result["passed"], result["summary"]
    assert result["flow_channels"] == 2 * 7


def test_two_stream_fusion_is_mean_of_softmax_and_paper_shapes():
    from videozoo.models.two_stream import TwoStream, TwoStreamConfig

    torch.manual_seed(0)
    cfg = TwoStreamConfig.tiny()
    model = TwoStream(cfg).eval()
    rgb, flow = torch.rand(3, 3, 32, 32), torch.randn(3, 14, 32, 32)
    with torch.no_grad():
        p = model(rgb, flow).exp()
        q = (model.spatial(rgb).softmax(-1) + model.temporal(flow).softmax(-1)) / 2
    torch.testing.assert_close(p, q)
    torch.testing.assert_close(p.sum(-1), torch.ones(3))
    paper = TwoStreamConfig.paper()
    with torch.device("meta"):
        big = TwoStream(paper)
    assert big.temporal.features[0].in_channels == 20  # 2L, L = 10
    assert big.spatial.flat_dim == 512 * 6 * 6  # CNN-M: 6x6 conv5 map at 224


def test_two_stream_temporal_stream_needs_L_plus_one_frames():
    from videozoo.models.two_stream import TwoStreamConfig, clip_to_input

    with pytest.raises(ValueError):
        clip_to_input(TwoStreamConfig.tiny(), torch.rand(1, 3, 5, 32, 32))


# ---------------------------------------------------------------- TSN


def test_tsn_matches_torchvision_resnet50_per_snippet():
    from videozoo.models.tsn import reference_diff

    r = reference_diff(num_segments=3, size=32)
    assert r["max_abs_diff"] <= 1e-5 * max(1.0, r["max_abs_reference"])


def test_tsn_cross_modality_init_on_grey_input():
    from videozoo.models.tsn import TSN, TSNConfig, cross_modality_init

    torch.manual_seed(0)
    rgb = TSN(TSNConfig(num_classes=5, size=64, backbone="resnet50"))
    flow_sd = cross_modality_init(rgb.state_dict(), in_channels=10)
    flow = TSN(TSNConfig(num_classes=5, size=64, modality="flow", backbone="resnet50"))
    flow.load_state_dict(flow_sd, strict=True)
    w_rgb = rgb.backbone.conv1.weight.detach()
    g = torch.rand(2, 1, 64, 64)
    grey_rgb = g.expand(-1, 3, -1, -1)
    grey_flow = g.expand(-1, 10, -1, -1)
    r_rgb = F.conv2d(grey_rgb, w_rgb, stride=2, padding=3)
    with torch.no_grad():
        r_flow = flow.backbone.conv1(grey_flow)
    # Each flow filter is the channel mean of the RGB filter, summed over 10 channels
    # instead of 3 identical ones: the response scales by 10 / 3.
    torch.testing.assert_close(r_flow, r_rgb * (10 / 3), rtol=1e-4, atol=1e-5)
    # Other tensors are copied unchanged.
    torch.testing.assert_close(flow.fc.weight, rgb.fc.weight)


def test_tsn_average_consensus_is_order_agnostic():
    from videozoo.models.tsn import TSNConfig, clip_to_input

    torch.manual_seed(0)
    cfg = TSNConfig.tiny()
    model = videozoo.create("tsn", cfg).eval()
    clip = torch.rand(2, *cfg.input_shape())
    with torch.no_grad():
        fwd = model(clip_to_input(cfg, clip))
        rev = model(clip_to_input(cfg, clip.flip(2)))
        # Reversing the clip only permutes the snippets of the tiny config (N = T).
    torch.testing.assert_close(fwd, rev, rtol=1e-5, atol=1e-6)
    snippets = clip_to_input(cfg, clip)
    torch.testing.assert_close(snippets[:, 3], clip[:, :, 3])


def test_tsn_flow_snippets_and_partial_bn():
    from videozoo.models.tsn import TSN, TSNConfig, clip_to_input
    from videozoo.models.two_stream import flow_stack

    cfg = TSNConfig(modality="flow", backbone="small", num_segments=2, frames=12, size=32, num_classes=4)
    clip = torch.rand(1, 3, 12, 32, 32)
    x = clip_to_input(cfg, clip)
    assert x.shape == (1, 2, 10, 32, 32)
    stack = flow_stack(clip)  # segments of 6 frames, centres 3 and 9 -> flow fields 1..5 and 6..10
    torch.testing.assert_close(x[:, 0], stack[:, 2:12])
    torch.testing.assert_close(x[:, 1], stack[:, 12:22])

    model = TSN(replace(cfg, partial_bn=True)).train()
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [bn.running_mean.clone() for bn in bns]
    model(x)
    assert not torch.equal(bns[0].running_mean, before[0])  # the first BN still adapts
    assert all(torch.equal(bn.running_mean, b) for bn, b in zip(bns[1:], before[1:]))

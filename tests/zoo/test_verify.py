"""Tests of videozoo.verify on small throw-away models registered here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from torch import nn

from videozoo import registry
from videozoo.registry import Reported, register_check, register_model
from videozoo import verify
from videozoo.data.synthetic import CLASS_NAMES

pytest.importorskip("pydantic")
from papers_kb.schema import ReproductionRecord  # noqa: E402


@dataclass
class _Conv3dConfig:
    num_classes: int = 10
    width: int = 8
    frames: int = 4
    size: int = 16
    make_nan: bool = False

    @classmethod
    def paper(cls) -> "_Conv3dConfig":
        return cls(num_classes=10, width=12, frames=6, size=20)

    @classmethod
    def tiny(cls) -> "_Conv3dConfig":
        return cls(num_classes=8, width=4, frames=4, size=16)

    def input_shape(self) -> tuple[int, int, int, int]:
        return (3, self.frames, self.size, self.size)


class _Conv3dNet(nn.Module):
    """conv3d 3x3x3 -> BN -> ReLU -> global average pool -> linear; ``x: (B, 3, T, H, W)``."""

    def __init__(self, cfg: _Conv3dConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.conv = nn.Conv3d(3, cfg.width, 3, padding=1)
        self.bn = nn.BatchNorm3d(cfg.width)
        self.fc = nn.Linear(cfg.width, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3, 4))
        out = self.fc(x)
        if self.cfg.make_nan:
            out = out * float("nan")
        return out


def _expected_params(cfg: _Conv3dConfig) -> int:
    w, k = cfg.width, cfg.num_classes
    return (3 * 27 * w + w) + 2 * w + (w * k + k)


def _expected_flops(cfg: _Conv3dConfig) -> int:
    # 2 FLOPs per multiply-add: conv (every output voxel sums 3*27 products) + linear
    w, k, t, s = cfg.width, cfg.num_classes, cfg.frames, cfg.size
    return 2 * (w * t * s * s * 3 * 27 + w * k)


def _register(key: str, alias: str, reported=(), temporal=True, nan=False) -> None:
    if key in registry._REGISTRY:
        return
    cfg_cls = _Conv3dConfig
    if nan:
        @dataclass
        class _NaNConfig(_Conv3dConfig):
            make_nan: bool = True

            @classmethod
            def paper(cls):
                return cls(num_classes=10, width=12, frames=6, size=20)

            @classmethod
            def tiny(cls):
                return cls(num_classes=8, width=4, frames=4, size=16)

        cfg_cls = _NaNConfig
    register_model(key, alias=alias, stage=1, config=cfg_cls, reported=reported, temporal=temporal)(_Conv3dNet)


_register("zztest_conv3d", "zz-conv3d",
          reported=(Reported("params_m", _expected_params(_Conv3dConfig.paper()) / 1e6, "test: exact count",
                             kind="release", tolerance_pct=0.5),
                    Reported("gflops", 0.01, "test: made-up GFLOPs figure", note="not this configuration",
                             kind="paper", tolerance_pct=None)))
_register("zztest_offsize", "zz-offsize", reported=(Reported("params_m", 1.0, "test: far too large", kind="survey",
                                                             tolerance_pct=10.0),))
_register("zztest_nan", "zz-nan", nan=True)
_register("zztest_checked", "zz-checked", temporal=False)
if "reference" not in registry._REGISTRY["zztest_checked"].checks:
    register_check("zztest_checked", "reference", evidence="independent-reference")(
        lambda: {"passed": True, "summary": "ok", "max_abs_diff": 0.0, "tolerance": 1e-6, "reference": "itself"})
    register_check("zztest_checked", "inflation", evidence="self-consistency")(lambda: 1 / 0)


def _load(path) -> dict:
    data = json.loads(path.read_text())
    ReproductionRecord.model_validate(data)
    return data


def _checks(record: dict) -> dict:
    return {c["name"]: c for c in record["checks"]}


def test_builds_and_runs_write_a_valid_record(tmp_path):
    assert verify.main(["zz-conv3d", "--checks", "builds,runs,gpu", "--out", str(tmp_path), "--quiet"]) == 0
    record = _load(tmp_path / "zz-conv3d.json")
    assert record["paper"] == "zztest_conv3d" and record["model"] == "zz-conv3d"
    assert record["command"] == f"python -m videozoo.verify zz-conv3d --checks builds,runs,gpu --out {tmp_path}"
    assert record["source_file"].endswith(".py")
    checks = _checks(record)
    builds, runs = checks["builds"], checks["runs"]
    paper = _Conv3dConfig.paper()
    assert builds["status"] == "passed" and builds["evidence"] == "reported-figure"
    assert builds["measured"]["figures_checked"] == 1  # the GFLOPs figure is of another configuration
    assert builds["measured"]["params"] == _expected_params(paper)
    assert builds["measured"]["flops"] == _expected_flops(paper)
    assert builds["measured"]["input_shape"] == [[1, 3, 6, 20, 20]]
    assert builds["expected"]["params_m"][0]["gap_pct"] == pytest.approx(0.0, abs=0.01)
    assert builds["expected"]["params_m"][0]["within_tolerance"] is True
    assert builds["expected"]["gflops"][0]["within_tolerance"] is None
    assert "GFLOPs" in builds["summary"] and "2 x MACs" in builds["summary"]
    assert runs["status"] == "passed" and runs["evidence"] == "smoke-test"
    assert runs["measured"]["output_shape"] == [2, 8]
    assert runs["measured"]["params"] == _expected_params(_Conv3dConfig.tiny())
    assert runs["measured"]["deterministic"] is True
    if not torch.cuda.is_available():
        assert checks["gpu"]["status"] == "not-run" and checks["gpu"]["reason"] == "no CUDA device"


def test_rerun_changes_only_timing_fields(tmp_path):
    def strip(rec: dict) -> dict:
        rec = dict(rec)
        rec.pop("generated"), rec.pop("environment")
        for c in rec["checks"]:
            c.pop("seconds", None)
            c["measured"].pop("forward_backward_s", None)
        return rec

    verify.main(["zz-conv3d", "--checks", "builds,runs", "--out", str(tmp_path), "--quiet"])
    first = (tmp_path / "zz-conv3d.json").read_text()
    verify.main(["zz-conv3d", "--checks", "builds,runs", "--out", str(tmp_path), "--quiet"])
    second = (tmp_path / "zz-conv3d.json").read_text()
    assert strip(json.loads(first)) == strip(json.loads(second))
    assert list(tmp_path.iterdir()) == [tmp_path / "zz-conv3d.json"]  # no temp file left behind


def test_builds_fails_outside_the_declared_tolerance(tmp_path):
    """A size farther from the reported figure than its declared tolerance fails the check."""
    assert verify.main(["zz-offsize", "--checks", "builds", "--out", str(tmp_path), "--quiet"]) == 1
    builds = _checks(_load(tmp_path / "zz-offsize.json"))["builds"]
    assert builds["status"] == "failed"
    assert builds["measured"]["figures_outside_tolerance"] == 1
    assert "tolerance 10 %, OUTSIDE" in builds["summary"] and "(survey)" in builds["summary"]
    params_m = _expected_params(_Conv3dConfig.paper()) / 1e6
    entry = builds["expected"]["params_m"][0]
    assert entry["gap_pct"] == pytest.approx((params_m - 1.0) * 100, rel=1e-3)
    assert entry["within_tolerance"] is False and entry["kind"] == "survey" and entry["tolerance_pct"] == 10.0


def test_builds_tolerance_is_a_boundary():
    """Within the tolerance passes, just outside fails (the gap is relative to the reported figure)."""
    from videozoo.verify.builds import compare_figure

    measured = {"params_m": 101.0, "gflops": 20.0, "gmacs": 10.0}
    assert compare_figure(measured, Reported("params_m", 100.0, "t", kind="paper", tolerance_pct=1.0))["within_tolerance"]
    assert not compare_figure(measured, Reported("params_m", 100.0, "t", kind="paper",
                                                 tolerance_pct=0.99))["within_tolerance"]
    assert compare_figure(measured, Reported("gmacs", 10.0, "t", kind="paper", tolerance_pct=0.5))["gap_pct"] == 0.0
    assert compare_figure(measured, Reported("gflops", 10.0, "t", kind="paper", tolerance_pct=0.5))["gap_pct"] == 100.0
    with pytest.raises(ValueError, match="kind"):
        Reported("params_m", 1.0, "t", kind="blog", tolerance_pct=1.0)
    with pytest.raises(ValueError, match="needs a note"):
        Reported("params_m", 1.0, "t", kind="paper", tolerance_pct=None)
    with pytest.raises(TypeError):
        Reported("params_m", 1.0, "t")  # kind and tolerance must be declared


def test_builds_without_a_figure_is_unverified_never_passed(tmp_path):
    assert verify.main(["zz-checked", "--checks", "builds", "--out", str(tmp_path), "--quiet"]) == 0
    builds = _checks(_load(tmp_path / "zz-checked.json"))["builds"]
    assert builds["status"] == "unverified" and "no reported figure" in builds["summary"]
    # only a figure of another configuration: still nothing to compare
    rec = verify.verify_model("zz-conv3d", ["builds"], out=None)
    assert _checks(rec)["builds"]["status"] == "passed"
    spec = registry.get_spec("zz-conv3d")
    import dataclasses

    other_only = dataclasses.replace(spec, reported=spec.reported[1:])
    assert verify.check_builds(other_only)["status"] == "unverified"


def test_nan_model_fails_runs(tmp_path):
    assert verify.main(["zz-nan", "--checks", "runs", "--out", str(tmp_path), "--quiet"]) == 1
    runs = _checks(_load(tmp_path / "zz-nan.json"))["runs"]
    assert runs["status"] == "failed"
    assert runs["measured"]["output_finite"] is False
    assert "non-finite" in runs["summary"]


def test_extra_checks_and_errors_are_recorded(tmp_path):
    record = verify.verify_model("zz-checked", ["reference", "inflation"], out=tmp_path)
    checks = _checks(record)
    assert checks["reference"]["status"] == "passed" and checks["reference"]["evidence"] == "independent-reference"
    assert checks["reference"]["measured"] == {"max_abs_diff": 0.0, "tolerance": 1e-6, "reference": "itself"}
    assert checks["inflation"]["status"] == "failed"
    assert "ZeroDivisionError" in checks["inflation"]["summary"]
    assert checks["inflation"]["evidence"] == "self-consistency"  # recorded even when the check errors
    # a model without extra checks records them as not run
    none = _checks(verify.verify_model("zz-conv3d", ["reference"], out=None))["reference"]
    assert none["status"] == "not-run" and none["reason"]


def test_checks_merge_with_an_existing_record(tmp_path):
    verify.verify_model("zz-checked", ["builds"], out=tmp_path)
    record = verify.verify_model("zz-checked", ["reference"], out=tmp_path)
    assert [c["name"] for c in record["checks"]] == ["builds", "reference"]
    assert "--checks builds,reference" in record["command"]


def test_compare_mode_detects_changes(tmp_path):
    verify.main(["zz-conv3d", "--checks", "builds,runs,reference,inflation", "--out", str(tmp_path), "--quiet"])
    assert verify.main(["zz-conv3d", "--compare", str(tmp_path), "--fast", "--quiet"]) == 0
    path = tmp_path / "zz-conv3d.json"
    data = json.loads(path.read_text())
    for c in data["checks"]:
        if c["name"] == "builds":
            c["measured"]["params"] += 1
    path.write_text(json.dumps(data))
    diffs = verify.compare(["zz-conv3d"], tmp_path, log=lambda s: None)
    assert len(diffs) == 1 and "params" in diffs[0]
    assert verify.main(["zz-conv3d", "--compare", str(tmp_path), "--fast", "--quiet"]) == 1
    assert verify.compare(["zz-nan"], tmp_path, log=lambda s: None) == [
        f"zz-nan: no committed record {tmp_path / 'zz-nan.json'}"]


def test_compare_reruns_reference_checks(tmp_path, monkeypatch):
    """A reference record that no longer matches the code fails the comparison: a different
    status or evidence kind, or a measured difference above the check's own tolerance.  The
    difference itself may change in the last bits (other machine, other thread count)."""
    if "zztest_ref" not in registry._REGISTRY:
        _register("zztest_ref", "zz-ref")
    state = {"diff": 1e-7}
    register_check("zztest_ref", "reference", evidence="independent-reference")(
        lambda: {"passed": state["diff"] <= 1e-5, "summary": "vs library", "max_abs_diff": state["diff"],
                 "tolerance": 1e-5})
    verify.verify_model("zz-ref", ["builds", "runs", "reference", "inflation"], out=tmp_path)
    assert verify.compare(["zz-ref"], tmp_path, log=lambda s: None) == []
    state["diff"] = 3e-7  # last-bit noise: same verdict, under the tolerance
    assert verify.compare(["zz-ref"], tmp_path, log=lambda s: None) == []
    state["diff"] = 1e-3  # the model changed: the committed "passed" is stale
    diffs = verify.compare(["zz-ref"], tmp_path, log=lambda s: None)
    assert any("status passed (committed) != failed (now)" in d for d in diffs)
    assert any("exceeds the check's tolerance" in d for d in diffs)
    state["diff"] = 1e-7
    register_check("zztest_ref", "reference", evidence="self-consistency")(
        lambda: {"passed": True, "summary": "vs itself", "max_abs_diff": 0.0, "tolerance": 1e-5})
    diffs = verify.compare(["zz-ref"], tmp_path, log=lambda s: None)
    assert diffs == ["zz-ref/reference: evidence 'independent-reference' (committed) != 'self-consistency' (now)"]


def test_every_registered_name_gets_its_own_record(tmp_path):
    """Variants are verified under their own name, with the paper key; compare wants a record of each."""
    from videozoo.registry import register_variant

    if "zz-conv3d-wide" not in registry._VARIANTS:
        register_variant("zz-conv3d-wide", of="zztest_conv3d", overrides={"width": 6},
                         description="wider convolution (test)")
    try:
        assert "zz-conv3d-wide" in registry.list_names()
        record = verify.verify_model("zz-conv3d-wide", list(verify.FAST_CHECKS), out=tmp_path)
        assert record["model"] == "zz-conv3d-wide" and record["paper"] == "zztest_conv3d"
        assert record["variant"] == "wider convolution (test)"
        assert _checks(record)["builds"]["status"] == "unverified"  # the paper model's figures are not the variant's
        assert (tmp_path / "zz-conv3d-wide.json").exists()
        verify.verify_model("zz-conv3d", list(verify.FAST_CHECKS), out=tmp_path)
        assert verify.compare(["zz-conv3d", "zz-conv3d-wide"], tmp_path, log=lambda s: None) == []
        (tmp_path / "zz-conv3d-wide.json").unlink()
        assert verify.compare(["zz-conv3d", "zz-conv3d-wide"], tmp_path, log=lambda s: None) == [
            f"zz-conv3d-wide: no committed record {tmp_path / 'zz-conv3d-wide.json'}"]
    finally:
        registry._VARIANTS.pop("zz-conv3d-wide", None)


def test_variant_checks_replace_the_paper_models(tmp_path):
    from videozoo.registry import register_variant

    register_variant("zz-checked-v", of="zztest_checked", description="test variant")
    try:
        register_check("zz-checked-v", "inflation", evidence="independent-reference")(
            lambda: {"passed": True, "summary": "variant's own", "max_abs_diff": 0.0, "tolerance": 1e-6})
        spec = registry.get_spec("zz-checked-v")
        assert spec.checks["inflation"].evidence == "independent-reference"
        assert spec.checks["reference"] is registry.get_spec("zz-checked").checks["reference"]
        assert registry.get_spec("zz-checked").checks["inflation"].evidence == "self-consistency"
    finally:
        registry._VARIANTS.pop("zz-checked-v", None)
        registry._VARIANT_CHECKS.pop("zz-checked-v", None)
    with pytest.raises(ValueError, match="evidence must be one of"):
        register_check("zztest_checked", "reference", evidence="reference")
    with pytest.raises(TypeError):
        register_check("zztest_checked", "reference")  # the kind of evidence is required
    with pytest.raises(KeyError, match="not registered"):
        register_check("zz-no-such-model", "reference", evidence="control")


def test_single_seed_motion_records_no_longer_count(tmp_path):
    """A committed motion result without per-seed figures is kept but marked not-run with the reason."""
    verify.verify_model("zz-checked", ["builds"], out=tmp_path)
    path = tmp_path / "zz-checked.json"
    data = json.loads(path.read_text())
    data["checks"].append({"name": "motion", "status": "passed", "summary": "13.0 % held-out top-1",
                           "measured": {"heldout_top1_pct": 13.0}, "expected": {}})
    path.write_text(json.dumps(data))
    record = verify.verify_model("zz-checked", ["runs"], out=tmp_path)
    motion = _checks(record)["motion"]
    assert motion["status"] == "not-run" and "single seed" in motion["reason"]
    assert motion["measured"] == {"heldout_top1_pct": 13.0} and "13.0 %" in motion["summary"]


def test_environment_records_cpu_and_threads():
    env = verify.environment()
    assert env["cpu_model"] and env["torch_threads"] == torch.get_num_threads()


def test_motion_training_loop_mechanics():
    spec = registry.get_spec("zz-checked")
    cfg = registry.make_config("zz-checked", "tiny", num_classes=8)
    m = verify.train_motion(spec, cfg, n_train=64, n_test=40, max_steps=6, batch_size=16)
    assert m["steps"] == 6 and m["clip_shape"] == [3, 4, 16, 16]
    assert 0.0 <= m["heldout_top1_pct"] <= 100.0
    # the held-out accuracy is a multiple of 1/40
    assert (m["heldout_top1_pct"] * 40 / 100) == pytest.approx(round(m["heldout_top1_pct"] * 40 / 100))
    # 40 balanced clips: 5 per class, so the per-class figures average to the overall one
    per_class = m["heldout_per_class_top1_pct"]
    assert list(per_class) == list(CLASS_NAMES)
    assert all(v in (0.0, 20.0, 40.0, 60.0, 80.0, 100.0) for v in per_class.values())
    assert sum(per_class.values()) / 8 == pytest.approx(m["heldout_top1_pct"])


def test_motion_check_uses_model_settings_and_variants(monkeypatch):
    """Settings declared with the model reach the training loop; each seed is recorded; each variant
    is judged on its own worst seed, with its own kind of evidence."""
    if "zztest_variants" not in registry._REGISTRY:
        register_model("zztest_variants", alias="zz-variants", stage=1, config=_Conv3dConfig,
                       motion={"n_train": 64, "n_test": 40, "max_steps": 3, "batch_size": 16, "lr": 1e-3},
                       motion_variants={"narrow": ({"width": 2}, True),
                                        "wide": ({"width": 6}, False, {"max_steps": 4, "lr": 5e-4})})(_Conv3dNet)
    spec = registry.get_spec("zz-variants")
    seen = []
    # main model (3 seeds), "narrow" (3 seeds), "wide" (3 seeds)
    accuracies = iter([95.0, 92.0, 97.0, 95.0, 50.0, 99.0, 20.0, 12.5, 25.0])
    real = verify.train_motion

    def fake_train(spec_, cfg, **kw):
        seen.append((cfg.width, kw))
        m = real(spec_, cfg, **kw)
        m["heldout_top1_pct"] = next(accuracies)  # the verdict logic is what is tested here
        return m

    monkeypatch.setattr(verify.motion, "train_motion", fake_train)
    check = verify.check_motion(spec)
    assert [w for w, _ in seen] == [4, 4, 4, 2, 2, 2, 6, 6, 6]
    assert [kw["seed"] for _, kw in seen] == [0, 1, 2] * 3
    assert all(kw["lr"] == 1e-3 and kw["max_steps"] == 3 and kw["n_train"] == 64 for _, kw in seen[:6])
    # "wide" declares its own schedule on top of the model's settings
    assert all(kw["lr"] == 5e-4 and kw["max_steps"] == 4 and kw["n_train"] == 64 for _, kw in seen[6:])
    m = check["measured"]
    assert m["seeds"] == [0, 1, 2] and [r["heldout_top1_pct"] for r in m["per_seed"]] == [95.0, 92.0, 97.0]
    assert m["heldout_top1_pct_min"] == 92.0 and m["heldout_top1_pct_mean"] == pytest.approx(94.67, abs=0.01)
    assert m["model_passed"] is True  # the model's own seeds all reached 90 %
    assert all(list(r["heldout_per_class_top1_pct"]) == list(CLASS_NAMES) for r in m["per_seed"])
    variants = m["variants"]
    assert variants["narrow"]["passed"] is False and variants["narrow"]["heldout_top1_pct_min"] == 50.0
    assert variants["wide"]["passed"] is True and variants["wide"]["heldout_top1_pct_max"] == 25.0
    assert variants["wide"]["evidence"] == "control" and variants["narrow"]["evidence"] == "training"
    assert variants["wide"]["max_steps"] == 4 and variants["wide"]["lr"] == 5e-4 and variants["narrow"]["max_steps"] == 3
    assert check["status"] == "failed"  # one seed of "narrow" missed the >= 90 % line
    assert check["evidence"] == "training"
    assert "seeds 95.0 / 92.0 / 97.0 %" in check["summary"] and "control: cannot use frame order" in check["summary"]
    # a step budget and seeds given on the command line override the model's own
    accuracies = iter([95.0, 95.0, 20.0])
    seen.clear()
    check = verify.check_motion(spec, max_steps=2, seeds=(7,))
    assert check["status"] == "passed" and all(kw["max_steps"] == 2 and kw["seed"] == 7 for _, kw in seen)
    assert check["measured"]["seeds"] == [7]


def test_order_agnostic_model_is_recorded_as_a_control(monkeypatch):
    spec = registry.get_spec("zz-checked")  # temporal=False
    real = verify.train_motion
    accuracies = iter([12.0, 31.0, 14.0])

    def fake_train(spec_, cfg, **kw):
        m = real(spec_, cfg, **{**kw, "n_train": 32, "n_test": 16, "max_steps": 1, "batch_size": 16})
        m["heldout_top1_pct"] = next(accuracies)
        return m

    monkeypatch.setattr(verify.motion, "train_motion", fake_train)
    check = verify.check_motion(spec)
    assert check["evidence"] == "control" and check["status"] == "failed"  # one seed above 30 %
    assert check["measured"]["heldout_top1_pct_max"] == 31.0
    assert "control: cannot use frame order" in check["summary"]
    with pytest.raises(ValueError, match="at least one seed"):
        verify.check_motion(spec, seeds=())


def test_motion_can_start_from_a_frame_trained_image_model():
    """image_pretrain_steps: the image model trains on single frames, then its weights seed the video model."""
    import dataclasses

    from videozoo.models.timesformer import init_from_vit

    spec = registry.get_spec("timesformer")
    cfg = registry.make_config("timesformer", "tiny", num_classes=8)
    sd, pm = verify.pretrain_image(spec, cfg, steps=3, n_train=64, n_test=20, batch_size=16)
    assert pm["model"] == "vit" and pm["steps"] == 3 and pm["chance_pct"] == pytest.approx(100 / 12)
    assert sd["head.weight"].shape == (12, cfg.embed_dim)  # orientation bins, not motion classes
    loaded = []

    def init(model, state_dict):
        loaded.append(state_dict)
        return init_from_vit(model, state_dict)

    spec = dataclasses.replace(spec, image_init=(spec.image_init[0], init))
    m = verify.train_motion(spec, cfg, n_train=32, n_test=16, max_steps=1, batch_size=16, image_pretrain_steps=2)
    assert len(loaded) == 1 and m["image_pretrain"]["steps"] == 2
    assert 0.0 <= m["image_pretrain"]["heldout_top1_pct"] <= 100.0
    # without pre-training nothing is loaded and nothing is recorded
    m = verify.train_motion(spec, cfg, n_train=32, n_test=16, max_steps=1, batch_size=16)
    assert len(loaded) == 1 and "image_pretrain" not in m
    with pytest.raises(ValueError, match="image_init"):
        verify.pretrain_image(registry.get_spec("zz-checked"), registry.make_config("zz-checked", "tiny"), steps=3)


def test_image_model_is_trained_once_per_check(monkeypatch):
    """train_motion with a shared image_cache: one pre-training per image config, steps and seed,
    and training the video model leaves the cached image weights untouched."""
    import dataclasses

    spec = registry.get_spec("timesformer")
    cfg = registry.make_config("timesformer", "tiny", num_classes=8)
    real, calls = verify.pretrain_image, []

    def counted(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(verify.motion, "pretrain_image", counted)
    cache: dict = {}
    kw = dict(n_train=32, n_test=16, max_steps=2, batch_size=16, image_cache=cache)
    a = verify.train_motion(spec, cfg, image_pretrain_steps=2, **kw)
    (image_sd, _), = cache.values()
    before = {k: v.clone() for k, v in image_sd.items()}
    b = verify.train_motion(spec, dataclasses.replace(cfg, attention="joint"), image_pretrain_steps=2, **kw)
    assert calls == [2] and a["image_pretrain"] == b["image_pretrain"]
    assert all(torch.equal(before[k], v) for k, v in image_sd.items())
    verify.train_motion(spec, cfg, image_pretrain_steps=3, **kw)  # other steps: a new image model
    assert calls == [2, 3] and len(cache) == 2


def test_motion_variant_shape_is_checked():
    with pytest.raises(ValueError, match="motion variant 'bad'"):
        register_model("zztest_badvariant", alias="zz-badvariant", stage=1, config=_Conv3dConfig,
                       motion_variants={"bad": ({"width": 2},)})


def test_clip_shape_conventions():
    spec = registry.get_spec("zz-conv3d")

    class Seg:
        def input_shape(self):
            return (8, 3, 32, 32)

    class Img:
        num_frames = 5

        def input_shape(self):
            return (3, 32, 32)

    class Flow:
        def input_shape(self):
            return (14, 32, 32)

    assert verify.clip_shape(_Conv3dConfig(), spec) == (3, 4, 16, 16)
    assert verify.clip_shape(Seg(), spec) == (3, 8, 32, 32)
    assert verify.clip_shape(Img(), spec) == (3, 5, 32, 32)
    assert verify.clip_shape(Flow(), spec) == (3, 8, 32, 32)


def test_precise_bn_recomputes_running_statistics():
    """Running statistics become the average over the given batches; weights do not change."""
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm1d(3)
    bn.running_mean.fill_(5.0)
    x = torch.randn(64, 3) * 2 + torch.tensor([1.0, -1.0, 0.5])
    w = bn.weight.detach().clone()
    assert verify.precise_bn(bn, (x,), batch_size=16, batches=4) == 1
    expected = torch.stack([x[i * 16:(i + 1) * 16].mean(0) for i in range(4)]).mean(0)
    assert torch.allclose(bn.running_mean, expected, atol=1e-6)
    assert torch.equal(bn.weight, w) and bn.momentum == 0.1
    assert verify.precise_bn(torch.nn.Linear(3, 3), (x,)) == 0


def test_independent_references_import_nothing_from_videozoo():
    """videozoo.references restates papers: its modules import torch and the standard library only."""
    import ast
    import pkgutil
    import sys

    import videozoo.references as refs

    modules = [m.name for m in pkgutil.iter_modules(refs.__path__)]
    assert {"c3d", "tsm", "two_stream", "uniformer", "video_chatgpt", "videochat"} <= set(modules)
    allowed = {"torch", "__future__"} | set(sys.stdlib_module_names)
    for name in modules:
        tree = ast.parse((Path(refs.__path__[0]) / f"{name}.py").read_text())
        imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in imported if m.split(".")[0] not in allowed], (name, imported)


def test_reference_shift_loop_catches_a_wrong_direction():
    """The loop restatement is not a copy of the model: a shift in the wrong direction differs."""
    from videozoo.models.tsm import temporal_shift
    from videozoo.references.tsm import shift_loop

    x = torch.randn(2 * 4, 16, 2, 2)
    assert torch.equal(temporal_shift(x, 4, 8, False), shift_loop(x, 4, 8, False))
    flipped = temporal_shift(x.view(2, 4, 16, 2, 2).flip(1).reshape(8, 16, 2, 2), 4, 8, False)
    flipped = flipped.view(2, 4, 16, 2, 2).flip(1).reshape(8, 16, 2, 2)  # shifts the other way round
    assert not torch.equal(flipped, shift_loop(x, 4, 8, False))


def test_committed_passed_reference_checks_carry_a_recheckable_diff():
    """`verify --compare` re-checks a passed reference/inflation check through its numeric
    ``max_abs_diff`` and ``tolerance``; a record without them fails CI, so catch it here first."""
    import json
    from pathlib import Path

    missing = []
    for path in sorted(Path(__file__).resolve().parents[2].joinpath("data", "reproduction").glob("*.json")):
        for check in json.loads(path.read_text())["checks"]:
            if check["name"] in ("reference", "inflation") and check["status"] == "passed":
                m = check.get("measured", {})
                if not all(isinstance(m.get(k), (int, float)) for k in ("max_abs_diff", "tolerance")):
                    missing.append(f"{path.name}/{check['name']}")
    assert not missing, missing

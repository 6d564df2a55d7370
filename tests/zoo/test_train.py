"""Tests of videozoo.train: a single-process epoch and a 2-process DDP run (gloo, CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]

# A tiny model registered from its own module, so that torchrun's worker processes can import it.
TOY_MODULE = textwrap.dedent('''
    from dataclasses import dataclass
    import torch
    from torch import nn
    from videozoo.registry import register_model, _REGISTRY

    @dataclass
    class ToyConfig:
        num_classes: int = 8
        width: int = 6
        frames: int = 4
        size: int = 16

        @classmethod
        def paper(cls):
            return cls()

        @classmethod
        def tiny(cls):
            return cls()

        def input_shape(self):
            return (3, self.frames, self.size, self.size)

    class Toy(nn.Module):
        def __init__(self, cfg):
            super().__init__()
            self.conv = nn.Conv3d(3, cfg.width, 3, padding=1)
            self.bn = nn.BatchNorm3d(cfg.width)
            self.fc = nn.Linear(cfg.width, cfg.num_classes)

        def forward(self, x):  # x: (B, 3, T, H, W)
            return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3, 4)))

    if "zztest_toy_train" not in _REGISTRY:
        register_model("zztest_toy_train", alias="zz-toy-train", stage=1, config=ToyConfig)(Toy)
''')


@pytest.fixture()
def toy_module(tmp_path, monkeypatch):
    (tmp_path / "zz_toy_train.py").write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    importlib.import_module("zz_toy_train")
    return tmp_path


def test_train_one_epoch_and_checkpoint(toy_module, tmp_path):
    from videozoo import create
    from videozoo.train import main, train

    result = train("zz-toy-train", epochs=1, batch_size=16, n_train=64, n_val=32, out=tmp_path / "ckpt", log=False)
    assert len(result["history"]) == 1 and result["world_size"] == 1
    row = result["history"][0]
    assert row["loss"] > 0 and 0.0 <= row["val_top1_pct"] <= 100.0
    ckpt = torch.load(result["checkpoint"], weights_only=True)
    assert ckpt["model"] == "zz-toy-train" and ckpt["config"]["num_classes"] == 8
    fresh = create("zz-toy-train", "tiny")
    fresh.load_state_dict(ckpt["state_dict"])
    for (name, p), q in zip(result["model"].named_parameters(), fresh.parameters()):
        assert torch.equal(p.detach(), q.detach()), name
    # training moved the weights away from the seeded initialisation
    torch.manual_seed(0)
    init = create("zz-toy-train", "tiny")
    assert not torch.equal(init.fc.weight, fresh.fc.weight)
    # the CLI runs too
    assert main(["zz-toy-train", "--epochs", "1", "--n-train", "32", "--n-val", "16", "--batch-size", "16",
                 "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "zz-toy-train_tiny.pt").exists()


def test_ddp_two_cpu_processes_end_with_identical_parameters(toy_module, tmp_path):
    out = tmp_path / "ddp"
    out.mkdir()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(toy_module), str(REPO), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""  # gloo on CPU even on a GPU machine
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc-per-node", "2",
           "-m", "videozoo.train", "zz-toy-train", "--import", "zz_toy_train", "--epochs", "2",
           "--n-train", "64", "--n-val", "32", "--batch-size", "8", "--max-steps-per-epoch", "3",
           "--out", str(out), "--save-params", str(out)]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count("epoch 2/2") == 1  # rank 0 only logs
    assert "2 processes" in proc.stdout
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    assert r0.keys() == r1.keys() and len(r0) == 6
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    # the ranks saw different data shards, so identical weights mean gradients were averaged;
    # and the weights did change from the shared initialisation
    from videozoo import create

    import zz_toy_train  # noqa: F401

    torch.manual_seed(0)
    init = dict(create("zz-toy-train", "tiny").named_parameters())
    assert not torch.equal(init["fc.weight"].detach(), r0["fc.weight"])
    assert (out / "zz-toy-train_tiny.pt").exists()


def test_train_on_a_folder_of_videos(toy_module, tmp_path):
    pytest.importorskip("av")
    from videozoo.data.decode import write_video
    from videozoo.train import build_datasets, train
    from videozoo.registry import get_spec, make_config

    root = tmp_path / "videos"
    gen = torch.Generator().manual_seed(0)
    for c, cls in enumerate(("dark", "bright")):
        (root / cls).mkdir(parents=True)
        for i in range(5):
            base = 40 + 160 * c
            frames = (base + 20 * torch.rand(10, 16, 16, 3, generator=gen)).to(torch.uint8)
            write_video(root / cls / f"{i}.mkv", frames, codec="ffv1")
    spec, cfg = get_spec("zz-toy-train"), make_config("zz-toy-train", "tiny")
    train_set, val_set, num_classes = build_datasets(spec, cfg, str(root))
    assert num_classes == 2 and len(train_set) == 8 and len(val_set) == 2  # 80/20 split
    clip, label = train_set[0]
    assert clip.shape == (3, 4, 16, 16) and label in (0, 1)
    result = train("zz-toy-train", data=str(root), epochs=3, batch_size=4, lr=1e-2, out=None, log=False)
    assert result["model"].fc.out_features == 2 and len(result["history"]) == 3


# ------------------------------------------------------------------ GPU switches, tested on the CPU


def _toy(width: int = 6, seed: int = 0):
    import zz_toy_train

    torch.manual_seed(seed)
    return zz_toy_train.Toy(zz_toy_train.ToyConfig(width=width))


def _batch(n: int, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 4, 16, 16, generator=gen), torch.randint(0, 8, (n,), generator=gen)


def test_accumulating_two_micro_batches_equals_one_batch_of_twice_the_size(toy_module):
    from videozoo.train import backward_micro_batches

    cpu = torch.device("cpu")
    x, y = _batch(8)
    one, two = _toy().eval(), _toy().eval()  # eval: BatchNorm uses running statistics, so batches are independent
    loss_one = backward_micro_batches(one, [[x, y]], cpu)
    loss_two = backward_micro_batches(two, [[x[:4], y[:4]], [x[4:], y[4:]]], cpu)
    assert loss_one == pytest.approx(loss_two, rel=1e-5)
    for (name, p), q in zip(one.named_parameters(), two.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-7, msg=name)
    # and it is not vacuous: one micro-batch alone gives other gradients
    half = _toy().eval()
    backward_micro_batches(half, [[x[:4], y[:4]]], cpu)
    assert not torch.allclose(half.fc.weight.grad, one.fc.weight.grad)


def test_clipping_bounds_the_gradient_norm(toy_module):
    from videozoo.train import backward_micro_batches, clip_gradients

    model = _toy()
    x, y = _batch(8)
    backward_micro_batches(model, [[x * 100, y]], torch.device("cpu"))
    for p in model.parameters():
        p.grad.mul_(1000)  # a large gradient
    before = clip_gradients(model, None)
    assert before > 1.0
    assert clip_gradients(model, 1.0) == pytest.approx(before, rel=1e-5)  # returns the norm before clipping
    after = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert after <= 1.0 + 1e-5


def test_bf16_autocast_runs_matmuls_in_bfloat16_and_training_stays_finite(toy_module):
    from videozoo.train import autocast, train

    cpu = torch.device("cpu")
    with autocast(cpu, "bf16"):
        out = _toy()(_batch(2)[0])
    assert out.dtype == torch.bfloat16
    with autocast(cpu, None):
        assert _toy()(_batch(2)[0]).dtype == torch.float32
    with pytest.raises(ValueError, match="amp"):
        autocast(cpu, "fp8")
    result = train("zz-toy-train", epochs=1, batch_size=8, n_train=32, n_val=16, out=None, log=False, amp="bf16")
    assert torch.isfinite(torch.tensor(result["history"][0]["loss"])) and result["switches"]["amp"] == "bf16"


def test_compile_gives_the_eager_outputs(toy_module):
    from videozoo.train import train

    model = _toy().eval()
    compiled = torch.compile(model, backend="aot_eager")
    x = _batch(2)[0]
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))
    # the training loop with a compiled model: same first-epoch loss as eager
    kw = dict(epochs=1, batch_size=8, n_train=32, n_val=16, out=None, log=False, max_steps_per_epoch=2)
    eager = train("zz-toy-train", **kw)
    comp = train("zz-toy-train", compile="aot_eager", **kw)
    assert comp["switches"]["compile"] == "aot_eager"
    assert comp["history"][0]["loss"] == pytest.approx(eager["history"][0]["loss"], rel=1e-4)


def test_channels_last_converts_weights_and_inputs_without_changing_outputs(toy_module):
    from videozoo.train import prepare_model, to_device

    cpu = torch.device("cpu")
    ref = _toy().eval()
    model = prepare_model(_toy(), cpu, channels_last=True).eval()
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    x, y = _batch(2)
    xc, yc = to_device([x, y], cpu, torch.channels_last_3d)
    assert xc.is_contiguous(memory_format=torch.channels_last_3d) and torch.equal(yc, y)
    with torch.no_grad():
        torch.testing.assert_close(model(xc), ref(x), rtol=1e-5, atol=1e-6)
    # 2-D inputs get channels_last
    img = to_device([torch.rand(2, 3, 8, 8)], cpu, torch.channels_last)[0]
    assert img.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("name", ["vit", "timesformer", "video_swin"])
def test_gradient_checkpointing_saves_fewer_activations_with_the_same_gradients(name):
    from videozoo import create, get_spec, make_config
    from videozoo.train import prepare_model
    from videozoo.verify import model_input

    cpu = torch.device("cpu")
    cfg = make_config(name, "tiny")
    inp = model_input(get_spec(name), cfg, 2, torch.Generator().manual_seed(0))
    grads, saved = [], []
    for enabled in (False, True):
        torch.manual_seed(0)
        model = prepare_model(create(name, cfg), cpu, grad_checkpointing=enabled)
        assert model.grad_checkpointing is enabled
        count = [0]

        def pack(t):
            count[0] += 1
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(*inp)
        saved.append(count[0])
        out.float().pow(2).sum().backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None})
    assert saved[1] < saved[0] / 2  # the blocks' activations are recomputed, not stored
    assert grads[0].keys() == grads[1].keys()
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], rtol=1e-5, atol=1e-6, msg=k)


def test_switches_a_model_or_device_does_not_support_are_errors(toy_module):
    from videozoo.train import prepare_model, train

    with pytest.raises(ValueError, match="set_grad_checkpointing"):
        prepare_model(_toy(), torch.device("cpu"), grad_checkpointing=True)
    with pytest.raises(ValueError, match="SyncBatchNorm needs CUDA"):
        prepare_model(_toy(), torch.device("cpu"), sync_bn=True)
    with pytest.raises(ValueError, match="accumulate"):
        train("zz-toy-train", accumulate=0, out=None, log=False)


def test_sync_batchnorm_conversion():
    """What prepare_model does under multi-GPU DDP (the conversion itself runs on any device)."""
    from torch import nn

    model = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4)))
    assert isinstance(model[1], nn.SyncBatchNorm)


def test_workers_accumulation_and_clipping_in_the_training_loop(toy_module, monkeypatch):
    import videozoo.train as vt

    kw = dict(epochs=1, batch_size=4, n_train=32, n_val=16, out=None, log=False, lr=1e-2)
    plain = vt.train("zz-toy-train", accumulate=2, **kw)
    workers = vt.train("zz-toy-train", accumulate=2, num_workers=2, **kw)
    # same data order and arithmetic with worker processes: same result
    assert workers["history"][0]["loss"] == pytest.approx(plain["history"][0]["loss"], rel=1e-5)
    assert workers["switches"]["num_workers"] == 2 and workers["switches"]["pin_memory"] is False  # CPU run
    for p, q in zip(plain["model"].parameters(), workers["model"].parameters()):
        torch.testing.assert_close(p, q)
    # every optimiser step (32 clips / 4 per micro-batch / 2 micro-batches = 4) clips before it steps
    real, after = vt.clip_gradients, []

    def spy(model, max_norm):
        norm = real(model, max_norm)
        after.append(real(model, None))
        return norm

    monkeypatch.setattr(vt, "clip_gradients", spy)
    clipped = vt.train("zz-toy-train", accumulate=2, clip_grad_norm=1e-3, **kw)
    assert len(after) == 4 and max(after) <= 1e-3 * (1 + 1e-4)
    assert clipped["history"][0]["grad_norm_max"] > 1e-3  # the norms before clipping were larger

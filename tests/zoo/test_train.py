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

"""Small train/eval loop for any registered videozoo model; ``torchrun``-ready.

Usage::

    python -m videozoo.train MODEL [--config tiny|paper] [--data synthetic|PATH] [--epochs E]
                             [--batch-size B] [--lr LR] [--out DIR]
    torchrun --nproc-per-node 2 -m videozoo.train tsm --data synthetic --epochs 3

``--data synthetic`` trains on the synthetic motion dataset (:mod:`videozoo.data.synthetic`)
at the config's clip size; ``--data PATH`` expects ``PATH/train/<class>/<video>`` and
``PATH/val/<class>/<video>`` (or a single ``PATH/<class>/<video>`` folder, split 80/20 by a
seeded permutation), decoded with PyAV and sampled with TSN segment sampling
(arXiv 1608.00859 Sec. 3.2; random offsets in training, segment centres in evaluation).

Launched by ``torchrun`` (``WORLD_SIZE > 1``), the script runs distributed data parallel:
``init_process_group`` with ``nccl`` on GPUs and ``gloo`` on CPUs, a ``DistributedSampler``
per split, gradients averaged by :class:`~torch.nn.parallel.DistributedDataParallel`,
accuracy summed over ranks, and only rank 0 prints and saves. The loss is cross-entropy,
the optimiser AdamW with cosine decay; the checkpoint ``<out>/<alias>_<config>.pt`` holds the
model state dict, the config as a dict, the epoch and the last held-out top-1.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset, TensorDataset

from videozoo.registry import ModelSpec, get_spec, make_config

__all__ = ["build_datasets", "train", "main"]


class _ToModelInput(Dataset):
    """Wrap a clip dataset so items become ``(*model_inputs, label)`` via ``clip_to_input``."""

    def __init__(self, base: Dataset, spec: ModelSpec, config: Any) -> None:
        self.base, self.spec, self.config = base, spec, config

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> tuple:
        clip, label = self.base[i]
        inp = self.spec.clip_to_input(self.config, clip[None])
        inp = tuple(inp) if isinstance(inp, (tuple, list)) else (inp,)
        return (*(x[0] for x in inp), label)


def build_datasets(spec: ModelSpec, config: Any, data: str, n_train: int = 1600, n_val: int = 400,
                   seed: int = 0) -> tuple[Dataset, Dataset, int]:
    """Train and held-out datasets whose items are ``(*model_inputs, label)``.

    Args:
        spec, config: The model and its config (clip size from ``config``).
        data: ``"synthetic"`` or a folder of videos (see the module docstring).
        n_train, n_val: Sizes of the synthetic splits.

    Returns:
        ``(train_set, val_set, num_classes)``.

    Raises:
        FileNotFoundError: if ``data`` is neither ``"synthetic"`` nor a folder with videos.
    """
    from videozoo.verify import clip_shape

    _, T, H, W = clip_shape(config, spec)
    if data == "synthetic":
        from videozoo.data.synthetic import NUM_CLASSES, make_motion_dataset

        size = max(H, W)
        xs, ys = make_motion_dataset(n_train, frames=T, size=size, seed=seed + 1)
        xv, yv = make_motion_dataset(n_val, frames=T, size=size, seed=seed + 2)
        train_set: Dataset = TensorDataset(xs[..., :H, :W], ys)
        val_set: Dataset = TensorDataset(xv[..., :H, :W], yv)
        num_classes = NUM_CLASSES
    else:
        from videozoo.data.decode import VideoFolder
        from videozoo.data.sampling import SegmentSampler

        root = Path(data)
        if (root / "train").is_dir() and (root / "val").is_dir():
            train_set = VideoFolder(root / "train", SegmentSampler(T, train=True), size=(H, W))
            val_set = VideoFolder(root / "val", SegmentSampler(T, train=False), size=(H, W))
            num_classes = len(train_set.classes)
        else:
            full_train = VideoFolder(root, SegmentSampler(T, train=True), size=(H, W))
            full_val = VideoFolder(root, SegmentSampler(T, train=False), size=(H, W))
            perm = torch.randperm(len(full_train), generator=torch.Generator().manual_seed(seed)).tolist()
            n_v = max(1, len(perm) // 5)
            train_set, val_set = Subset(full_train, perm[n_v:]), Subset(full_val, perm[:n_v])
            num_classes = len(full_train.classes)
    if spec.clip_to_input is not None:
        train_set, val_set = _ToModelInput(train_set, spec, config), _ToModelInput(val_set, spec, config)
    return train_set, val_set, num_classes


def _setup_distributed() -> tuple[int, int, torch.device]:
    """Initialise the process group under torchrun; return (rank, world_size, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    else:
        rank, world = 0, 1
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    else:
        device = torch.device("cpu")
    return rank, world, device


def train(
    model_name: str,
    config: str = "tiny",
    data: str = "synthetic",
    epochs: int = 5,
    batch_size: int = 32,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    out: str | os.PathLike | None = "runs",
    n_train: int = 1600,
    n_val: int = 400,
    seed: int = 0,
    max_steps_per_epoch: int | None = None,
    log: bool = True,
) -> dict:
    """Train a registered model and evaluate it after every epoch.

    Args:
        model_name: Paper key or alias. config: ``"tiny"`` or ``"paper"``.
        data: ``"synthetic"`` or a video folder. epochs, batch_size (per process), lr,
            weight_decay: optimisation settings (AdamW, cosine decay, no warm-up).
        out: Folder of the checkpoint (``None``: do not save).
        n_train, n_val: Synthetic split sizes. seed: Seed of data, init and shuffling.
        max_steps_per_epoch: Optional cap on steps per epoch (for quick tests).
        log: Print per-epoch lines on rank 0.

    Returns:
        ``{"history": [{"epoch", "loss", "val_top1_pct", "seconds"}], "checkpoint": path or None,
        "rank": r, "world_size": w, "model": nn.Module (unwrapped)}``.
    """
    rank, world, device = _setup_distributed()
    spec = get_spec(model_name)
    cfg = make_config(model_name, config)
    train_set, val_set, num_classes = build_datasets(spec, cfg, data, n_train=n_train, n_val=n_val, seed=seed)
    if getattr(cfg, "num_classes", None) != num_classes:
        cfg = dataclasses.replace(cfg, num_classes=num_classes)

    torch.manual_seed(seed)  # identical initial weights on every rank (DDP also broadcasts them)
    model = spec.builder(cfg).to(device)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    train_sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=seed) \
        if world > 1 else None
    val_sampler = DistributedSampler(val_set, num_replicas=world, rank=rank, shuffle=False) if world > 1 else None
    gen = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(train_set, batch_size=batch_size, sampler=train_sampler,
                              shuffle=train_sampler is None, generator=gen, drop_last=True)
    val_loader = DataLoader(val_set, batch_size=batch_size, sampler=val_sampler, shuffle=False)

    steps_per_epoch = len(train_loader) if max_steps_per_epoch is None else min(len(train_loader), max_steps_per_epoch)
    total = max(1, epochs * steps_per_epoch)
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))

    history = []
    for epoch in range(1, epochs + 1):
        if train_sampler is not None:
            train_sampler.set_epoch(epoch)
        net.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros(2, device=device)  # (sum of losses, batches)
        for step, batch in enumerate(train_loader):
            if step >= steps_per_epoch:
                break
            *inputs, target = (b.to(device) for b in batch)
            loss = nn.functional.cross_entropy(net(*inputs), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += torch.stack([loss.detach(), torch.ones((), device=device)])
        stats = torch.zeros(2, device=device)  # (correct, seen) on the held-out split
        net.eval()
        with torch.no_grad():
            for batch in val_loader:
                *inputs, target = (b.to(device) for b in batch)
                pred = net(*inputs).argmax(1)
                stats += torch.stack([(pred == target).sum().float(), torch.tensor(float(target.numel()), device=device)])
        if world > 1:
            dist.all_reduce(loss_sum)
            dist.all_reduce(stats)
        row = {"epoch": epoch, "loss": (loss_sum[0] / loss_sum[1].clamp(min=1)).item(),
               "val_top1_pct": (100 * stats[0] / stats[1].clamp(min=1)).item(), "seconds": time.perf_counter() - t0}
        history.append(row)
        if rank == 0 and log:
            print(f"epoch {epoch}/{epochs}: train loss {row['loss']:.4f}, held-out top-1 {row['val_top1_pct']:.1f} % "
                  f"({row['seconds']:.1f} s, {world} process{'es' if world > 1 else ''})", flush=True)

    ckpt = None
    if out is not None and rank == 0:
        Path(out).mkdir(parents=True, exist_ok=True)
        ckpt = Path(out) / f"{spec.alias}_{config}.pt"
        torch.save({"model": spec.alias, "paper": spec.key, "config": dataclasses.asdict(cfg),
                    "state_dict": model.state_dict(), "epoch": epochs, "history": history}, ckpt)
        if log:
            print(f"saved {ckpt}", flush=True)
    return {"history": history, "checkpoint": str(ckpt) if ckpt else None, "rank": rank, "world_size": world,
            "model": model}


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m videozoo.train", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="paper key or alias")
    p.add_argument("--config", choices=("tiny", "paper"), default="tiny")
    p.add_argument("--data", default="synthetic", help="'synthetic' or a folder of videos")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32, help="per process")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--n-train", type=int, default=1600, help="synthetic training clips")
    p.add_argument("--n-val", type=int, default=400, help="synthetic held-out clips")
    p.add_argument("--max-steps-per-epoch", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs", help="checkpoint folder")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (a file registering extra models); repeatable")
    p.add_argument("--save-params", default=None, metavar="DIR",
                   help="write every rank's final parameters to DIR/rank<r>.pt (to check DDP replicas agree)")
    args = p.parse_args(argv)
    import importlib

    for module in args.imports:
        importlib.import_module(module)
    result = train(args.model, config=args.config, data=args.data, epochs=args.epochs, batch_size=args.batch_size,
                   lr=args.lr, weight_decay=args.weight_decay, out=args.out, n_train=args.n_train,
                   n_val=args.n_val, seed=args.seed, max_steps_per_epoch=args.max_steps_per_epoch)
    if args.save_params:
        state = {k: v.detach().cpu() for k, v in result["model"].named_parameters()}
        torch.save(state, Path(args.save_params) / f"rank{result['rank']}.pt")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())

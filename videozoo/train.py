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
model state dict, the config as a dict, the epoch, the history and the switches in effect.

Switches for GPU training (each tested on the CPU): ``--amp bf16`` (bfloat16 autocast),
``--compile [BACKEND]`` (``torch.compile``), ``--channels-last`` (``channels_last`` /
``channels_last_3d`` weights and inputs), ``--grad-checkpointing`` (models with
``set_grad_checkpointing``, as in timm), ``--workers N`` (DataLoader workers; host memory is
pinned on CUDA and batches are copied with ``non_blocking=True``), SyncBatchNorm under
multi-GPU DDP (``--no-sync-bn`` to keep BatchNorm), ``--clip-grad-norm NORM`` and
``--accumulate K`` (K micro-batches per optimiser step).
"""

from __future__ import annotations

import argparse
import contextlib
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

__all__ = ["build_datasets", "prepare_model", "to_device", "autocast", "backward_micro_batches", "clip_gradients",
           "train", "main"]


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


def _memory_format(model: nn.Module) -> torch.memory_format:
    """``channels_last_3d`` for a model with 3-D convolutions, else ``channels_last``."""
    return torch.channels_last_3d if any(isinstance(m, nn.Conv3d) for m in model.modules()) else torch.channels_last


def prepare_model(model: nn.Module, device: torch.device, *, channels_last: bool = False,
                  grad_checkpointing: bool = False, sync_bn: bool = False) -> nn.Module:
    """Apply the training switches that change the model itself, then move it to ``device``.

    Args:
        model: The freshly built model.
        device: Where it trains.
        channels_last: Store weights in ``channels_last`` (2-D convolutions) or
            ``channels_last_3d`` (a model with 3-D convolutions) memory format, which GPU
            convolution kernels prefer; inputs are converted by :func:`to_device`.
        grad_checkpointing: Call the model's ``set_grad_checkpointing(True)`` (as timm models
            do): blocks recompute their activations in the backward pass.
        sync_bn: Replace BatchNorm layers by :class:`torch.nn.SyncBatchNorm` (statistics over
            all processes of a DDP run); only on CUDA, where PyTorch supports it.

    Returns:
        The model (converted in place where possible).

    Raises:
        ValueError: ``grad_checkpointing`` for a model without ``set_grad_checkpointing``, or
            ``sync_bn`` on a non-CUDA device.
    """
    if grad_checkpointing:
        if not hasattr(model, "set_grad_checkpointing"):
            raise ValueError(f"{type(model).__name__} has no set_grad_checkpointing(): gradient checkpointing is "
                             "implemented for the long-token transformers (ViT, TimeSformer, Video Swin)")
        model.set_grad_checkpointing(True)
    if sync_bn:
        if device.type != "cuda":
            raise ValueError(f"SyncBatchNorm needs CUDA devices (PyTorch's DDP rejects it on {device.type})")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=_memory_format(model))
    return model


def to_device(batch: tuple | list, device: torch.device, memory_format: torch.memory_format | None = None) -> list:
    """Copy a batch to ``device`` with ``non_blocking=True`` (overlaps with compute when the
    DataLoader pins memory); 4-D / 5-D float inputs are converted to ``memory_format`` when given
    (``channels_last`` applies to 4-D, ``channels_last_3d`` to 5-D tensors)."""
    out = []
    for t in batch:
        t = t.to(device, non_blocking=True)
        if memory_format is not None and t.is_floating_point():
            if t.dim() == 5 and memory_format == torch.channels_last_3d:
                t = t.contiguous(memory_format=torch.channels_last_3d)
            elif t.dim() == 4:
                t = t.contiguous(memory_format=torch.channels_last)
        out.append(t)
    return out


def autocast(device: torch.device, amp: str | None):
    """Autocast context: ``amp="bf16"`` runs matmuls and convolutions in bfloat16 (on CPU and
    GPU; no loss scaling is needed for bf16), ``None`` disables it.

    Raises:
        ValueError: for another ``amp`` value.
    """
    if amp not in (None, "bf16"):
        raise ValueError(f"amp must be None or 'bf16', got {amp!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp == "bf16")


def backward_micro_batches(net: nn.Module, micro_batches: list[list[torch.Tensor]], device: torch.device,
                           amp: str | None = None) -> float:
    """Accumulate gradients over micro-batches as one batch of their combined size.

    Each micro-batch's mean cross-entropy is divided by the number of micro-batches, so for
    equal micro-batch sizes the summed gradients equal those of the mean loss over all their
    samples.  Under DDP, gradients are all-reduced only at the last micro-batch
    (``no_sync`` before).

    Args:
        net: The model (possibly DDP-wrapped or compiled).
        micro_batches: Each ``[*inputs, target]`` on ``device``.
        device: For autocast. amp: See :func:`autocast`.

    Returns:
        The mean loss over the micro-batches.
    """
    n = len(micro_batches)
    total = 0.0
    for i, batch in enumerate(micro_batches):
        *inputs, target = batch
        sync = contextlib.nullcontext() if i == n - 1 or not hasattr(net, "no_sync") else net.no_sync()
        with sync:
            with autocast(device, amp):
                out = net(*inputs)
            loss = nn.functional.cross_entropy(out.float(), target) / n
            loss.backward()
        total += loss.item()
    return total


def clip_gradients(model: nn.Module, max_norm: float | None) -> float:
    """Clip the global L2 norm of all gradients to ``max_norm`` (``None``: no clipping).

    Returns:
        The total gradient norm before clipping.
    """
    params = [p for p in model.parameters() if p.grad is not None]
    if max_norm is None:
        return float(torch.linalg.vector_norm(torch.stack([p.grad.detach().float().norm() for p in params]))) \
            if params else 0.0
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))


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
    amp: str | None = None,
    compile: bool | str = False,
    channels_last: bool = False,
    grad_checkpointing: bool = False,
    num_workers: int = 0,
    pin_memory: bool | None = None,
    sync_bn: bool | None = None,
    clip_grad_norm: float | None = None,
    accumulate: int = 1,
) -> dict:
    """Train a registered model and evaluate it after every epoch.

    Args:
        model_name: Paper key or alias. config: ``"tiny"`` or ``"paper"``.
        data: ``"synthetic"`` or a video folder. epochs, batch_size (micro-batch per process), lr,
            weight_decay: optimisation settings (AdamW, cosine decay, no warm-up).
        out: Folder of the checkpoint (``None``: do not save).
        n_train, n_val: Synthetic split sizes. seed: Seed of data, init and shuffling.
        max_steps_per_epoch: Optional cap on optimiser steps per epoch (for quick tests).
        log: Print per-epoch lines on rank 0.
        amp: ``"bf16"``: bfloat16 autocast in training and evaluation (:func:`autocast`).
        compile: ``torch.compile`` the model: ``True`` for the default backend (inductor) or a
            backend name (``"eager"``, ``"aot_eager"`` for quick CPU runs).
        channels_last: ``channels_last`` / ``channels_last_3d`` weights and inputs.
        grad_checkpointing: Recompute block activations in backward (models with
            ``set_grad_checkpointing``, e.g. ViT, TimeSformer, Video Swin).
        num_workers: DataLoader worker processes. pin_memory: Page-locked host batches for fast
            ``non_blocking`` copies (default: on when training on CUDA).
        sync_bn: SyncBatchNorm under DDP (default: on for multi-process CUDA runs; PyTorch does
            not support it on CPU).
        clip_grad_norm: Clip the global gradient norm to this value (``None``: no clipping).
        accumulate: Micro-batches per optimiser step (gradient accumulation); the effective
            batch is ``batch_size * accumulate * world_size``.

    Returns:
        ``{"history": [{"epoch", "loss", "val_top1_pct", "seconds", "grad_norm_max"}],
        "checkpoint": path or None, "rank": r, "world_size": w, "model": nn.Module (unwrapped),
        "switches": the switches in effect}``.

    Raises:
        ValueError: ``accumulate < 1``, unknown ``amp``, or a switch the model or device does
            not support (see :func:`prepare_model`).
    """
    if accumulate < 1:
        raise ValueError(f"accumulate must be >= 1, got {accumulate}")
    autocast(torch.device("cpu"), amp)  # validates amp before any work
    rank, world, device = _setup_distributed()
    spec = get_spec(model_name)
    cfg = make_config(model_name, config)
    train_set, val_set, num_classes = build_datasets(spec, cfg, data, n_train=n_train, n_val=n_val, seed=seed)
    if getattr(cfg, "num_classes", None) != num_classes:
        cfg = dataclasses.replace(cfg, num_classes=num_classes)
    if sync_bn is None:
        sync_bn = world > 1 and device.type == "cuda"
    if pin_memory is None:
        pin_memory = device.type == "cuda"

    torch.manual_seed(seed)  # identical initial weights on every rank (DDP also broadcasts them)
    model = prepare_model(spec.builder(cfg), device, channels_last=channels_last,
                          grad_checkpointing=grad_checkpointing, sync_bn=sync_bn)
    memory_format = _memory_format(model) if channels_last else None
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if compile:
        net = torch.compile(net, backend=compile if isinstance(compile, str) else "inductor")

    train_sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=seed) \
        if world > 1 else None
    val_sampler = DistributedSampler(val_set, num_replicas=world, rank=rank, shuffle=False) if world > 1 else None
    gen = torch.Generator().manual_seed(seed)
    loader_kw = {"num_workers": num_workers, "pin_memory": pin_memory, "persistent_workers": num_workers > 0}
    train_loader = DataLoader(train_set, batch_size=batch_size, sampler=train_sampler,
                              shuffle=train_sampler is None, generator=gen, drop_last=True, **loader_kw)
    val_loader = DataLoader(val_set, batch_size=batch_size, sampler=val_sampler, shuffle=False, **loader_kw)

    steps_per_epoch = len(train_loader) // accumulate
    if max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, max_steps_per_epoch)
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
        loss_sum = torch.zeros(2, device=device)  # (sum of losses, optimiser steps)
        grad_norm_max, step, pending = 0.0, 0, []
        for batch in train_loader:
            if step >= steps_per_epoch:
                break
            pending.append(to_device(batch, device, memory_format))
            if len(pending) < accumulate:
                continue
            loss = backward_micro_batches(net, pending, device, amp)
            pending = []
            grad_norm_max = max(grad_norm_max, clip_gradients(model, clip_grad_norm))
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            loss_sum += torch.tensor([loss, 1.0], device=device)
        stats = torch.zeros(2, device=device)  # (correct, seen) on the held-out split
        net.eval()
        with torch.no_grad():
            for batch in val_loader:
                *inputs, target = to_device(batch, device, memory_format)
                with autocast(device, amp):
                    pred = net(*inputs).argmax(1)
                stats += torch.stack([(pred == target).sum().float(), torch.tensor(float(target.numel()), device=device)])
        if world > 1:
            dist.all_reduce(loss_sum)
            dist.all_reduce(stats)
        row = {"epoch": epoch, "loss": (loss_sum[0] / loss_sum[1].clamp(min=1)).item(),
               "val_top1_pct": (100 * stats[0] / stats[1].clamp(min=1)).item(), "seconds": time.perf_counter() - t0,
               "grad_norm_max": grad_norm_max}
        history.append(row)
        if rank == 0 and log:
            print(f"epoch {epoch}/{epochs}: train loss {row['loss']:.4f}, held-out top-1 {row['val_top1_pct']:.1f} % "
                  f"({row['seconds']:.1f} s, {world} process{'es' if world > 1 else ''})", flush=True)

    switches = {"amp": amp, "compile": compile, "channels_last": channels_last,
                "grad_checkpointing": grad_checkpointing, "num_workers": num_workers, "pin_memory": pin_memory,
                "sync_bn": sync_bn, "clip_grad_norm": clip_grad_norm, "accumulate": accumulate}
    ckpt = None
    if out is not None and rank == 0:
        Path(out).mkdir(parents=True, exist_ok=True)
        ckpt = Path(out) / f"{spec.alias}_{config}.pt"
        torch.save({"model": spec.alias, "paper": spec.key, "config": dataclasses.asdict(cfg),
                    "state_dict": model.state_dict(), "epoch": epochs, "history": history, "switches": switches}, ckpt)
        if log:
            print(f"saved {ckpt}", flush=True)
    return {"history": history, "checkpoint": str(ckpt) if ckpt else None, "rank": rank, "world_size": world,
            "model": model, "switches": switches}


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
    p.add_argument("--amp", choices=("bf16",), default=None, help="bfloat16 autocast")
    p.add_argument("--compile", nargs="?", const=True, default=False, metavar="BACKEND",
                   help="torch.compile the model (optionally with a backend: inductor, aot_eager, eager)")
    p.add_argument("--channels-last", action="store_true", help="channels_last(_3d) weights and inputs")
    p.add_argument("--grad-checkpointing", action="store_true",
                   help="recompute block activations in backward (ViT, TimeSformer, Video Swin)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--no-pin-memory", action="store_true", help="do not pin host memory (pinned on CUDA by default)")
    p.add_argument("--no-sync-bn", action="store_true", help="keep plain BatchNorm under multi-GPU DDP")
    p.add_argument("--clip-grad-norm", type=float, default=None, metavar="NORM", help="clip the global gradient norm")
    p.add_argument("--accumulate", type=int, default=1, metavar="K", help="micro-batches per optimiser step")
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
                   n_val=args.n_val, seed=args.seed, max_steps_per_epoch=args.max_steps_per_epoch, amp=args.amp,
                   compile=args.compile, channels_last=args.channels_last, grad_checkpointing=args.grad_checkpointing,
                   num_workers=args.workers, pin_memory=False if args.no_pin_memory else None,
                   sync_bn=False if args.no_sync_bn else None, clip_grad_norm=args.clip_grad_norm,
                   accumulate=args.accumulate)
    if args.save_params:
        state = {k: v.detach().cpu() for k, v in result["model"].named_parameters()}
        torch.save(state, Path(args.save_params) / f"rank{result['rank']}.pt")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())

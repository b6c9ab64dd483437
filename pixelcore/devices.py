"""Where work runs: device names, the distributed (torchrun) environment and mixed precision."""

from __future__ import annotations

import os
from contextlib import nullcontext

import torch

AMP_MODES = ("auto", "bf16", "none")


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """The device a user named: ``"auto"`` is this rank's GPU when there is one, else the CPU.

    Raises:
        ValueError: for a name torch does not know, or a device this machine does not have, saying what to use.
    """
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but this PyTorch sees no CUDA GPU: use --device cpu "
                         "(or auto)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} asked for, but MPS is not available here: use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {name!r} cannot run PixelCore: use auto, cpu, cuda, cuda:N or mps")
    return device


def dist_info() -> tuple[int, int, int]:
    """(world size, rank, local rank) from torchrun's environment; (1, 0, 0) when run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))


def autocast(amp: str, device: torch.device):
    """bf16 autocast when ``amp`` is "bf16", or "auto" on a CUDA device that supports it; else a no-op."""
    use = amp == "bf16" or (amp == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    return torch.autocast(device.type, dtype=torch.bfloat16) if use else nullcontext()

"""What the generative baselines (AR, diffusion) share: their training loop under the study's budget, and their
checkpoint files (weights, palette, config and a training record in one ``.safetensors``).

The loop is the MaskGIT run's: the same split and augmented records, AdamW with decay on matrices only,
warm-up then cosine decay along whichever budget (steps or minutes) runs out first, the same captions
(``random_caption``, Chinese with ``zh_prob``), the same caption dropout for guidance, gradient clipping and
bf16 autocast on CUDA. Only the network and its loss differ, given as ``build`` and ``batch_loss``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import torch
from torch import nn

from pixelcore.captions import random_caption
from pixelcore.checkpoint import read_safetensors, write_safetensors
from pixelcore.dataset import TrainingSet, prepare_data
from pixelcore.devices import pick_device
from pixelcore.model import PixelConfig
from pixelcore.palette import Palette
from pixelcore.train_config import TrainConfig

log = logging.getLogger(__name__)

# (model, caption ids (B, T), record indices (B,), caption dropped (B,), generator, autocast) -> loss
BatchLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, torch.Generator,
                      AbstractContextManager], torch.Tensor]


def train_baseline(config: TrainConfig, label: str, build: Callable[[TrainingSet, torch.device], nn.Module],
                   batch_loss: Callable[[TrainingSet, torch.device], BatchLoss],
                   save: Callable[[nn.Module, Path, dict], Path]) -> Path:
    """Trains the network ``build`` makes with the loss ``batch_loss`` makes (both given the data and the
    device) under ``config``'s budget; ``save`` writes ``model.safetensors`` in ``config.out``."""
    device = pick_device(config.device)
    data = prepare_data(config)
    torch.manual_seed(config.seed)
    model = build(data, device).to(device)
    loss_of = batch_loss(data, device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.95),
    )
    gen = torch.Generator().manual_seed(config.seed * 1_000_003)
    rng = random.Random(config.seed)
    use_bf16 = device.type == "cuda" and config.amp != "none" and torch.cuda.is_bf16_supported()
    log.info("%s: %.2fM parameters, device %s", label, sum(p.numel() for p in model.parameters()) / 1e6, device)
    start, step, loss = time.time(), 0, torch.tensor(0.0)
    model.train()
    while step < config.steps:
        seconds = time.time() - start
        if config.max_minutes > 0 and seconds > config.max_minutes * 60:
            break
        progress = max(step / config.steps, seconds / (config.max_minutes * 60) if config.max_minutes else 0.0)
        lr_scale = (min(1.0, (step + 1) / config.warmup) if step < config.warmup
                    else 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
        for group in optimizer.param_groups:
            group["lr"] = config.lr * max(config.min_lr_ratio, lr_scale)
        idx = torch.randint(len(data.records), (config.batch_size,), generator=gen)
        captions = [random_caption(data.records[i].name, data.records[i].color, data.records[i].kind, rng,
                                   zh_prob=config.zh_prob) for i in idx.tolist()]
        ids = model.text_encoder.tokenize(captions).to(device)
        drop = (torch.rand(len(idx), generator=gen) < config.cond_dropout).to(device)
        amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)
        loss = loss_of(model, ids, idx, drop, gen, amp)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        step += 1
        if step % 100 == 0:
            log.info("%s step %d: loss %.3f", label, step, float(loss))
    info = {"step": step, "train_seconds": round(time.time() - start, 1), "loss": float(loss.detach())}
    return save(model, Path(config.out) / "model.safetensors", info)


def save_baseline(model: nn.Module, path: str | Path, fmt: str, info: dict | None = None) -> Path:
    """Writes a baseline's weights, palette (``model.palette``) and config (``model.config``) as format ``fmt``."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors["palette"] = model.palette.colors.contiguous()
    metadata = {"format": fmt, "config": json.dumps(model.config.to_dict()), "training": json.dumps(info or {})}
    return write_safetensors(tensors, path, metadata)


def load_baseline(path: str | Path, fmt: str, what: str, cls: Callable[[PixelConfig, Palette], nn.Module],
                  device: str | torch.device = "cpu") -> nn.Module:
    """Reads what ``save_baseline`` wrote into a ``cls(config, palette)`` on ``device``, in eval mode.

    Raises:
        ValueError: naming the file and ``what`` it should have been, when its format is not ``fmt``.
    """
    metadata, tensors = read_safetensors(path, fmt, what)
    model = cls(PixelConfig.from_dict(json.loads(metadata["config"])), Palette(tensors.pop("palette")))
    model.load_state_dict(tensors)
    return model.to(device).eval()

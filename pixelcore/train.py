"""Training: MaskGIT masked-token prediction on a texture folder, on one device or under torchrun (DDP).

A run directory holds the release checkpoint (``model.safetensors``), the training state for resuming
(``resume.pt``: optimizer, step, RNG; never the release format), sample grids (``samples/step_*.png``) and the
configuration (``train_config.json``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from .checkpoint import load_model, resolve_model_path, save_model
from .dataset import CaptionBank, prepare_data, record_weights
from .devices import autocast, dist_info, pick_device
from .images import save_grid
from .losses import maskgit_loss, palette_features, token_weights
from .model import MaskedTokenModel, PixelModel
from .palette import Palette
from .sampling import SamplerConfig, encode_prompt, sample
from .schedule import mask_batch
from .train_config import PRESETS, TrainConfig

__all__ = ["PRESETS", "TrainConfig", "train", "write_samples"]

log = logging.getLogger(__name__)

SAMPLE_PROMPTS = ("a red sword", "a blue diamond sword", "a golden pickaxe", "an apple", "green leaves block",
                  "gray stone bricks", "一把蓝色的钻石剑", "red wool block")


def _lr_at(step: int, config: TrainConfig, seconds: float = 0.0) -> float:
    """Warm-up, then cosine decay along whichever budget (steps or minutes) runs out first."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = min(1.0, (step - config.warmup) / max(1, config.steps - config.warmup))
    if config.max_minutes > 0:
        progress = max(progress, min(1.0, seconds / (config.max_minutes * 60)))
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def expected_last_step(step: int, first_step: int, seconds: float, config: TrainConfig) -> int:
    """The step the run will end at: ``config.steps``, or sooner where ``max_minutes`` runs out first at the
    step rate measured since ``first_step``. The progress bar's total, so that its ETA follows whichever limit
    ends the run."""
    if config.max_minutes <= 0 or step <= first_step or seconds <= 0:
        return config.steps
    rate = (step - first_step) / seconds  # steps per second so far
    left = max(0.0, config.max_minutes * 60 - seconds)
    return max(step, min(config.steps, step + int(rate * left)))


def write_samples(model: PixelModel, path: Path, seed: int, per_prompt: int = 4) -> None:
    """A grid of ``per_prompt`` samples of each of ``SAMPLE_PROMPTS`` with the shipped sampler settings."""
    was_training = model.training
    cond = encode_prompt(model, list(SAMPLE_PROMPTS))
    tokens = sample(model, cond, SamplerConfig(), batch_size=per_prompt,
                    generator=torch.Generator().manual_seed(seed))
    save_grid(model.palette.dequantize(tokens).cpu().numpy(), path, cols=per_prompt * 2)
    model.train(was_training)


def train(config: TrainConfig) -> Path:
    """Runs training; returns the path of the release checkpoint. Works alone or under torchrun."""
    for name in ("kind_pair_boost", "extra_weight"):  # refused before minutes of data loading, not after
        if getattr(config, name) <= 0:
            raise ValueError(f"{name} must be positive, got {getattr(config, name)}")
    _check_run_folder(Path(config.out))
    world, rank, local_rank = dist_info()
    device = pick_device(config.device, local_rank)
    if world > 1:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    out = Path(config.out)
    resume_path = out / "resume.pt"
    state = None
    if config.resume and resume_path.exists():
        state = torch.load(resume_path, map_location="cpu", weights_only=True)
        log.info("resuming from %s at step %d", resume_path, state["step"])
    init = _initial_model(config)
    palette = Palette(state["palette"]) if state else init.palette if init else None
    data = prepare_data(config, palette)
    torch.manual_seed(config.seed)
    model = (init.train() if init else PixelModel(config.model_config(), data.palette)).to(device)
    weights = token_weights(data.tokens, data.palette, config.loss).to(device)
    features = palette_features(data.palette).to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.dim() >= 2]
    no_decay = [p for p in trainable if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.95))
    step = 0
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
    # Each rank draws its own batches; seeding on the step makes a resumed run continue deterministically.
    gen = torch.Generator().manual_seed(config.seed * 1_000_003 + rank * 7919 + step)
    wrapped = MaskedTokenModel(model)
    if world > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        wrapped = nn.parallel.DistributedDataParallel(wrapped, device_ids=device_ids)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(json.dumps(asdict(config), indent=2, ensure_ascii=False))
        log.info("model: %.2fM parameters (%.2fM trainable), device %s, world size %d",
                 model.num_params() / 1e6, model.num_params(True) / 1e6, device, world)
    captions = CaptionBank(data.records, model.text_encoder.tokenize, generic=config.generic_captions,
                           colorless=config.colorless_captions,
                           kind_marked=config.kind_captions)
    draw_weights = record_weights(data.records, config.kind_pair_boost, data.extra, config.extra_weight)
    all_tokens = data.tokens.to(device)
    per_rank = max(1, config.batch_size // world)
    start, last_log, first_step, out_of_time = time.time(), {}, step, False
    bar = tqdm(total=config.steps, initial=step, disable=rank != 0, desc="train", dynamic_ncols=True)
    model.train()
    while step < config.steps:
        if draw_weights is None:
            idx = torch.randint(len(data.records), (per_rank,), generator=gen)
        else:
            idx = torch.multinomial(draw_weights, per_rank, replacement=True, generator=gen)
        text_ids = captions.draw(idx, config.zh_prob, gen).to(device)
        targets = all_tokens[idx.to(device)]
        inputs, masked = mask_batch(targets, model.mask_token, config.schedule, gen)
        drop = (torch.rand(per_rank, generator=gen) < config.cond_dropout).to(device)
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, config, time.time() - start)
        with autocast(config.amp, device):
            logits = wrapped(text_ids, inputs, drop)
        loss, parts = maskgit_loss(logits, targets, masked, weights, features, config.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(trainable, config.grad_clip)
        optimizer.step()
        step += 1
        bar.total = expected_last_step(step, first_step, time.time() - start, config)
        bar.update(1)
        will_save = rank == 0 and step % config.save_every == 0
        if step % 25 == 0 or will_save or step >= config.steps:  # reading values syncs with the GPU: rarely
            parts = {k: float(v) for k, v in parts.items()}
            last_log = {**parts, "loss": float(loss.detach()), "grad_norm": float(grad_norm)}
            lr = optimizer.param_groups[0]["lr"]
            bar.set_postfix(loss=f"{last_log['loss']:.3f}", ce=f"{parts['ce']:.3f}", lr=f"{lr:.1e}")
        out_of_time = config.max_minutes > 0 and (time.time() - start) > config.max_minutes * 60
        if world > 1:
            flag = torch.tensor([float(out_of_time)], device=device)
            dist.all_reduce(flag)
            out_of_time = bool(flag.item())
        done = step >= config.steps or out_of_time
        if rank == 0 and (step % config.save_every == 0 or done):
            _save(model, optimizer, step, out, config, time.time() - start, last_log)
        if rank == 0 and config.sample_every and (step % config.sample_every == 0 or done):
            write_samples(model, out / "samples" / f"step_{step:06d}.png", seed=config.seed)
        if done:
            bar.total = step  # the bar ends full, whichever limit ended the run
            break
    bar.close()
    if out_of_time and rank == 0:  # after close: a log line in the middle would break the bar's line
        log.info("stopping at step %d: the %.1f minute budget is spent", step, config.max_minutes)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return out / "model.safetensors"


def _check_run_folder(out: Path) -> None:
    """Refuses a run folder that is a file, or lies under one, before any data is read."""
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"--out {out}: {existing} is a file, not a folder; choose a folder for the run")


def _initial_model(config: TrainConfig) -> PixelModel | None:
    """The model a fine-tune starts from, or None for training from scratch."""
    if not config.init_from:
        return None
    path = resolve_model_path(config.init_from)
    if config.model_overrides:
        raise ValueError("--model-overrides cannot change a model loaded with --init-from: its config is "
                         f"fixed by {path}; drop one of the two")
    model = load_model(path)
    log.info("fine-tuning %s (preset %r is not used: the checkpoint's config is)", path, config.preset)
    return model


def _save(model: PixelModel, optimizer, step: int, out: Path, config: TrainConfig,
          seconds: float, last: dict) -> None:
    info = {"step": step, "train_seconds": round(seconds, 1), "loss": last, "preset": config.preset,
            **({"init_from": config.init_from} if config.init_from else {}),
            "data": str(config.data), "device": str(model.device)}
    save_model(model, out / "model.safetensors", extra_metadata={"training": info})
    if config.keep_checkpoints:  # for weight averaging (``python -m pixelcore average``)
        (out / "checkpoints").mkdir(exist_ok=True)
        shutil.copyfile(out / "model.safetensors", out / "checkpoints" / f"step_{step:06d}.safetensors")
    tmp = out / "resume.pt.tmp"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                "palette": model.palette.colors}, tmp)
    os.replace(tmp, out / "resume.pt")
    (out / "progress.json").write_text(json.dumps(info, indent=2))

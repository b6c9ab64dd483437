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
import random
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from .captions import caption_variants, generic_variants, kind_marked_variants, names_of_both_kinds
from .checkpoint import default_model_path, load_model, save_model
from .data import TextureRecord, hue_shift_augment, hue_target_augment, load_textures, tone_augment
from .images import save_grid
from .losses import LossConfig, maskgit_loss, palette_features, token_weights
from .model import PixelConfig, PixelModel
from .palette import Palette
from .sampling import encode_prompt, sample
from .schedule import training_mask_ratio

log = logging.getLogger(__name__)

SAMPLE_PROMPTS = ("a red sword", "a blue diamond sword", "a golden pickaxe", "an apple", "green leaves block",
                  "gray stone bricks", "一把蓝色的钻石剑", "red wool block")

PRESETS = {
    # The shipped default: ~5M image parameters plus a 7M builtin text encoder (mostly its BPE embedding).
    "default": PixelConfig(dropout=0.1),
    # A smaller network that gives a usable model on a user's own pack within an hour on 2 CPU cores.
    "quick": PixelConfig(n_layer=4, n_head=4, n_embd=192, pixel_dim=48, text_width=96, text_layers=2),
    "tiny": PixelConfig.tiny(),
}


@dataclass
class TrainConfig:
    data: str
    out: str = "runs/default"
    preset: str = "default"
    steps: int = 20000
    batch_size: int = 128
    lr: float = 1e-3
    min_lr_ratio: float = 0.05
    warmup: int = 300
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    max_minutes: float = 0.0  # stop (and save) after this much wall time; 0 = no limit
    seed: int = 0
    palette_size: int = 255
    hue_shifts: tuple[float, ...] = (60.0, 120.0, 180.0, 240.0, 300.0)
    hue_targets: bool = False  # colour-balanced copies (one per colour word) instead of the fixed hue_shifts
    generic_captions: bool = False  # also caption "red diamond sword" as "a red sword" (captions.generic_variants)
    # Names found as both item and block (leaves with holes, opaque leaves): their blocks' captions always say
    # "block" (captions.kind_marked_variants), and such records are drawn kind_pair_boost times as often.
    kind_captions: bool = False
    kind_pair_boost: float = 1.0
    zh_prob: float = 0.3
    cond_dropout: float = 0.1
    schedule: str = "cosine"
    sample_every: int = 1000
    save_every: int = 1000
    device: str = "auto"
    amp: str = "auto"  # "bf16", "none" or "auto" (bf16 on CUDA)
    holdout: float = 0.0  # share of original textures held out of training (for evaluation)
    resume: bool = False
    # Fine-tune: start from this release checkpoint ("default" = the shipped model). Its config and palette
    # are kept (the data is quantized to its palette); preset and model_overrides do not apply.
    init_from: str = ""
    keep_checkpoints: bool = False  # also keep every saved release file as checkpoints/step_NNNNNN.safetensors
    loss: LossConfig = field(default_factory=LossConfig)
    model_overrides: dict = field(default_factory=dict)

    def model_config(self) -> PixelConfig:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}: use one of {', '.join(PRESETS)}")
        return PixelConfig.from_dict({**PRESETS[self.preset].to_dict(), **self.model_overrides})


class MaskedTokenModel(nn.Module):
    """Wraps text encoding, condition dropout and the grid model into one forward, as DDP needs."""

    def __init__(self, model: PixelModel):
        super().__init__()
        self.model = model

    def forward(self, text_ids: torch.Tensor, tokens: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
        features, mask = self.model.text_encoder(text_ids)
        cond, cond_mask = self.model.condition(features, mask, drop)
        return self.model(tokens, cond, cond_mask)


@dataclass
class TrainingSet:
    tokens: torch.Tensor  # (N, G, G) palette tokens
    records: list[TextureRecord]
    palette: Palette
    held_out: list[TextureRecord]


def _is_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


class CaptionBank:
    """Every caption variant of every record, tokenized once, so a training step only indexes tensors.

    English and Chinese variants are kept apart so a step can pick Chinese with probability ``zh_prob``.
    """

    def __init__(self, records: list[TextureRecord], tokenize, generic: bool = False, kind_marked: bool = False):
        english, chinese = [], []
        shared = names_of_both_kinds((r.name, r.kind) for r in records) if kind_marked else frozenset()
        for rec in records:
            variants = caption_variants(rec.name, rec.color, rec.kind) or [rec.caption]
            if generic:
                variants += generic_variants(rec.name, rec.color, rec.kind)
            if rec.name in shared:
                variants = kind_marked_variants(variants, rec.kind)
            english.append([v for v in variants if not _is_chinese(v)] or [rec.caption])
            chinese.append([v for v in variants if _is_chinese(v)])
        width = max(len(en) + len(zh) for en, zh in zip(english, chinese))
        flat = [en + zh + [en[0]] * (width - len(en) - len(zh)) for en, zh in zip(english, chinese)]
        self.ids = tokenize([c for row in flat for c in row]).reshape(len(records), width, -1)  # (N, W, T)
        self.n_english = torch.tensor([len(en) for en in english])
        self.n_chinese = torch.tensor([len(zh) for zh in chinese])

    def draw(self, idx: torch.Tensor, zh_prob: float, generator: torch.Generator) -> torch.Tensor:
        """Token ids (B, T) of one random caption per record index."""
        n_en, n_zh = self.n_english[idx], self.n_chinese[idx]
        use_zh = (torch.rand(len(idx), generator=generator) < zh_prob) & (n_zh > 0)
        count = torch.where(use_zh, n_zh, n_en)
        pick = (torch.rand(len(idx), generator=generator) * count).long().clamp(max=count - 1)
        return self.ids[idx, torch.where(use_zh, n_en + pick, pick)]


def prepare_data(config: TrainConfig, palette: Palette | None = None) -> TrainingSet:
    """Loads, splits, augments and tokenizes the dataset; fits a palette unless one is given (resume)."""
    records, report = load_textures(config.data)
    log.info("dataset %s: %s", config.data, report.summary())
    rng = random.Random(config.seed)
    order = list(range(len(records)))
    rng.shuffle(order)
    n_hold = int(len(records) * config.holdout)
    held_out = [records[i] for i in sorted(order[:n_hold])]
    train_records = [records[i] for i in sorted(order[n_hold:])]
    if config.hue_targets:
        train_records = hue_target_augment(train_records) + tone_augment(train_records)
    elif config.hue_shifts:
        train_records = hue_shift_augment(train_records, config.hue_shifts) + tone_augment(train_records)
    pixels = np.stack([r.pixels for r in train_records])
    if palette is None:
        palette = Palette.fit(pixels, max_colors=config.palette_size, seed=config.seed)
    tokens = palette.quantize(pixels)
    log.info("training set: %d textures (%d before augmentation, %d held out), %s",
             len(train_records), len(records) - n_hold, n_hold, palette)
    return TrainingSet(tokens, train_records, palette, held_out)


def record_weights(records: list[TextureRecord], kind_pair_boost: float) -> torch.Tensor | None:
    """How often each record is drawn: ``kind_pair_boost`` times more for names found as both item and block.

    Returns None (uniform draws, as before the option existed) when the boost is 1 or no name is shared.
    """
    if kind_pair_boost <= 0:
        raise ValueError(f"kind_pair_boost must be positive, got {kind_pair_boost}")
    shared = names_of_both_kinds((r.name, r.kind) for r in records)
    if kind_pair_boost == 1.0 or not shared:
        return None
    weights = torch.tensor([kind_pair_boost if r.name in shared else 1.0 for r in records])
    log.info("drawing %d records of %d item-and-block names %.1fx as often",
             int((weights > 1).sum()), len(shared), kind_pair_boost)
    return weights


def _lr_at(step: int, config: TrainConfig, seconds: float = 0.0) -> float:
    """Warm-up, then cosine decay along whichever budget (steps or minutes) runs out first."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = min(1.0, (step - config.warmup) / max(1, config.steps - config.warmup))
    if config.max_minutes > 0:
        progress = max(progress, min(1.0, seconds / (config.max_minutes * 60)))
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` is this rank's GPU when there is one, else the CPU; any other name is taken as given."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(name)


def _autocast(config: TrainConfig, device: torch.device):
    use = config.amp == "bf16" or (config.amp == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    return torch.autocast(device.type, dtype=torch.bfloat16) if use else nullcontext()


def mask_batch(tokens: torch.Tensor, mask_token: int, schedule: str, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks a random share of each grid (B, G, G) drawn from the schedule; returns (inputs, masked)."""
    B = tokens.shape[0]
    ratio = training_mask_ratio(B, schedule, generator)  # (B,)
    n_cells = tokens[0].numel()
    n_masked = (ratio * n_cells).ceil().clamp(1, n_cells).long()
    scores = torch.rand(B, n_cells, generator=generator)
    ranks = scores.argsort(1).argsort(1)
    masked = (ranks < n_masked[:, None]).reshape(tokens.shape).to(tokens.device)
    return tokens.masked_fill(masked, mask_token), masked


def write_samples(model: PixelModel, path: Path, seed: int, steps: int = 10, per_prompt: int = 4) -> None:
    was_training = model.training
    cond = encode_prompt(model, list(SAMPLE_PROMPTS))
    tokens = sample(model, cond, steps=steps, batch_size=per_prompt, generator=torch.Generator().manual_seed(seed))
    save_grid(model.palette.dequantize(tokens).cpu().numpy(), path, cols=per_prompt * 2)
    model.train(was_training)


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))


def train(config: TrainConfig) -> Path:
    """Runs training; returns the path of the release checkpoint. Works alone or under torchrun."""
    if config.kind_pair_boost <= 0:  # refused before minutes of data loading, not after
        raise ValueError(f"kind_pair_boost must be positive, got {config.kind_pair_boost}")
    world, rank, local_rank = _dist_info()
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
                           kind_marked=config.kind_captions)
    draw_weights = record_weights(data.records, config.kind_pair_boost)
    all_tokens = data.tokens.to(device)
    per_rank = max(1, config.batch_size // world)
    start, last_log = time.time(), {}
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
        with _autocast(config, device):
            logits = wrapped(text_ids, inputs, drop)
        loss, parts = maskgit_loss(logits, targets, masked, weights, features, config.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(trainable, config.grad_clip)
        optimizer.step()
        step += 1
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
            if out_of_time:
                log.info("stopping at step %d: the %.1f minute budget is spent", step, config.max_minutes)
            break
    bar.close()
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return out / "model.safetensors"


def _initial_model(config: TrainConfig) -> PixelModel | None:
    """The model a fine-tune starts from, or None for training from scratch."""
    if not config.init_from:
        return None
    path = default_model_path() if config.init_from == "default" else Path(config.init_from)
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

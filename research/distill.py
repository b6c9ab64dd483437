"""The fast model: a shallower PixelModel distilled from the default model's samples.

1. ``teacher_samples``: the teacher draws one texture for each of ``n_samples`` training captions, with its
   shipped sampler settings (guidance, stray-hole fill and all). The captions are drawn as the teacher's own
   training drew them (colour-balanced hue copies, generic and kind-marked captions, item-and-block names
   boosted, Chinese 40% of the time); no pixel of the training set and no evaluation prompt is used.
2. ``distill``: the student is the teacher with fewer transformer blocks. It starts as a copy of the teacher
   (text encoder, embeddings, conv stem and head, and the blocks named by ``layers``) and learns the
   teacher's samples with the MaskGIT objective (masked cells predicted from the rest, caption dropped 10% of
   the time so guidance still works): sequence-level distillation (Kim and Rush 2016). Samples of a guided
   teacher are sharper than its training data, which is what a smaller network can fit in a CPU budget.

``python -m research distill --out runs/distill`` writes ``teacher_samples_*.safetensors`` (kept: a second run
reuses them) and ``model.safetensors``. The result was 1.5x faster than the default model and lost 0.10 of
public-prompt colour adherence, so it was not shipped (docs/SPEED.md); ``python -m pixelcore bench --model
runs/distill/model.safetensors`` times it, ``research/scripts/speed_quality.sh`` scores it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from pixelcore.checkpoint import load_model, resolve_model_path, save_model
from pixelcore.dataset import CaptionBank, prepare_data, record_weights
from pixelcore.losses import LossConfig, maskgit_loss, palette_features, token_weights
from pixelcore.model import MaskedTokenModel, PixelConfig, PixelModel
from pixelcore.sampling import Conditioning, SamplerConfig, sample
from pixelcore.schedule import mask_batch
from pixelcore.train_config import TrainConfig

log = logging.getLogger(__name__)

SAMPLES_PER_FILE = 3000  # teacher samples per file: about 20 minutes of a 2-core CPU


@dataclass
class DistillConfig:
    data: str = "data/luanti"  # the teacher's training set: only its names, colours and kinds are read
    out: str = "runs/distill"
    teacher: str = "default"  # a release .safetensors, or "default" for the shipped model
    n_samples: int = 6000
    sample_batch: int = 64
    teacher_precision: str = "bf16"  # the same adherence as fp32 on the public prompts (docs/SPEED.md)
    # The teacher blocks the student starts from, in order: the first three gave the lowest loss on the
    # teacher's samples before training (1.05, against 1.36 for blocks 0, 2, 4 and 1.78 for 0, 2, 5).
    layers: tuple[int, ...] = (0, 1, 2)
    steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-4
    warmup: int = 50
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.05
    cond_dropout: float = 0.1
    max_minutes: float = 0.0  # 0 = no time limit
    seed: int = 0
    device: str = "cpu"
    loss: LossConfig = field(default_factory=LossConfig)


def _teacher(config: DistillConfig) -> PixelModel:
    return load_model(resolve_model_path(config.teacher), config.device)


def teacher_samples(config: DistillConfig) -> list[Path]:
    """Draws (or reuses) the teacher's samples, in files of ``SAMPLES_PER_FILE`` (file k seeded with seed + k,
    so a larger ``n_samples`` adds files and keeps the ones drawn): ``teacher_samples_k.safetensors`` with
    caption ids (N, T) and tokens (N, G, G)."""
    paths = [Path(config.out) / f"teacher_samples_{k}.safetensors"
             for k in range(math.ceil(config.n_samples / SAMPLES_PER_FILE))]
    missing = [k for k, path in enumerate(paths) if not path.exists()]
    if not missing:
        return paths
    teacher = _teacher(config)
    # The shipped model's recipe (docs/MODEL_CARD.md, stage 5): its captions, drawn as it drew them.
    recipe = TrainConfig(data=config.data, hue_targets=True, generic_captions=True, kind_captions=True,
                         kind_pair_boost=3.0, seed=config.seed)
    data = prepare_data(recipe, palette=teacher.palette)
    bank = CaptionBank(data.records, teacher.text_encoder.tokenize, generic=True, kind_marked=True)
    weights = record_weights(data.records, recipe.kind_pair_boost)
    weights = weights if weights is not None else torch.ones(len(data.records))
    sampler = SamplerConfig(precision=config.teacher_precision)
    for k in missing:
        gen = torch.Generator().manual_seed(config.seed + k)
        count = min(SAMPLES_PER_FILE, config.n_samples - k * SAMPLES_PER_FILE)
        ids = bank.draw(torch.multinomial(weights, count, replacement=True, generator=gen), 0.4, gen)  # (N, T)
        tokens = []
        for start in tqdm(range(0, count, config.sample_batch), desc=f"teacher samples, file {k}"):
            chunk = ids[start:start + config.sample_batch].to(teacher.device)
            with torch.no_grad():
                features, mask = teacher.text_encoder(chunk)
            cond = Conditioning(features, mask, [""] * len(chunk))
            tokens.append(sample(teacher, cond, sampler, generator=gen).cpu())
        paths[k].parent.mkdir(parents=True, exist_ok=True)
        save_file({"ids": ids.contiguous(), "tokens": torch.cat(tokens).contiguous()}, str(paths[k]),
                  metadata={"sampler": json.dumps(sampler.to_dict()), "teacher": config.teacher})
    return paths


def student_from(teacher: PixelModel, layers: tuple[int, ...]) -> PixelModel:
    """A copy of ``teacher`` that keeps only the transformer blocks ``layers`` (in that order), dropout off."""
    if not layers or any(not 0 <= i < teacher.config.n_layer for i in layers):
        raise ValueError(f"layers must name blocks 0..{teacher.config.n_layer - 1}, got {layers}")
    config = PixelConfig.from_dict({**teacher.config.to_dict(), "n_layer": len(layers), "dropout": 0.0})
    student = PixelModel(config, teacher.palette)
    state = {}
    for key, value in teacher.state_dict().items():
        if key.startswith("blocks."):
            index, rest = key[len("blocks."):].split(".", 1)
            if int(index) in layers:
                state[f"blocks.{layers.index(int(index))}.{rest}"] = value
        else:
            state[key] = value
    student.load_state_dict(state)
    return student.to(teacher.device)


def distill(config: DistillConfig) -> Path:
    """Trains the student on the teacher's samples; writes ``model.safetensors`` in ``config.out``."""
    files = [load_file(str(path)) for path in teacher_samples(config)]
    length = max(f["ids"].shape[1] for f in files)  # caption ids padded to the longest file's
    ids = torch.cat([torch.nn.functional.pad(f["ids"], (0, length - f["ids"].shape[1])) for f in files])
    targets = torch.cat([f["tokens"] for f in files])
    teacher = _teacher(config)
    student = student_from(teacher, config.layers).train()
    del teacher
    device = student.device
    weights = token_weights(targets, student.palette, config.loss).to(device)
    features = palette_features(student.palette).to(device)
    decay = [p for p in student.parameters() if p.dim() >= 2]
    no_decay = [p for p in student.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.95))
    wrapped = MaskedTokenModel(student)
    gen = torch.Generator().manual_seed(config.seed + 1)
    start, step, loss = time.time(), 0, torch.tensor(0.0)
    log.info("student: %d of the teacher's blocks %s, %.2fM parameters, %d teacher samples",
             len(config.layers), config.layers, student.num_params() / 1e6, len(targets))
    bar = tqdm(total=config.steps, desc="distill")
    while step < config.steps:
        seconds = time.time() - start
        if config.max_minutes and seconds > config.max_minutes * 60:
            break
        progress = max(step / config.steps, seconds / (config.max_minutes * 60) if config.max_minutes else 0.0)
        scale = min(1.0, (step + 1) / config.warmup) if step < config.warmup else max(
            config.min_lr_ratio, 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))
        for group in optimizer.param_groups:
            group["lr"] = config.lr * scale
        idx = torch.randint(len(targets), (config.batch_size,), generator=gen)
        batch = targets[idx].to(device)
        inputs, masked = mask_batch(batch, student.mask_token, "cosine", gen)
        drop = (torch.rand(len(idx), generator=gen) < config.cond_dropout).to(device)
        logits = wrapped(ids[idx].to(device), inputs, drop)
        loss, _ = maskgit_loss(logits, batch, masked, weights, features, config.loss)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        step += 1
        bar.update(1)
        if step % 25 == 0:
            bar.set_postfix(loss=f"{float(loss):.3f}")
    bar.close()
    info = {"step": step, "train_seconds": round(time.time() - start, 1), "loss": float(loss.detach()),
            "distilled_from": Path(config.teacher).name if config.teacher != "default" else "pixelcore_default",
            "distill_config": {k: v for k, v in asdict(config).items() if k not in ("out", "device")}}
    return save_model(student.eval(), Path(config.out) / "model.safetensors", extra_metadata={"training": info})

"""Training a LoRA adapter (and new words) on a few textures, with the base model frozen.

The loop is ``train``'s masked-token objective on a texture folder (the same readers and caption templates),
with only the adapter's factors and word vectors trainable. Prior preservation (DreamBooth's prior loss, on by
default): before training, the base model draws a replay set for a spread of known prompts (colours of items
and blocks, ``REPLAY_NAMES``), keeping the samples that show the prompt's colour and kind; a share ``prior``
of every batch comes from it, so the adapter is trained to leave what the base model knew as it was. With
``prior_mode="samples"`` the replay textures are targets like the data's (DreamBooth); with ``"distill"`` (the
default) the target of a masked replay cell is the base model's own prediction for it (the adapter at strength
0, same caption, same mask): the KL divergence to it keeps the whole distribution, not one sample of it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .captions import GLOSSARY, ZH_DEFAULT_MEASURE, caption_variants
from .checkpoint import load_model, resolve_model_path
from .colors import color_matches, dominant_color
from .data import TextureRecord, hue_shift_augment, load_textures, tone_augment
from .dataset import CaptionBank
from .devices import pick_device
from .evaluate import kind_matches
from .images import save_grid
from .lora import Adapter, LoraConfig
from .lora_apply import apply_adapter, remove_adapter, set_strength
from .losses import LossConfig, maskgit_loss, palette_features, token_weights
from .model import MaskedTokenModel, PixelModel
from .sampling import encode_prompt, sample
from .schedule import mask_batch
from .text import word_pattern

log = logging.getLogger(__name__)

# The replay set's prompts: known names as items and blocks, each in a few colours (kept apart from the public
# evaluation prompts, which measure what an adapter forgets).
REPLAY_NAMES = (("sword", "item"), ("pickaxe", "item"), ("axe", "item"), ("shovel", "item"), ("hoe", "item"),
                ("apple", "item"), ("ingot", "item"), ("gem", "item"), ("potion", "item"), ("key", "item"),
                ("feather", "item"), ("flower", "item"), ("bucket", "item"), ("lump", "item"),
                ("wool", "block"), ("stone bricks", "block"), ("planks", "block"), ("leaves", "block"),
                ("sand", "block"), ("tile", "block"), ("ore", "block"), ("brick", "block"))
PRIOR_MODES = ("distill", "samples")
REPLAY_COLORS = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "white", "gray", "black",
                 "brown", "gold")


@dataclass
class LoraTrainConfig:
    """Settings of ``train_lora``; the defaults are the recipe measured in research/reports/LORA.md."""

    data: str
    out: str = "lora.safetensors"
    base: str = "default"  # a release .safetensors, or "default" for the shipped model
    rank: int = 8
    alpha: float = 8.0
    text: bool = False  # also adapt the text encoder's attention and MLP
    words: tuple[str, ...] = ()
    word_vectors: int = 1
    steps: int = 300
    max_minutes: float = 10.0  # stop (and save) after this much wall time; 0 = no limit
    batch_size: int = 16
    lr: float = 2e-3
    word_lr: float = 5e-3
    warmup: int = 20
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    prior: float = 0.25  # share of each batch from the base model's replay set (0 = no prior preservation)
    prior_samples: int = 2  # samples drawn per replay prompt (those that miss the prompt are dropped)
    prior_mode: str = "distill"  # "distill": match the base model's predictions on replay; "samples": its samples
    hue_shifts: tuple[float, ...] = (60.0, 120.0, 180.0, 240.0, 300.0)
    zh_prob: float = 0.3
    cond_dropout: float = 0.1
    seed: int = 0
    device: str = "auto"
    samples: bool = True  # write a before/after grid beside the adapter
    loss: LossConfig = field(default_factory=LossConfig)

    def lora_config(self) -> LoraConfig:
        targets = ("attn", "mlp", "text_attn", "text_mlp") if self.text else ("attn", "mlp")
        return LoraConfig(rank=self.rank, alpha=self.alpha, targets=targets, words=tuple(self.words),
                          word_vectors=self.word_vectors)

    def validate(self) -> None:
        self.lora_config().validate()
        if not Path(self.out).suffix.lower() == ".safetensors":
            raise ValueError(f"{self.out}: the adapter file must end in .safetensors")
        for name in ("steps", "batch_size", "prior_samples"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.prior_mode not in PRIOR_MODES:
            raise ValueError(f"prior_mode must be one of {', '.join(PRIOR_MODES)}, got {self.prior_mode!r}")
        if not 0.0 <= self.prior < 1.0:
            raise ValueError(f"prior must be a share in 0..1 (0 = off), got {self.prior!r}")
        if self.lr <= 0 or self.word_lr <= 0 or self.max_minutes < 0:
            raise ValueError("lr and word_lr must be positive and max_minutes not negative")


@dataclass
class LoraTrainResult:
    path: Path
    steps: int
    seconds: float  # wall time of the training loop (replay sampling and grids not counted)
    cpu_seconds: float  # CPU time of the whole process over the loop (all threads)
    loss_before: float  # masked-token loss of a fixed batch of the training textures, before and after
    loss_after: float
    replay: int  # replay textures used


def _lr_factor(step: int, planned: int, warmup: int) -> float:
    """Warm-up, then cosine decay to a tenth over the planned steps."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, planned - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def word_captions(words: tuple[str, ...]):
    """Extra captions for records that show a new word: Chinese ones around the word ("一个黄色的folder"), so
    the word composes with the Chinese colour words too."""
    patterns = [(w, word_pattern(w)) for w in words]

    def extra(rec: TextureRecord) -> list[str]:
        zh_color = GLOSSARY.get(rec.color or "")
        out = []
        for word, pattern in patterns:
            if zh_color and pattern.search(rec.name):
                measure = ZH_DEFAULT_MEASURE if rec.kind == "item" else ""
                out += [f"{measure}{zh_color}的{word}", f"{zh_color}的{word}"]
        return out

    return extra


def training_records(config: LoraTrainConfig) -> list[TextureRecord]:
    """The folder's textures, named by the new word when no caption mentions it, with hue and tone copies."""
    records, report = load_textures(config.data)
    log.info("adapter data %s: %s", config.data, report.summary())
    for word in config.words:
        if not any(word_pattern(word).search(r.caption) for r in records):
            log.info("no caption mentions %r: every texture is taken to show it", word)
            records = [replace(r, name=word, caption=f"{r.color} {word}" if r.color else word) for r in records]
    if config.hue_shifts:
        records = hue_shift_augment(records, config.hue_shifts) + tone_augment(records)
    return records


def replay_specs() -> list[tuple[str, str, str]]:
    """(name, colour, kind) of the replay prompts: each name in three colours, rotating through the colours."""
    return [(name, REPLAY_COLORS[(i * 5 + j + 5) % len(REPLAY_COLORS)], kind)
            for i, (name, kind) in enumerate(REPLAY_NAMES) for j in range(3)]


@torch.no_grad()
def replay_set(model: PixelModel, per_prompt: int, seed: int) -> tuple[list[TextureRecord], torch.Tensor]:
    """The base model's own samples for ``REPLAY_NAMES`` in rotating colours, as records and tokens; samples
    whose colour or kind misses their prompt are dropped."""
    specs = replay_specs()
    prompts = [caption_variants(name, color, kind)[0] for name, color, kind in specs]
    tokens = sample(model, encode_prompt(model, prompts), batch_size=per_prompt,
                    generator=torch.Generator().manual_seed(seed))
    pixels = model.palette.dequantize(tokens).cpu().numpy()
    records, keep = [], []
    for i, rgba in enumerate(pixels):
        name, color, kind = specs[i // per_prompt]
        if kind_matches(rgba, kind) and color_matches(dominant_color(rgba), color):
            records.append(TextureRecord(rgba, name, color, kind, prompts[i // per_prompt], f"replay/{i}"))
            keep.append(i)
    log.info("replay set: %d of %d base-model samples kept", len(keep), len(pixels))
    return records, tokens[keep].cpu()


def _draw(n_data: int, n_replay: int, batch: int, prior: float, gen: torch.Generator) -> torch.Tensor:
    """Record indices of one batch: ``prior`` of it from the replay records (stored after the data)."""
    from_replay = round(batch * prior) if n_replay else 0
    data = torch.randint(n_data, (batch - from_replay,), generator=gen)
    replay = n_data + torch.randint(n_replay, (from_replay,), generator=gen) if from_replay else data[:0]
    return torch.cat([data, replay])


def _distill_loss(logits: torch.Tensor, teacher: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Mean KL(teacher || student) over the masked cells of logits (B, G, G, V)."""
    target = teacher.float().log_softmax(-1)
    kl = (target.exp() * (target - logits.float().log_softmax(-1))).sum(-1)  # (B, G, G)
    return (kl * masked).sum() / masked.sum().clamp_min(1)


class _Objective:
    """The loss of a batch of records: the masked-token loss on the data (and, with prior_mode "samples", on
    the replay textures), the KL to the base model's predictions on the replay records (prior_mode "distill")."""

    def __init__(self, model: PixelModel, records: list[TextureRecord], tokens: torch.Tensor,
                 config: LoraTrainConfig, device: torch.device, n_data: int, adapter_name: str):
        self.model, self.config, self.device = model, config, device
        self.n_data, self.adapter_name = n_data, adapter_name
        self.captions = CaptionBank(records, model.text_encoder.tokenize, extra=word_captions(tuple(config.words)))
        self.tokens = tokens.to(device)
        self.weights = token_weights(tokens, model.palette, config.loss).to(device)
        self.features = palette_features(model.palette).to(device)
        self.wrapped = MaskedTokenModel(model)

    def __call__(self, idx: torch.Tensor, gen: torch.Generator, dropout: bool = True) -> torch.Tensor:
        text_ids = self.captions.draw(idx, self.config.zh_prob, gen).to(self.device)
        targets = self.tokens[idx.to(self.device)]
        inputs, masked = mask_batch(targets, self.model.mask_token, "cosine", gen)
        drop = (torch.rand(len(idx), generator=gen) < (self.config.cond_dropout if dropout else 0.0)).to(self.device)
        logits = self.wrapped(text_ids, inputs, drop)
        replay = idx.to(self.device) >= self.n_data
        if self.config.prior_mode != "distill" or not replay.any():
            return maskgit_loss(logits, targets, masked, self.weights, self.features, self.config.loss)[0]
        data = ~replay
        loss = maskgit_loss(logits[data], targets[data], masked[data], self.weights, self.features, self.config.loss)[0]
        teacher = self._base_logits(text_ids[replay], inputs[replay], drop[replay])
        prior = _distill_loss(logits[replay], teacher, masked[replay])
        return (data.sum() * loss + replay.sum() * prior) / len(idx)

    @torch.no_grad()
    def _base_logits(self, text_ids: torch.Tensor, inputs: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
        """The base model's logits: the adapter at strength 0, dropout off."""
        was = self.model.training
        self.model.eval()
        set_strength(self.model, self.adapter_name, 0.0)
        try:
            return self.wrapped(text_ids, inputs, drop)
        finally:
            set_strength(self.model, self.adapter_name, 1.0)
            self.model.train(was)

    @torch.no_grad()
    def fixed_loss(self, n_data: int) -> float:
        """The loss of a fixed batch (seeded masks and captions) of the first ``n_data`` records, dropout off."""
        was = self.model.training
        self.model.eval()
        idx = torch.arange(min(n_data, 64))
        loss = float(self(idx, torch.Generator().manual_seed(1234), dropout=False))
        self.model.train(was)
        return loss


def train_lora(config: LoraTrainConfig) -> LoraTrainResult:
    """Trains an adapter on ``config.data`` for a frozen base model and writes it to ``config.out`` (plus a
    ``<out>_samples.png`` before/after grid unless ``samples`` is off)."""
    config.validate()
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    model = load_model(resolve_model_path(config.base), device=device)
    model.requires_grad_(False)
    records = training_records(config)
    tokens = model.palette.quantize(np.stack([r.pixels for r in records]))
    replay, replay_tokens = (replay_set(model, config.prior_samples, config.seed) if config.prior > 0
                             else ([], tokens[:0]))
    prompts = sorted({r.caption for r in records if "#" not in r.source})[:4] + ["a red sword", "red wool block"]
    before = _samples(model, prompts, config.seed) if config.samples else None
    adapter = Adapter.create(model, config.lora_config())
    adapter.info.training = {"data": str(config.data), "textures": len(records), "prior": config.prior}
    adapter.name = Path(config.out).stem
    apply_adapter(model, adapter, 1.0)
    adapter.requires_grad_(True)
    objective = _Objective(model, records + replay, torch.cat([tokens, replay_tokens]), config, device,
                           len(records), adapter.name)
    groups = [{"params": [p for pair in adapter.pairs for p in pair.parameters()], "lr": config.lr}]
    if adapter.words is not None:
        groups.append({"params": [adapter.words], "lr": config.word_lr})
    optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.99), weight_decay=config.weight_decay)
    base_lrs = [g["lr"] for g in groups]
    trainable = [p for g in groups for p in g["params"]]
    loss_before = objective.fixed_loss(len(records))
    gen = torch.Generator().manual_seed(config.seed)
    planned, step, start, cpu_start = config.steps, 0, time.time(), time.process_time()
    bar = tqdm(total=planned, desc="lora", dynamic_ncols=True)
    model.train()
    while step < planned:
        for group, lr in zip(optimizer.param_groups, base_lrs):
            group["lr"] = lr * _lr_factor(step, planned, config.warmup)
        loss = objective(_draw(len(records), len(replay), config.batch_size, config.prior, gen), gen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(trainable, config.grad_clip)
        optimizer.step()
        step += 1
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        planned = _planned_steps(config, step, time.time() - start, planned)
        if bar.total != planned:  # the time budget shortens the run: the bar's total and ETA follow
            bar.total = planned
            bar.refresh()
    bar.close()
    seconds, cpu_seconds = time.time() - start, time.process_time() - cpu_start
    loss_after = objective.fixed_loss(len(records))
    adapter.info.training.update(steps=step, seconds=round(seconds, 1), cpu_seconds=round(cpu_seconds, 1),
                                 loss_before=round(loss_before, 4), loss_after=round(loss_after, 4), replay=len(replay),
                                 config={k: v for k, v in asdict(config).items() if k not in ("data", "out")})
    path = adapter.save(config.out)
    log.info("adapter written to %s (%d steps in %.1f min, fixed-batch loss %.3f -> %.3f)", path, step,
             seconds / 60, loss_before, loss_after)
    if before is not None:
        grid = write_before_after(before, _samples(model, prompts, config.seed),
                                  path.with_name(f"{path.stem}_samples.png"))
        log.info("base samples (left) and the adapter's (right) for %s: %s", prompts, grid)
    remove_adapter(model, adapter.name)
    return LoraTrainResult(path, step, seconds, cpu_seconds, loss_before, loss_after, len(replay))


def _planned_steps(config: LoraTrainConfig, step: int, seconds: float, planned: int) -> int:
    """The steps the run will make: ``config.steps``, or fewer when the time budget ends it first (estimated
    from the pace so far; the learning-rate schedule is laid over the same count)."""
    if config.max_minutes <= 0 or step < 5:
        return planned
    budget = config.max_minutes * 60
    if seconds >= budget:
        return step
    return max(step + 1, min(config.steps, int(budget / (seconds / step))))


def _samples(model: PixelModel, prompts: list[str], seed: int, per_prompt: int = 4) -> np.ndarray:
    """Textures (P, per_prompt, G, G, 4) for the prompts, seeded."""
    model.eval()
    tokens = sample(model, encode_prompt(model, prompts), batch_size=per_prompt,
                    generator=torch.Generator().manual_seed(seed))
    return model.palette.dequantize(tokens).cpu().numpy().reshape(len(prompts), per_prompt, *tokens.shape[1:], 4)


def write_before_after(before: np.ndarray, after: np.ndarray, path: Path) -> Path:
    """A grid with a row per prompt: its base samples, then the adapter's (same seeds)."""
    textures = np.concatenate([before, after], axis=1)
    return save_grid(textures.reshape(-1, *textures.shape[2:]), path, cols=textures.shape[1])

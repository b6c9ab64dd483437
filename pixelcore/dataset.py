"""Training data as the loop sees it: augmented records quantized to palette tokens, and their captions
tokenized once (``CaptionBank``) so a step only indexes tensors."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .captions import (caption_variants, colorless_variants, generic_variants, kind_marked_variants,
                       names_of_both_kinds)
from .sources import with_style
from .data import TextureRecord, hue_shift_augment, hue_target_augment, load_textures, tone_augment
from .palette import Palette
from .train_config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class TrainingSet:
    tokens: torch.Tensor  # (N, G, G) palette tokens
    records: list[TextureRecord]
    palette: Palette
    held_out: list[TextureRecord]
    extra: torch.Tensor | None = None  # (N,) bool: the record comes from ``extra_data``


def _is_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


class CaptionBank:
    """Every caption variant of every record, tokenized once, so a training step only indexes tensors.

    English and Chinese variants are kept apart so a step can pick Chinese with probability ``zh_prob``.
    ``extra``, when given, adds captions of a record to its template variants (a LoRA's new words).
    """

    def __init__(self, records: list[TextureRecord], tokenize, generic: bool = False, kind_marked: bool = False,
                 colorless: bool = False, extra: Callable[[TextureRecord], list[str]] | None = None):
        english, chinese = [], []
        shared = names_of_both_kinds((r.name, r.kind) for r in records) if kind_marked else frozenset()
        for rec in records:
            variants = caption_variants(rec.name, rec.color, rec.kind, pixels=rec.pixels) or [rec.caption]
            if generic:
                variants += generic_variants(rec.name, rec.color, rec.kind)
            if colorless and not rec.recolored:  # the texture in its own colours
                variants += colorless_variants(rec.name, rec.kind)
            if rec.name in shared:
                variants = kind_marked_variants(variants, rec.kind)
            variants = with_style(variants, rec.style)  # extra sources: "..., silk icon style"
            if extra is not None:
                variants = list(dict.fromkeys(variants + extra(rec)))
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
    """Loads, splits, augments and tokenizes the dataset (and ``extra_data``, never held out); fits a palette
    unless one is given (resume, fine-tune)."""
    records, _ = load_textures(config.data)  # logs what it loaded and skipped
    rng = random.Random(config.seed)
    order = list(range(len(records)))
    rng.shuffle(order)
    n_hold = int(len(records) * config.holdout)
    held_out = [records[i] for i in sorted(order[:n_hold])]
    main = _augment([records[i] for i in sorted(order[n_hold:])], config)
    extra = _augment([r for path in config.extra_data for r in load_textures(path)[0]], config)
    train_records = main + extra
    pixels = np.stack([r.pixels for r in train_records])
    if palette is None:
        palette = Palette.fit(pixels, max_colors=config.palette_size, seed=config.seed)
    tokens = palette.quantize(pixels)
    log.info("training set: %d textures (%d before augmentation, %d held out%s), %s",
             len(train_records), len(records) - n_hold, n_hold,
             f", {len(extra)} from extra data" if extra else "", palette)
    is_extra = torch.arange(len(train_records)) >= len(main) if extra else None
    return TrainingSet(tokens, train_records, palette, held_out, is_extra)


def _augment(records: list[TextureRecord], config: TrainConfig) -> list[TextureRecord]:
    """The records and their colour copies: hue targets or fixed hue shifts, plus white/gray/black."""
    if config.hue_targets:
        return hue_target_augment(records) + tone_augment(records)
    if config.hue_shifts:
        return hue_shift_augment(records, config.hue_shifts) + tone_augment(records)
    return list(records)


def record_weights(records: list[TextureRecord], kind_pair_boost: float, extra: torch.Tensor | None = None,
                   extra_weight: float = 1.0) -> torch.Tensor | None:
    """How often each record is drawn: ``kind_pair_boost`` times more for names found as both item and block,
    ``extra_weight`` times for records of the extra data (``extra``, a bool per record).

    Returns None (uniform draws) when every weight is 1.
    """
    if kind_pair_boost <= 0:
        raise ValueError(f"kind_pair_boost must be positive, got {kind_pair_boost}")
    if extra_weight <= 0:
        raise ValueError(f"extra_weight must be positive, got {extra_weight}")
    weights = torch.ones(len(records))
    shared = names_of_both_kinds((r.name, r.kind) for r in records)
    if kind_pair_boost != 1.0 and shared:
        boosted = torch.tensor([r.name in shared for r in records])
        weights[boosted] *= kind_pair_boost
        log.info("drawing %d records of %d item-and-block names %.1fx as often",
                 int(boosted.sum()), len(shared), kind_pair_boost)
    if extra is not None and extra_weight != 1.0:
        weights[extra] *= extra_weight
        log.info("drawing the %d extra records %.2fx as often", int(extra.sum()), extra_weight)
    return None if bool((weights == 1.0).all()) else weights

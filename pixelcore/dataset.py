"""Training data as the loop sees it: augmented records quantized to palette tokens, and their captions
tokenized once (``CaptionBank``) so a step only indexes tensors."""

from __future__ import annotations

import logging
import random

from dataclasses import dataclass

import numpy as np
import torch

from .captions import caption_variants, generic_variants, kind_marked_variants, names_of_both_kinds
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
    records, _ = load_textures(config.data)  # logs what it loaded and skipped
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

"""Training settings: the model presets and ``TrainConfig``, saved beside every run as ``train_config.json``."""

from __future__ import annotations

from dataclasses import dataclass, field

from .losses import LossConfig
from .model import PixelConfig

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
    # More textures for their shapes, never held out, each drawn extra_weight times as often as a record of
    # ``data`` (extra sources carry a style condition in their captions: sources.STYLES).
    extra_data: tuple[str, ...] = ()
    extra_weight: float = 1.0
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
    # Original textures (not their colour copies) also get captions naming no colour ("a steel axe"), so a prompt
    # that names none draws the texture's own colours (captions.colorless_variants).
    colorless_captions: bool = False
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

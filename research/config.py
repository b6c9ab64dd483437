"""What a study is: the systems it compares and the settings they share (one budget, one sampler protocol)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from pixelcore.losses import LossConfig
from pixelcore.sampling import SamplerConfig
from pixelcore.train_config import TrainConfig
from .diffusion import DEFAULT_STEPS as DEFAULT_DIFFUSION_STEPS


@dataclass
class SystemSpec:
    kind: str  # "maskgit", "ar", "diffusion" or "retrieval"
    label: str
    loss: dict = field(default_factory=dict)  # LossConfig overrides
    model_overrides: dict = field(default_factory=dict)
    palette_size: int | None = None


SYSTEMS: dict[str, SystemSpec] = {
    # Each system pins what it measures, so a later change of a library default does not change it: the
    # TV term was on (0.05) when these ablations ran, and is off by default since (docs/quick/RESULTS.md).
    "maskgit": SystemSpec("maskgit", "MaskGIT, the design as first built (TV 0.05)", loss={"tv_weight": 0.05}),
    "no_weighting": SystemSpec(
        "maskgit", "ablation: plain cross entropy (--no-weighting)", loss={"weighting": False}
    ),
    "no_tv": SystemSpec(
        "maskgit", "ablation: no total-variation term (the default since)", loss={"tv_weight": 0.0}
    ),
    "palette64": SystemSpec("maskgit", "ablation: 64-colour palette (--palette-size 64)", palette_size=64),
    "no_2d": SystemSpec(
        "maskgit",
        "ablation: no 2D structure (conv off, 1D positions)",
        model_overrides={"conv": False, "pos_2d": False},
    ),
    "ar": SystemSpec("ar", "baseline: autoregressive raster-order transformer"),
    "diffusion": SystemSpec("diffusion", "baseline: pixel-space diffusion (flow matching, MaskGIT's backbone)"),
    "retrieval": SystemSpec("retrieval", "baseline: nearest training texture (contrastive text encoder)"),
}


# MaskGIT draws nothing after 400 steps of the quick model and follows colours after 3,000
# (docs/quick/RESULTS.md): the quick budget must be past that point for the ranking to mean anything.
QUICK_STEPS = 3000


@dataclass
class ExperimentConfig:
    data: str = "data/luanti"
    out: str = "runs/experiments"
    quick: bool = False
    device: str = "cpu"
    minutes_per_system: float = 0.0  # 0 = the mode's default
    # A step cap on top of the time budget; 0 = the mode's default: quick mode trains every system exactly
    # QUICK_STEPS steps (a fair budget on a shared CPU), full mode trains to the time budget.
    max_steps: int = 0
    holdout: float = 0.1
    seed: int = 0
    seeds_per_prompt: int = 4
    public_prompts: str = "eval/prompts_public.jsonl"  # the public prompt set
    novel_prompts: str = "eval/prompts_novel.jsonl"
    preset: str = ""  # "" = the mode's preset
    batch_size: int = 0  # 0 = the mode's default
    feature_steps: int = 0  # 0 = the mode's default
    # MaskGIT's rounds: 10 in every published table (the shipped sampler draws 8 since docs/SPEED.md).
    sample_steps: int = 10
    # Both systems sample at the shipped guidance and at temperature 1, the network's own distribution: the
    # study compares networks, not sampler tunings. Temperature 0 = each one's own default (MaskGIT 0.7, AR
    # 1.0), as the first quick tables were made; a lower temperature trades diversity (and FD) for adherence.
    cfg_scale: float = SamplerConfig.cfg_scale
    temperature: float = 1.0
    # sampling.GUIDANCE_SCHEDULES, for MaskGIT and AR alike; the study's protocol stays "constant" (every
    # published table used it), where the shipped sampler defaults to "early".
    guidance_schedule: str = "constant"
    randomness: float = SamplerConfig.randomness  # MaskGIT's choice temperature (AR has no such choice)
    # The diffusion baseline's Euler steps (research/diffusion.py; `diffusion-steps` measures several).
    diffusion_steps: int = DEFAULT_DIFFUSION_STEPS
    transparency_delay: float = SamplerConfig.transparency_delay  # MaskGIT's keep order
    speed_repeats: int = 3

    def sampler(self) -> SamplerConfig:
        """MaskGIT's sampler settings in this study (no stray-hole pass: the study compares networks, and the
        AR sampler has none; fp32 eager decoding, as every baseline runs)."""
        return SamplerConfig(steps=self.sample_steps, cfg_scale=self.cfg_scale,
                             temperature=self.temperature or SamplerConfig.temperature,
                             guidance_schedule=self.guidance_schedule, randomness=self.randomness,
                             transparency_delay=self.transparency_delay, min_cutout=0.0, precision="fp32",
                             engine="eager").validate()

    def resolved(self) -> ExperimentConfig:
        """Fills mode defaults: quick = a small model, a few CPU minutes each; full = the shipped preset."""
        quick = self.quick
        return replace(
            self,
            minutes_per_system=self.minutes_per_system or (30.0 if quick else 6.0),
            max_steps=self.max_steps or (QUICK_STEPS if quick else 1_000_000),
            preset=self.preset or ("quick" if quick else "default"),
            batch_size=self.batch_size or (32 if quick else 128),
            feature_steps=self.feature_steps or (400 if quick else 2000),
        )

    def train_config(self, name: str) -> TrainConfig:
        if not self.max_steps:
            return self.resolved().train_config(name)
        spec = SYSTEMS[name]
        overrides = dict(spec.model_overrides)
        if self.quick and self.preset == "quick":  # two layers: a few CPU minutes must reach a usable model
            overrides = {
                "n_layer": 2,
                "n_embd": 128,
                "pixel_dim": 32,
                "text_width": 64,
                "text_layers": 1,
                **overrides,
            }
        return TrainConfig(
            data=self.data,
            out=str(Path(self.out) / name),
            preset=self.preset,
            steps=self.max_steps,
            batch_size=self.batch_size,
            max_minutes=self.minutes_per_system,
            seed=self.seed,
            palette_size=spec.palette_size or 255,
            holdout=self.holdout,
            sample_every=0,
            save_every=10**9,
            device=self.device,
            warmup=min(300, max(1, self.max_steps // 10)),
            loss=LossConfig(**spec.loss),
            model_overrides=overrides,
        )

"""What a study costs to train, before it is run: the floating-point work of one training step of each system
at the study's size and batch, and, where asked, the time of such steps on this machine.

A step here is the network's forward and backward pass on a batch of random tokens and one caption, plus an
AdamW update, on ``config.device``: data loading, masking and the loss are left out (the quick study's real
runs took 1.1 to 1.3 times the time estimated from their steps). The work is counted with
``bench.count_flops`` (products and convolutions, attention included).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from pixelcore.bench import count_flops, timed
from pixelcore.model import PixelModel
from pixelcore.palette import Palette
from pixelcore.model import MaskedTokenModel
from .ar import ARModel
from .config import SYSTEMS, ExperimentConfig
from .diffusion import CHANNELS, Denoiser

log = logging.getLogger(__name__)

# A caption of typical length: training captions name a colour, a material and an object.
CAPTION = "a dark blue diamond sword"


def _palette(size: int) -> Palette:
    """A valid palette of ``size`` entries (transparent first); the colours do not change the work."""
    colors = np.random.default_rng(0).integers(0, 256, (size, 4)).astype(np.uint8)
    colors[:, 3], colors[0] = 255, 0
    return Palette(colors)


def _training_step(config: ExperimentConfig, name: str) -> tuple[Callable[[], None], int]:
    """One training step of system ``name`` at ``config``'s size and batch, and the system's parameter count."""
    spec, train_config = SYSTEMS[name], config.train_config(name)
    palette = _palette(spec.palette_size or 255)
    model_config = train_config.model_config()
    B, G = config.batch_size, model_config.grid_size
    device = torch.device(config.device)
    keep = torch.zeros(B, dtype=torch.bool, device=device)  # no caption dropped
    if spec.kind == "ar":
        model = ARModel(model_config, palette).to(device)
        ids = model.text_encoder.tokenize([CAPTION] * B).to(device)
        tokens = torch.randint(0, len(palette), (B, G * G)).to(device)

        def logits() -> torch.Tensor:
            return model(tokens, *model.condition(ids, keep))
    elif spec.kind == "diffusion":
        model = Denoiser(model_config, palette).to(device)
        ids = model.text_encoder.tokenize([CAPTION] * B).to(device)
        noisy, t = torch.randn(B, CHANNELS, G, G).to(device), torch.rand(B).to(device)

        def logits() -> torch.Tensor:
            return model.velocity(noisy, t, model.text_states(*model.condition(*model.text_encoder(ids), keep)))
    else:
        grid = PixelModel(model_config, palette)
        model = MaskedTokenModel(grid).to(device)
        ids = grid.text_encoder.tokenize([CAPTION] * B).to(device)
        tokens = torch.randint(0, grid.mask_token + 1, (B, G, G)).to(device)  # some cells masked, as in training

        def logits() -> torch.Tensor:
            return model(ids, tokens, keep)

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        logits().float().logsumexp(-1).mean().backward()
        optimizer.step()

    return step, sum(p.numel() for p in model.parameters())


def training_cost(config: ExperimentConfig, names: list[str], timed_steps: int = 0) -> list[dict]:
    """Per system: parameters, GFLOP per training step and, with ``timed_steps`` > 0, the mean seconds of that
    many steps after one warm-up step. Retrieval (a small contrastive text encoder) is not counted.

    Raises:
        ValueError: for an unknown system or a negative ``timed_steps``.
    """
    config = config.resolved()
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown systems {unknown}: choose from {', '.join(SYSTEMS)}")
    if timed_steps < 0:
        raise ValueError(f"timed steps must be 0 or more, got {timed_steps}")
    rows = []
    for name in names:
        if SYSTEMS[name].kind == "retrieval":
            continue
        torch.manual_seed(0)
        step, params = _training_step(config, name)
        row = {"system": name, "params": params, "gflop_per_step": count_flops(step) / 1e9}
        if timed_steps:
            row["seconds_per_step"] = timed(step, timed_steps, torch.device(config.device))
        log.info("%s: %s", name, row)
        rows.append(row)
    return rows


def longest_first(config: ExperimentConfig, names: list[str]) -> list[str]:
    """``names`` ordered by the work of one training step, most first, retrieval (not counted) last.

    ``run --jobs`` starts its children in this order, so the slowest system (AR, 3.5 times MaskGIT's work per
    step) does not start last and run alone at the end. The work is counted at batch 1 on the CPU: it is
    linear in the batch and the same on any device, so the order is that of the study's batch, for a fraction
    of the counting, and the parent process of ``run --jobs`` leaves the accelerator to its children.
    """
    config = replace(config.resolved(), batch_size=1, device="cpu")
    work = {r["system"]: r["gflop_per_step"] for r in training_cost(config, names)}
    return sorted(names, key=lambda name: -work.get(name, 0.0))  # stable: ties keep the given order


def render_cost(config: ExperimentConfig, rows: list[dict]) -> str:
    """A markdown table of ``training_cost``'s rows, with the hours of the step budget where it is a number."""
    config = config.resolved()
    steps = config.max_steps if config.max_steps < 1_000_000 else None  # full mode trains to a time budget
    timed = all("seconds_per_step" in r for r in rows)
    lines = [
        f"Training cost per system: preset `{config.preset}`, batch {config.batch_size}, "
        + (f"{steps} steps each" if steps else "no step budget (give --max-steps for hours)")
        + (f", timed with {torch.get_num_threads()} torch thread(s) on `{config.device}`" if timed else ""),
        "",
        "| system | params (M) | GFLOP per step | s per step | hours for the steps |",
        "|---|---|---|---|---|",
    ]
    total = 0.0
    for r in rows:
        seconds = r.get("seconds_per_step")
        hours = seconds * steps / 3600 if seconds is not None and steps else None
        total += hours or 0.0
        lines.append(f"| `{r['system']}` | {r['params'] / 1e6:.2f} | {r['gflop_per_step']:.1f} | "
                     f"{'–' if seconds is None else f'{seconds:.3f}'} | {'–' if hours is None else f'{hours:.2f}'} |")
    if timed and steps:
        lines += ["", f"All systems one after another: {total:.1f} hours of training (evaluation not counted)."]
    return "\n".join(lines)

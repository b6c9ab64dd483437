"""Baseline: text-conditioned denoising in pixel space (flow matching), on the MaskGIT network's own backbone.

The fourth design of the original write-up (a TexelDiff-16-like denoiser) at the study's size: the image is
4 channels, premultiplied RGB and alpha, each scaled to [-1, 1] (a transparent pixel is (-1, -1, -1, -1)
whatever RGB it hid). Training draws a noise level t ~ U(0, 1), mixes x_t = (1 - t) x + t noise and regresses
the velocity noise - x (rectified flow; Liu et al. 2023, Lipman et al. 2023). Sampling integrates from pure
noise at t = 1 to t = 0 in ``steps`` Euler steps, with classifier-free guidance on the velocity. Alpha is
thresholded at 0.5, so items come out cut out, and the colours are snapped to the run's palette, the one
the token models draw from (pixel art has few colours; unsnapped, nearly every pixel would be its own
colour and the speckle and copy metrics would mean nothing).

The network is ``PixelModel`` with two ends changed: a 1x1 convolution of the 4 channels replaces the token
embedding, a 4-channel output replaces the palette logits, and the noise level's embedding is added to
every patch. The text stream, conv stem, patches, transformer blocks and conv head are the same modules at
the same size, so the comparison is between the generative approaches, not between architectures. Every
step is one pass of the whole network (two with guidance), as a MaskGIT round is.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pixelcore.dataset import TrainingSet
from pixelcore.model import PixelConfig, PixelModel
from pixelcore.palette import ALPHA_THRESHOLD, Palette
from pixelcore.sampling import guidance_scale, pad_cat
from pixelcore.text import check_prompts
from pixelcore.train_config import TrainConfig
from .baseline import load_baseline, save_baseline, train_baseline

FORMAT = "pixelcore-diffusion"
CHANNELS = 4  # premultiplied RGB and alpha
TIME_FEATURES = 64  # sinusoidal features of the noise level, as in DDPM's timestep embedding
# Euler steps of the sampler when none are given: at the quick study's size, 5 steps kept the colour and kind
# adherence and the FD of 10 to 40 (2 kept adherence and FD, not KID; 1 lost colour), research/reports/quick/
# DIFFUSION.md.
DEFAULT_STEPS = 5


def to_signal(rgba: torch.Tensor) -> torch.Tensor:
    """uint8 RGBA (B, G, G, 4) -> (B, 4, G, G) in [-1, 1]: premultiplied RGB, alpha cut at ALPHA_THRESHOLD."""
    rgba = rgba.float()
    x = torch.cat([rgba[..., :3] / 127.5 - 1.0, torch.ones_like(rgba[..., 3:])], dim=-1)
    x = torch.where(rgba[..., 3:] >= ALPHA_THRESHOLD, x, -1.0)  # transparent: black, alpha 0
    return x.permute(0, 3, 1, 2).contiguous()


def to_rgba(x: torch.Tensor, palette: Palette) -> torch.Tensor:
    """(B, 4, G, G) -> uint8 RGBA (B, G, G, 4) on the CPU: alpha above 0.5 is opaque, colours snapped to
    ``palette`` (a transparent pixel is (0, 0, 0, 0))."""
    x = x.float().permute(0, 2, 3, 1).cpu()
    rgba = torch.cat([((x[..., :3] + 1) * 127.5).round().clamp(0, 255),
                      torch.where(x[..., 3:] > 0, 255.0, 0.0)], dim=-1).to(torch.uint8)
    return palette.dequantize(palette.quantize(rgba)).cpu()


def time_features(t: torch.Tensor) -> torch.Tensor:
    """Sinusoidal features (B, TIME_FEATURES) of noise levels t (B,) in [0, 1]."""
    half = TIME_FEATURES // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    angles = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class Denoiser(PixelModel):
    """Velocity (k*B, 4, G, G) of noisy images x_t (B, 4, G, G) at noise levels t (B,), given k*B prompts'
    text states (``PixelModel.text_states``; k = 2 for a guided step)."""

    def __init__(self, config: PixelConfig, palette: Palette):
        super().__init__(config, palette)
        C, D = config.pixel_dim, config.n_embd
        self.embed = nn.Conv2d(CHANNELS, C, 1)  # per pixel, as the token embedding it replaces
        self.head = nn.Linear(C, CHANNELS)
        self.time_embed = nn.Sequential(nn.Linear(TIME_FEATURES, D), nn.SiLU(), nn.Linear(D, D))
        for module in (self.head, self.time_embed):
            module.apply(self._init_weights)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, text) -> torch.Tensor:
        features = self.trunk(self.embed(x), text, self.time_embed(time_features(t)))  # (k*B, G, G, C)
        return self.head(features).permute(0, 3, 1, 2)  # (k*B, 4, G, G)


@torch.no_grad()
def sample_diffusion(model: Denoiser, prompts: str | list[str], *, batch_size: int = 1, steps: int = DEFAULT_STEPS,
                     cfg_scale: float = 1.5, guidance_schedule: str = "constant",
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """``batch_size`` textures per prompt (prompt-major): uint8 RGBA (P * batch_size, G, G, 4) on the CPU.

    The noise is drawn on the CPU from ``generator``, so a seed repeats on any device. ``guidance_schedule``
    is MaskGIT's (``sampling.GUIDANCE_SCHEDULES``), with the share decided read as the share of steps done;
    a step at scale 1 runs the conditional half only.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a whole number of at least 1, got {steps!r}")
    prompts = check_prompts(prompts)
    guidance_scale(cfg_scale, guidance_schedule, 0.0)  # refuses an unknown schedule before any work
    model.eval()
    device, G = model.device, model.config.grid_size
    features, mask = model.encode_text(prompts)
    cond = model.condition(features.repeat_interleave(batch_size, 0), mask.repeat_interleave(batch_size, 0))
    B = len(prompts) * batch_size
    text = model.text_states(*pad_cat(*cond, *model.null_condition(B)))  # prompts, then the null condition
    x = torch.randn(B, CHANNELS, G, G, generator=generator).to(device)
    times = torch.linspace(1.0, 0.0, steps + 1)
    for i in range(steps):
        t = times[i].expand(B).to(device)
        scale = guidance_scale(cfg_scale, guidance_schedule, i / steps)
        if scale == 1.0:
            v = model.velocity(x, t, text.rows(slice(0, B)))
        else:
            v_c, v_u = model.velocity(x, t, text).chunk(2)
            v = v_u + scale * (v_c - v_u)
        x = x + float(times[i + 1] - times[i]) * v
    return to_rgba(x, model.palette)


def save_diffusion(model: Denoiser, path: str | Path, info: dict | None = None) -> Path:
    return save_baseline(model, path, FORMAT, info)


def load_diffusion(path: str | Path, device: str | torch.device = "cpu") -> Denoiser:
    return load_baseline(path, FORMAT, "a diffusion baseline checkpoint", Denoiser, device)


def train_diffusion(config: TrainConfig) -> Path:
    """Trains the denoiser on the MaskGIT run's data, budget and optimiser (flow-matching loss); writes
    ``model.safetensors`` in ``config.out`` and returns its path."""

    def build(data: TrainingSet, device: torch.device) -> Denoiser:
        return Denoiser(config.model_config(), data.palette)

    def batch_loss(data: TrainingSet, device: torch.device):
        images = to_signal(torch.from_numpy(np.stack([r.pixels for r in data.records])))  # (N, 4, G, G)

        def loss(model, ids, idx, drop, gen, amp):
            x = images[idx].to(device)
            t = torch.rand(len(idx), generator=gen).to(device)
            noise = torch.randn(x.shape, generator=gen).to(device)
            x_t = (1 - t[:, None, None, None]) * x + t[:, None, None, None] * noise
            with amp:
                features, mask = model.text_encoder(ids)
                text = model.text_states(*model.condition(features, mask, drop))
                v = model.velocity(x_t, t, text)
            return F.mse_loss(v.float(), noise - x)

        return loss

    return train_baseline(config, "diffusion baseline", build, batch_loss, save_diffusion)

"""Mask schedules: how much of the grid is hidden at a point t in [0, 1] of decoding.

MaskGIT trains on mask ratios drawn from the same schedule that decoding walks down, so the network sees
each ratio about as often as the sampler asks for it. Cosine spends more steps with most tokens hidden
(structure first) and fewer on the last details.
"""

from __future__ import annotations

import math

import torch

SCHEDULES = ("cosine", "linear", "square")


def mask_ratio(t: torch.Tensor | float, schedule: str = "cosine") -> torch.Tensor:
    """Share of tokens masked at progress ``t`` (0 = all masked, 1 = none)."""
    t = torch.as_tensor(t, dtype=torch.float32).clamp(0.0, 1.0)
    if schedule == "cosine":
        return torch.cos(t * math.pi / 2)
    if schedule == "linear":
        return 1.0 - t
    if schedule == "square":
        return 1.0 - t * t
    raise ValueError(f"unknown mask schedule {schedule!r}: use one of {', '.join(SCHEDULES)}")


def training_mask_ratio(batch: int, schedule: str = "cosine", generator: torch.Generator | None = None
                        ) -> torch.Tensor:
    """Per-sample mask ratios for training, (B,), drawn by pushing uniform t through the schedule."""
    return mask_ratio(torch.rand(batch, generator=generator), schedule)


def tokens_to_keep_masked(step: int, steps: int, initial_unknown: torch.Tensor, current_unknown: torch.Tensor,
                          schedule: str = "cosine") -> torch.Tensor:
    """How many tokens stay masked after decoding step ``step`` (0-based), per sample, (B,).

    Follows the schedule on the count of initially unknown tokens. The last step reveals everything; every
    earlier step reveals at least one token and keeps at least one masked, so no step is wasted.
    """
    if step >= steps - 1:
        return torch.zeros_like(current_unknown)
    ratio = float(mask_ratio((step + 1) / steps, schedule))
    keep = torch.floor(initial_unknown.float() * ratio).long()
    upper = (current_unknown - 1).clamp(min=0)
    return torch.minimum(keep.clamp(min=1), upper)


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

"""Mask schedules: how much of the grid is hidden at a point t in [0, 1] of decoding.

MaskGIT trains on mask ratios drawn from the same schedule that decoding walks down, so the network sees
each ratio about as often as the sampler asks for it. Cosine spends more steps with most tokens hidden
(structure first) and fewer on the last details.
"""

from __future__ import annotations

import functools
import math

import torch

SCHEDULES = ("cosine", "linear", "square")
# Which cells a decoding round keeps (``sampling.SamplerConfig.order``).
ORDERS = ("confidence", "halton")


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


def _radical_inverse(index: int, base: int) -> float:
    """The index-th element of the van der Corput sequence in ``base``."""
    result, scale = 0.0, 1.0 / base
    while index:
        index, digit = divmod(index, base)
        result += digit * scale
        scale /= base
    return result


@functools.lru_cache(maxsize=8)
def halton_order(grid: int) -> torch.Tensor:
    """Every cell of a grid x grid square once, (grid * grid,) flat indices, in the order of the 2D Halton
    sequence (bases 2 and 3): each prefix is spread evenly over the square, so the cells a round decides
    together are far apart (the Halton scheduler of Besnier et al. 2025)."""
    seen: dict[int, None] = {}
    index = 1
    while len(seen) < grid * grid and index < 1000 * grid * grid:
        row = int(_radical_inverse(index, 3) * grid)
        col = int(_radical_inverse(index, 2) * grid)
        seen.setdefault(row * grid + col, None)
        index += 1
    rest = [cell for cell in range(grid * grid) if cell not in seen]  # never reached for grids up to 64
    return torch.tensor(list(seen) + rest, dtype=torch.long)

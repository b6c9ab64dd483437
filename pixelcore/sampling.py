"""MaskGIT parallel decoding with classifier-free guidance.

Decoding starts from a grid of mask tokens (or of given tokens plus a keep-mask), predicts every masked cell
at once, keeps the most confident predictions and re-masks the rest, for a few rounds along the mask schedule:
structure first, detail later. A texture that ends with a few stray transparent cells (under ``min_cutout``)
gets one more round over them with transparency banned. All randomness is drawn on the CPU from the caller's
``torch.Generator``, so a seed gives the same texture on any device (up to floating-point differences between
devices).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .colors import ITEM_MIN_TRANSPARENT
from .model import PixelModel, TextStates
from .palette import TRANSPARENT
from .schedule import SCHEDULES, mask_ratio, tokens_to_keep_masked
from .text import check_prompts

MAX_STEPS = 64
# Ten rounds keep a batch of 32 above 10 images/s on 2 CPU cores; quality barely moves beyond that.
DEFAULT_STEPS = 10
# Measured on the public prompts with the default model (docs/MODEL_CARD.md): guidance 1.5 and temperature 0.7
# give the best colour adherence with the least speckle; guidance 3 adds rare bright pixels.
DEFAULT_CFG = 1.5
DEFAULT_TEMPERATURE = 0.7
# Every item texture of the Luanti training set is more than 10% transparent, and 625 of its 639 blocks have no
# transparent pixel. A sample left with a few transparent cells, under the item line, is read as a block tile
# with stray holes, and those cells are drawn again, opaque (``sample(min_cutout=...)``; 0 keeps them).
DEFAULT_MIN_CUTOUT = ITEM_MIN_TRANSPARENT
MAX_CFG = 30.0
# How the guidance scale moves over the rounds. "constant": the full scale every round. "linear": 1 (no
# guidance) while nothing is decided, rising with the share of the cells to generate that the mask schedule
# has decided by that round, to the full scale (MAR's schedule, Li et al. 2024); the first round then needs
# no unconditional pass. "early": the full scale in the rounds that start with less than EARLY_GUIDANCE_SHARE
# decided, then none, so the later rounds skip the unconditional pass (guidance in a limited interval,
# Kynkäänniemi et al. 2024).
GUIDANCE_SCHEDULES = ("constant", "linear", "early")
# The first rounds fix the silhouette and the colours, which is what guidance is for; guided late rounds
# only add stray bright pixels (docs/MODEL_CARD.md). A third: the first 6 of 10 rounds on the cosine schedule.
EARLY_GUIDANCE_SHARE = 1 / 3
# Measured on the default model at 16 seeds, two seed sets (docs/MODEL_CARD.md): "early" against "constant"
# keeps colour and kind adherence (within 2 samples of 384), draws fewer isolated pixels, and does a fifth
# less work per texture.
DEFAULT_GUIDANCE_SCHEDULE = "early"
MAX_TEMPERATURE = 5.0
# MaskGIT's choice temperature: Gumbel noise on the confidences that pick the cells to keep, annealed to 0.
DEFAULT_RANDOMNESS = 2.0
MAX_RANDOMNESS = 20.0
# How much later a round keeps the cells it drew transparent than opaque ones, in log-probability units
# subtracted from their keep confidence: at 1, a transparent cell drawn with probability p ranks with an opaque
# one drawn with p/e. A confidence order keeps the easy background first, and an item whose background is
# decided early is left with too little room for its silhouette. 0 leaves the order as MaskGIT has it.
DEFAULT_TRANSPARENCY_DELAY = 0.0
MAX_TRANSPARENCY_DELAY = 10.0
MAX_BATCH = 256


@dataclass
class Conditioning:
    """Encoded prompts (and optional negative prompts) for ``sample``."""

    features: torch.Tensor  # (B, L, E) text features
    mask: torch.Tensor  # (B, L) True on real positions
    prompts: list[str]
    negative_features: torch.Tensor | None = None  # (B, L', E), None = the learned null condition
    negative_mask: torch.Tensor | None = None
    negative: list[str] = field(default_factory=list)

    def to(self, device: torch.device | str) -> Conditioning:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return Conditioning(move(self.features), move(self.mask), list(self.prompts),
                            move(self.negative_features), move(self.negative_mask), list(self.negative))

    def __len__(self) -> int:
        return len(self.prompts)


@torch.no_grad()
def encode_prompt(model: PixelModel, prompts: str | list[str],
                  negative: str | list[str] | None = None) -> Conditioning:
    """Encodes prompts for sampling. One negative prompt applies to all prompts, or give one per prompt.

    An empty negative prompt (or None) means "no negative": guidance then pushes away from the unconditional
    prediction, as in plain classifier-free guidance.

    Raises:
        ValueError: for an empty prompt, non-string input, or a negative list of the wrong length.
    """
    prompts = check_prompts(prompts)
    features, mask = model.encode_text(prompts)
    if negative is None or (isinstance(negative, str) and not negative.strip()):
        return Conditioning(features, mask, prompts)
    negatives = check_prompts(negative, what="negative prompt")
    if len(negatives) == 1:
        negatives = negatives * len(prompts)
    if len(negatives) != len(prompts):
        raise ValueError(f"got {len(negatives)} negative prompts for {len(prompts)} prompts: give one or one each")
    neg_features, neg_mask = model.encode_text(negatives)
    return Conditioning(features, mask, prompts, neg_features, neg_mask, negatives)


def check_sampling_args(steps: int, cfg_scale: float, temperature: float, batch_size: int) -> None:
    """Raises ValueError, saying the allowed range, for out-of-range sampling settings."""
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer in 1..{MAX_STEPS}, got {steps!r}")
    if not 0.0 <= float(cfg_scale) <= MAX_CFG:
        raise ValueError(f"cfg_scale must be in 0..{MAX_CFG:g} (1 = no guidance), got {cfg_scale!r}")
    if not 0.0 < float(temperature) <= MAX_TEMPERATURE:
        raise ValueError(f"temperature must be in (0, {MAX_TEMPERATURE:g}], got {temperature!r}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch_size must be an integer in 1..{MAX_BATCH}, got {batch_size!r}")


def _pad_cat(a: torch.Tensor, am: torch.Tensor, b: torch.Tensor, bm: torch.Tensor):
    """Stacks two (B, L, D) condition batches of different lengths along the batch, padding the shorter."""
    length = max(a.shape[1], b.shape[1])

    def pad(t: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.pad(t, (0, 0, 0, length - t.shape[1])), F.pad(m, (0, length - m.shape[1]))

    (a, am), (b, bm) = pad(a, am), pad(b, bm)
    return torch.cat([a, b]), torch.cat([am, bm])


def guidance_scale(cfg_scale: float, schedule: str, decided: float) -> float:
    """The guidance scale for a round that starts with share ``decided`` (0..1) of the grid decided."""
    if schedule == "constant":
        return float(cfg_scale)
    if schedule == "linear":
        return 1.0 + (float(cfg_scale) - 1.0) * min(max(float(decided), 0.0), 1.0)
    if schedule == "early":
        return float(cfg_scale) if decided < EARLY_GUIDANCE_SHARE else 1.0
    raise ValueError(f"unknown guidance schedule {schedule!r}: use one of {', '.join(GUIDANCE_SCHEDULES)}")


def _guided_logits(model: PixelModel, tokens: torch.Tensor, text: TextStates, cfg_scale: float) -> torch.Tensor:
    """Logits (B, G, G, V) with classifier-free guidance: uncond + cfg * (cond - uncond).

    ``text`` holds the prompts' states in rows 0..B-1 and the unconditional (or negative) ones in rows B..2B-1.
    """
    B = len(tokens)
    if cfg_scale == 1.0:
        return model.decode(tokens, text.rows(slice(0, B))).float()
    logits_c, logits_u = model.decode(torch.cat([tokens, tokens]), text).float().chunk(2)
    return logits_u + cfg_scale * (logits_c - logits_u)


def _categorical(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Samples one index per row of probs (R, V) by inverse CDF with CPU uniforms."""
    u = torch.rand(probs.shape[0], 1, generator=generator).to(probs.device)
    cdf = probs.cumsum(-1)
    return torch.searchsorted(cdf, u * cdf[:, -1:]).clamp(max=probs.shape[-1] - 1).squeeze(1)


def sampling_step(logits: torch.Tensor, tokens: torch.Tensor, unknown: torch.Tensor, keep_masked: torch.Tensor,
                  temperature: float, randomness: float, progress: float, mask_token: int,
                  generator: torch.Generator | None,
                  transparency_delay: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One MaskGIT round on flat grids: tokens (B, T), unknown (B, T) bool, logits (B, T, V).

    Samples every unknown cell, then re-masks the ``keep_masked`` least confident of them, where confidence
    is the sampled token's log-probability plus Gumbel noise scaled by ``randomness * (1 - progress)``, less
    ``transparency_delay`` where the sampled token is transparent.

    Returns:
        (new tokens (B, T), new unknown mask (B, T)).
    """
    B, T, V = logits.shape
    log_probs = F.log_softmax(logits / temperature, dim=-1)
    sampled = _categorical(log_probs.exp().reshape(B * T, V), generator).reshape(B, T)
    sampled = torch.where(unknown, sampled, tokens)
    confidence = log_probs.gather(-1, sampled[..., None]).squeeze(-1)
    uniform = torch.rand(B, T, generator=generator).clamp_(1e-20, 1.0).to(logits.device)
    confidence = confidence + randomness * (1.0 - progress) * -torch.log(-torch.log(uniform))
    if transparency_delay:
        confidence = confidence - transparency_delay * (sampled == TRANSPARENT)
    confidence = confidence.masked_fill(~unknown, float("inf"))
    order = confidence.argsort(dim=1)  # least confident first
    ranks = torch.empty_like(order).scatter_(1, order, torch.arange(T, device=order.device).expand(B, T))
    remask = ranks < keep_masked[:, None]
    return sampled.masked_fill(remask, mask_token), remask


@torch.no_grad()
def sample(model: PixelModel, cond: Conditioning, *, steps: int = DEFAULT_STEPS, cfg_scale: float = DEFAULT_CFG,
           temperature: float = DEFAULT_TEMPERATURE, randomness: float = DEFAULT_RANDOMNESS,
           transparency_delay: float = DEFAULT_TRANSPARENCY_DELAY, batch_size: int = 1,
           schedule: str = "cosine", guidance_schedule: str = DEFAULT_GUIDANCE_SCHEDULE,
           generator: torch.Generator | None = None, init_tokens: torch.Tensor | None = None,
           keep_mask: torch.Tensor | None = None, allowed_tokens: torch.Tensor | None = None,
           opaque: bool = False, min_cutout: float = DEFAULT_MIN_CUTOUT,
           callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Decodes token grids for each prompt of ``cond``, ``batch_size`` each (prompt-major order).

    Args:
        randomness: scale of the Gumbel noise added to the confidences that pick which cells to keep,
            annealed to 0 over the rounds (MaskGIT's choice temperature).
        transparency_delay: subtracted from the keep confidence of cells drawn transparent, so that each
            round keeps opaque cells first and decides the background later (see ``DEFAULT_TRANSPARENCY_DELAY``).
        guidance_schedule: ``"early"`` (the default), ``"constant"`` or ``"linear"`` (see ``GUIDANCE_SCHEDULES``).
        init_tokens: (B', G, G) tokens to keep where ``keep_mask`` (B', G, G) is True; B' is 1 or the output
            batch. Kept cells come back unchanged; the rest are generated around them (inpainting, variations).
        allowed_tokens: palette indices sampling may use (palette lock); the transparent token 0 is allowed
            unless ``opaque``.
        opaque: never draw the transparent token, for a tile with no holes (a block); kept cells stay as given.
        min_cutout: a grid that ends with some transparent cells, but fewer than this share, is a block tile
            with stray holes: its generated transparent cells are predicted once more with transparency
            banned (kept cells stay). 0 turns this off; it does not change grids with no transparent cell
            or with at least this share (item cut-outs).
        callback: called as ``callback(step, steps)`` after each step (1-based); may raise to cancel.

    Returns:
        Long tensor (len(cond) * batch_size, G, G) on the model's device.
    """
    check_sampling_args(steps, cfg_scale, temperature, batch_size)
    if not 0.0 <= float(min_cutout) <= 1.0:
        raise ValueError(f"min_cutout must be a share in 0..1 (0 = off), got {min_cutout!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}: use one of {', '.join(SCHEDULES)}")
    guidance_scale(cfg_scale, guidance_schedule, 0.0)  # refuses an unknown guidance schedule up front
    if not 0.0 <= float(randomness) <= MAX_RANDOMNESS:
        raise ValueError(f"randomness must be in 0..{MAX_RANDOMNESS:g}, got {randomness!r}")
    if not 0.0 <= float(transparency_delay) <= MAX_TRANSPARENCY_DELAY:
        raise ValueError(f"transparency_delay must be in 0..{MAX_TRANSPARENCY_DELAY:g} (0 = off), "
                         f"got {transparency_delay!r}")
    model.eval()
    device, G, V = model.device, model.config.grid_size, model.config.vocab_size
    B = len(cond) * batch_size
    cond = cond.to(device)
    c = model.condition(cond.features.repeat_interleave(batch_size, 0),
                        cond.mask.repeat_interleave(batch_size, 0))
    if cond.negative_features is not None:
        uncond = model.condition(cond.negative_features.repeat_interleave(batch_size, 0),
                                 cond.negative_mask.repeat_interleave(batch_size, 0))
    else:
        uncond = model.null_condition(B)

    tokens = torch.full((B, G * G), model.mask_token, dtype=torch.long, device=device)
    unknown = torch.ones(B, G * G, dtype=torch.bool, device=device)
    if keep_mask is not None:
        if init_tokens is None:
            raise ValueError("keep_mask needs init_tokens: the tokens to keep")
        init = init_tokens.to(device).long().reshape(-1, G * G)
        keep = keep_mask.to(device).bool().reshape(-1, G * G)
        if len(init) not in (1, B) or len(keep) not in (1, B):
            raise ValueError(f"init_tokens and keep_mask need a batch of 1 or {B} grids of {G}x{G}, "
                             f"got {len(init)} and {len(keep)}")
        init, keep = init.expand(B, -1), keep.expand(B, -1)
        if init[keep].numel() and (init[keep].min() < 0 or init[keep].max() >= V):
            raise ValueError(f"init_tokens must be palette indices in 0..{V - 1}")
        tokens = torch.where(keep, init, tokens)
        unknown = ~keep
    banned = _banned_tokens(V, allowed_tokens, opaque, device)
    text = model.text_states(*_pad_cat(*c, *uncond))  # once: the text never attends to the image

    generated = unknown.clone()  # cells the sampler draws (not kept)
    initial_unknown = unknown.sum(1)
    for step in range(steps):
        decided = 1.0 - float(mask_ratio(step / steps, schedule))  # the schedule's share decided so far
        scale = guidance_scale(cfg_scale, guidance_schedule, decided)
        logits = _guided_logits(model, tokens.reshape(B, G, G), text, scale).reshape(B, G * G, V)
        if banned is not None:
            logits = logits.masked_fill(banned, float("-inf"))
        keep_masked = tokens_to_keep_masked(step, steps, initial_unknown, unknown.sum(1), schedule)
        tokens, unknown = sampling_step(logits, tokens, unknown, keep_masked, float(temperature), randomness,
                                        (step + 1) / steps, model.mask_token, generator, float(transparency_delay))
        if callback is not None:
            callback(step + 1, steps)
    if min_cutout > 0:
        tokens = _fill_stray_holes(model, tokens, generated, float(min_cutout), text,
                                   guidance_scale(cfg_scale, guidance_schedule, 1.0), float(temperature), banned,
                                   generator)
    return tokens.reshape(B, G, G)


def _banned_tokens(vocab_size: int, allowed_tokens: torch.Tensor | None, opaque: bool,
                   device: torch.device) -> torch.Tensor | None:
    """(V,) bool of the tokens sampling may not draw (palette lock, opaque), or None when all are allowed."""
    banned = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    if allowed_tokens is not None:
        allowed = torch.as_tensor(allowed_tokens, device=device).long().reshape(-1)
        if allowed.numel() and (allowed.min() < 0 or allowed.max() >= vocab_size):
            raise ValueError(f"allowed_tokens must be palette indices in 0..{vocab_size - 1}")
        banned[:] = True
        banned[allowed] = False
    banned[TRANSPARENT] = bool(opaque)
    if banned.all():
        raise ValueError("opaque sampling with a palette lock of no opaque colour leaves nothing to draw: "
                         "allow at least one opaque colour, or turn opaque off")
    return banned if banned.any() else None


def _fill_stray_holes(model: PixelModel, tokens: torch.Tensor, generated: torch.Tensor, min_cutout: float,
                      text: TextStates, cfg_scale: float, temperature: float, banned: torch.Tensor | None,
                      generator: torch.Generator | None) -> torch.Tensor:
    """One more round at guidance ``cfg_scale``, transparency banned, over the stray holes of flat grids (B, T);
    see ``sample``."""
    B, T = tokens.shape
    G, V = model.config.grid_size, model.config.vocab_size
    fill_banned = torch.zeros(V, dtype=torch.bool, device=tokens.device) if banned is None else banned.clone()
    fill_banned[TRANSPARENT] = True
    holes = _stray_holes(tokens, generated, min_cutout)
    rows = holes.any(1).nonzero().squeeze(1)
    if len(rows) == 0 or fill_banned.all():  # a palette lock with no opaque colour leaves the holes
        return tokens
    sub = tokens[rows].masked_fill(holes[rows], model.mask_token)
    logits = _guided_logits(model, sub.reshape(-1, G, G), text.rows(torch.cat([rows, rows + B])), cfg_scale)
    logits = logits.reshape(len(rows), T, V).masked_fill(fill_banned, float("-inf"))
    no_remask = torch.zeros(len(rows), dtype=torch.long, device=tokens.device)
    tokens = tokens.clone()
    tokens[rows], _ = sampling_step(logits, sub, holes[rows], no_remask, temperature, 0.0, 1.0, model.mask_token,
                                    generator)
    return tokens


def _stray_holes(tokens: torch.Tensor, generated: torch.Tensor, min_cutout: float) -> torch.Tensor:
    """(B, T) bool: the generated transparent cells of grids whose transparent share is above 0, below
    ``min_cutout``."""
    transparent = tokens == TRANSPARENT
    share = transparent.float().mean(1, keepdim=True)
    return transparent & generated & (share > 0) & (share < min_cutout)

"""MaskGIT parallel decoding with classifier-free guidance.

Decoding starts from a grid of mask tokens (or of given tokens plus a keep-mask), predicts every masked cell
at once, keeps the most confident predictions and re-masks the rest, for a few rounds along the mask schedule:
structure first, detail later. A texture that ends with a few stray transparent cells (under
``SamplerConfig.min_cutout``) gets one more round over them with transparency banned. All randomness is drawn
on the CPU from the caller's ``torch.Generator``, so a seed gives the same texture on any device (up to
floating-point differences between devices). ``SamplerConfig`` holds every knob and its default.
"""

from __future__ import annotations

from collections.abc import Callable
import json
import math
from dataclasses import asdict, dataclass, field, fields, replace

import torch
import torch.nn.functional as F

from .accel import ENGINES, PRECISIONS, Decoder
from .colors import ITEM_MIN_TRANSPARENT
from .model import PixelModel, TextStates
from .palette import TRANSPARENT
from .schedule import ORDERS, SCHEDULES, halton_order, mask_ratio, tokens_to_keep_masked
from .text import check_prompts

MAX_STEPS = 64
MAX_CFG = 30.0
# Below this, logits / temperature overflow float32 and every cell takes one colour.
MIN_TEMPERATURE = 0.01
MAX_TEMPERATURE = 5.0
MAX_RANDOMNESS = 20.0
MAX_TRANSPARENCY_DELAY = 10.0
# Grids per ``sample`` call (prompts x batch): past this a CPU takes minutes and memory grows by gigabytes.
MAX_BATCH = 256
# How the guidance scale moves over the rounds. "constant": the full scale every round. "linear": 1 (no
# guidance) while nothing is decided, rising with the share of the cells to generate that the mask schedule
# has decided by that round, to the full scale (MAR's schedule, Li et al. 2024); the first round then needs
# no unconditional pass. "early": the full scale in the rounds that start with less than EARLY_GUIDANCE_SHARE
# decided, then none, so the later rounds skip the unconditional pass (guidance in a limited interval,
# Kynkäänniemi et al. 2024).
GUIDANCE_SCHEDULES = ("constant", "linear", "early")
# The first rounds fix the silhouette and the colours, which is what guidance is for; guided late rounds
# only add stray bright pixels (docs/MODEL_CARD.md). A third: the first 5 of 8 (6 of 10) rounds on the cosine
# schedule.
EARLY_GUIDANCE_SHARE = 1 / 3


@dataclass(frozen=True)
class SamplerConfig:
    """How :func:`sample` decodes: every sampling knob, its default and its range, checked by ``validate``.

    The CLI flags, the node inputs, evaluation and the research studies are all built from this class, so a
    default lives here and nowhere else. ``RESEARCH_KNOBS`` were measured and not shipped: they are reachable
    through ``with_overrides`` (the CLI's ``--sampler-overrides JSON``) but are not user flags.
    """

    # Eight rounds (13 network passes with early guidance, against 16 at ten) keep the public-prompt adherence
    # of ten: colour 0.957 / 0.952 and kind 0.990 / 0.977 at 16 seeds on two seed sets, against 0.955 / 0.963
    # and 0.990 / 0.979 (docs/SPEED.md); six rounds add visible speckle to block tiles.
    steps: int = 8
    # Measured on the public prompts with the default model (docs/MODEL_CARD.md): guidance 1.5 and temperature
    # 0.7 give the best colour adherence with the least speckle; guidance 3 adds rare bright pixels.
    cfg_scale: float = 1.5
    temperature: float = 0.7
    # MaskGIT's choice temperature: Gumbel noise on the confidences that pick the cells to keep, annealed to 0.
    randomness: float = 2.0
    # "early" against "constant", default model, 16 seeds, two seed sets (docs/MODEL_CARD.md): the same colour
    # and kind adherence (within 2 samples of 384), fewer isolated pixels, a fifth less work per texture.
    guidance_schedule: str = "early"
    # Never draw the transparent token: a tile with no holes (a block). Kept cells stay as given.
    opaque: bool = False
    # Every item texture of the Luanti training set is more than 10% transparent, and 625 of its 639 blocks
    # have no transparent pixel. A sample left with a few transparent cells, under the item line, is read as a
    # block tile with stray holes, and those cells are drawn again, opaque; 0 keeps them.
    min_cutout: float = ITEM_MIN_TRANSPARENT
    # The mask schedule the rounds walk down (schedule.SCHEDULES).
    schedule: str = "cosine"
    # How much later a round keeps the cells it drew transparent than opaque ones, in log-probability units
    # subtracted from their keep confidence (0 = MaskGIT's order). Measured at two sizes and on the shipped
    # model without a gain that held (research/reports/SAMPLER.md).
    transparency_delay: float = 0.0
    # Which cells a round keeps: "confidence" (MaskGIT: the most confident, with ``randomness`` noise) or
    # "halton" (a fixed low-discrepancy order over the grid, spread out at every round; Besnier et al. 2025).
    order: str = "confidence"
    # The number format and the engine of the network passes (accel.PRECISIONS, accel.ENGINES); "auto" picks
    # what the device runs fastest without a quality cost, and anything a device lacks falls back to fp32
    # eager decoding.
    precision: str = "auto"
    engine: str = "auto"

    RESEARCH_KNOBS = ("schedule", "transparency_delay", "order")

    def validate(self) -> SamplerConfig:
        """Checks every field's type and range; returns ``self`` so a call can be chained.

        Raises:
            ValueError: naming the field, the allowed range and the value given.
        """
        _check_int("steps", self.steps, 1, MAX_STEPS)
        _check_number("cfg_scale", self.cfg_scale, 0.0, MAX_CFG, "1 = no guidance")
        _check_number("temperature", self.temperature, MIN_TEMPERATURE, MAX_TEMPERATURE, "lower is safer")
        _check_number("randomness", self.randomness, 0.0, MAX_RANDOMNESS, "0 = most confident first")
        _check_number("min_cutout", self.min_cutout, 0.0, 1.0, "a share; 0 = keep stray holes")
        _check_number("transparency_delay", self.transparency_delay, 0.0, MAX_TRANSPARENCY_DELAY, "0 = off")
        if not isinstance(self.opaque, bool):
            raise ValueError(f"opaque must be true or false, got {self.opaque!r}")
        _check_choice("guidance_schedule", self.guidance_schedule, GUIDANCE_SCHEDULES)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("order", self.order, ORDERS)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("engine", self.engine, ENGINES)
        return self

    def with_overrides(self, overrides: dict | str | None) -> SamplerConfig:
        """A validated copy with some fields replaced; ``overrides`` is a dict or its JSON text.

        Raises:
            ValueError: for JSON that is not an object, an unknown field (naming the known ones) or a bad value.
        """
        if overrides is None or overrides == "":
            return self.validate()
        if isinstance(overrides, str):
            try:
                overrides = json.loads(overrides)
            except json.JSONDecodeError as err:
                raise ValueError(f"sampler overrides are not valid JSON ({err}): e.g. '{{\"randomness\": 4.5}}'"
                                 ) from err
        if not isinstance(overrides, dict):
            raise ValueError(f"sampler overrides must be a JSON object of field: value, got {overrides!r}")
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown sampler settings {unknown}: use {', '.join(sorted(known))}")
        return replace(self, **overrides).validate()

    def to_dict(self) -> dict:
        return asdict(self)


def _check_int(name: str, value, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{name} must be a whole number in {low}..{high}, got {value!r}")


def _check_number(name: str, value, low: float, high: float, hint: str) -> None:
    if (not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value)
            or not low <= value <= high):
        raise ValueError(f"{name} must be a number in {low:g}..{high:g} ({hint}), got {value!r}")


def _check_choice(name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}: use one of {', '.join(choices)}")


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
        ValueError: for an empty prompt, non-string input, more than ``MAX_BATCH`` prompts, or a negative list
            of the wrong length.
    """
    prompts = check_prompts(prompts)
    if len(prompts) > MAX_BATCH:
        raise ValueError(f"{len(prompts)} prompts in one call; at most {MAX_BATCH}: encode them in several calls")
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


def check_batch(prompts: int, batch_size: int) -> None:
    """Raises ValueError when ``prompts`` x ``batch_size`` grids are more than one call makes (``MAX_BATCH``)."""
    _check_int("batch_size", batch_size, 1, MAX_BATCH)
    if prompts * batch_size > MAX_BATCH:
        raise ValueError(f"{prompts} prompts x batch {batch_size} = {prompts * batch_size} textures in one call; "
                         f"at most {MAX_BATCH}: split the prompts into several calls")


def pad_cat(a: torch.Tensor, am: torch.Tensor, b: torch.Tensor, bm: torch.Tensor):
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


Decode = Callable[[torch.Tensor, TextStates], torch.Tensor]  # (tokens (B, G, G), text) -> fp32 logits


def _guided_logits(decode: Decode, tokens: torch.Tensor, text: TextStates, cfg_scale: float) -> torch.Tensor:
    """Logits (B, G, G, V) with classifier-free guidance: uncond + cfg * (cond - uncond).

    ``text`` holds the prompts' states in rows 0..B-1 and the unconditional (or negative) ones in rows B..2B-1.
    """
    B = len(tokens)
    if cfg_scale == 1.0:
        return decode(tokens, text.rows(slice(0, B)))
    logits_c, logits_u = decode(tokens, text).chunk(2)  # one pass: each grid under both conditions
    return logits_u + cfg_scale * (logits_c - logits_u)


def _categorical(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Samples one index per row of probs (R, V) by inverse CDF with CPU uniforms."""
    u = torch.rand(probs.shape[0], 1, generator=generator).to(probs.device)
    cdf = probs.cumsum(-1)
    return torch.searchsorted(cdf, u * cdf[:, -1:]).clamp(max=probs.shape[-1] - 1).squeeze(1)


def sampling_step(logits: torch.Tensor, tokens: torch.Tensor, unknown: torch.Tensor, keep_masked: torch.Tensor,
                  temperature: float, randomness: float, progress: float, mask_token: int,
                  generator: torch.Generator | None,
                  transparency_delay: float = 0.0,
                  priority: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One MaskGIT round on flat grids: tokens (B, T), unknown (B, T) bool, logits (B, T, V).

    Samples every unknown cell, then re-masks the ``keep_masked`` least confident of them, where confidence
    is the sampled token's log-probability plus Gumbel noise scaled by ``randomness * (1 - progress)``, less
    ``transparency_delay`` where the sampled token is transparent. A ``priority`` (B, T) replaces the
    log-probability and the noise: the cells of highest priority are kept (a fixed order, e.g. Halton's).

    Returns:
        (new tokens (B, T), new unknown mask (B, T)).
    """
    B, T, V = logits.shape
    log_probs = F.log_softmax(logits / temperature, dim=-1)
    sampled = _categorical(log_probs.exp().reshape(B * T, V), generator).reshape(B, T)
    sampled = torch.where(unknown, sampled, tokens)
    if priority is None:
        confidence = log_probs.gather(-1, sampled[..., None]).squeeze(-1)
        uniform = torch.rand(B, T, generator=generator).clamp_(1e-20, 1.0).to(logits.device)
        confidence = confidence + randomness * (1.0 - progress) * -torch.log(-torch.log(uniform))
    else:
        confidence = priority.to(logits.dtype)
    if transparency_delay:
        confidence = confidence - transparency_delay * (sampled == TRANSPARENT)
    confidence = confidence.masked_fill(~unknown, float("inf"))
    order = confidence.argsort(dim=1)  # least confident first
    ranks = torch.empty_like(order).scatter_(1, order, torch.arange(T, device=order.device).expand(B, T))
    remask = ranks < keep_masked[:, None]
    return sampled.masked_fill(remask, mask_token), remask


@torch.no_grad()
def sample(model: PixelModel, cond: Conditioning, config: SamplerConfig | None = None, *, batch_size: int = 1,
           generator: torch.Generator | None = None, init_tokens: torch.Tensor | None = None,
           keep_mask: torch.Tensor | None = None, allowed_tokens: torch.Tensor | None = None,
           callback: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Decodes token grids for each prompt of ``cond``, ``batch_size`` each (prompt-major order).

    Args:
        config: the sampling knobs (``SamplerConfig()``, the shipped defaults, when None); validated here.
        generator: a CPU generator for every random draw, so a seed repeats on any device.
        init_tokens: (B', G, G) tokens to keep where ``keep_mask`` (B', G, G) is True; B' is 1 or the output
            batch. Kept cells come back unchanged; the rest are generated around them (inpainting, variations).
        allowed_tokens: palette indices sampling may use (palette lock); the transparent token 0 is allowed
            unless ``config.opaque``.
        callback: called as ``callback(step, steps)`` after each step (1-based); may raise to cancel.

    Returns:
        Long tensor (len(cond) * batch_size, G, G) on the model's device.
    """
    config = (config or SamplerConfig()).validate()
    check_batch(len(cond), batch_size)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator (or None), got {type(generator).__name__}")
    steps, cfg_scale, temperature = config.steps, config.cfg_scale, config.temperature
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
        init = _grids(init_tokens, "init_tokens", G).to(device).long().reshape(-1, G * G)
        keep = _grids(keep_mask, "keep_mask", G).to(device).bool().reshape(-1, G * G)
        if len(init) not in (1, B) or len(keep) not in (1, B):
            raise ValueError(f"init_tokens and keep_mask need a batch of 1 or {B} grids of {G}x{G}, "
                             f"got {len(init)} and {len(keep)}")
        init, keep = init.expand(B, -1), keep.expand(B, -1)
        if init[keep].numel() and (init[keep].min() < 0 or init[keep].max() >= V):
            raise ValueError(f"init_tokens must be palette indices in 0..{V - 1}")
        tokens = torch.where(keep, init, tokens)
        unknown = ~keep
    banned = _banned_tokens(V, allowed_tokens, config.opaque, device)
    decoder = Decoder(model, config.precision, config.engine)
    text = decoder.text_states(*pad_cat(*c, *uncond))  # once: the text never attends to the image
    priority = None
    if config.order == "halton":  # earlier in the order = kept sooner
        priority = (-halton_order(G).argsort().float()).to(device).expand(B, -1)

    generated = unknown.clone()  # cells the sampler draws (not kept)
    initial_unknown = unknown.sum(1)
    for step in range(steps):
        decided = 1.0 - float(mask_ratio(step / steps, config.schedule))  # the schedule's share decided so far
        scale = guidance_scale(cfg_scale, config.guidance_schedule, decided)
        logits = _guided_logits(decoder, tokens.reshape(B, G, G), text, scale).reshape(B, G * G, V)
        if banned is not None:
            logits = logits.masked_fill(banned, float("-inf"))
        keep_masked = tokens_to_keep_masked(step, steps, initial_unknown, unknown.sum(1), config.schedule)
        tokens, unknown = sampling_step(logits, tokens, unknown, keep_masked, float(temperature),
                                        float(config.randomness), (step + 1) / steps, model.mask_token, generator,
                                        float(config.transparency_delay), priority)
        if callback is not None:
            callback(step + 1, steps)
    if config.min_cutout > 0:
        tokens = _fill_stray_holes(decoder.eager, tokens, generated, float(config.min_cutout), text,
                                   guidance_scale(cfg_scale, config.guidance_schedule, 1.0), float(temperature),
                                   banned, generator, model.mask_token, G, V)
    return tokens.reshape(B, G, G)


def _grids(value, name: str, grid: int) -> torch.Tensor:
    """``value`` as a tensor of (B, G, G) grids, or a ValueError saying what was expected."""
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a tensor of {grid}x{grid} grids, got {type(value).__name__}")
    if value.dim() < 2 or tuple(value.shape[-2:]) != (grid, grid):
        raise ValueError(f"{name} must be grids of {grid}x{grid} (shape (B, {grid}, {grid})), got {tuple(value.shape)}")
    return value


def _banned_tokens(vocab_size: int, allowed_tokens: torch.Tensor | None, opaque: bool,
                   device: torch.device) -> torch.Tensor | None:
    """(V,) bool of the tokens sampling may not draw (palette lock, opaque), or None when all are allowed."""
    banned = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    if allowed_tokens is not None:
        try:
            allowed = torch.as_tensor(allowed_tokens, device=device).long().reshape(-1)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"allowed_tokens must be a list or tensor of palette indices, got "
                             f"{type(allowed_tokens).__name__}") from err
        if allowed.numel() and (allowed.min() < 0 or allowed.max() >= vocab_size):
            raise ValueError(f"allowed_tokens must be palette indices in 0..{vocab_size - 1}")
        banned[:] = True
        banned[allowed] = False
    banned[TRANSPARENT] = bool(opaque)
    if banned.all():
        raise ValueError("opaque sampling with a palette lock of no opaque colour leaves nothing to draw: "
                         "allow at least one opaque colour, or turn opaque off")
    return banned if banned.any() else None


def _fill_stray_holes(decode: Decode, tokens: torch.Tensor, generated: torch.Tensor, min_cutout: float,
                      text: TextStates, cfg_scale: float, temperature: float, banned: torch.Tensor | None,
                      generator: torch.Generator | None, mask_token: int, G: int, V: int) -> torch.Tensor:
    """One more round at guidance ``cfg_scale``, transparency banned, over the stray holes of flat grids (B, T);
    see ``sample``."""
    B, T = tokens.shape
    fill_banned = torch.zeros(V, dtype=torch.bool, device=tokens.device) if banned is None else banned.clone()
    fill_banned[TRANSPARENT] = True
    holes = _stray_holes(tokens, generated, min_cutout)
    rows = holes.any(1).nonzero().squeeze(1)
    if len(rows) == 0 or fill_banned.all():  # a palette lock with no opaque colour leaves the holes
        return tokens
    sub = tokens[rows].masked_fill(holes[rows], mask_token)
    logits = _guided_logits(decode, sub.reshape(-1, G, G), text.rows(torch.cat([rows, rows + B])), cfg_scale)
    logits = logits.reshape(len(rows), T, V).masked_fill(fill_banned, float("-inf"))
    no_remask = torch.zeros(len(rows), dtype=torch.long, device=tokens.device)
    tokens = tokens.clone()
    tokens[rows], _ = sampling_step(logits, sub, holes[rows], no_remask, temperature, 0.0, 1.0, mask_token,
                                    generator)
    return tokens


def _stray_holes(tokens: torch.Tensor, generated: torch.Tensor, min_cutout: float) -> torch.Tensor:
    """(B, T) bool: the generated transparent cells of grids whose transparent share is above 0, below
    ``min_cutout``."""
    transparent = tokens == TRANSPARENT
    share = transparent.float().mean(1, keepdim=True)
    return transparent & generated & (share > 0) & (share < min_cutout)

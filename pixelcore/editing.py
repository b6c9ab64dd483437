"""Control and editing on top of MaskGIT sampling: image -> tokens, inpainting, variations, palette lock,
seamless tiles and recolouring.

Every edit is the same move: fix some cells of a token grid (``keep``) and let
:func:`pixelcore.sampling.sample` regenerate the rest around them, conditioned on a prompt. Kept cells come
back unchanged.

Conventions:
    * A repaint mask is True (1) where cells are regenerated, as ComfyUI's mask editor paints it.
    * The transparent token 0 is always allowed, also under a palette lock.
    * Grids are (N, G, G) long tensors of palette indices; masks (N or 1, G, G) bool.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import torch

from .model import ConvBlock, PixelModel
from .palette import ALPHA_THRESHOLD, TRANSPARENT, Palette, srgb_to_oklab
from .sampling import Conditioning, SamplerConfig, encode_prompt, sample

# Largest enlargement image_to_tokens reduces: a 16x16 texture shown at 256x256.
MAX_REDUCE_FACTOR = 16
# Opaque cells darker than this OKLab lightness count as outline and survive a recolour.
OUTLINE_LIGHTNESS = 0.3


# --- images -> tokens ---------------------------------------------------------------------------------

def reduce_to_grid(rgba: np.ndarray, grid: int = 16) -> np.ndarray:
    """Reduces an exact integer enlargement (N, k*G, k*G, 4), each k x k block uniform, to (N, G, G, 4).

    Raises:
        ValueError: for any other size, or an enlargement whose blocks are not uniform (a resized or
            blurred image), saying what size was found and what to do.
    """
    height, width = rgba.shape[1:3]
    if (height, width) == (grid, grid):
        return rgba
    factor = height // grid
    if height != width or height % grid or not 2 <= factor <= MAX_REDUCE_FACTOR:
        largest = MAX_REDUCE_FACTOR * grid
        raise ValueError(f"expected a {grid}x{grid} image or an exact 2x..{MAX_REDUCE_FACTOR}x enlargement "
                         f"of one ({2 * grid}x{2 * grid} .. {largest}x{largest}), got {width}x{height}: "
                         f"crop or scale it to {grid}x{grid} with nearest-neighbour first")
    base = rgba[:, ::factor, ::factor]
    if not np.array_equal(np.repeat(np.repeat(base, factor, 1), factor, 2), rgba):
        raise ValueError(f"the {width}x{height} image is not an exact {factor}x enlargement of a "
                         f"{grid}x{grid} texture (its {factor}x{factor} blocks are not single colours, "
                         f"e.g. it was resized with smoothing): scale it to {grid}x{grid} with "
                         f"nearest-neighbour first")
    return np.ascontiguousarray(base)


def image_to_tokens(rgba: np.ndarray | torch.Tensor, palette: Palette, grid: int = 16) -> torch.Tensor:
    """Quantizes RGBA pixels ((N,) H, W, 4 uint8) to a palette: (N, G, G) tokens.

    A G x G image maps pixel by pixel; an exact integer enlargement is reduced first (see
    :func:`reduce_to_grid`). Alpha below half is transparent; other pixels take the nearest colour in OKLab.
    """
    pixels = np.asarray(rgba.cpu() if isinstance(rgba, torch.Tensor) else rgba)
    if pixels.dtype != np.uint8 or pixels.shape[-1] != 4 or pixels.ndim not in (3, 4):
        raise ValueError(f"expected uint8 RGBA pixels of shape (N, H, W, 4), got {pixels.dtype} "
                         f"{tuple(pixels.shape)}")
    pixels = pixels[None] if pixels.ndim == 3 else pixels
    return palette.quantize(torch.from_numpy(reduce_to_grid(pixels, grid))).long()


def mask_to_grid(mask: torch.Tensor, grid: int = 16) -> torch.Tensor:
    """A float mask ((N,) H, W) in 0..1 at G x G or any k*G x k*G -> bool (N, G, G).

    A cell is True when any of its pixels is at least half set, so a brush stroke in an enlarged view marks
    every cell it touches.
    """
    mask = mask[None] if mask.dim() == 2 else mask
    height, width = mask.shape[-2:]
    if height != width or height % grid:
        raise ValueError(f"the mask is {width}x{height}: it must be {grid}x{grid} or a whole multiple of it "
                         f"(the size of the texture or of its nearest-neighbour enlargement)")
    factor = height // grid
    cells = mask.float().reshape(len(mask), grid, factor, grid, factor).amax(dim=(2, 4))  # (N, G, G)
    return cells >= 0.5


# --- sampling around fixed cells --------------------------------------------------------------------------

@contextmanager
def seamless_mode(model: PixelModel, enabled: bool = True) -> Iterator[PixelModel]:
    """Wrap-around convolutions inside the block, restoring the model's previous padding afterwards."""
    convs = [m for m in model.modules() if isinstance(m, ConvBlock)]
    before = [m.padding_mode for m in convs]
    model.set_seamless(enabled)
    try:
        yield model
    finally:
        for module, mode in zip(convs, before):
            module.padding_mode = mode


def sample_around(model: PixelModel, cond: Conditioning, init: torch.Tensor | None, keep: torch.Tensor | None,
                  count: int, config: SamplerConfig | None = None, *, seamless: bool = False,
                  allowed_tokens: torch.Tensor | None = None, generator: torch.Generator | None = None,
                  callback=None) -> torch.Tensor:
    """Samples ``count`` grids keeping ``init`` where ``keep`` is True (both (1 or count, G, G), or None).

    ``cond`` holds one prompt (used for every grid), or P prompts with ``count`` a multiple of P: the grids
    are then prompt-major (``count // P`` for the first prompt, then the next), as :func:`sample` makes them.
    ``config.opaque`` never draws the transparent token, for a tile with no holes (a block); kept cells stay
    as they are.
    """
    if count % len(cond):
        raise ValueError(f"got {len(cond)} prompts for {count} textures: give one prompt, or one per texture")
    batch_size = count // len(cond)
    with seamless_mode(model, seamless):
        return sample(model, cond, config, batch_size=batch_size, init_tokens=init, keep_mask=keep,
                      allowed_tokens=allowed_tokens, generator=generator, callback=callback)


def inpaint(model: PixelModel, cond: Conditioning, tokens: torch.Tensor, repaint: torch.Tensor,
            **kwargs) -> torch.Tensor:
    """Regenerates the cells where ``repaint`` (1 or N, G, G) is True; every other cell comes back unchanged.

    Args:
        tokens: (N, G, G) grids to edit.
        kwargs: passed to :func:`sample_around` (config, seamless, allowed_tokens, generator, callback).

    Returns:
        (N, G, G) tokens on the model's device.
    """
    tokens = tokens.long().to(model.device)
    repaint = repaint.bool().to(model.device).expand_as(tokens)
    return sample_around(model, cond, tokens, ~repaint, len(tokens), **kwargs)


def variations(model: PixelModel, cond: Conditioning, tokens: torch.Tensor, strength: float, *,
               batch_size: int = 1, generator: torch.Generator | None = None,
               allowed_tokens: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
    """``batch_size`` variations of each grid (N, G, G): re-masks a seeded random ``strength`` share of cells.

    Strength 0 returns the input exactly; strength 1 re-masks everything, which is plain sampling (the same
    result as :func:`sample_around` without ``init`` for the same generator). Under a palette lock, cells of
    colours outside the lock are re-masked too, so the output uses only allowed colours.

    Returns:
        (N * batch_size, G, G) tokens, input-major (all variations of grid 0 first).
    """
    if not 0.0 <= float(strength) <= 1.0:
        raise ValueError(f"strength must be in 0..1 (0 = the input, 1 = ignore it), got {strength!r}")
    tokens = tokens.long().to(model.device).repeat_interleave(batch_size, 0)  # (M, G, G)
    M, G, _ = tokens.shape
    remask_count = round(float(strength) * G * G)
    if remask_count == G * G:
        return sample_around(model, cond, None, None, M, generator=generator, allowed_tokens=allowed_tokens,
                             **kwargs)
    order = torch.rand(M, G * G, generator=generator).argsort(1)  # a random ranking of the cells, per grid
    remask = (order < remask_count).reshape(M, G, G).to(model.device)
    if allowed_tokens is not None:
        remask |= ~allowed_mask(tokens, allowed_tokens)
    if not remask.any():
        return tokens
    return sample_around(model, cond, tokens, ~remask, M, generator=generator, allowed_tokens=allowed_tokens,
                         **kwargs)


# --- palette lock ------------------------------------------------------------------------------------------

def allowed_mask(tokens: torch.Tensor, allowed_tokens: torch.Tensor) -> torch.Tensor:
    """True where a cell's token is in the lock (transparent always is)."""
    allowed = torch.as_tensor(allowed_tokens, device=tokens.device).long()
    return torch.isin(tokens, allowed) | (tokens == TRANSPARENT)


def lock_most_used(tokens: torch.Tensor, max_colors: int) -> torch.Tensor:
    """The ``max_colors`` opaque tokens used most in ``tokens`` (ties: lower index first), sorted.

    Sample once, lock to its main colours, sample again: the second texture uses at most ``max_colors``.
    """
    if max_colors < 1:
        raise ValueError(f"max_colors must be at least 1, got {max_colors}")
    counts = torch.bincount(tokens.reshape(-1).long().cpu())
    counts[TRANSPARENT:TRANSPARENT + 1] = 0
    used = int((counts > 0).sum())
    if used == 0:
        raise ValueError("the texture has no opaque colours to lock to: lock to a palette image instead")
    top = torch.sort(counts, descending=True, stable=True).indices[:min(max_colors, used)]
    return top.sort().values


def lock_to_colors(palette: Palette, rgba: np.ndarray | torch.Tensor, max_colors: int = 0) -> torch.Tensor:
    """Palette entries nearest to the opaque colours of an image ((...), 4 uint8), e.g. a palette swatch.

    With ``max_colors`` > 0 only the entries nearest the image's most frequent colours are kept.
    """
    pixels = torch.as_tensor(np.asarray(rgba.cpu() if isinstance(rgba, torch.Tensor) else rgba))
    pixels = pixels.reshape(-1, 4)
    opaque = pixels[pixels[:, 3] >= ALPHA_THRESHOLD, :3]
    if len(opaque) == 0:
        raise ValueError("the palette image has no opaque pixels: give an image made of the allowed colours")
    nearest = palette.nearest_tokens(opaque)
    return lock_most_used(nearest, max_colors) if max_colors > 0 else nearest.unique()


# --- seamless tiles ----------------------------------------------------------------------------------------

def _pixel_features(rgba: np.ndarray) -> torch.Tensor:
    """(H, W, 4) uint8 -> (H, W, 4): OKLab times alpha, plus alpha; transparent pixels all sit at 0."""
    pixels = torch.as_tensor(np.asarray(rgba))
    alpha = (pixels[..., 3:] >= ALPHA_THRESHOLD).float()
    return torch.cat([srgb_to_oklab(pixels[..., :3].float() / 255.0) * alpha, alpha], dim=-1)


def seam_score(rgba: np.ndarray) -> float:
    """How visible the seams of a tiled texture (H, W, 4) are: 1.0 = no more than any inner edge.

    The mean colour difference (OKLab, alpha as a fourth axis) across the wrapped edges (last column to
    first, last row to first) divided by the mean difference between neighbours inside the tile. A flat
    tile scores 1.0; higher is a more visible seam.
    """
    f = _pixel_features(rgba)
    inside = torch.cat([(f[:, 1:] - f[:, :-1]).norm(dim=-1).reshape(-1),
                        (f[1:] - f[:-1]).norm(dim=-1).reshape(-1)]).mean()
    across = torch.cat([(f[:, 0] - f[:, -1]).norm(dim=-1), (f[0] - f[-1]).norm(dim=-1)]).mean()
    if float(inside) == 0.0:
        return 1.0 if float(across) == 0.0 else float("inf")
    return float(across / inside)


def tile(rgba: np.ndarray, repeat: int = 3) -> np.ndarray:
    """Repeats a texture (..., H, W, C) ``repeat`` x ``repeat`` times, to look at its seams."""
    return np.tile(rgba, (1,) * (rgba.ndim - 3) + (repeat, repeat, 1))


# --- recolour ----------------------------------------------------------------------------------------------

def structure_mask(palette: Palette, tokens: torch.Tensor, outline_lightness: float = OUTLINE_LIGHTNESS
                   ) -> torch.Tensor:
    """True on the cells a recolour keeps: transparent cells (the silhouette) and dark outline cells."""
    lightness = srgb_to_oklab(palette.colors[:, :3].float() / 255.0)[:, 0].to(tokens.device)
    return (tokens == TRANSPARENT) | (lightness[tokens.long()] < outline_lightness)


def recolor(model: PixelModel, tokens: torch.Tensor, prompts: Sequence[str], config: SamplerConfig | None = None,
            *, outline_lightness: float = OUTLINE_LIGHTNESS, **kwargs) -> torch.Tensor:
    """The same shape in other colours or materials: one grid per prompt (e.g. "blue sword", "gold sword").

    The silhouette (transparent cells) and the outline (opaque cells darker than ``outline_lightness``) of
    each grid of ``tokens`` (N, G, G) are kept; the rest is regenerated for each prompt, opaque, so the
    alpha of every output is the alpha of its input.

    Returns:
        (N * len(prompts), G, G) tokens, input-major (every prompt for grid 0 first).
    """
    prompts = list(prompts)
    if not prompts:
        raise ValueError("give at least one colour or material to recolour to")
    tokens = tokens.long().to(model.device).reshape(-1, *tokens.shape[-2:]).repeat_interleave(len(prompts), 0)
    keep = structure_mask(model.palette, tokens, outline_lightness)
    cond = encode_prompt(model, prompts * (len(tokens) // len(prompts)))
    opaque = replace(config or SamplerConfig(), opaque=True)
    return sample_around(model, cond, tokens, keep, len(tokens), opaque, **kwargs)


def recolor_prompts(variants: str | Sequence[str], name: str) -> list[str]:
    """"red, blue, gold" + "sword" -> ["red sword", "blue sword", "gold sword"] (commas or new lines)."""
    if isinstance(variants, str):
        variants = variants.replace("\n", ",").split(",")
    words = [v.strip() for v in variants if v.strip()]
    if not words:
        raise ValueError("list at least one colour or material, e.g. 'red, blue, gold'")
    return [f"{word} {name.strip()}".strip() for word in words]

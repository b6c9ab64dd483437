"""Colour palettes: RGBA pixels <-> integer tokens.

Token 0 is always the transparent token; tokens 1..K-1 are opaque colours ordered by hue, then lightness,
so neighbouring token ids are neighbouring colours. Colours are compared in OKLab, a perceptual space where
Euclidean distance tracks how different two colours look.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

log = logging.getLogger(__name__)

TRANSPARENT = 0
# Alpha below half counts as transparent: 16x16 game textures use alpha as a cut-out mask.
ALPHA_THRESHOLD = 128
MAX_OPAQUE_COLORS = 255
# Chroma below this in OKLab reads as grey: such colours are ordered by lightness alone, before the hues.
_ACHROMATIC_CHROMA = 0.02
# Hue buckets of 15 degrees keep each hue's lightness ramp contiguous in token order.
_HUE_BUCKET_DEGREES = 15.0


def srgb_to_oklab(rgb: torch.Tensor) -> torch.Tensor:
    """Converts sRGB in 0..1, shape (..., 3), to OKLab (L in 0..1, a and b roughly -0.4..0.4)."""
    rgb = rgb.float()
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m1 = rgb.new_tensor([[0.4122214708, 0.5363325363, 0.0514459929],
                         [0.2119034982, 0.6806995451, 0.1073969566],
                         [0.0883024619, 0.2817188376, 0.6299787005]])
    m2 = rgb.new_tensor([[0.2104542553, 0.7936177850, -0.0040720468],
                         [1.9779984951, -2.4285922050, 0.4505937099],
                         [0.0259040371, 0.7827717662, -0.8086757660]])
    lms = (linear @ m1.T).clamp_min(0).pow(1.0 / 3.0)
    return lms @ m2.T


def _as_uint8_tensor(rgba: np.ndarray | torch.Tensor) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(rgba) if not isinstance(rgba, torch.Tensor) else rgba)
    if tensor.dtype != torch.uint8:
        raise TypeError(f"expected uint8 RGBA pixels, got {tensor.dtype}")
    if tensor.shape[-1] != 4:
        raise ValueError(f"expected RGBA pixels with a last dimension of 4, got shape {tuple(tensor.shape)}")
    return tensor


def _hue_lightness_order(colors_rgb: np.ndarray) -> np.ndarray:
    """Indices that sort opaque colours: greys by lightness first, then by hue bucket and lightness."""
    lab = srgb_to_oklab(torch.from_numpy(colors_rgb).float() / 255.0).numpy()
    lightness, a, b = lab[:, 0], lab[:, 1], lab[:, 2]
    chroma = np.hypot(a, b)
    hue = (np.degrees(np.arctan2(b, a)) + 360.0) % 360.0
    bucket = np.where(chroma < _ACHROMATIC_CHROMA, -1, np.floor(hue / _HUE_BUCKET_DEGREES))
    return np.lexsort((lightness, bucket))


def _kmeans_oklab(lab: torch.Tensor, weights: torch.Tensor, k: int, iters: int, seed: int) -> torch.Tensor:
    """Weighted k-means (k-means++ start) over OKLab points; returns the index of the point nearest each centre."""
    gen = torch.Generator().manual_seed(seed)
    first = torch.multinomial(weights, 1, generator=gen)
    centres = lab[first]
    dist = torch.cdist(lab, centres).squeeze(1) ** 2
    for _ in range(1, k):
        probs = dist * weights
        nxt = torch.multinomial(probs / probs.sum(), 1, generator=gen) if probs.sum() > 0 else first
        centres = torch.cat([centres, lab[nxt]])
        dist = torch.minimum(dist, (torch.cdist(lab, lab[nxt]).squeeze(1)) ** 2)
    for _ in range(iters):
        assign = torch.cdist(lab, centres).argmin(1)
        sums = torch.zeros_like(centres).index_add_(0, assign, lab * weights[:, None])
        mass = torch.zeros(k).index_add_(0, assign, weights)
        moved = mass > 0
        centres[moved] = sums[moved] / mass[moved, None]
    # Snap every centre to the most common real colour near it: palettes hold colours artists used.
    return torch.cdist(centres, lab).argmin(1).unique()


class Palette:
    """An ordered RGBA palette. ``colors[0]`` is transparent; the rest are opaque and unique.

    Args:
        colors: uint8 array or tensor of shape (K, 4), K <= 256, row 0 transparent.
    """

    def __init__(self, colors: np.ndarray | torch.Tensor):
        colors = _as_uint8_tensor(colors).reshape(-1, 4).cpu().clone()
        if not 2 <= len(colors) <= MAX_OPAQUE_COLORS + 1:
            raise ValueError(f"a palette needs 1 to {MAX_OPAQUE_COLORS} opaque colours, got {len(colors) - 1}")
        if colors[TRANSPARENT, 3] >= ALPHA_THRESHOLD or (colors[1:, 3] < ALPHA_THRESHOLD).any():
            raise ValueError("palette row 0 must be the transparent colour and rows 1.. opaque")
        unique, inverse = torch.unique(colors[1:, :3], dim=0, return_inverse=True)
        if len(unique) < len(colors) - 1:
            first = int(torch.bincount(inverse).argmax())
            rows = (inverse == first).nonzero().squeeze(1)[:2] + 1
            raise ValueError(f"palette rows {int(rows[0])} and {int(rows[1])} are the same colour "
                             f"{tuple(unique[first].tolist())}: each opaque colour must appear once")
        self.colors = colors
        self._lab = srgb_to_oklab(colors[1:, :3].float() / 255.0)

    def __len__(self) -> int:
        return len(self.colors)

    def __repr__(self) -> str:
        return f"Palette({len(self) - 1} opaque colours + transparent)"

    @classmethod
    def from_colors(cls, rgb_or_rgba: np.ndarray) -> Palette:
        """Builds a palette from opaque colours (N, 3 or 4) in any order; sorts and prepends transparency."""
        rgb = np.asarray(rgb_or_rgba, dtype=np.uint8)[:, :3]
        rgb = np.unique(rgb, axis=0)
        rgb = rgb[_hue_lightness_order(rgb)]
        rows = np.concatenate([np.zeros((1, 4), np.uint8), np.c_[rgb, np.full(len(rgb), 255, np.uint8)]])
        return cls(rows)

    @classmethod
    def fit(cls, images: np.ndarray | torch.Tensor, max_colors: int = MAX_OPAQUE_COLORS,
            seed: int = 0, iters: int = 20) -> Palette:
        """Fits a palette to RGBA images of shape (N, H, W, 4).

        When the images use at most ``max_colors`` opaque colours they are kept exactly; otherwise weighted
        k-means in OKLab picks ``max_colors`` representative colours from the ones present.
        """
        if not 1 <= max_colors <= MAX_OPAQUE_COLORS:
            raise ValueError(f"max_colors must be in 1..{MAX_OPAQUE_COLORS}, got {max_colors}")
        pixels = _as_uint8_tensor(images).reshape(-1, 4)
        opaque = pixels[pixels[:, 3] >= ALPHA_THRESHOLD, :3]
        if len(opaque) == 0:
            raise ValueError("cannot fit a palette: the images have no opaque pixels")
        unique, counts = torch.unique(opaque, dim=0, return_counts=True)
        if len(unique) > max_colors:
            lab = srgb_to_oklab(unique.float() / 255.0)
            keep = _kmeans_oklab(lab, counts.float(), max_colors, iters, seed)
            log.info("palette: %d distinct colours reduced to %d", len(unique), len(keep))
            unique = unique[keep]
        return cls.from_colors(unique.numpy())

    def quantize(self, rgba: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Maps RGBA pixels (..., 4) to tokens (...): transparent below half alpha, else the nearest colour."""
        pixels = _as_uint8_tensor(rgba)
        flat = pixels.reshape(-1, 4).cpu()
        unique, inverse = torch.unique(flat[:, :3], dim=0, return_inverse=True)
        nearest = torch.cdist(srgb_to_oklab(unique.float() / 255.0), self._lab).argmin(1) + 1
        tokens = nearest[inverse]
        tokens[flat[:, 3] < ALPHA_THRESHOLD] = TRANSPARENT
        return tokens.reshape(pixels.shape[:-1]).to(pixels.device)

    def dequantize(self, tokens: torch.Tensor) -> torch.Tensor:
        """Maps tokens (...) to uint8 RGBA pixels (..., 4) on the tokens' device."""
        tokens = torch.as_tensor(tokens)
        if tokens.dtype.is_floating_point or (tokens.numel() and (tokens.min() < 0 or tokens.max() >= len(self))):
            raise ValueError(f"tokens must be integers in 0..{len(self) - 1}")
        return self.colors.to(tokens.device)[tokens.long()]

    def nearest_tokens(self, rgb: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Nearest opaque token for each colour in ``rgb`` (N, 3) uint8: used to lock sampling to a palette."""
        rgb = torch.as_tensor(np.asarray(rgb, dtype=np.uint8)).reshape(-1, 3)
        return torch.cdist(srgb_to_oklab(rgb.float() / 255.0), self._lab).argmin(1) + 1

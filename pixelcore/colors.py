"""Colour naming for 16x16 RGBA textures, shared by captioning and evaluation.

Pixels are classed in HSV space into the words of :data:`COLOR_NAMES`;
:func:`dominant_color` turns those per-pixel classes into the one colour word a
prompt would use for the whole texture. Classes are returned as ``int`` indices
into :data:`COLOR_NAMES`, with :data:`TRANSPARENT` (-1) for pixels whose alpha
is below 128.
"""

from __future__ import annotations

import logging

import numpy as np

from .palette import ALPHA_THRESHOLD

logger = logging.getLogger(__name__)

COLOR_NAMES: tuple[str, ...] = (
    "red", "orange", "yellow", "gold", "brown", "green", "cyan",
    "blue", "purple", "pink", "white", "gray", "black",
)
ACHROMATIC: frozenset[str] = frozenset({"white", "gray", "black"})

COLOR_SYNONYMS: dict[str, str] = {
    "grey": "gray", "silver": "gray", "lightgray": "gray", "lightgrey": "gray",
    "darkgray": "gray", "darkgrey": "gray",
    "golden": "gold", "amber": "gold",
    "violet": "purple", "indigo": "purple", "lavender": "purple", "lilac": "purple",
    "magenta": "pink", "fuchsia": "pink", "rose": "pink",
    "aqua": "cyan", "turquoise": "cyan", "teal": "cyan",
    "lime": "green", "olive": "green", "emerald": "green",
    "crimson": "red", "scarlet": "red", "maroon": "red",
    "navy": "blue", "azure": "blue",
    "tan": "brown", "beige": "brown",
}

TRANSPARENT = -1
_IDX = {name: i for i, name in enumerate(COLOR_NAMES)}
# Pairs that evaluation should accept as the same colour: neighbouring classes
# whose boundary is a threshold, not a perceptual jump.
_NEIGHBOURS: frozenset[frozenset[str]] = frozenset(
    frozenset(pair) for pair in (
        ("gold", "yellow"), ("gold", "orange"), ("brown", "orange"),
        ("pink", "purple"), ("cyan", "blue"),
    )
)
_BLACK_V = 0.18       # below this value every pixel reads as black
_ACHROMATIC_S = 0.2   # below this saturation the hue is noise
_MIN_CHROMA = 24      # max-min channel spread (0-255) needed for a hue
# An item is a cut-out: at least this share of its pixels is transparent. The data's kind, the evaluation's kind
# and the sampler's stray-hole fill (sampling.DEFAULT_MIN_CUTOUT) all draw this one line.
ITEM_MIN_TRANSPARENT = 0.10


# Weights of each class when picking the dominant colour (see dominant_color).
_CLASS_WEIGHTS = np.array([0.3 if n == "black" else 0.6 if n == "brown" else 1.0 if n in ACHROMATIC else 1.5
                           for n in COLOR_NAMES])


def normalize_color(word: str | None) -> str | None:
    """Map a colour word or synonym to its canonical name, or None if unknown."""
    if word is None:
        return None
    word = word.strip().lower()
    if word in _IDX:
        return word
    return COLOR_SYNONYMS.get(word)


def rgb_to_hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert uint8 RGB (..., 3) to hue in degrees [0, 360), saturation and value in [0, 1]."""
    x = rgb.astype(np.float32) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = x.max(axis=-1)
    c = v - x.min(axis=-1)
    s = np.where(v > 0, c / np.maximum(v, 1e-8), 0.0)
    safe_c = np.maximum(c, 1e-8)
    h = np.where(
        v == r, ((g - b) / safe_c) % 6.0,
        np.where(v == g, (b - r) / safe_c + 2.0, (r - g) / safe_c + 4.0),
    )
    h = np.where(c > 0, h * 60.0, 0.0) % 360.0
    return h, s, v


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_hsv`; returns uint8 (..., 3)."""
    hp = (h % 360.0) / 60.0
    c = v * s
    x = c * (1.0 - np.abs(hp % 2.0 - 1.0))
    zero = np.zeros_like(c)
    sector = np.floor(hp).astype(np.int64) % 6
    options = [(c, x, zero), (x, c, zero), (zero, c, x), (zero, x, c), (x, zero, c), (c, zero, x)]
    rgb = np.zeros(h.shape + (3,), dtype=np.float32)
    for i, (r1, g1, b1) in enumerate(options):
        sel = sector == i
        rgb[sel] = np.stack([r1[sel], g1[sel], b1[sel]], axis=-1)
    rgb += (v - c)[..., None]
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def _chromatic_mask(rgb: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    chroma = rgb.max(axis=-1).astype(np.int16) - rgb.min(axis=-1).astype(np.int16)
    return (v >= _BLACK_V) & (s >= _ACHROMATIC_S) & (chroma >= _MIN_CHROMA)


def _hue_class(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Chromatic class for every pixel (callers mask the achromatic ones)."""
    out = np.full(h.shape, _IDX["green"], dtype=np.int8)
    redish = (h < 15) | (h >= 340)
    out[redish] = _IDX["red"]
    out[redish & (v < 0.4)] = _IDX["brown"]
    out[redish & (s < 0.55) & (v >= 0.75)] = _IDX["pink"]
    orange = (h >= 15) & (h < 40)
    out[orange] = np.where((v < 0.6) | ((s < 0.5) & (v < 0.75)), _IDX["brown"], _IDX["orange"])[orange]
    goldish = (h >= 40) & (h < 52)
    gold_cls = np.where(s >= 0.5, _IDX["gold"], _IDX["yellow"])
    out[goldish] = np.where(v < 0.55, _IDX["brown"], gold_cls)[goldish]
    out[(h >= 52) & (h < 70)] = _IDX["yellow"]
    out[(h >= 165) & (h < 200)] = _IDX["cyan"]
    out[(h >= 200) & (h < 255)] = _IDX["blue"]
    out[(h >= 255) & (h < 290)] = _IDX["purple"]
    magenta = (h >= 290) & (h < 340)
    out[magenta] = np.where(v >= 0.6, _IDX["pink"], _IDX["purple"])[magenta]
    return out


def pixel_color_classes(rgba: np.ndarray) -> np.ndarray:
    """Class every pixel of a uint8 (H, W, 4) image.

    Returns:
        int8 array (H, W) of indices into :data:`COLOR_NAMES`, with
        :data:`TRANSPARENT` (-1) where alpha < 128.
    """
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[-1] != 4:
        raise ValueError(f"expected an (H, W, 4) RGBA array, got shape {rgba.shape}")
    rgb = rgba[..., :3]
    h, s, v = rgb_to_hsv(rgb)
    gray_cls = np.where(v >= 0.8, _IDX["white"], _IDX["gray"]).astype(np.int8)
    cls = np.where(_chromatic_mask(rgb, s, v), _hue_class(h, s, v), gray_cls).astype(np.int8)
    cls[v < _BLACK_V] = _IDX["black"]
    cls[rgba[..., 3] < ALPHA_THRESHOLD] = TRANSPARENT
    return cls


def dominant_color(rgba: np.ndarray) -> str | None:
    """The colour word a prompt would use for this texture.

    The most common class wins after weighting: chromatic classes count 1.5x (a red sword is red, not the
    grey of its shading), black counts 0.3x (outlines) and brown 0.6x (wooden handles and dirt appear in
    every tool and many blocks, so they rarely name the texture). None if nothing is opaque.
    """
    cls = pixel_color_classes(rgba)
    opaque = cls[cls != TRANSPARENT]
    if opaque.size == 0:
        return None
    counts = np.bincount(opaque.astype(np.int64), minlength=len(COLOR_NAMES)).astype(np.float64)
    return COLOR_NAMES[int(np.argmax(counts * _CLASS_WEIGHTS))]


def dominant_colors(batch: np.ndarray) -> list[str | None]:
    """:func:`dominant_color` for every image of a uint8 (N, H, W, 4) batch."""
    return [dominant_color(img) for img in np.asarray(batch)]


def color_matches(found: str | None, target: str) -> bool:
    """Tolerant colour comparison for evaluation.

    Synonyms are normalised; neighbouring classes (gold/yellow, gold/orange,
    brown/orange, pink/purple, cyan/blue) count as matches.
    """
    a, b = normalize_color(found), normalize_color(target)
    if a is None or b is None:
        return False
    return a == b or frozenset((a, b)) in _NEIGHBOURS


def hue_shift(rgba: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate the hue of chromatic pixels by ``degrees``; alpha and grays are kept."""
    rgba = np.asarray(rgba, dtype=np.uint8)
    rgb = rgba[..., :3]
    h, s, v = rgb_to_hsv(rgb)
    shifted = hsv_to_rgb(h + float(degrees), s, v)
    out = rgba.copy()
    mask = _chromatic_mask(rgb, s, v)
    out[..., :3][mask] = shifted[mask]
    return out


# The hue (degrees) at the middle of each chromatic word's range in the classifier above, for augmentation
# that rotates a texture onto a chosen colour word. Gold and pink also need saturation / lightness, so a
# rotation onto them can land on yellow or purple instead.
HUE_CENTRES: dict[str, float] = {"red": 0.0, "orange": 27.0, "gold": 46.0, "yellow": 61.0, "green": 115.0,
                                 "cyan": 182.0, "blue": 227.0, "purple": 272.0, "pink": 315.0}


def mean_hue(rgba: np.ndarray) -> float | None:
    """Circular mean hue (degrees) of the opaque chromatic pixels, or None when there are none."""
    rgba = np.asarray(rgba, dtype=np.uint8)
    rgb = rgba[..., :3]
    h, s, v = rgb_to_hsv(rgb)
    mask = _chromatic_mask(rgb, s, v) & (rgba[..., 3] >= ALPHA_THRESHOLD)
    if not mask.any():
        return None
    angles = np.deg2rad(h[mask])
    return float(np.rad2deg(np.arctan2(np.sin(angles).mean(), np.cos(angles).mean())) % 360.0)


def transparent_share(rgba: np.ndarray) -> float:
    """The share of pixels read as transparent (alpha under ``ALPHA_THRESHOLD``) in (..., H, W, 4) RGBA."""
    return float((np.asarray(rgba)[..., 3] < ALPHA_THRESHOLD).mean())


def texture_kind(rgba: np.ndarray) -> str:
    """"item" when at least 10% of pixels are transparent (a sprite), else "block"."""
    return "item" if transparent_share(rgba) >= ITEM_MIN_TRANSPARENT else "block"

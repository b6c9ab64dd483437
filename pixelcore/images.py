"""Writing textures: native-size RGBA PNGs, nearest-neighbour enlargements and sample grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from .files import atomic_write

MAX_SCALE = 64
PREVIEW_SIDE = 256  # a preview's longest side: a 16x16 texture shown 16x, as large as a node draws it


def upscale_nearest(pixels: np.ndarray | torch.Tensor, scale: int) -> np.ndarray | torch.Tensor:
    """Exact integer nearest-neighbour enlargement of (..., H, W, C) pixels: each becomes a scale x scale block.

    Takes a numpy array or a torch tensor and returns the same kind.
    """
    if not isinstance(scale, (int, np.integer)) or isinstance(scale, bool) or not 1 <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be an integer in 1..{MAX_SCALE}, got {scale!r}")
    if isinstance(pixels, torch.Tensor):
        return pixels.repeat_interleave(int(scale), dim=-3).repeat_interleave(int(scale), dim=-2)
    return np.repeat(np.repeat(pixels, scale, axis=-3), scale, axis=-2)


def save_png(rgba: np.ndarray, path: str | Path, text: dict[str, str] | None = None) -> Path:
    """Writes an (H, W, 4) uint8 image as an RGBA PNG, atomically (no partial file on failure)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: output must be a .png file")
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_itxt(key, value)
    image = Image.fromarray(np.ascontiguousarray(rgba), "RGBA")
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG", pnginfo=info))


def checkerboard(height: int, width: int, cell: int = 4) -> np.ndarray:
    """(H, W, 3) light grey checkerboard, the usual backdrop that shows transparency."""
    ys, xs = np.mgrid[:height, :width]
    light = ((ys // cell + xs // cell) % 2).astype(bool)
    return np.where(light[..., None], 204, 153).astype(np.uint8).repeat(3, axis=-1)


def composite(rgba: np.ndarray, backdrop: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:].astype(np.float32) / 255.0
    return (rgba[..., :3] * alpha + backdrop * (1.0 - alpha)).round().astype(np.uint8)


def make_grid(textures: np.ndarray, cols: int, scale: int = 8, pad: int = 2) -> np.ndarray:
    """Lays out (N, H, W, 4) textures in a grid over a checkerboard; returns an (H', W', 3) uint8 image."""
    n, h, w, _ = textures.shape
    rows = max(1, -(-n // cols))
    big = upscale_nearest(textures, scale)
    cell_h, cell_w = h * scale, w * scale
    grid = np.full((rows * (cell_h + pad) + pad, cols * (cell_w + pad) + pad, 3), 255, np.uint8)
    backdrop = checkerboard(cell_h, cell_w, cell=max(1, scale // 2))
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (cell_h + pad), pad + c * (cell_w + pad)
        grid[y:y + cell_h, x:x + cell_w] = composite(big[i], backdrop)
    return grid


def preview(rgba: np.ndarray, side: int = PREVIEW_SIDE) -> np.ndarray:
    """An (H, W, 4) uint8 texture as a picture to look at: enlarged nearest-neighbour by the largest whole
    factor that keeps it within ``side`` pixels (at least 1), over a checkerboard that shows transparency.
    Returns (H * factor, W * factor, 3) uint8."""
    factor = max(1, min(MAX_SCALE, side // max(rgba.shape[:2])))
    return make_grid(rgba[None], cols=1, scale=factor, pad=0)


def save_grid(textures: np.ndarray, path: str | Path, cols: int, scale: int = 8) -> Path:
    grid = make_grid(textures, cols, scale)
    rgba = np.concatenate([grid, np.full(grid.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    return save_png(rgba, path)

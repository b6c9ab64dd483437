"""What every PixelCore node shares: the wire types, the shared inputs (built from ``SamplerConfig``), running
the core on ComfyUI's device with progress and cancel, and IMAGE/MASK <-> RGBA conversion.

Node files import this module and ``pixelcore``, nothing else of the pack.
"""

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

import comfy.model_management
import comfy.utils
import folder_paths
from pixelcore.images import preview
from pixelcore.palette import Palette
from pixelcore.sampling import GUIDANCE_SCHEDULES, MAX_BATCH, MAX_CFG, MAX_STEPS, MAX_TEMPERATURE, MIN_TEMPERATURE
from pixelcore.sampling import SamplerConfig

MODEL = "PIXEL_MODEL"
COND = "PIXEL_COND"
TOKENS = "PIXEL_TOKENS"
LOCK = "PIXEL_PALETTE_LOCK"
GRID = 16
# Batches past this are slow on a CPU and fill a preview with hundreds of images; the core allows more.
MAX_NODE_BATCH = min(64, MAX_BATCH)
SAMPLER = SamplerConfig()  # every default below comes from here


def tip(text: str) -> dict:
    return {"tooltip": text}


MODEL_IN = (MODEL, tip("The model from Load PixelCore Model."))
COND_IN = (COND, tip("The encoded prompt from Encode Prompt."))
TOKENS_IN = (TOKENS, tip("Token grids, e.g. from MaskGIT Sample or Image To Tokens."))
LOCK_IN = (LOCK, tip("Optional palette lock from PixelCore Palette Lock: new pixels use only its colours."))
SEAMLESS_IN = ("BOOLEAN", {"default": False, "tooltip": "Wrap the network around the tile's edges so the "
                                                       "texture tiles without seams (for blocks)."})
# The seed and the sampler settings a user sets on every sampling node, under names saved workflows use.
SAMPLING = {
    "seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff, "control_after_generate": True,
                     "tooltip": "Random seed; the same seed gives the same result on any device."}),
    "steps": ("INT", {"default": SAMPLER.steps, "min": 1, "max": MAX_STEPS,
                      "tooltip": "Decoding rounds; more is slower and a little cleaner."}),
    "cfg": ("FLOAT", {"default": SAMPLER.cfg_scale, "min": 0.0, "max": MAX_CFG, "step": 0.1, "round": 0.01,
                      "tooltip": "Prompt guidance in the first rounds, which fix the shape and colours: "
                                 "1 = none, higher follows the prompt more closely."}),
    "temperature": ("FLOAT", {"default": SAMPLER.temperature, "min": MIN_TEMPERATURE, "max": MAX_TEMPERATURE,
                              "step": 0.05, "round": 0.01,
                              "tooltip": "Colour randomness: lower is safer, higher is more varied."}),
}
# Optional, so workflows saved before it existed still load and run (with the default).
GUIDANCE_SCHEDULE_IN = (list(GUIDANCE_SCHEDULES), {
    "default": SAMPLER.guidance_schedule,
    "tooltip": "When guidance acts: early = only in the rounds that fix the shape and colours (fewer stray "
               "pixels, a fifth faster); constant = every round; linear = rising from none."})


def sampler_config(steps: int, cfg: float, temperature: float, guidance_schedule: str = SAMPLER.guidance_schedule,
                   **extra) -> SamplerConfig:
    """The validated ``SamplerConfig`` of a node's inputs (``extra``: opaque, min_cutout)."""
    return SamplerConfig(steps=steps, cfg_scale=cfg, temperature=temperature, guidance_schedule=guidance_schedule,
                         **extra).validate()


@dataclass
class PixelTokens:
    """The PIXEL_TOKENS wire: token grids plus what made them, so a save node can record it."""

    tokens: torch.Tensor  # (N, G, G) long, palette indices
    palette: Palette
    prompts: list[str]  # one per grid
    negative: list[str]  # one per grid, or empty
    seed: int
    batch_index: list[int]  # position of each grid in its prompt's batch
    sampler: SamplerConfig | None = None  # the settings that drew them (None: converted from a picture)

    @classmethod
    def from_batches(cls, tokens, palette, conditioning, inputs: int, batch_size: int, seed: int,
                     sampler: SamplerConfig | None = None) -> "PixelTokens":
        """Grids sampled ``batch_size`` per input (input-major, as the core returns them), with their metadata:
        one prompt per input, or a single prompt shared by every input."""
        return cls(tokens, palette, spread(conditioning.prompts, inputs, batch_size),
                   spread(conditioning.negative, inputs, batch_size), seed, list(range(batch_size)) * inputs,
                   sampler)


@dataclass
class PaletteLockSpec:
    """The PIXEL_PALETTE_LOCK wire: the palette entries sampling may use (transparent always may)."""

    allowed: torch.Tensor  # (K,) long palette indices
    palette: Palette


def spread(items, inputs, per_input):
    """Per-output metadata from one item, or one per input repeated for each of its outputs."""
    if len(items) == inputs:
        return [item for item in items for _ in range(per_input)]
    return list(items[:1]) * (inputs * per_input) if items else []


def same_palette(palette: Palette, model, what: str) -> None:
    if not torch.equal(palette.colors, model.palette.colors):
        raise ValueError(f"The {what} was made with another model's palette: use the same model, or decode "
                         f"it and convert it back with PixelCore Image To Tokens.")


def run_on_device(model, steps: int, seed: int, fn):
    """Runs ``fn(generator, callback)`` with the model on ComfyUI's device, a progress bar that is also a cancel
    point, and a CPU generator seeded with ``seed``; offloads afterwards. Returns the tokens on ComfyUI's
    intermediate device."""
    mm = comfy.model_management
    progress = comfy.utils.ProgressBar(steps)

    def on_step(step, total):
        mm.throw_exception_if_processing_interrupted()
        progress.update_absolute(step, total)

    model.to(mm.get_torch_device())
    try:
        return fn(torch.Generator("cpu").manual_seed(seed), on_step).to(mm.intermediate_device())
    finally:
        model.to(mm.unet_offload_device())
        mm.soft_empty_cache()


def intermediate(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to(comfy.model_management.intermediate_device())


# --- IMAGE / MASK <-> RGBA ---------------------------------------------------------------------------------

def batch_mask(mask: torch.Tensor | None, image: torch.Tensor) -> torch.Tensor:
    """A MASK as (B or 1, H, W) matching IMAGE (B, H, W, C); all 0 (opaque) when None.

    Raises:
        ValueError: when its size or batch does not match the image.
    """
    if mask is None:
        return torch.zeros(image.shape[:3], device=image.device)
    mask = mask[None] if mask.dim() == 2 else mask
    if mask.dim() != 3 or mask.shape[-2:] != image.shape[1:3] or len(mask) not in (1, len(image)):
        raise ValueError(f"The mask ({tuple(mask.shape)}) does not match the image ({tuple(image.shape)}): "
                         f"connect the MASK that came with this IMAGE.")
    return mask


def rgba_to_image_mask(rgba: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 RGBA (B, H, W, 4) -> IMAGE float (B, H, W, 3) in 0..1 and MASK (B, H, W) = 1 - alpha."""
    pixels = rgba.float() / 255.0
    return pixels[..., :3].contiguous(), 1.0 - pixels[..., 3]


def image_mask_to_rgba(image: torch.Tensor, mask: torch.Tensor | None) -> np.ndarray:
    """IMAGE (B, H, W, C) + MASK (B or 1, H, W) or None (opaque) -> uint8 RGBA (B, H, W, 4)."""
    rgb = image[..., :3].detach().cpu().float()
    alpha = (1.0 - batch_mask(mask, rgb).detach().cpu().float()).expand(rgb.shape[:3])
    rgba = torch.cat([rgb, alpha[..., None]], dim=-1)
    return (rgba.clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


# --- previews ----------------------------------------------------------------------------------------------

def save_previews(rgba: np.ndarray) -> list[dict]:
    """Enlarged previews (nearest-neighbour, on a checkerboard) of uint8 RGBA (B, H, W, 4) in ComfyUI's temp
    folder, as ``ui.images`` entries: a node shows those at their own size, and 16x16 would be a speck."""
    pictures = [preview(pixels) for pixels in rgba]
    height, width = pictures[0].shape[:2] if pictures else (0, 0)
    prefix = "PixelCore_preview_" + "".join(random.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(5))
    folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
        prefix, folder_paths.get_temp_directory(), width, height)
    results = []
    for index, picture in enumerate(pictures):
        file = f"{name}_{counter + index:05}_.png"
        Image.fromarray(picture, "RGB").save(os.path.join(folder, file), compress_level=1)
        results.append({"filename": file, "subfolder": subfolder, "type": "temp"})
    return results

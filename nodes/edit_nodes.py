"""Nodes that edit textures: image -> tokens, inpaint, variations, palette lock, seamless sampling, recolour.

Masks follow ComfyUI's mask editor: 1 = repaint this pixel. (Core Load Image also makes its MASK as
1 - alpha: connected to Inpaint, that mask repaints the transparent pixels.)
"""

from dataclasses import dataclass

import torch

import comfy.model_management
import comfy.utils
from pixelcore import editing
from pixelcore.palette import Palette
from pixelcore.sampling import (DEFAULT_CFG, DEFAULT_GUIDANCE_SCHEDULE, DEFAULT_MIN_CUTOUT, DEFAULT_STEPS,
                                DEFAULT_TEMPERATURE, MAX_CFG, MAX_STEPS, MAX_TEMPERATURE)

from .image_nodes import image_mask_to_rgba
from .model_nodes import COND, GUIDANCE_SCHEDULE_IN, MAX_NODE_BATCH, MODEL, TOKENS, PixelTokens, spread

LOCK = "PIXEL_PALETTE_LOCK"
GRID = 16
MAX_VARIANTS = 32


@dataclass
class PaletteLockSpec:
    """The PIXEL_PALETTE_LOCK wire: the palette entries sampling may use (transparent always may)."""

    allowed: torch.Tensor  # (K,) long palette indices
    palette: Palette


def _tip(text):
    return {"tooltip": text}


MODEL_IN = (MODEL, _tip("The model from Load PixelCore Model."))
COND_IN = (COND, _tip("The encoded prompt from Encode Prompt."))
TOKENS_IN = (TOKENS, _tip("Token grids, e.g. from MaskGIT Sample or Image To Tokens."))
LOCK_IN = (LOCK, _tip("Optional palette lock from PixelCore Palette Lock: new pixels use only its colours."))
SEAMLESS_IN = ("BOOLEAN", {"default": False, "tooltip": "Wrap the network around the tile's edges so the "
                                                       "texture tiles without seams (for blocks)."})
SAMPLING = {
    "seed": ("INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff, "control_after_generate": True,
                     "tooltip": "Random seed; the same seed gives the same result."}),
    "steps": ("INT", {"default": DEFAULT_STEPS, "min": 1, "max": MAX_STEPS, "tooltip": "Decoding steps."}),
    "cfg": ("FLOAT", {"default": DEFAULT_CFG, "min": 0.0, "max": MAX_CFG, "step": 0.1, "round": 0.01,
                      "tooltip": "Prompt guidance in the first rounds, which fix the shape and colours: "
                                 "1 = none, higher follows the prompt more closely."}),
    "temperature": ("FLOAT", {"default": DEFAULT_TEMPERATURE, "min": 0.01, "max": MAX_TEMPERATURE, "step": 0.05,
                              "round": 0.01, "tooltip": "Colour randomness: lower is safer."}),
}


def _same_palette(palette: Palette, model, what: str) -> None:
    if not torch.equal(palette.colors, model.palette.colors):
        raise ValueError(f"The {what} was made with another model's palette: use the same model, or decode "
                         f"it and convert it back with PixelCore Image To Tokens.")


def _allowed(model, palette_lock):
    if palette_lock is None:
        return None
    _same_palette(palette_lock.palette, model, "palette lock")
    return palette_lock.allowed


def _run(model, steps, seed, fn):
    """Runs fn(generator, callback) on the ComfyUI device with progress and cancel, then offloads."""
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


def _settings(steps, cfg, temperature, guidance_schedule, generator, callback):
    return dict(steps=steps, cfg_scale=cfg, temperature=temperature, guidance_schedule=guidance_schedule,
                generator=generator, callback=callback)


class ImageToTokens:
    DESCRIPTION = ("Converts a 16x16 picture (or an exact 2x..16x nearest-neighbour enlargement of one) to "
                   "the model's palette tokens, for Inpaint, Variations and Recolor. Other sizes are "
                   "refused: scale to 16x16 with nearest-neighbour first.")
    CATEGORY = "PixelCore/edit"
    RETURN_TYPES = (TOKENS,)
    RETURN_NAMES = ("tokens",)
    OUTPUT_TOOLTIPS = ("The picture as palette tokens (nearest colour in OKLab).",)
    FUNCTION = "convert"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": MODEL_IN,
                             "image": ("IMAGE", _tip("A 16x16 texture, e.g. from Load Image."))},
                "optional": {"mask": ("MASK", _tip("Transparency as Load Image makes it (1 - alpha); without "
                                                   "it the picture is opaque."))}}

    def convert(self, model, image, mask=None):
        tokens = editing.image_to_tokens(image_mask_to_rgba(image, mask), model.palette, GRID)
        return (PixelTokens(tokens.to(comfy.model_management.intermediate_device()), model.palette, [], [], 0,
                            list(range(len(tokens)))),)


class RegionMask:
    DESCRIPTION = "Makes a 16x16 MASK that is 1 (repaint) inside a rectangle of cells and 0 elsewhere."
    CATEGORY = "PixelCore/edit"
    RETURN_TYPES = ("MASK",)
    RETURN_NAMES = ("mask",)
    OUTPUT_TOOLTIPS = ("1 inside the rectangle: the cells Inpaint regenerates.",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        cell = {"min": 0, "max": GRID - 1}
        size = {"default": 8, "min": 1, "max": GRID}
        return {"required": {"x": ("INT", {"default": 4, **cell, "tooltip": "Left column of the rectangle."}),
                             "y": ("INT", {"default": 4, **cell, "tooltip": "Top row of the rectangle."}),
                             "width": ("INT", {**size, "tooltip": "Width in cells (clipped at the edge)."}),
                             "height": ("INT", {**size, "tooltip": "Height in cells (clipped at the edge)."}),
                             }}

    def make(self, x, y, width, height):
        mask = torch.zeros(1, GRID, GRID, device=comfy.model_management.intermediate_device())
        mask[:, y:y + height, x:x + width] = 1.0
        return (mask,)


class Inpaint:
    DESCRIPTION = ("Regenerates only the masked pixels (MASK 1 = repaint), following the prompt and the kept "
                   "pixels around them; kept pixels come back unchanged. Note: Load Image's MASK is "
                   "1 - alpha, so connected directly it repaints the transparent pixels.")
    CATEGORY = "PixelCore/edit"
    RETURN_TYPES = (TOKENS,)
    RETURN_NAMES = ("tokens",)
    OUTPUT_TOOLTIPS = ("The edited token grids.",)
    FUNCTION = "inpaint"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": MODEL_IN, "conditioning": COND_IN, "tokens": TOKENS_IN,
                             "mask": ("MASK", _tip("Where to repaint (1 = regenerate), 16x16 or an "
                                                   "enlargement of it; a cell is repainted if any of its "
                                                   "pixels is >= 0.5.")),
                             **SAMPLING},
                "optional": {"seamless": SEAMLESS_IN, "palette_lock": LOCK_IN,
                             "guidance_schedule": GUIDANCE_SCHEDULE_IN}}

    def inpaint(self, model, conditioning, tokens, mask, seed, steps, cfg, temperature, seamless=False,
                palette_lock=None, guidance_schedule=DEFAULT_GUIDANCE_SCHEDULE):
        _same_palette(tokens.palette, model, "token grid")
        repaint = editing.mask_to_grid(mask.cpu(), GRID)
        out = _run(model, steps, seed, lambda gen, cb: editing.inpaint(
            model, conditioning, tokens.tokens, repaint, seamless=seamless,
            allowed_tokens=_allowed(model, palette_lock),
            **_settings(steps, cfg, temperature, guidance_schedule, gen, cb)))
        n = len(out)
        return (PixelTokens(out, model.palette, spread(conditioning.prompts, n, 1),
                            spread(conditioning.negative, n, 1), seed, list(range(n))),)


class Variations:
    DESCRIPTION = ("Variations of a texture: re-masks a random (seeded) share of its pixels and resamples "
                   "them. Strength 0 returns the input unchanged, 1 ignores it (plain sampling).")
    CATEGORY = "PixelCore/edit"
    RETURN_TYPES = (TOKENS,)
    RETURN_NAMES = ("tokens",)
    OUTPUT_TOOLTIPS = ("batch_size variations of each input texture, input by input.",)
    FUNCTION = "vary"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": MODEL_IN, "conditioning": COND_IN, "tokens": TOKENS_IN,
                             "strength": ("FLOAT", {"default": 0.4, "min": 0.0, "max": 1.0, "step": 0.05,
                                                    "tooltip": "Share of pixels to regenerate: 0 = the "
                                                               "input, 1 = a new texture."}),
                             **SAMPLING,
                             "batch_size": ("INT", {"default": 4, "min": 1, "max": MAX_NODE_BATCH,
                                                    "tooltip": "Variations per input texture."})},
                "optional": {"seamless": SEAMLESS_IN, "palette_lock": LOCK_IN,
                             "guidance_schedule": GUIDANCE_SCHEDULE_IN}}

    def vary(self, model, conditioning, tokens, strength, seed, steps, cfg, temperature, batch_size,
             seamless=False, palette_lock=None, guidance_schedule=DEFAULT_GUIDANCE_SCHEDULE):
        _same_palette(tokens.palette, model, "token grid")
        out = _run(model, steps, seed, lambda gen, cb: editing.variations(
            model, conditioning, tokens.tokens, strength, batch_size=batch_size, seamless=seamless,
            allowed_tokens=_allowed(model, palette_lock),
            **_settings(steps, cfg, temperature, guidance_schedule, gen, cb)))
        n = len(tokens.tokens)
        return (PixelTokens.from_batches(out, model.palette, conditioning, n, batch_size, seed),)


class PaletteLock:
    DESCRIPTION = ("Restricts sampling to some palette colours: the max_colors most used colours of a "
                   "texture (sample once, lock, sample again), or the colours of a palette image (nearest "
                   "palette entries; max_colors > 0 keeps its most frequent ones). Transparency stays "
                   "allowed.")
    CATEGORY = "PixelCore/edit"
    RETURN_TYPES = (LOCK,)
    RETURN_NAMES = ("palette_lock",)
    OUTPUT_TOOLTIPS = ("For the palette_lock input of Sample (Seamless, Palette Lock), Inpaint, Variations.",)
    FUNCTION = "lock"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": MODEL_IN,
                             "max_colors": ("INT", {"default": 4, "min": 0, "max": 255,
                                                    "tooltip": "Most colours allowed (0 = every colour "
                                                               "of the palette image)."})},
                "optional": {"tokens": (TOKENS, _tip("Lock to this texture's most used colours.")),
                             "palette_image": ("IMAGE", _tip("Lock to the colours of this image (a swatch or "
                                                             "any texture); wins over tokens."))}}

    def lock(self, model, max_colors, tokens=None, palette_image=None):
        if palette_image is not None:
            rgba = image_mask_to_rgba(palette_image, None)
            allowed = editing.lock_to_colors(model.palette, rgba, max_colors)
        elif tokens is not None:
            _same_palette(tokens.palette, model, "token grid")
            if max_colors < 1:
                raise ValueError("max_colors must be at least 1 to lock to a texture's colours.")
            allowed = editing.lock_most_used(tokens.tokens, max_colors)
        else:
            raise ValueError("Connect tokens (lock to their most used colours) or a palette_image.")
        return (PaletteLockSpec(allowed.cpu(), model.palette),)


class MaskGITSampleAdvanced:
    DESCRIPTION = ("MaskGIT Sample with control: seamless tiles (the network wraps around the edges, for "
                   "blocks), opaque tiles (no transparent pixels, for blocks), whether stray holes are redrawn, "
                   "and an optional palette lock.")
    CATEGORY = "PixelCore/edit"
    RETURN_TYPES = (TOKENS,)
    RETURN_NAMES = ("tokens",)
    OUTPUT_TOOLTIPS = ("Token grids, for Palette Decode.",)
    FUNCTION = "generate"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": MODEL_IN, "conditioning": COND_IN, **SAMPLING,
                             "batch_size": ("INT", {"default": 1, "min": 1, "max": MAX_NODE_BATCH,
                                                    "tooltip": "Textures per prompt."}),
                             "seamless": ("BOOLEAN", {**SEAMLESS_IN[1], "default": True}),
                             "opaque": ("BOOLEAN", {"default": False, "tooltip": "Never draw transparent "
                                                    "pixels: a tile with no holes (for blocks)."}),
                             "fill_stray_holes": ("BOOLEAN", {
                                 "default": True, "tooltip": "Redraw, opaque, the transparent pixels of a texture "
                                 f"that ends under {DEFAULT_MIN_CUTOUT:.0%} transparent (stray holes in a block). "
                                 "Off keeps small holes, e.g. windows in a block."})},
                "optional": {"palette_lock": LOCK_IN, "guidance_schedule": GUIDANCE_SCHEDULE_IN}}

    def generate(self, model, conditioning, seed, steps, cfg, temperature, batch_size, seamless, opaque=False,
                 fill_stray_holes=True, palette_lock=None, guidance_schedule=DEFAULT_GUIDANCE_SCHEDULE):
        count = len(conditioning) * batch_size
        min_cutout = DEFAULT_MIN_CUTOUT if fill_stray_holes else 0.0
        out = _run(model, steps, seed, lambda gen, cb: editing.sample_around(
            model, conditioning, None, None, count, seamless=seamless, opaque=opaque,
            allowed_tokens=_allowed(model, palette_lock), min_cutout=min_cutout,
            **_settings(steps, cfg, temperature, guidance_schedule, gen, cb)))
        n = len(conditioning)
        return (PixelTokens.from_batches(out, model.palette, conditioning, n, batch_size, seed),)


class Recolor:
    DESCRIPTION = ("The same shape in other colours or materials, as a batch: keeps the silhouette "
                   "(transparent pixels) and dark outline pixels, regenerates the rest for each "
                   "'<variant> <name>' prompt.")
    CATEGORY = "PixelCore/edit"
    RETURN_TYPES = (TOKENS,)
    RETURN_NAMES = ("tokens",)
    OUTPUT_TOOLTIPS = ("One texture per variant for each input texture, input by input.",)
    FUNCTION = "recolor"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": MODEL_IN, "tokens": TOKENS_IN,
                             "variants": ("STRING", {"multiline": True, "default": "red, blue, gold, green",
                                                     "tooltip": "Colours or materials, separated by "
                                                                "commas or new lines."}),
                             "name": ("STRING", {"default": "sword",
                                                 "tooltip": "What the texture shows; each prompt is "
                                                            "'<variant> <name>'."}),
                             **SAMPLING},
                "optional": {"guidance_schedule": GUIDANCE_SCHEDULE_IN}}

    def recolor(self, model, tokens, variants, name, seed, steps, cfg, temperature,
                guidance_schedule=DEFAULT_GUIDANCE_SCHEDULE):
        _same_palette(tokens.palette, model, "token grid")
        prompts = editing.recolor_prompts(variants, name)
        if len(prompts) * len(tokens.tokens) > MAX_NODE_BATCH or len(prompts) > MAX_VARIANTS:
            raise ValueError(f"{len(prompts)} variants x {len(tokens.tokens)} textures is too many: give at "
                             f"most {MAX_VARIANTS} variants and {MAX_NODE_BATCH} outputs in all.")
        out = _run(model, steps, seed, lambda gen, cb: editing.recolor(
            model, tokens.tokens, prompts, **_settings(steps, cfg, temperature, guidance_schedule, gen, cb)))
        n = len(tokens.tokens)
        return (PixelTokens(out, model.palette, prompts * n, [], seed, list(range(len(prompts))) * n),)


class TilePreview:
    DESCRIPTION = "Repeats IMAGE (and MASK) in a grid, to check that a block texture tiles without seams."
    CATEGORY = "PixelCore/edit"
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("image", "mask")
    OUTPUT_TOOLTIPS = ("The tiled image.", "The tiled mask (all 0 when none was given).")
    FUNCTION = "tile"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE", _tip("The texture, e.g. from Palette Decode.")),
                             "repeat": ("INT", {"default": 3, "min": 1, "max": 8,
                                                "tooltip": "Copies per side."})},
                "optional": {"mask": ("MASK", _tip("The texture's mask, tiled the same way."))}}

    def tile(self, image, repeat, mask=None):
        mask = torch.zeros(image.shape[:3], device=image.device) if mask is None else mask
        mask = mask[None] if mask.dim() == 2 else mask
        return (image.repeat(1, repeat, repeat, 1), mask.repeat(1, repeat, repeat))

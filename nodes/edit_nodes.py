"""Nodes that edit textures: image -> tokens, inpaint, variations, palette lock, seamless sampling, recolour.

Masks follow ComfyUI's mask editor: 1 = repaint this pixel. (Core Load Image also makes its MASK as
1 - alpha: connected to Inpaint, that mask repaints the transparent pixels.)
"""

import torch

from pixelcore import editing

from .common import (COND_IN, GRID, GUIDANCE_SCHEDULE_IN, LOCK, LOCK_IN, MAX_NODE_BATCH, MODEL_IN, SAMPLER, SAMPLING,
                     SEAMLESS_IN, TOKENS, TOKENS_IN, PaletteLockSpec, PixelTokens, batch_mask, image_mask_to_rgba,
                     intermediate, run_on_device, same_palette, sampler_config, save_previews, spread, tip)

MAX_VARIANTS = 32


def _allowed(model, palette_lock):
    if palette_lock is None:
        return None
    same_palette(palette_lock.palette, model, "palette lock")
    return palette_lock.allowed


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
                             "image": ("IMAGE", tip("A 16x16 texture, e.g. from Load Image."))},
                "optional": {"mask": ("MASK", tip("Transparency as Load Image makes it (1 - alpha); without "
                                                   "it the picture is opaque."))}}

    def convert(self, model, image, mask=None):
        tokens = editing.image_to_tokens(image_mask_to_rgba(image, mask), model.palette, GRID)
        return (PixelTokens(intermediate(tokens), model.palette, [], [], 0, list(range(len(tokens)))),)


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
        mask = torch.zeros(1, GRID, GRID)
        mask[:, y:y + height, x:x + width] = 1.0
        return (intermediate(mask),)


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
                             "mask": ("MASK", tip("Where to repaint (1 = regenerate), 16x16 or an "
                                                   "enlargement of it; a cell is repainted if any of its "
                                                   "pixels is >= 0.5.")),
                             **SAMPLING},
                "optional": {"seamless": SEAMLESS_IN, "palette_lock": LOCK_IN,
                             "guidance_schedule": GUIDANCE_SCHEDULE_IN}}

    def inpaint(self, model, conditioning, tokens, mask, seed, steps, cfg, temperature, seamless=False,
                palette_lock=None, guidance_schedule=SAMPLER.guidance_schedule):
        same_palette(tokens.palette, model, "token grid")
        config = sampler_config(steps, cfg, temperature, guidance_schedule)
        repaint = editing.mask_to_grid(mask.cpu(), GRID)
        out = run_on_device(model, steps, seed, lambda gen, cb: editing.inpaint(
            model, conditioning, tokens.tokens, repaint, config=config, seamless=seamless,
            allowed_tokens=_allowed(model, palette_lock), generator=gen, callback=cb))
        n = len(out)
        return (PixelTokens(out, model.palette, spread(conditioning.prompts, n, 1),
                            spread(conditioning.negative, n, 1), seed, list(range(n)), config),)


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
             seamless=False, palette_lock=None, guidance_schedule=SAMPLER.guidance_schedule):
        same_palette(tokens.palette, model, "token grid")
        config = sampler_config(steps, cfg, temperature, guidance_schedule)
        out = run_on_device(model, steps, seed, lambda gen, cb: editing.variations(
            model, conditioning, tokens.tokens, strength, batch_size=batch_size, seamless=seamless,
            allowed_tokens=_allowed(model, palette_lock), config=config, generator=gen, callback=cb))
        n = len(tokens.tokens)
        return (PixelTokens.from_batches(out, model.palette, conditioning, n, batch_size, seed, config),)


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
                "optional": {"tokens": (TOKENS, tip("Lock to this texture's most used colours.")),
                             "palette_image": ("IMAGE", tip("Lock to the colours of this image (a swatch or "
                                                             "any texture); wins over tokens."))}}

    def lock(self, model, max_colors, tokens=None, palette_image=None):
        if palette_image is not None:
            rgba = image_mask_to_rgba(palette_image, None)
            allowed = editing.lock_to_colors(model.palette, rgba, max_colors)
        elif tokens is not None:
            same_palette(tokens.palette, model, "token grid")
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
                                 f"that ends under {SAMPLER.min_cutout:.0%} transparent (stray holes in a "
                                 "block). "
                                 "Off keeps small holes, e.g. windows in a block."})},
                "optional": {"palette_lock": LOCK_IN, "guidance_schedule": GUIDANCE_SCHEDULE_IN}}

    def generate(self, model, conditioning, seed, steps, cfg, temperature, batch_size, seamless, opaque=False,
                 fill_stray_holes=True, palette_lock=None, guidance_schedule=SAMPLER.guidance_schedule):
        count = len(conditioning) * batch_size
        config = sampler_config(steps, cfg, temperature, guidance_schedule, opaque=opaque,
                                min_cutout=SAMPLER.min_cutout if fill_stray_holes else 0.0)
        out = run_on_device(model, steps, seed, lambda gen, cb: editing.sample_around(
            model, conditioning, None, None, count, config, seamless=seamless,
            allowed_tokens=_allowed(model, palette_lock), generator=gen, callback=cb))
        n = len(conditioning)
        return (PixelTokens.from_batches(out, model.palette, conditioning, n, batch_size, seed, config),)


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
                guidance_schedule=SAMPLER.guidance_schedule):
        same_palette(tokens.palette, model, "token grid")
        config = sampler_config(steps, cfg, temperature, guidance_schedule)
        prompts = editing.recolor_prompts(variants, name)
        if len(prompts) * len(tokens.tokens) > MAX_NODE_BATCH or len(prompts) > MAX_VARIANTS:
            raise ValueError(f"{len(prompts)} variants x {len(tokens.tokens)} textures is too many: give at "
                             f"most {MAX_VARIANTS} variants and {MAX_NODE_BATCH} outputs in all.")
        out = run_on_device(model, steps, seed, lambda gen, cb: editing.recolor(
            model, tokens.tokens, prompts, config, generator=gen, callback=cb))
        n = len(tokens.tokens)
        return (PixelTokens(out, model.palette, prompts * n, [], seed, list(range(len(prompts))) * n, config),)


class TilePreview:
    DESCRIPTION = ("Repeats IMAGE (and MASK) in a grid, to check that a block texture tiles without seams, and "
                   "shows the grid enlarged.")
    CATEGORY = "PixelCore/edit"
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("image", "mask")
    OUTPUT_TOOLTIPS = ("The tiled image.", "The tiled mask (all 0 when none was given).")
    FUNCTION = "tile"
    OUTPUT_NODE = True  # it shows the grid: runs even with nothing connected after it

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE", tip("The texture, e.g. from Palette Decode.")),
                             "repeat": ("INT", {"default": 3, "min": 1, "max": 8,
                                                "tooltip": "Copies per side."})},
                "optional": {"mask": ("MASK", tip("The texture's mask, tiled the same way."))}}

    def tile(self, image, repeat, mask=None):
        mask = batch_mask(mask, image)
        tiled, tiled_mask = image.repeat(1, repeat, repeat, 1), mask.repeat(1, repeat, repeat)
        return {"ui": {"images": save_previews(image_mask_to_rgba(tiled, tiled_mask))}, "result": (tiled, tiled_mask)}

"""Nodes between token grids and pictures: decode to IMAGE + MASK, enlarge, save RGBA PNGs."""

import json
import os

from PIL import Image
from PIL.PngImagePlugin import PngInfo

import folder_paths
from comfy.cli_args import args
from pixelcore.colors import texture_kind
from pixelcore.images import MAX_SCALE, upscale_nearest
from pixelcore.metadata import texture_info

from .common import TOKENS, batch_mask, image_mask_to_rgba, intermediate, rgba_to_image_mask

# An enlargement past this many pixels a side is almost surely a wiring mistake (an already large image).
MAX_UPSCALED_SIDE = 8192


class PaletteDecode:
    DESCRIPTION = ("Turns token grids into pictures: IMAGE (RGB, 0..1) and MASK (1 - alpha, as core "
                   "Load Image makes it), at the native 16x16.")
    CATEGORY = "PixelCore/image"
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("image", "mask")
    OUTPUT_TOOLTIPS = ("Colours, float RGB in 0..1, batch x 16 x 16.",
                       "Transparency as a mask: 1 where the texture is transparent (1 - alpha).")
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"tokens": (TOKENS, {"tooltip": "Token grids from MaskGIT Sample."})}}

    def decode(self, tokens):
        rgba = tokens.palette.dequantize(tokens.tokens.cpu())  # (B, H, W, 4) uint8
        image, mask = rgba_to_image_mask(rgba)
        return (intermediate(image), intermediate(mask))


class Upscale:
    DESCRIPTION = ("Enlarges IMAGE and MASK by a whole factor with exact nearest-neighbour: every pixel "
                   "becomes a factor x factor block, no blur, no new colours.")
    CATEGORY = "PixelCore/image"
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("image", "mask")
    OUTPUT_TOOLTIPS = ("The enlarged image.", "The enlarged mask (all 0 = opaque when no mask was given).")
    FUNCTION = "upscale"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "image": ("IMAGE", {"tooltip": "The image to enlarge, e.g. from Palette Decode."}),
                "factor": ("INT", {"default": 16, "min": 1, "max": MAX_SCALE,
                                   "tooltip": "Whole-number scale: 16 turns 16x16 into 256x256."}),
            },
            "optional": {"mask": ("MASK", {"tooltip": "The image's mask, enlarged the same way."})},
        }

    def upscale(self, image, factor, mask=None):
        height, width = image.shape[1:3]
        if max(height, width) * factor > MAX_UPSCALED_SIDE:
            raise ValueError(f"Enlarging {width}x{height} by {factor} exceeds {MAX_UPSCALED_SIDE} pixels a "
                             f"side: use a smaller factor, or enlarge the native 16x16 texture.")
        mask = batch_mask(mask, image)
        return (upscale_nearest(image, factor), upscale_nearest(mask[..., None], factor)[..., 0])


class SaveTextureRGBA:
    DESCRIPTION = ("Saves RGBA PNGs (alpha = 1 - mask) into the ComfyUI output folder at the size given (the "
                   "native 16x16 from Palette Decode). Connect the sampler's tokens to store prompt and seed "
                   "in the PNG text.")
    CATEGORY = "PixelCore/image"
    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The textures to save, e.g. from Palette Decode."}),
                "filename_prefix": ("STRING", {"default": "pixelcore/texture",
                                               "tooltip": "File name start; may include a subfolder."}),
            },
            "optional": {
                "mask": ("MASK", {"tooltip": "Transparency (1 - alpha); without it the PNG is opaque."}),
                "tokens": (TOKENS, {"tooltip": "The sampler's tokens: their prompt and seed go in the PNG "
                                               "text."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    def save(self, images, filename_prefix, mask=None, tokens=None, prompt=None, extra_pnginfo=None):
        rgba = image_mask_to_rgba(images, mask)
        height, width = rgba.shape[1:3]
        output_dir = folder_paths.get_output_directory()
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(filename_prefix, output_dir,
                                                                               width, height)
        results = []
        for index, pixels in enumerate(rgba):
            file = f"{name.replace('%batch_num%', str(index))}_{counter + index:05}_.png"
            info = self._png_text(index, pixels, tokens, prompt, extra_pnginfo)
            Image.fromarray(pixels, "RGBA").save(os.path.join(folder, file), pnginfo=info, compress_level=4)
            results.append({"filename": file, "subfolder": subfolder, "type": "output"})
        return {"ui": {"images": results}}

    @staticmethod
    def _png_text(index, pixels, tokens, prompt, extra_pnginfo) -> PngInfo:
        info = PngInfo()
        if tokens is not None and index < len(tokens.prompts):
            meta = texture_info(tokens.prompts[index], tokens.seed, tokens.batch_index[index], tokens.sampler,
                                negative=tokens.negative[index] if tokens.negative else "",
                                kind=texture_kind(pixels))
            for key, value in meta.to_text().items():
                info.add_itxt(key, value)
        if not args.disable_metadata:  # the workflow, so dropping the PNG on ComfyUI restores it
            if prompt is not None:
                info.add_text("prompt", json.dumps(prompt))
            for key, value in (extra_pnginfo or {}).items():
                info.add_text(key, json.dumps(value))
        return info

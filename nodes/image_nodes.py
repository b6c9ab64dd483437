"""Nodes between token grids and pictures: decode to IMAGE + MASK, enlarge, save RGBA PNGs."""

import json
import os

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

import comfy.model_management
import folder_paths
from comfy.cli_args import args

from .model_nodes import TOKENS

MAX_UPSCALE = 64
# An enlargement past this many pixels a side is almost surely a wiring mistake (an already large image).
MAX_UPSCALED_SIDE = 8192


def rgba_to_image_mask(rgba: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 RGBA (B, H, W, 4) -> IMAGE float (B, H, W, 3) in 0..1 and MASK (B, H, W) = 1 - alpha."""
    pixels = rgba.float() / 255.0
    return pixels[..., :3].contiguous(), 1.0 - pixels[..., 3]


def image_mask_to_rgba(image: torch.Tensor, mask: torch.Tensor | None) -> np.ndarray:
    """IMAGE (B, H, W, C) + MASK (B or 1, H, W) or None (opaque) -> uint8 RGBA (B, H, W, 4)."""
    rgb = image[..., :3].detach().cpu().float()
    if mask is None:
        alpha = torch.ones(rgb.shape[:3])
    else:
        mask = mask.detach().cpu().float()
        mask = mask[None] if mask.dim() == 2 else mask
        if mask.shape[-2:] != rgb.shape[1:3] or len(mask) not in (1, len(rgb)):
            raise ValueError(f"The mask ({tuple(mask.shape)}) does not match the image "
                             f"({tuple(rgb.shape)}): connect the MASK that came with this IMAGE.")
        alpha = (1.0 - mask).expand(rgb.shape[:3])
    rgba = torch.cat([rgb, alpha[..., None]], dim=-1)
    return (rgba.clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


def _enlarge(pixels: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, H, W, ...) -> (B, H * factor, W * factor, ...): each pixel becomes a factor x factor block."""
    return pixels.repeat_interleave(factor, dim=1).repeat_interleave(factor, dim=2)


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
        device = comfy.model_management.intermediate_device()
        return (image.to(device), mask.to(device))


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
                "factor": ("INT", {"default": 16, "min": 1, "max": MAX_UPSCALE,
                                   "tooltip": "Whole-number scale: 16 turns 16x16 into 256x256."}),
            },
            "optional": {"mask": ("MASK", {"tooltip": "The image's mask, enlarged the same way."})},
        }

    def upscale(self, image, factor, mask=None):
        height, width = image.shape[1:3]
        if max(height, width) * factor > MAX_UPSCALED_SIDE:
            raise ValueError(f"Enlarging {width}x{height} by {factor} exceeds {MAX_UPSCALED_SIDE} pixels a "
                             f"side: use a smaller factor, or enlarge the native 16x16 texture.")
        if mask is None:
            mask = torch.zeros(image.shape[:3], device=image.device)
        mask = mask[None] if mask.dim() == 2 else mask
        if mask.shape[-2:] != image.shape[1:3]:
            raise ValueError(f"The mask ({tuple(mask.shape)}) does not match the image "
                             f"({tuple(image.shape)}): connect the MASK that came with this IMAGE.")
        return (_enlarge(image, factor), _enlarge(mask, factor))


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
            info = self._png_text(index, tokens, prompt, extra_pnginfo)
            Image.fromarray(pixels, "RGBA").save(os.path.join(folder, file), pnginfo=info, compress_level=4)
            results.append({"filename": file, "subfolder": subfolder, "type": "output"})
        return {"ui": {"images": results}}

    @staticmethod
    def _png_text(index, tokens, prompt, extra_pnginfo) -> PngInfo:
        info = PngInfo()
        if tokens is not None and index < len(tokens.prompts):
            info.add_text("pixelcore_prompt", tokens.prompts[index])
            info.add_text("pixelcore_seed", str(tokens.seed))
            info.add_text("pixelcore_batch_index", str(tokens.batch_index[index]))
            if tokens.negative:
                info.add_text("pixelcore_negative", tokens.negative[index])
        if not args.disable_metadata:  # the workflow, so dropping the PNG on ComfyUI restores it
            if prompt is not None:
                info.add_text("prompt", json.dumps(prompt))
            for key, value in (extra_pnginfo or {}).items():
                info.add_text(key, json.dumps(value))
        return info

"""Nodes between token grids and pictures: decode to IMAGE + MASK, enlarge, save RGBA PNGs and game packs.

Decode and the save nodes show an enlarged preview on a checkerboard in the node (``common.save_previews``);
what they pass on or save stays at its own size."""

import json
import os

from PIL import Image
from PIL.PngImagePlugin import PngInfo

import folder_paths
from comfy.cli_args import args
from pixelcore.colors import texture_kind
from pixelcore.export import FORMATS, PackTexture, export_pack, parse_mapping, sanitize_name, texture_names
from pixelcore.images import MAX_SCALE, upscale_nearest
from pixelcore.metadata import KINDS, texture_info

from .common import TOKENS, batch_mask, image_mask_to_rgba, intermediate, rgba_to_image_mask, save_previews, tip

# An enlargement past this many pixels a side is almost surely a wiring mistake (an already large image).
MAX_UPSCALED_SIDE = 8192


class PaletteDecode:
    DESCRIPTION = ("Turns token grids into pictures: IMAGE (RGB, 0..1) and MASK (1 - alpha, as core "
                   "Load Image makes it), at the native 16x16, and shows them enlarged.")
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
        return {"ui": {"images": save_previews(rgba.numpy())}, "result": (intermediate(image), intermediate(mask))}


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
                   "native 16x16 from Palette Decode) and shows them enlarged. Connect the sampler's tokens to "
                   "store prompt and seed in the PNG text.")
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
        # The node shows the enlarged previews; "textures" lists the files saved (16x16 stays a speck).
        return {"ui": {"images": save_previews(rgba), "textures": results}}

    @staticmethod
    def _png_text(index, pixels, tokens, prompt, extra_pnginfo) -> PngInfo:
        info = PngInfo()
        for key, value in _texture_text(index, pixels, tokens).items():
            info.add_itxt(key, value)
        if not args.disable_metadata:  # the workflow, so dropping the PNG on ComfyUI restores it
            if prompt is not None:
                info.add_text("prompt", json.dumps(prompt))
            for key, value in (extra_pnginfo or {}).items():
                info.add_text(key, json.dumps(value))
        return info


def _texture_text(index, pixels, tokens) -> dict[str, str]:
    """The pixelcore_* PNG text of texture ``index`` of a batch (none without the sampler's tokens)."""
    if tokens is None or index >= len(tokens.prompts):
        return {}
    return texture_info(tokens.prompts[index], tokens.seed, tokens.batch_index[index], tokens.sampler,
                        negative=tokens.negative[index] if tokens.negative else "",
                        kind=texture_kind(pixels)).to_text()


class SaveResourcePack:
    DESCRIPTION = ("Puts textures into a game pack in ComfyUI's output folder: a Minecraft resource pack (item "
                   "or block textures with their models) or a Luanti texture pack, as a folder or a .zip. Each "
                   "run adds to the same pack; a name already taken gets a _2, _3... suffix, nothing is "
                   "overwritten.")
    CATEGORY = "PixelCore/image"
    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", tip("The 16x16 textures, e.g. from Palette Decode.")),
                "pack_name": ("STRING", {"default": "pixelcore_textures", "tooltip": "The pack's folder (or "
                                         ".zip) in ComfyUI's output folder; letters, digits and _ only."}),
                "format": (list(FORMATS), tip("minecraft: a Java resource pack; luanti: a texture pack.")),
                "as_zip": ("BOOLEAN", {"default": False, "tooltip": "Write PACK_NAME.zip instead of a folder."}),
                "namespace": ("STRING", {"default": "pixelcore", "tooltip": "Minecraft: assets/NAMESPACE/...; "
                                         "'minecraft' replaces vanilla textures of the same name."}),
                "kind": (["auto", *KINDS], tip("Item or block folder; auto reads it from the transparency.")),
                "names": ("STRING", {"multiline": True, "default": "", "tooltip": "Texture names, one per line "
                                     "or comma separated (one per texture, or one for all); empty: from the "
                                     "prompts."}),
            },
            "optional": {
                "mask": ("MASK", tip("Transparency (1 - alpha); without it the textures are opaque.")),
                "tokens": (TOKENS, tip("The sampler's tokens: names from their prompts, prompt and seed in the "
                                       "PNG text.")),
                "luanti_mapping": ("STRING", {"multiline": True, "default": "", "tooltip": "Luanti: 'name = "
                                              "texture' per line, to write a texture under the file name it "
                                              "replaces, e.g. 'red_sword = default_tool_steelsword'."}),
            },
        }

    def save(self, images, pack_name, format, as_zip, namespace, kind, names, mask=None, tokens=None,
             luanti_mapping=""):
        rgba = image_mask_to_rgba(images, mask)
        labels = texture_names(len(rgba), names, tokens.prompts if tokens is not None else ())
        textures = [PackTexture(label, pixels, texture_kind(pixels) if kind == "auto" else kind,
                                _texture_text(index, pixels, tokens))
                    for index, (label, pixels) in enumerate(zip(labels, rgba))]
        out = os.path.join(folder_paths.get_output_directory(),
                           sanitize_name(pack_name, "pack name") + (".zip" if as_zip else ""))
        report = export_pack(textures, out, format, namespace, parse_mapping(luanti_mapping))
        return {"ui": {"images": save_previews(rgba), "text": [report.summary()]}}

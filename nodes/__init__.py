"""ComfyUI nodes for PixelCore: thin wrappers over the plain PyTorch library in ``pixelcore/``.

Only this package and the pack's root ``__init__.py`` import ComfyUI (``comfy``, ``folder_paths``).
"""

import sys
from pathlib import Path

# ComfyUI imports the pack folder as a package named after its path, so the sibling library
# ``pixelcore`` is not importable by name on its own. Put the pack folder first on sys.path (once) so
# ``import pixelcore`` finds this pack's copy, never another install of a different version.
_PACK_DIR = str(Path(__file__).resolve().parent.parent)
if _PACK_DIR not in sys.path:
    sys.path.insert(0, _PACK_DIR)

from .edit_nodes import (ImageToTokens, Inpaint, MaskGITSampleAdvanced, PaletteLock, Recolor,  # noqa: E402
                         RegionMask, TilePreview, Variations)
from .image_nodes import PaletteDecode, SaveResourcePack, SaveTextureRGBA, Upscale  # noqa: E402
from .lora_nodes import LoadPixelLoRA, register_lora_folder  # noqa: E402
from .model_nodes import EncodePrompt, LoadPixelModel, MaskGITSample  # noqa: E402
from .paths import register_model_folder  # noqa: E402

register_model_folder()
register_lora_folder()

_NODES = {
    # id (global across every installed pack, never changes once released): (class, display name)
    "PixelCore_LoadPixelModel": (LoadPixelModel, "Load PixelCore Model"),
    "PixelCore_EncodePrompt": (EncodePrompt, "PixelCore Encode Prompt"),
    "PixelCore_MaskGITSample": (MaskGITSample, "PixelCore MaskGIT Sample"),
    "PixelCore_PaletteDecode": (PaletteDecode, "PixelCore Palette Decode"),
    "PixelCore_Upscale": (Upscale, "PixelCore Upscale (Nearest, Integer)"),
    "PixelCore_SaveTextureRGBA": (SaveTextureRGBA, "PixelCore Save Texture (RGBA PNG)"),
    "PixelCore_SaveResourcePack": (SaveResourcePack, "PixelCore Save Resource Pack"),
    "PixelCore_ImageToTokens": (ImageToTokens, "PixelCore Image To Tokens"),
    "PixelCore_RegionMask": (RegionMask, "PixelCore Region Mask"),
    "PixelCore_Inpaint": (Inpaint, "PixelCore Inpaint"),
    "PixelCore_Variations": (Variations, "PixelCore Variations"),
    "PixelCore_PaletteLock": (PaletteLock, "PixelCore Palette Lock"),
    "PixelCore_MaskGITSampleAdvanced": (MaskGITSampleAdvanced, "PixelCore Sample (Seamless, Palette Lock)"),
    "PixelCore_Recolor": (Recolor, "PixelCore Recolor (Batch)"),
    "PixelCore_TilePreview": (TilePreview, "PixelCore Tile Preview"),
    "PixelCore_LoadLoRA": (LoadPixelLoRA, "PixelCore Load LoRA"),
}

NODE_CLASS_MAPPINGS = {node_id: cls for node_id, (cls, _) in _NODES.items()}
NODE_DISPLAY_NAME_MAPPINGS = {node_id: name for node_id, (_, name) in _NODES.items()}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]

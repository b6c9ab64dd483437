"""PixelCore: 16x16 pixel-art textures from text with a 2D MaskGIT. Plain PyTorch; never imports ComfyUI."""

from .checkpoint import CheckpointError, default_model_path, load_model, save_model
from .model import PixelConfig, PixelModel
from .palette import Palette
from .sampling import Conditioning, SamplerConfig, encode_prompt, sample

__version__ = "0.4.0"
__all__ = ["CheckpointError", "Conditioning", "Palette", "PixelConfig", "PixelModel", "SamplerConfig",
           "default_model_path", "encode_prompt", "load_model", "sample", "save_model"]

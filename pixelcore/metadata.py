"""The PNG text every PixelCore texture carries, written the same way by the CLI and the ComfyUI nodes.

Every key starts with ``pixelcore_``. ComfyUI reads a PNG's ``prompt`` and ``workflow`` keys as graphs when a
file is dropped on its canvas, so those two names are never used for anything else (a node may still add them,
holding the real workflow, as every ComfyUI save node does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .sampling import SamplerConfig

PREFIX = "pixelcore_"
SCHEMA_VERSION = 1
# ComfyUI's own keys: a graph in API format and in UI format.
COMFYUI_KEYS = frozenset({"prompt", "workflow"})
KINDS = ("item", "block")


@dataclass
class TextureInfo:
    """What made a texture: prompt, seed, its place in the batch, the model and the sampler settings."""

    prompt: str
    seed: int
    index: int = 0  # position in the batch made from one seed
    negative: str = ""
    model: str = ""  # the model file's name
    kind: str | None = None  # "item" (cut-out) or "block" (opaque tile), as the texture reads
    sampler: dict = field(default_factory=dict)  # SamplerConfig fields

    def to_text(self) -> dict[str, str]:
        """PNG text chunks, every key prefixed; empty fields are left out."""
        text = {"version": str(SCHEMA_VERSION), "prompt": self.prompt, "seed": str(self.seed),
                "batch_index": str(self.index)}
        if self.negative:
            text["negative"] = self.negative
        if self.model:
            text["model"] = self.model
        if self.kind:
            text["kind"] = self.kind
        if self.sampler:
            text["sampler"] = json.dumps(self.sampler, sort_keys=True)
        return {PREFIX + key: value for key, value in text.items()}

    @classmethod
    def from_text(cls, text: dict[str, str]) -> TextureInfo | None:
        """Reads what ``to_text`` wrote; None when the chunks hold no PixelCore prompt."""
        values = {k[len(PREFIX):]: v for k, v in text.items() if isinstance(k, str) and k.startswith(PREFIX)}
        if not isinstance(values.get("prompt"), str):
            return None
        try:
            seed, index = int(values.get("seed", "0")), int(values.get("batch_index", "0"))
            sampler = json.loads(values["sampler"]) if "sampler" in values else {}
        except ValueError:
            return None
        kind = values.get("kind") if values.get("kind") in KINDS else None
        return cls(values["prompt"], seed, index, values.get("negative", ""), values.get("model", ""), kind,
                   sampler if isinstance(sampler, dict) else {})


def texture_info(prompt: str, seed: int, index: int, sampler: SamplerConfig | None = None, *, negative: str = "",
                 model: str = "", kind: str | None = None) -> TextureInfo:
    """A ``TextureInfo`` with the sampler's settings recorded (none when ``sampler`` is None)."""
    return TextureInfo(prompt, seed, index, negative, model, kind, sampler.to_dict() if sampler else {})


def read_texture_info(path: str | Path) -> TextureInfo | None:
    """The ``TextureInfo`` of a PNG written by PixelCore, or None for any other PNG.

    Raises:
        ValueError: when the file is not a readable image.
    """
    try:
        with Image.open(path) as image:
            text = dict(getattr(image, "text", {}) or {})
    except OSError as err:
        raise ValueError(f"{path}: not a readable image ({err})") from err
    return TextureInfo.from_text(text)

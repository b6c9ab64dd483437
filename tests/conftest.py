"""Shared fixtures for the core library tests: a tiny palette, tiny models and a tiny texture folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from comfyui_harness import CORRUPT, EXAMPLE_LORA, FOREIGN_LORA, TINY, TINY_LORA, ComfyServer, comfyui_installed
from pixelcore.checkpoint import default_model_path, load_model, save_model
from pixelcore.model import PixelConfig, PixelModel
from pixelcore.palette import Palette

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine a second OpenMP thread that
# spin-waits for a busy core makes each step several times slower.
torch.set_num_threads(1)

# A few clearly distinct colours: greys, a red, a green, a blue, a yellow and a brown.
BASE_COLORS = np.array([
    [20, 20, 20], [128, 128, 128], [250, 250, 250],
    [200, 30, 30], [30, 200, 30], [30, 30, 200], [230, 210, 40], [110, 70, 30],
], dtype=np.uint8)

# (file name, caption, colour, kind) of the tiny training set.
TEXTURES = [
    ("red_wool.png", "red wool block", (200, 30, 30), "block"),
    ("blue_wool.png", "blue wool block", (30, 30, 200), "block"),
    ("leaves.png", "green leaves block", (30, 200, 30), "block"),
    ("stone.png", "gray stone block", (128, 128, 128), "block"),
    ("red_sword.png", "a red sword", (200, 30, 30), "item"),
    ("diamond_sword.png", "a blue diamond sword", (30, 30, 200), "item"),
    ("gold_pickaxe.png", "a golden pickaxe", (230, 210, 40), "item"),
    ("apple.png", "an apple", (200, 30, 30), "item"),
]


def make_texture(rgb: tuple[int, int, int], kind: str, seed: int = 0) -> np.ndarray:
    """A 16x16 RGBA texture: a shaded tile for blocks, a diagonal blade on transparency for items."""
    rng = np.random.default_rng(seed)
    base = np.array(rgb, dtype=np.int16)
    dark = np.clip(base * 0.6, 0, 255)
    out = np.zeros((16, 16, 4), np.uint8)
    if kind == "block":
        shade = rng.random((16, 16)) < 0.3
        out[..., :3] = np.where(shade[..., None], dark, base).astype(np.uint8)
        out[..., 3] = 255
    else:
        for i in range(2, 14):
            out[15 - i, i - 1:i + 2, :3] = base
            out[15 - i, i - 1:i + 2, 3] = 255
        out[13:15, 1:3, :3] = (110, 70, 30)  # a brown handle
        out[13:15, 1:3, 3] = 255
    return out


def sensitize(model: PixelModel, seed: int = 5) -> PixelModel:
    """Larger random weights than the init (std 0.02), so that every input, the prompt included, visibly
    moves the logits of an untrained model."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("text_encoder.") and p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)
    return model


@pytest.fixture(scope="session")
def palette() -> Palette:
    return Palette.from_colors(BASE_COLORS)


@pytest.fixture
def tiny_model(palette: Palette) -> PixelModel:
    torch.manual_seed(0)
    return PixelModel(PixelConfig.tiny(), palette).eval()


@pytest.fixture(scope="session")
def saved_tiny_model(tmp_path_factory, palette: Palette) -> Path:
    """A tiny model written once per session, for tests that only read it."""
    torch.manual_seed(1)
    model = PixelModel(PixelConfig.tiny(), palette)
    return save_model(model, tmp_path_factory.mktemp("model") / "tiny.safetensors",
                      extra_metadata={"training": {"step": 3}})


@pytest.fixture(scope="session")
def texture_dir(tmp_path_factory) -> Path:
    """Eight 16x16 PNGs with a metadata.jsonl (Hugging Face imagefolder layout)."""
    root = tmp_path_factory.mktemp("textures")
    rows = []
    for i, (name, text, rgb, kind) in enumerate(TEXTURES):
        Image.fromarray(make_texture(rgb, kind, seed=i), "RGBA").save(root / name)
        rows.append(json.dumps({"file_name": name, "text": text}))
    (root / "metadata.jsonl").write_text("\n".join(rows) + "\n")
    return root


def _test_adapter(model: PixelModel, seed: int):
    """A LoRA adapter for ``model`` with random factors large enough to change its samples, and the word "disc"."""
    from pixelcore.lora import Adapter, LoraConfig

    adapter = Adapter.create(model, LoraConfig(rank=2, alpha=2.0, words=("disc",)))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pair in adapter.pairs:
            pair.up.copy_(torch.randn(pair.up.shape, generator=gen) * 3)
    return adapter


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One real ComfyUI server for every integration test file, with a tiny model and a corrupt file."""
    if not comfyui_installed():
        pytest.fail("PIXELCORE_REQUIRE_COMFYUI is set but ComfyUI is missing: run scripts/install_comfyui.sh")
    workdir = tmp_path_factory.mktemp("comfyui")
    models = workdir / "models_pixelcore"
    models.mkdir()
    torch.manual_seed(0)
    palette = Palette.from_colors(np.array([[200, 30, 30], [30, 30, 200], [30, 200, 30], [240, 240, 60]],
                                           np.uint8))
    tiny = PixelModel(PixelConfig.tiny(), palette)
    save_model(tiny, models / TINY)
    (models / CORRUPT).write_bytes(b"this is not a safetensors file")
    (models / "readme.txt").write_text("not a model")
    loras = workdir / "models_pixelcore_lora"
    loras.mkdir()
    _test_adapter(tiny, seed=0).save(loras / TINY_LORA)
    torch.manual_seed(1)
    _test_adapter(PixelModel(PixelConfig.tiny(), palette), seed=1).save(loras / FOREIGN_LORA)
    if default_model_path().is_file():  # the LoRA template runs as shipped, on the built-in model
        from pixelcore.lora import Adapter, LoraConfig

        Adapter.create(load_model(default_model_path()), LoraConfig(words=("folder",))).save(loras / EXAMPLE_LORA)
    comfy = ComfyServer(workdir, models, lora_dir=loras, threads=1)  # one torch thread, as at the top
    comfy.start()
    try:
        yield comfy
    finally:
        comfy.stop()

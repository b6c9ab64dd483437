"""Draws the before | after pictures of docs/EDITING.md and measures seam scores; prints the numbers.

    python docs/editing/make_pictures.py [--model PATH] [--data data/luanti]

Uses the shipped model when it exists, else a tiny random-weight model (pictures then only show what is
kept and what changes, not good textures). Writes docs/editing/*.png and docs/editing/seam_scores.json.
"""

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from pixelcore import editing
from pixelcore.checkpoint import default_model_path, load_model
from pixelcore.data import decode_png
from pixelcore.images import save_grid
from pixelcore.model import PixelConfig, PixelModel
from pixelcore.palette import Palette
from pixelcore.sampling import SamplerConfig, encode_prompt, sample

OUT = Path(__file__).resolve().parent
STEPS = 12


def read(data: Path, name: str) -> np.ndarray:
    return decode_png((data / "minetest-data" / name).read_bytes())


def real_blocks(data: Path) -> list[np.ndarray]:
    rows = [json.loads(line) for line in (data / "metadata.jsonl").read_text().splitlines() if line.strip()]
    return [decode_png((data / r["file_name"]).read_bytes()) for r in rows if r.get("kind") == "block"]


def pick_model(path: str | None, data: Path) -> tuple[PixelModel, str]:
    if path or default_model_path().is_file():
        path = path or str(default_model_path())
        return load_model(path), Path(path).name
    torch.manual_seed(0)
    pixels = np.stack([read(data, n) for n in ("default_tool_diamondsword.png", "default_cobble.png",
                                               "default_apple.png", "default_mossycobble.png")])
    return PixelModel(PixelConfig.tiny(), Palette.fit(pixels, max_colors=48)), "tiny random-weight model"


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def rgba(model: PixelModel, tokens: torch.Tensor) -> np.ndarray:
    return model.palette.dequantize(tokens.cpu()).numpy()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--data", default="data/luanti")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    data = Path(args.data)
    model, model_name = pick_model(args.model, data)
    settings = SamplerConfig(steps=STEPS, cfg_scale=3.0)
    sword_rgba = read(data, "default_tool_diamondsword.png")
    sword = editing.image_to_tokens(sword_rgba, model.palette)
    sword_cond = encode_prompt(model, "a diamond sword")

    save_grid(np.stack([sword_rgba, rgba(model, sword[0])]), OUT / "image_to_tokens.png", cols=2)
    repaint = torch.zeros(1, 16, 16, dtype=torch.bool)
    repaint[:, 2:8, 8:14] = True  # the blade tip
    golden = encode_prompt(model, "a golden sword")
    inpainted = editing.inpaint(model, golden, sword, repaint, generator=gen(1), config=settings)
    save_grid(rgba(model, torch.cat([sword, inpainted])), OUT / "inpaint.png", cols=2)
    varied = editing.variations(model, sword_cond, sword, 0.4, batch_size=3, generator=gen(2), config=settings)
    save_grid(rgba(model, torch.cat([sword, varied])), OUT / "variations.png", cols=4)

    apple_cond = encode_prompt(model, "a red apple")
    free = sample(model, apple_cond, settings, generator=gen(3))
    lock = editing.lock_most_used(free, 4)
    locked = editing.sample_around(model, apple_cond, None, None, 1, settings, allowed_tokens=lock,
                                   generator=gen(4))
    save_grid(rgba(model, torch.cat([free, locked])), OUT / "palette_lock.png", cols=2)

    block_cond = encode_prompt(model, "a mossy cobblestone block")
    plain = sample(model, block_cond, settings, generator=gen(5))
    seamless = editing.sample_around(model, block_cond, None, None, 1, settings, seamless=True, generator=gen(5))
    save_grid(np.stack([editing.tile(rgba(model, plain[0])), editing.tile(rgba(model, seamless[0]))]),
              OUT / "seamless.png", cols=2, scale=4)

    leaves_cond = encode_prompt(model, "green leaves block")
    holed = sample(model, leaves_cond, settings, batch_size=4, generator=gen(8))
    solid = editing.sample_around(model, leaves_cond, None, None, 4, replace(settings, opaque=True),
                                  generator=gen(8))
    save_grid(rgba(model, torch.cat([holed, solid])), OUT / "opaque.png", cols=4)

    family = editing.recolor(model, sword, editing.recolor_prompts("red, blue, gold, green", "sword"),
                             settings, generator=gen(6))
    save_grid(rgba(model, torch.cat([sword, family])), OUT / "recolor.png", cols=5)

    scores = seam_scores(model, data)
    scores["model"] = model_name
    (OUT / "seam_scores.json").write_text(json.dumps(scores, indent=2) + "\n")
    print(json.dumps(scores, indent=2))


def seam_scores(model: PixelModel, data: Path, count: int = 32) -> dict:
    """Median and mean seam score of real Luanti blocks and of generated blocks with and without seamless."""
    real = [editing.seam_score(block) for block in real_blocks(data)]
    prompts = ["a cobblestone block", "a mossy stone block", "a dirt block", "an oak planks block",
               "a sand block", "a brick block", "a grey stone block", "a green leaves block"]
    cond = encode_prompt(model, prompts)
    per_prompt = count // len(prompts)
    out = {}
    for seamless in (False, True):
        tokens = editing.sample_around(model, cond, None, None, count, SamplerConfig(steps=STEPS, cfg_scale=3.0),
                                       seamless=seamless, generator=gen(7))
        out["generated_seamless" if seamless else "generated_plain"] = _summary(
            [editing.seam_score(rgba(model, t)) for t in tokens])
    out["real_blocks"] = _summary(real)
    out["generated_per_prompt"] = per_prompt
    return out


def _summary(values: list[float]) -> dict:
    finite = np.array([v for v in values if np.isfinite(v)])
    return {"n": len(values), "median": round(float(np.median(finite)), 3),
            "mean": round(float(finite.mean()), 3), "p90": round(float(np.quantile(finite, 0.9)), 3)}


if __name__ == "__main__":
    main()

"""Draws the README's showcase: 4 seeds of each of 12 prompts from the shipped default model, default settings.

    PYTHONPATH=. python scripts/showcase.py docs/images/showcase.png
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import torch

from pixelcore import default_model_path, encode_prompt, load_model, sample
from pixelcore.images import save_grid

PROMPTS = ("a blue diamond sword", "a golden pickaxe", "a red apple", "a purple potion bottle", "green leaves block",
           "brown wooden planks", "gray stone bricks", "stone with blue ore", "a red sword, pixel art",
           "一把青色的铲子", "给我画一把金色的十字镐", "红色的羊毛方块")
SEEDS = 4


def draw_grid(prompts: Sequence[str], out: str, cols: int, seeds: int = SEEDS) -> None:
    """``seeds`` samples of each prompt (prompt i from seed i) with the default model and settings, in one grid."""
    model = load_model(default_model_path())
    textures = []
    for i, prompt in enumerate(prompts):
        tokens = sample(model, encode_prompt(model, prompt), batch_size=seeds,
                        generator=torch.Generator().manual_seed(i))
        textures.append(model.palette.dequantize(tokens).numpy())
    save_grid(np.concatenate(textures), out, cols=cols, scale=6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    draw_grid(PROMPTS, parser.parse_args().out, cols=2 * SEEDS)


if __name__ == "__main__":
    main()

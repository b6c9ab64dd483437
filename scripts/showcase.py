"""Draws the README's showcase: 4 seeds of each of 12 prompts from the shipped default model, default settings.

    PYTHONPATH=. python scripts/showcase.py docs/images/showcase.png
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from pixelcore import default_model_path, encode_prompt, load_model, sample
from pixelcore.images import save_grid

PROMPTS = ("a blue diamond sword", "a golden pickaxe", "a red apple", "a purple potion bottle", "green leaves block",
           "brown wooden planks", "gray stone bricks", "stone with blue ore", "a torch", "一把蓝色的钻石剑",
           "红色的羊毛方块", "一个紫色的宝石")
SEEDS = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    args = parser.parse_args()
    model = load_model(default_model_path())
    textures = []
    for i, prompt in enumerate(PROMPTS):
        tokens = sample(model, encode_prompt(model, prompt), batch_size=SEEDS,
                        generator=torch.Generator().manual_seed(i))
        textures.append(model.palette.dequantize(tokens).numpy())
    save_grid(np.concatenate(textures), args.out, cols=2 * SEEDS, scale=6)


if __name__ == "__main__":
    main()

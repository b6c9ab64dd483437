"""Draws the README's gallery of the three prompts of the original write-up (eval/prompts_writeup.jsonl): 4 seeds
each from the shipped default model with default settings, and prints what the prompt reader made of each.

    PYTHONPATH=. python scripts/writeup_gallery.py docs/images/writeup.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from showcase import SEEDS, draw_grid

from pixelcore.prompts import prompt_notes, read_prompt

PROMPTS = Path(__file__).resolve().parent.parent / "eval" / "prompts_writeup.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    args = parser.parse_args()
    prompts = [json.loads(line)["prompt"] for line in PROMPTS.read_text(encoding="utf-8").splitlines() if line]
    for prompt in prompts:  # what the reader made of each prompt is the script's result
        print(f"{prompt}\n  read as: {read_prompt(prompt).model_text!r}\n  {prompt_notes(prompt)}")
    draw_grid(prompts, args.out, cols=SEEDS)


if __name__ == "__main__":
    main()

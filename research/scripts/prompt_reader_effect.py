"""The prompt reader's effect on the shipped model: colour, kind and shape adherence per language on a prompt set, with
the builtin encoder reading prompts through pixelcore.prompts (as shipped now) and through the colour-word
normaliser it replaced. The weights are the same; only the text the tokenizer gets differs.

With "unknown", it samples prompts with words the model never saw beside the same prompts without them, to see
whether those words are ignored, and scores the set's prompts with unknown words read as is and with those words
dropped.

Usage: PYTHONPATH=. python research/scripts/prompt_reader_effect.py [eval/prompts_natural.jsonl] [seeds=4]
       PYTHONPATH=. python research/scripts/prompt_reader_effect.py unknown [eval/prompts_natural.jsonl]
"""

import json
import re
import sys
import time

import torch

from pixelcore import text
from pixelcore.prompts import read_prompt
from pixelcore.checkpoint import default_model_path, load_model
from pixelcore.colors import COLOR_SYNONYMS
from pixelcore.colors import dominant_color
from pixelcore.evaluate import PromptSpec, evaluate, model_generator, read_kind

UNKNOWN_PAIRS = (("a shiny red apple", "a red apple"), ("red health potion", "red potion"),
                 ("yellow garden hoe", "yellow hoe"), ("gold helmet for my character", "gold helmet"),
                 ("a red sword with a scope, sci-fi", "a red sword"), ("一块普通的石头", "一块石头"),
                 ("透明玻璃", "玻璃"), ("一把紫色的枪", "一把紫色的"))


def colour_words_only(prompt: str) -> str:
    """The builtin encoder's normaliser before the prompt reader: colour synonyms to caption colour words."""
    words = sorted(COLOR_SYNONYMS, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b", re.IGNORECASE)
    return pattern.sub(lambda m: COLOR_SYNONYMS[m.group(0).lower()], prompt)


def main(path: str = "eval/prompts_natural.jsonl", seeds: int = 4) -> None:
    torch.set_num_threads(1)
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    generate = model_generator(load_model(default_model_path()))
    reader = text.normalize_prompt
    for label, normalise in (("colour words only", colour_words_only), ("prompt reader", reader)):
        text.normalize_prompt = normalise  # what BuiltinTextEncoder.tokenize calls
        for lang in sorted({row.get("lang", "") for row in rows}):
            specs = [PromptSpec(r["prompt"], r.get("color"), r.get("kind"), r.get("shape"))
                     for r in rows if r.get("lang", "") == lang]
            start = time.time()
            metrics = evaluate(generate, specs, seeds=seeds, seed=0)
            scores = ", ".join(f"{name} {value:.3f}" for name, value in metrics.items())
            print(f"{label:18} {lang or '-':3} {len(specs):3} prompts x {seeds} seeds ({time.time() - start:.0f} s): "
                  f"{scores}", flush=True)
    text.normalize_prompt = reader


def without_unknown_words(prompt: str) -> str:
    """The reader's text with its unknown words (and a 的 right after one) taken out."""
    reading = read_prompt(prompt)
    out = reading.text
    for word in reading.unknown:
        out = out.replace(word + "的", " ").replace(word, " ")
    return " ".join(out.split()).strip(" ,") or reading.text


def unknown_words(path: str = "eval/prompts_natural.jsonl", seeds: int = 8) -> None:
    """Same seeds, with and without the unknown words: how many pixels, colours and kinds change."""
    torch.set_num_threads(1)
    generate = model_generator(load_model(default_model_path()))
    for with_unknown, without in UNKNOWN_PAIRS:
        a, b = generate(with_unknown, seeds, 0), generate(without, seeds, 0)
        changed = float((a != b).any(-1).mean())
        between_seeds = float((b[: seeds // 2] != b[seeds // 2:]).any(-1).mean())
        colour = sum(dominant_color(x) == dominant_color(y) for x, y in zip(a, b)) / seeds
        kind = sum(read_kind(x) == read_kind(y) for x, y in zip(a, b)) / seeds
        print(f"{with_unknown:34} vs {without:14} pixels changed {changed:.2f} (two seeds: {between_seeds:.2f}), "
              f"same colour {colour:.2f}, same kind {kind:.2f}", flush=True)
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    specs = [PromptSpec(r["prompt"], r.get("color"), r.get("kind"), r.get("shape"))
             for r in rows if read_prompt(r["prompt"]).unknown]
    reader = text.normalize_prompt
    for label, normalise in (("as read", reader), ("unknown words dropped", without_unknown_words)):
        text.normalize_prompt = normalise
        metrics = evaluate(generate, specs, seeds=seeds, seed=0)
        print(f"{len(specs)} prompts with unknown words, {label}: colour adherence {metrics['color_adherence']:.3f}, "
              f"kind adherence {metrics['kind_adherence']:.3f}, shape adherence {metrics['shape_adherence']:.3f}",
              flush=True)
    text.normalize_prompt = reader


if __name__ == "__main__":
    if sys.argv[1:2] == ["unknown"]:
        unknown_words(*sys.argv[2:3])
    else:
        main(*sys.argv[1:2], *map(int, sys.argv[2:3]))

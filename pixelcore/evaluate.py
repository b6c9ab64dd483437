"""Evaluation on a prompt set: per-sample quality metrics and sample grids.

A prompt set is JSON lines with ``prompt`` and optional ``color`` (a colour word) and ``kind`` ("item" or
"block"). Metrics, each averaged over samples (several seeds per prompt):

- colour adherence: the texture's dominant colour matches the prompt's colour word (prompts with a colour);
- kind adherence: items have a transparent background (>= 10% transparent pixels), blocks are fully opaque;
- unique colours: distinct opaque colours per texture;
- isolated pixels: share of opaque pixels whose four neighbours all have another colour (speckle);
- diversity: mean share of pixels that differ between two seeds of the same prompt;
- copy rate: share of samples identical to a training texture (when training data is given);
- shape adherence: the silhouette is read as the prompt's ``shape`` class (prompts with a ``shape``,
  :mod:`pixelcore.shapes`), overall and per language.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

from .colors import (COLOR_NAMES, ITEM_MIN_TRANSPARENT, color_matches, dominant_color, normalize_color,
                     transparent_share)
from .images import save_grid
from .palette import ALPHA_THRESHOLD
from .sampling import SamplerConfig, encode_prompt, sample
from .shapes import classify, is_chinese, normalize_shape, shape_metrics

log = logging.getLogger(__name__)


@dataclass
class PromptSpec:
    prompt: str
    color: str | None = None
    kind: str | None = None
    shape: str | None = None


def load_prompts(path: str | Path) -> list[PromptSpec]:
    """Reads a JSON-lines prompt set; raises ValueError naming the line for malformed input."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: prompt file not found")
    specs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            spec = PromptSpec(row["prompt"], row.get("color"), row.get("kind"), row.get("shape"))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path}:{number}: expected a JSON object with a 'prompt' ({err})") from err
        problem = _spec_problem(spec)
        if problem:
            raise ValueError(f"{path}:{number}: {problem}")
        specs.append(spec)
    if not specs:
        raise ValueError(f"{path}: no prompts in the file")
    return specs


def _spec_problem(spec: PromptSpec) -> str | None:
    """What is wrong with a prompt-set row, or None: caught on load, not after sampling every prompt."""
    if not isinstance(spec.prompt, str) or not spec.prompt.strip():
        return f"'prompt' must be a non-empty string, got {spec.prompt!r}"
    if spec.color is not None and (not isinstance(spec.color, str) or normalize_color(spec.color) is None):
        return f"unknown 'color' {spec.color!r}: use one of {', '.join(COLOR_NAMES)}"
    if spec.kind not in (None, "item", "block"):
        return f"unknown 'kind' {spec.kind!r}: use 'item' or 'block'"
    if spec.shape is not None and normalize_shape(spec.shape) is None:
        return f"unknown 'shape' {spec.shape!r}: see pixelcore.shapes.SHAPE_CLASSES"
    return None


def kind_matches(rgba: np.ndarray, kind: str) -> bool:
    transparent = transparent_share(rgba)
    if kind == "item":
        return transparent >= ITEM_MIN_TRANSPARENT
    if kind == "block":
        return transparent == 0.0
    raise ValueError(f"unknown kind {kind!r}: use 'item' or 'block'")


def read_kind(rgba: np.ndarray) -> str:
    """"item", "block", or "neither" (a few transparent pixels: too many for a block, too few for an item)."""
    return "item" if kind_matches(rgba, "item") else "block" if kind_matches(rgba, "block") else "neither"


def unique_colors(rgba: np.ndarray) -> int:
    opaque = rgba[rgba[..., 3] >= ALPHA_THRESHOLD][:, :3]
    return len(np.unique(opaque, axis=0)) if len(opaque) else 0


def isolated_share(rgba: np.ndarray) -> float:
    """Share of opaque pixels that differ from all four neighbours (edges compare inside the tile only)."""
    key = rgba.astype(np.int64) @ np.array([1 << 24, 1 << 16, 1 << 8, 1])  # one integer per RGBA colour
    key = np.where(rgba[..., 3] >= ALPHA_THRESHOLD, key, -1)
    padded = np.pad(key, 1, constant_values=-2)
    center = padded[1:-1, 1:-1]
    same = np.zeros_like(center, dtype=bool)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        same |= padded[dy:dy + center.shape[0], dx:dx + center.shape[1]] == center
    opaque = key >= 0
    return float((~same & opaque).sum() / max(1, opaque.sum()))


def diversity(samples: Sequence[np.ndarray]) -> float:
    """Mean share of differing pixels over all pairs of samples (0 = all identical)."""
    pairs = list(combinations(samples, 2))
    if not pairs:
        return 0.0
    return float(np.mean([(a != b).any(-1).mean() for a, b in pairs]))


def copy_rate(samples: np.ndarray, training: np.ndarray) -> float:
    """Share of samples (N, H, W, 4) pixel-identical to some training texture (M, H, W, 4)."""
    if len(samples) == 0:
        return 0.0
    known = {_canonical(t).tobytes() for t in training}
    return float(np.mean([_canonical(s).tobytes() in known for s in samples]))


def copy_references(training: np.ndarray, palette) -> np.ndarray:
    """Training textures (M, H, W, 4) as given and as a model with ``palette`` draws them, for :func:`copy_rate`.

    A model can only emit palette colours, so a memorised texture comes out quantized. Few real textures use
    only palette colours, so against the originals alone a memorised copy would not count.
    """
    quantized = palette.dequantize(palette.quantize(training)).cpu().numpy()
    return np.concatenate([np.asarray(training, np.uint8), quantized])


def _canonical(rgba: np.ndarray) -> np.ndarray:
    """Transparent pixels compare equal whatever RGB they carry."""
    out = rgba.copy()
    out[out[..., 3] < ALPHA_THRESHOLD] = 0
    return out


def score_samples(specs: Sequence[PromptSpec], samples: np.ndarray, training: np.ndarray | None = None
                  ) -> dict[str, float]:
    """Metrics for samples (P, S, H, W, 4): S seeds for each of the P prompts."""
    return _score(per_prompt(specs, samples), samples, training)


def _score(rows: Sequence[dict], samples: np.ndarray, training: np.ndarray | None) -> dict[str, float]:
    """Metrics from the :func:`per_prompt` rows of samples (P, S, H, W, 4): each texture is read once."""
    color_hits = [color_matches(f, r["color"]) for r in rows if r["color"] for f in r["found_colors"]]
    kind_hits = [k == r["kind"] for r in rows if r["kind"] for k in r["found_kinds"]]
    items = [group for r, group in zip(rows, samples) if r["kind"] == "item"]
    flat = samples.reshape(-1, *samples.shape[2:])
    metrics = {
        "color_adherence": float(np.mean(color_hits)) if color_hits else float("nan"),
        "kind_adherence": float(np.mean(kind_hits)) if kind_hits else float("nan"),
        "unique_colors": float(np.mean([unique_colors(t) for t in flat])),
        "isolated_pixels": float(np.mean([isolated_share(t) for t in flat])),
        "diversity": float(np.mean([diversity(list(g)) for g in samples])),
        # How empty the cut-outs are: the transparent share of the samples for item prompts (a sampler that
        # decides the background first leaves items sparse; real Luanti items are 0.602 transparent).
        "item_transparency": transparent_share(np.stack(items)) if items else float("nan"),
    }
    if training is not None:
        metrics["copy_rate"] = copy_rate(flat, training)
    metrics.update(shape_metrics(rows))
    metrics.update(per_language(rows))
    return metrics


def per_language(rows: Sequence[dict]) -> dict[str, float]:
    """Colour and kind adherence per prompt language (``color_adherence_en``, ``kind_adherence_zh`` ...), when
    the set has prompts in both English and Chinese; {} otherwise. (``shape_metrics`` splits shape the same way.)
    """
    langs = {"_zh" if is_chinese(r["prompt"]) else "_en" for r in rows}
    if len(langs) < 2:
        return {}
    out = {}
    for lang in sorted(langs):
        mine = [r for r in rows if ("_zh" if is_chinese(r["prompt"]) else "_en") == lang]
        color = [color_matches(f, r["color"]) for r in mine if r["color"] for f in r["found_colors"]]
        kind = [k == r["kind"] for r in mine if r["kind"] for k in r["found_kinds"]]
        if color:
            out[f"color_adherence{lang}"] = float(np.mean(color))
        if kind:
            out[f"kind_adherence{lang}"] = float(np.mean(kind))
    return out


Generator = Callable[[str, int, int], np.ndarray]  # (prompt, n, seed) -> (n, H, W, 4) uint8


def model_generator(model, config: SamplerConfig | None = None) -> Generator:
    """Adapts a PixelModel to the ``Generator`` signature evaluation uses (``SamplerConfig()`` when None)."""
    config = (config or SamplerConfig()).validate()

    def generate(prompt: str, n: int, seed: int) -> np.ndarray:
        cond = encode_prompt(model, prompt)
        tokens = sample(model, cond, config, batch_size=n, generator=torch.Generator().manual_seed(seed))
        return model.palette.dequantize(tokens).cpu().numpy()

    return generate


def per_prompt(specs: Sequence[PromptSpec], samples: np.ndarray) -> list[dict]:
    """One row per prompt of samples (P, S, H, W, 4): what each seed was read as, and the hit shares.

    This is where a failure shows: a mean adherence hides which prompt misses and how.
    """
    rows = []
    for spec, group in zip(specs, samples):
        colors = [dominant_color(rgba) for rgba in group]
        kinds = [read_kind(rgba) for rgba in group]
        row = {"prompt": spec.prompt, "color": spec.color, "kind": spec.kind, "found_colors": colors,
               "found_kinds": kinds}
        if spec.color:
            row["color_adherence"] = float(np.mean([color_matches(f, spec.color) for f in colors]))
        if spec.kind:
            row["kind_adherence"] = float(np.mean([k == spec.kind for k in kinds]))
        if spec.shape:
            row["shape"], row["found_shapes"] = normalize_shape(spec.shape), classify(group)
            row["shape_adherence"] = float(np.mean([f == row["shape"] for f in row["found_shapes"]]))
        rows.append(row)
    return rows


def evaluate(generate: Generator, specs: Sequence[PromptSpec], seeds: int = 4, seed: int = 0,
             training: np.ndarray | None = None, grid_path: str | Path | None = None,
             details: list | None = None) -> dict[str, float]:
    """Samples ``seeds`` textures per prompt, scores them and optionally writes a grid (a row per prompt).

    ``details``, when given, is extended with the :func:`per_prompt` rows.
    """
    samples = np.stack([generate(spec.prompt, seeds, seed + i) for i, spec in enumerate(specs)])
    if grid_path is not None:
        save_grid(samples.reshape(-1, *samples.shape[2:]), grid_path, cols=seeds)
    rows = per_prompt(specs, samples)
    if details is not None:
        details.extend(rows)
    return _score(rows, samples, training)


def format_metrics(metrics: dict[str, float]) -> str:
    return "\n".join(f"{name:>16}: {value:.3f}" for name, value in metrics.items())


def format_per_prompt(rows: Sequence[dict]) -> str:
    """A line per prompt: what its samples were read as, most frequent first; misses are marked with ``!``."""
    def counts(values: Sequence[str | None]) -> str:
        return ", ".join(f"{value or '-'} {n}" for value, n in Counter(values).most_common())

    lines = []
    for row in rows:
        flag = "!" if min(row.get("color_adherence", 1.0), row.get("kind_adherence", 1.0)) < 1.0 else " "
        lines.append(f"{flag} {row['prompt'][:28]:<28} {str(row['color'] or '-'):>7}: {counts(row['found_colors'])}"
                     f" | {str(row['kind'] or '-'):>5}: {counts(row['found_kinds'])}")
    return "\n".join(lines)

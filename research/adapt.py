"""How well a model draws a texture pack it was not trained on: the measure of a quick fine-tune.

A user's own pack is split as training splits it (``holdout`` share, ``seed``): the fine-tune sees the rest,
and every model compared here is asked for the held-out textures by their captions. The scores are

- the distribution metric of the design study (FD/KID in the feature space of a small net trained on the
  pack's training split, :mod:`.features`) between those samples and the held-out originals, with the
  pack's own training textures and noise as the reference points;
- colour and kind adherence to the held-out textures' computed colour words and kinds, and the copy rate
  against the training split;
- colour and kind adherence on the public prompts, to show what the fine-tune forgot.

Usage (after ``python -m pixelcore train --data PACK --holdout 0.1 --init-from default ...``)::

    python -m research adapt --pack PACK --out runs/adapt default runs/mine/model.safetensors
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from pixelcore.checkpoint import load_model, resolve_model_path
from pixelcore.evaluate import PromptSpec, copy_references, evaluate, load_prompts, model_generator, score_samples
from pixelcore.images import save_grid
from pixelcore.dataset import TrainingSet
from . import features as feat
from .config import ExperimentConfig
from .runner import heldout_prompts, prepare_features, training_split

log = logging.getLogger(__name__)


def score_model(config: ExperimentConfig, split: TrainingSet, model_path: str, public_prompts: str,
                seeds: int = 4) -> dict:
    """Scores one model on the pack's held-out textures and on the public prompts; writes grids to config.out.

    Args:
        config: Pack (``data``), output folder, held-out share and seed; must match the fine-tune's split.
        split: :func:`training_split` of ``config`` (the same for every model).
        model_path: A release ``.safetensors``, or "default" for the shipped model.
        public_prompts: The public prompt set (forgetting check).
        seeds: Samples per public prompt.
    """
    path = resolve_model_path(model_path)
    model = load_model(path)
    generate = model_generator(model)
    prompts = heldout_prompts(split.held_out)
    real = np.stack([r.pixels for r in split.held_out])
    generated = np.stack([generate(p, 1, config.seed + i)[0] for i, p in enumerate(prompts)])  # seeds as eval
    net = feat.load_feature_net(Path(config.out) / "features.safetensors")
    real_f, gen_f = feat.extract_features(net, real), feat.extract_features(net, generated)
    specs = [PromptSpec(p, r.color, r.kind) for p, r in zip(prompts, split.held_out)]
    training = copy_references(np.stack([r.pixels for r in split.records]), model.palette)
    pack = score_samples(specs, generated[:, None], training)
    public = evaluate(generate, load_prompts(public_prompts), seeds=seeds, seed=config.seed)
    tag = path.parent.name if path.name == "model.safetensors" else path.stem
    pairs = np.stack([real, generated], axis=1).reshape(-1, *real.shape[1:])  # real, generated, real, ...
    save_grid(pairs, Path(config.out) / f"{tag}_heldout.png", cols=16)
    return {
        "model": str(model_path),
        "fd": feat.frechet_distance(gen_f, real_f),
        "kid": feat.kernel_distance(gen_f, real_f),
        "pack_color_adherence": pack["color_adherence"],
        "pack_kind_adherence": pack["kind_adherence"],
        "pack_copy_rate": pack["copy_rate"],
        "public_color_adherence": public["color_adherence"],
        "public_kind_adherence": public["kind_adherence"],
        "grid": f"{tag}_heldout.png",
    }


def format_table(rows: list[dict], refs: dict) -> str:
    """Markdown table of :func:`score_model` rows with the reference distances under them."""
    lines = ["| model | FD ↓ | KID ↓ | pack colour adh. | pack kind adh. | pack copy rate | public colour "
             "| public kind |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['model']}` | {r['fd']:.2f} | {r['kid']:.3f} | {r['pack_color_adherence']:.3f} | "
                     f"{r['pack_kind_adherence']:.3f} | {r['pack_copy_rate']:.3f} | "
                     f"{r['public_color_adherence']:.3f} | {r['public_kind_adherence']:.3f} |")
    for name in ("real_train", "noise"):
        lines.append(f"| reference: {name.replace('_', ' ')} | {refs[name]['fd']:.2f} | {refs[name]['kid']:.3f} "
                     "| | | | | |")
    return "\n".join(lines)


def adapt_report(config: ExperimentConfig, models: list[str], public_prompts: str, seeds: int = 4) -> str:
    """Trains the pack's feature net (once), scores every model, writes ``adapt.json`` and returns the table."""
    missing = [m for m in models if m != "default" and not Path(m).is_file()]
    if missing:  # before the feature net's half minute of training
        raise ValueError(f"no such model file: {', '.join(missing)}")
    prepare_features(config)
    refs = json.loads((Path(config.out) / "references.json").read_text())
    split = training_split(config)
    rows = [score_model(config, split, m, public_prompts, seeds) for m in models]
    for row in rows:
        log.info("%s", row)
    (Path(config.out) / "adapt.json").write_text(json.dumps({"references": refs, "models": rows}, indent=2))
    return format_table(rows, refs)

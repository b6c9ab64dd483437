"""LoRA adapters measured: a new object class, a style set and a whole pack, with and without prior preservation.

Sets (all from Debian's famfamfam-silk, 1,000 16x16 icons by Mark James, CC BY 3.0):

- ``folder``: the 28 folder icons, a class the default model has never drawn. 12 (seeded) train an adapter
  with the new word "folder"; the other 16 are asked for by their captions and scored by silhouette IoU (the
  opaque pixels of the sample against those of the held-out icon), before and after.
- ``style``: 12 icons drawn (seeded) from the training split that research/adapt.py uses (holdout 0.1,
  seed 0), scored as the full fine-tune of research/reports/ADAPT.md was: FD/KID to the 100 held-out icons
  in the pack's feature space, pack colour and kind adherence.
- ``pack``: the same recipe on all 900 training icons, for the comparison with the full fine-tune.

Every run also scores forgetting: public-prompt colour and kind adherence (4 seeds) with the adapter at
strength 1. Base tokens with no adapter are checked to be unchanged by applying and removing one. Each run
writes ``<run>.json`` and is skipped when that file exists, so the study resumes.

Usage::

    OMP_NUM_THREADS=1 python -m research.lora_study --out runs/lora [--runs folder_prior folder_noprior ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from pixelcore.checkpoint import default_model_path, load_model
from pixelcore.data import load_textures
from pixelcore.evaluate import PromptSpec, evaluate, load_prompts, model_generator, score_samples
from pixelcore.images import save_grid
from pixelcore.lora import load_adapter
from pixelcore.lora_apply import apply_adapter, merged, remove_adapter
from pixelcore.lora_train import LoraTrainConfig, train_lora
from pixelcore.palette import ALPHA_THRESHOLD
from pixelcore.sampling import SamplerConfig, encode_prompt, sample
from . import features as feat
from .config import ExperimentConfig
from .runner import heldout_prompts, prepare_features, training_split

log = logging.getLogger("research.lora_study")

REPO = Path(__file__).resolve().parents[1]
SILK_DEB = "famfamfam-silk"
SILK_DIR = "usr/share/icons/silk/16x16"
PUBLIC = REPO / "eval" / "prompts_public.jsonl"
N_TRAIN = 12

# name: (set, trainer overrides)
RUNS = {
    "folder_prior": ("folder", {"words": ("folder",)}),
    "folder_prior_samples": ("folder", {"words": ("folder",), "prior_mode": "samples"}),
    "folder_noprior": ("folder", {"words": ("folder",), "prior": 0.0}),
    "folder_prior50": ("folder", {"words": ("folder",), "prior": 0.5}),
    "folder_prior50_samples": ("folder", {"words": ("folder",), "prior": 0.5, "prior_mode": "samples"}),
    "folder_r4": ("folder", {"words": ("folder",), "rank": 4, "alpha": 4.0}),
    "folder_r16": ("folder", {"words": ("folder",), "rank": 16, "alpha": 16.0}),
    "folder_lr1e-3": ("folder", {"words": ("folder",), "lr": 1e-3}),
    "folder_noword": ("folder", {}),
    "style_prior": ("style", {}),
    "style_prior_samples": ("style", {"prior_mode": "samples"}),
    "style_noprior": ("style", {"prior": 0.0}),
    "pack_prior": ("pack", {"steps": 100000, "batch_size": 32}),
}


def fetch_silk(out: Path) -> Path:
    """The 1,000 Silk icons in ``out/silk`` (from a .deb in /work/data/debs-extra or ``apt-get download``)."""
    target = out / "silk"
    if target.is_dir() and len(list(target.glob("*.png"))) >= 1000:
        return target
    debs = sorted(Path("/work/data/debs-extra").glob(f"{SILK_DEB}_*.deb"))
    with tempfile.TemporaryDirectory() as tmp:
        if not debs:
            subprocess.run(["apt-get", "download", SILK_DEB], cwd=tmp, check=True)
            debs = sorted(Path(tmp).glob(f"{SILK_DEB}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), tmp + "/x"], check=True)
        target.mkdir(parents=True, exist_ok=True)
        for png in Path(tmp, "x", SILK_DIR).glob("*.png"):
            shutil.copy(png, target / png.name)
    return target


def _copy(paths: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for p in paths:
        shutil.copy(p, folder / Path(p).name)
    return folder


def make_sets(out: Path, seed: int = 0) -> dict:
    """Writes the training folders and returns the held-out records of each set."""
    silk = fetch_silk(out)
    folders = sorted(silk.glob("folder*.png"))
    random.Random(seed).shuffle(folders)
    _copy(folders[:N_TRAIN], out / "sets" / "folder_train")
    _copy(folders[N_TRAIN:], out / "sets" / "folder_heldout")
    split = training_split(_pack_config(out))
    originals = [Path(r.source) for r in split.records if "#" not in r.source]
    _copy(random.Random(seed).sample(originals, N_TRAIN), out / "sets" / "style_train")
    _copy(originals, out / "sets" / "pack_train")
    return {"folder_heldout": load_textures(out / "sets" / "folder_heldout")[0], "pack": split}


def _pack_config(out: Path) -> ExperimentConfig:
    return ExperimentConfig(data=str(out / "silk"), out=str(out / "features"), holdout=0.1, seed=0,
                            feature_steps=2000)


def silhouette_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of the opaque pixels of two RGBA textures."""
    sa, sb = a[..., 3] >= ALPHA_THRESHOLD, b[..., 3] >= ALPHA_THRESHOLD
    union = (sa | sb).sum()
    return float((sa & sb).sum() / union) if union else 1.0


def score_folder(model, held_out) -> dict:
    generate = model_generator(model)
    prompts = heldout_prompts(held_out)
    samples = np.stack([generate(p, 1, i)[0] for i, p in enumerate(prompts)])
    ious = [silhouette_iou(s, r.pixels) for s, r in zip(samples, held_out)]
    specs = [PromptSpec(p, r.color, r.kind) for p, r in zip(prompts, held_out)]
    adherence = score_samples(specs, samples[:, None])
    return {"iou": float(np.mean(ious)), "iou_min": float(np.min(ious)),
            "set_color_adherence": adherence["color_adherence"], "set_kind_adherence": adherence["kind_adherence"],
            "prompts": prompts, "_samples": samples}


def score_pack(model, split, out: Path) -> dict:
    """FD/KID to the held-out Silk icons and pack adherence, as research/adapt.py scores a fine-tune."""
    config = _pack_config(out)
    prepare_features(config)
    net = feat.load_feature_net(Path(config.out) / "features.safetensors")
    generate = model_generator(model)
    prompts = heldout_prompts(split.held_out)
    generated = np.stack([generate(p, 1, config.seed + i)[0] for i, p in enumerate(prompts)])
    real = np.stack([r.pixels for r in split.held_out])
    real_f, gen_f = feat.extract_features(net, real), feat.extract_features(net, generated)
    specs = [PromptSpec(p, r.color, r.kind) for p, r in zip(prompts, split.held_out)]
    pack = score_samples(specs, generated[:, None])
    return {"fd": feat.frechet_distance(gen_f, real_f), "kid": feat.kernel_distance(gen_f, real_f),
            "set_color_adherence": pack["color_adherence"], "set_kind_adherence": pack["kind_adherence"],
            "_samples": generated}


def score_public(model) -> dict:
    metrics = evaluate(model_generator(model), load_prompts(PUBLIC), seeds=4, seed=0)
    return {"public_color": metrics["color_adherence"], "public_kind": metrics["kind_adherence"]}


def _pairs_grid(real: np.ndarray, generated: np.ndarray, path: Path, limit: int = 16) -> None:
    pairs = np.stack([real[:limit], generated[:limit]], axis=1).reshape(-1, *real.shape[1:])
    save_grid(pairs, path, cols=16)


def score(model, set_name: str, sets: dict, out: Path, tag: str) -> dict:
    if set_name == "folder":
        held = sets["folder_heldout"]
        row = score_folder(model, held)
    else:
        held = sets["pack"].held_out
        row = score_pack(model, sets["pack"], out)
    _pairs_grid(np.stack([r.pixels for r in held]), row.pop("_samples"), out / f"{tag}_heldout.png")
    row.update(score_public(model))
    return row


def sampling_speed(model, adapter_path: Path, repeats: int = 5) -> dict:
    """Images per second at batch 32 (8 prompts x 4) for the base, the adapter applied and merged: the three
    are timed in turn, ``repeats`` rounds, and each keeps its fastest round (a shared machine only slows)."""
    prompts = ["a red sword", "a yellow folder", "blue wool block", "a green gem", "a pink flower",
               "gray stone bricks", "a white feather", "a black gem"]
    adapter = load_adapter(adapter_path, model)
    fused = merged(model, [(adapter, 1.0)])
    applied_model = merged(model, [])  # a copy to apply the adapter to, so the three can alternate
    apply_adapter(applied_model, adapter, 1.0)
    models = {"base": model, "applied": applied_model, "merged": fused}
    best = {name: float("inf") for name in models}
    for i in range(repeats + 1):
        for name, m in models.items():
            cond = encode_prompt(m, prompts)
            start = time.perf_counter()
            sample(m, cond, batch_size=4, generator=torch.Generator().manual_seed(i))
            if i:  # the first round warms up
                best[name] = min(best[name], time.perf_counter() - start)
    fp32 = SamplerConfig(precision="fp32")  # the arithmetic compared, not bf16's rounding of it
    same = torch.equal(sample(fused, encode_prompt(fused, prompts), fp32, batch_size=4,
                              generator=torch.Generator().manual_seed(9)),
                       sample(applied_model, encode_prompt(applied_model, prompts), fp32, batch_size=4,
                              generator=torch.Generator().manual_seed(9)))
    return {**{f"{name}_img_s": len(prompts) * 4 / t for name, t in best.items()}, "applied_equals_merged": same}


def base_unchanged(model, adapter_path: Path) -> bool:
    """The public prompts' tokens with no adapter equal those after an adapter was applied and removed."""
    prompts = [s.prompt for s in load_prompts(PUBLIC)]

    def tokens():
        return sample(model, encode_prompt(model, prompts), batch_size=2, generator=torch.Generator().manual_seed(0))

    before = tokens()
    adapter = load_adapter(adapter_path, model)
    apply_adapter(model, adapter, 1.0)
    remove_adapter(model, adapter.name)
    return bool(torch.equal(before, tokens()))


PICTURE_PROMPTS = ("a yellow folder", "a red folder", "a blue folder", "一个绿色的folder", "a red sword",
                   "blue wool block")


def before_after_picture(adapter_path: Path, out: Path, seed: int = 0) -> Path:
    """The README picture: a row per prompt, 4 base-model textures then 4 with the adapter (same seeds)."""
    from pixelcore.lora_train import _samples, write_before_after

    model = load_model(default_model_path())
    before = _samples(model, list(PICTURE_PROMPTS), seed)
    adapter = load_adapter(adapter_path, model)
    after = _samples(merged(model, [(adapter, 1.0)]), list(PICTURE_PROMPTS), seed)
    return write_before_after(before, after, out)


def run_study(out: Path, runs: list[str], pack_minutes: float, minutes: float) -> dict:
    sets = make_sets(out)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    base = load_model(default_model_path())
    for set_name in ("folder", "style"):
        key = f"base_{set_name}"
        if key not in results and any(RUNS[r][0] == set_name or (set_name == "style" and RUNS[r][0] == "pack")
                                      for r in runs):
            log.info("scoring the base model on %s", set_name)
            results[key] = score(base, set_name, sets, out, key)
            results_path.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    for name in runs:
        if name in results:
            continue
        set_name, overrides = RUNS[name]
        data = out / "sets" / f"{set_name}_train"
        config = LoraTrainConfig(data=str(data), out=str(out / f"{name}.safetensors"), device="cpu",
                                 max_minutes=pack_minutes if set_name == "pack" else minutes)
        config = replace(config, **overrides)
        log.info("training %s: %s", name, overrides)
        wall, cpu = time.time(), time.process_time()
        trained = train_lora(config)
        wall, cpu = time.time() - wall, time.process_time() - cpu
        adapter = load_adapter(trained.path, base)
        apply_adapter(base, adapter, 1.0)
        row = score(base, "style" if set_name == "pack" else set_name, sets, out, name)
        remove_adapter(base, adapter.name)
        row.update(steps=trained.steps, train_minutes=trained.seconds / 60, train_cpu_minutes=trained.cpu_seconds / 60,
                   total_minutes=wall / 60, total_cpu_minutes=cpu / 60, replay=trained.replay,
                   loss_before=trained.loss_before, loss_after=trained.loss_after,
                   adapter_bytes=os.path.getsize(trained.path), threads=torch.get_num_threads(),
                   settings={k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()})
        results[name] = row
        log.info("%s: %s", name, {k: v for k, v in row.items() if k != "prompts"})
        results_path.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    first = next((out / f"{r}.safetensors" for r in runs if (out / f"{r}.safetensors").exists()), None)
    if first is not None and "speed" not in results:
        results["speed"] = sampling_speed(base, first)
        results["base_unchanged"] = base_unchanged(base, first)
        results_path.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return results


def _fmt(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def format_tables(results: dict) -> str:
    """Markdown tables of the study's results: one per set, then speed and the unchanged-base check."""
    lines = []
    for set_name, metric in (("folder", "iou"), ("style", "fd")):
        runs = [(f"base_{set_name}", results.get(f"base_{set_name}"))] + [
            (name, row) for name, row in results.items()
            if name in RUNS and RUNS[name][0] in ((set_name,) if set_name == "folder" else ("style", "pack"))]
        head = ("| run | silhouette IoU ↑ | min IoU |" if metric == "iou" else "| run | FD ↓ | KID ↓ |")
        lines += ["", head + " set colour | set kind | public colour | public kind | steps | wall min | CPU min | "
                  "replay | adapter KB |", "|" + "---|" * 12]
        for name, row in runs:
            if row is None:
                continue
            first = (_fmt(row.get("iou")), _fmt(row.get("iou_min"))) if metric == "iou" else (
                _fmt(row.get("fd"), 2), _fmt(row.get("kid")))
            size = row.get("adapter_bytes")
            lines.append(f"| {name} | {first[0]} | {first[1]} | {_fmt(row['set_color_adherence'])} | "
                         f"{_fmt(row['set_kind_adherence'])} | {_fmt(row['public_color'])} | "
                         f"{_fmt(row['public_kind'])} | {_fmt(row.get('steps'))} | "
                         f"{_fmt(row.get('train_minutes'), 1)} | {_fmt(row.get('train_cpu_minutes'), 1)} | "
                         f"{_fmt(row.get('replay'))} | {_fmt(size / 1024 if size else None, 0)} |")
    if "speed" in results:
        speed = results["speed"]
        lines += ["", "| sampling, batch 32, 1 thread | images/s |", "|---|---|"]
        lines += [f"| {k.replace('_img_s', '')} | {v:.1f} |" for k, v in speed.items() if k.endswith("_img_s")]
        lines += ["", f"applied and merged give the same tokens: {speed['applied_equals_merged']}; base tokens "
                  f"unchanged after an adapter was applied and removed: {results.get('base_unchanged')}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m research.lora_study", description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/lora")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--minutes", type=float, default=10.0, help="time budget of a 12-texture run")
    parser.add_argument("--pack-minutes", type=float, default=60.0, help="time budget of the whole-pack run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--table", action="store_true", help="print the tables of OUT/results.json and stop")
    parser.add_argument("--picture", nargs=2, metavar=("ADAPTER", "PNG"),
                        help="write the before/after picture of an adapter and stop")
    args = parser.parse_args(argv)
    if args.picture:
        torch.set_num_threads(args.threads)
        print(before_after_picture(Path(args.picture[0]), Path(args.picture[1])))
        return 0
    if args.table:
        print(format_tables(json.loads((Path(args.out) / "results.json").read_text())))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    results = run_study(Path(args.out), args.runs, args.pack_minutes, args.minutes)
    print(json.dumps({k: {m: v for m, v in r.items() if m != "prompts"} if isinstance(r, dict) else r
                      for k, r in results.items()}, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

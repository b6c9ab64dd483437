"""Trains, evaluates and times every system of the design study under one shared budget.

Layout of an experiment directory::

    features.safetensors      the texture feature net of the distribution metric (seeded, training split only)
    references.json           FD/KID of real training textures and of noise against the held-out set; under
                              "halves", those and the real held-out textures scored half against half
    <system>/model.safetensors
    <system>/metrics.json     per-sample metrics, copy rate, FD/KID, parameter count, training steps
    <system>/public.png, novel.png   sample grids (a row per prompt)
    speed.json                images/s at batch 1 and 32, all systems timed in one process

Every system step reads only the shared files above, so systems can train in parallel processes
(``run --only NAME``, or ``run --jobs N`` which starts them); ``speed`` and ``table`` run after them.
"""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from pixelcore.bench import count_flops, timed
from pixelcore.captions import english_caption
from pixelcore.checkpoint import load_model
from pixelcore.evaluate import PromptSpec, copy_references, load_prompts, score_samples
from pixelcore.files import atomic_write
from pixelcore.images import save_grid
from pixelcore.palette import Palette
from pixelcore.sampling import encode_prompt, sample
from pixelcore.dataset import prepare_data
from pixelcore.train import train
from pixelcore.train_config import TrainConfig
from . import features as feat
from .ar import load_ar, sample_ar, train_ar
from .config import SYSTEMS, ExperimentConfig
from .cost import longest_first
from .diffusion import load_diffusion, sample_diffusion, train_diffusion
from .retrieval import load_retrieval, train_retrieval

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]  # the checkout: research runs only from one


def training_split(config: ExperimentConfig):
    """Training records (augmented) and held-out originals, exactly as every system's training split them."""
    cheap = Palette.from_colors(np.array([[0, 0, 0]], np.uint8))  # skips palette fitting; tokens unused here
    return prepare_data(
        TrainConfig(data=config.data, seed=config.seed, holdout=config.holdout), palette=cheap
    )


def write_json(path: Path, value: dict) -> None:
    """Writes ``value`` as JSON atomically: a reader, or a ``run --jobs`` child writing the same file, never sees
    half of it."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def heldout_prompts(records) -> list[str]:
    """One English caption per held-out texture, from the same templates training draws from (seeded)."""
    return [english_caption(r.name, r.color, r.kind, random.Random(i)) for i, r in enumerate(records)]


def prepare_features(config: ExperimentConfig, force: bool = False) -> Path:
    """Trains the feature net once and records the reference distances (``reference_distances``)."""
    out = Path(config.out)
    path = out / "features.safetensors"
    if path.exists() and (out / "references.json").exists() and not force:
        return path
    split = training_split(config)
    if not split.held_out:
        raise ValueError("the distribution metric needs held-out textures: set holdout > 0")
    net = feat.train_feature_net(
        split.records, path, steps=config.feature_steps, seed=config.seed, device=config.device
    )
    refs = reference_distances(config, net, split)
    refs["feature_scale"] = net.feature_scale
    write_json(out / "references.json", refs)
    log.info("feature net and references written to %s: %s", out, refs)
    return path


def reference_distances(config: ExperimentConfig, net, split) -> dict:
    """FD/KID of the references against the held-out textures: the full-set distances of as many random
    real training textures and of noise, and, under "halves", the same two and the real held-out textures
    themselves scored by ``features.halves_distances``."""
    real_f = feat.extract_features(net, np.stack([r.pixels for r in split.held_out]))
    n = len(real_f)
    originals = [r for r in split.records if "#hue" not in r.source]
    rng = np.random.default_rng(config.seed)
    subset = [originals[i] for i in rng.choice(len(originals), min(n, len(originals)), replace=False)]
    split_ok = n >= feat.MIN_HALVES
    refs: dict = {"halves": {"real_heldout": feat.halves_distances(real_f, real_f, seed=config.seed)}
                  if split_ok else {}}
    for name, images in (
        ("real_train", np.stack([r.pixels for r in subset])),
        ("noise", feat.noise_textures(n, config.seed)),
    ):
        f = feat.extract_features(net, images)
        refs[name] = {"fd": feat.frechet_distance(f, real_f), "kid": feat.kernel_distance(f, real_f)}
        if split_ok:
            refs["halves"][name] = feat.halves_distances(f, real_f, seed=config.seed)
    refs["n_heldout"] = n
    return refs


def _add_halves_references(config: ExperimentConfig, net, split) -> None:
    """Adds the "halves" references to a references.json written before they existed (same net, same seed)."""
    path = Path(config.out) / "references.json"
    refs = json.loads(path.read_text()) if path.exists() else {}
    if "halves" not in refs:
        write_json(path, {**refs, "halves": reference_distances(config, net, split)["halves"]})


BatchGenerator = Callable[[list[str], int, int], np.ndarray]  # (prompts, n, seed) -> (P, n, G, G, 4)


def load_system(config: ExperimentConfig, name: str) -> tuple[BatchGenerator, int]:
    """A batched generator for a trained system and its parameter count."""
    kind = SYSTEMS[name].kind
    path = Path(config.out) / name / "model.safetensors"
    device = torch.device(config.device)
    if kind == "retrieval":
        model = load_retrieval(path, device)
        return (lambda prompts, n, seed: model.retrieve(prompts, n)), sum(
            p.numel() for p in model.parameters()
        )
    if kind == "diffusion":
        denoiser = load_diffusion(path, device)

        def denoise(prompts: list[str], n: int, seed: int) -> np.ndarray:
            rgba = sample_diffusion(denoiser, prompts, batch_size=n, steps=config.diffusion_steps,
                                    cfg_scale=config.cfg_scale, guidance_schedule=config.guidance_schedule,
                                    generator=torch.Generator().manual_seed(seed))
            return rgba.numpy().reshape(len(prompts), n, *rgba.shape[1:])

        return denoise, denoiser.num_params()
    temperature = {"temperature": config.temperature} if config.temperature > 0 else {}
    if kind == "ar":
        model = load_ar(path, device)

        def generate(prompts: list[str], n: int, seed: int) -> np.ndarray:
            tokens = sample_ar(
                model,
                prompts,
                batch_size=n,
                cfg_scale=config.cfg_scale,
                guidance_schedule=config.guidance_schedule,
                generator=torch.Generator().manual_seed(seed),
                **temperature,
            )
            return (
                model.palette.dequantize(tokens).cpu().numpy().reshape(len(prompts), n, *tokens.shape[1:], 4)
            )

        return generate, model.num_params()
    model = load_model(path, device)

    sampler = config.sampler()

    def generate(prompts: list[str], n: int, seed: int) -> np.ndarray:
        tokens = sample(model, encode_prompt(model, prompts), sampler, batch_size=n,
                        generator=torch.Generator().manual_seed(seed))
        return model.palette.dequantize(tokens).cpu().numpy().reshape(len(prompts), n, *tokens.shape[1:], 4)

    return generate, model.num_params()


def system_palette(config: ExperimentConfig, name: str) -> Palette:
    """The palette a trained generator draws from (not retrieval's: it returns the textures themselves)."""
    loaders = {"maskgit": load_model, "ar": load_ar, "diffusion": load_diffusion}
    return loaders[SYSTEMS[name].kind](Path(config.out) / name / "model.safetensors").palette


def sample_in_chunks(
    generate: BatchGenerator, prompts: list[str], n: int, seed: int, chunk: int = 64
) -> np.ndarray:
    """``n`` textures per prompt, (len(prompts), n, 16, 16, 4), generated ``chunk`` prompts at a time (seeded
    per chunk)."""
    return np.concatenate(
        [generate(prompts[i : i + chunk], n, seed + i) for i in range(0, len(prompts), chunk)]
    )


def train_system(config: ExperimentConfig, name: str) -> Path:
    tc = config.train_config(name)
    kind = SYSTEMS[name].kind
    start = time.time()
    trainers = {"maskgit": train, "ar": train_ar, "diffusion": train_diffusion, "retrieval": train_retrieval}
    path = trainers[kind](tc)
    log.info("%s trained in %.1f min", name, (time.time() - start) / 60)
    return path


def evaluate_system(config: ExperimentConfig, name: str) -> dict:
    """Scores one trained system on both prompt sets and on the held-out captions; writes metrics.json."""
    out = Path(config.out) / name
    generate, n_params = load_system(config, name)
    split = training_split(config)
    training = np.stack([r.pixels for r in split.records])
    kind = SYSTEMS[name].kind
    if kind != "retrieval":  # retrieval returns the textures themselves; the others draw them quantized
        training = copy_references(training, system_palette(config, name))
    metrics: dict = {"system": name, "label": SYSTEMS[name].label, "params": n_params}
    if kind != "retrieval":  # a re-score may use other settings than the run: each system records its own
        metrics["sampling"] = {"cfg_scale": config.cfg_scale, "temperature": config.temperature,
                               "guidance_schedule": config.guidance_schedule,
                               "randomness": config.randomness if kind == "maskgit" else None,
                               "transparency_delay": config.transparency_delay if kind == "maskgit" else None,
                               "steps": {"maskgit": config.sample_steps,
                                         "diffusion": config.diffusion_steps}.get(kind)}
    S = config.seeds_per_prompt
    for set_name, prompt_path in (("public", config.public_prompts), ("novel", config.novel_prompts)):
        specs: list[PromptSpec] = load_prompts(prompt_path)
        samples = sample_in_chunks(generate, [s.prompt for s in specs], S, config.seed)
        save_grid(samples.reshape(-1, *samples.shape[2:]), out / f"{set_name}.png", cols=S)
        scores = score_samples(specs, samples, training if set_name == "novel" else None)
        metrics.update({f"{set_name}_{k}": v for k, v in scores.items()})
    net = feat.load_feature_net(Path(config.out) / "features.safetensors")
    real = np.stack([r.pixels for r in split.held_out])
    generated = sample_in_chunks(generate, heldout_prompts(split.held_out), 1, config.seed)[:, 0]
    real_f, gen_f = feat.extract_features(net, real), feat.extract_features(net, generated)
    halves = (feat.halves_distances(gen_f, real_f, seed=config.seed) if len(real_f) >= feat.MIN_HALVES
              else {"fd": float("nan"), "kid": float("nan")})
    _add_halves_references(config, net, split)
    metrics.update(
        {
            "fd": feat.frechet_distance(gen_f, real_f),
            "kid": feat.kernel_distance(gen_f, real_f),
            "fd_halves": halves["fd"],
            "kid_halves": halves["kid"],
            "heldout_copy_rate": float(
                score_samples([PromptSpec("x")], generated[None], training)["copy_rate"]
            ),
        }
    )
    progress = Path(config.out) / name / "progress.json"  # MaskGIT's training record
    if progress.exists():
        metrics["train_steps"] = json.loads(progress.read_text()).get("step")
    else:
        from safetensors import safe_open

        with safe_open(str(out / "model.safetensors"), framework="pt") as f:
            metrics["train_steps"] = json.loads((f.metadata() or {}).get("training", "{}")).get("step")
    write_json(out / "metrics.json", metrics)
    log.info("%s: %s", name, {k: round(v, 3) if isinstance(v, float) else v for k, v in metrics.items()})
    return metrics


def measure_speed(config: ExperimentConfig, names: list[str] | None = None) -> dict:
    """Images/s at batch 1 and 32 for every trained system, in this one process; writes speed.json.

    MaskGIT systems sample with ``sample_steps`` rounds, the diffusion baseline with ``diffusion_steps`` Euler
    steps, the AR baseline with its key/value cache (and, at batch 1, without it for reference); all with
    classifier-free guidance at ``cfg_scale``. ``mflop`` is the
    work of one image at batch 1 (``count_flops``), which bounds what throughput can gain once a device is
    saturated.
    """
    device = torch.device(config.device)
    prompt = "a blue diamond sword"
    results: dict = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "sample_steps": config.sample_steps,
        "diffusion_steps": config.diffusion_steps,
        "systems": {},
    }
    for name in names or list(SYSTEMS):
        path = Path(config.out) / name / "model.safetensors"
        if not path.exists():
            continue
        row = {}
        if SYSTEMS[name].kind == "ar":
            model = load_ar(path, device)
            for batch in (1, 32):
                seconds = timed(
                    lambda b=batch: sample_ar(
                        model,
                        prompt,
                        batch_size=b,
                        cfg_scale=config.cfg_scale,
                        generator=torch.Generator().manual_seed(0),
                    ),
                    config.speed_repeats,
                    device,
                )
                row[f"batch{batch}"] = batch / seconds
            seconds = timed(
                lambda: sample_ar(
                    model,
                    prompt,
                    cfg_scale=config.cfg_scale,
                    use_cache=False,
                    generator=torch.Generator().manual_seed(0),
                ),
                1,
                device,
            )
            row["batch1_nocache"] = 1 / seconds
            row["mflop"] = count_flops(lambda: sample_ar(model, prompt, cfg_scale=config.cfg_scale,
                                                         generator=torch.Generator().manual_seed(0))) / 1e6
        else:
            generate, _ = load_system(config, name)
            for batch in (1, 32):
                seconds = timed(lambda b=batch: generate([prompt], b, 0), config.speed_repeats, device)
                row[f"batch{batch}"] = batch / seconds
            if SYSTEMS[name].kind in ("maskgit", "diffusion"):
                row["mflop"] = count_flops(lambda: generate([prompt], 1, 0)) / 1e6
        results["systems"][name] = row
        log.info("speed %s: %s", name, {k: round(v, 1) for k, v in row.items()})
    write_json(Path(config.out) / "speed.json", results)
    return results


def _child_command(config: ExperimentConfig, name: str, threads: int) -> list[str]:
    args = [
        sys.executable,
        "-m",
        "research",
        "run",
        "--only",
        name,
        "--no-speed",
        "--threads",
        str(threads),
    ]
    for key, value in asdict(config).items():
        if key == "quick":
            args += ["--quick"] if value else []
        else:
            args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def run(
    config: ExperimentConfig,
    only: list[str] | None = None,
    jobs: int = 1,
    retrain: bool = False,
    speed: bool = True,
    train_missing: bool = True,
) -> None:
    """Trains (unless a checkpoint exists), evaluates and times the systems in ``only`` (default: all)."""
    config = config.resolved()
    names = only or list(SYSTEMS)
    unknown = [n for n in names if n not in SYSTEMS]
    if unknown:
        raise ValueError(f"unknown systems {unknown}: choose from {', '.join(SYSTEMS)}")
    Path(config.out).mkdir(parents=True, exist_ok=True)
    write_json(Path(config.out) / "experiment_config.json", asdict(config))
    prepare_features(config)
    if jobs > 1 and len(names) > 1:
        threads = max(1, (os.cpu_count() or 1) // min(jobs, len(names)))
        pending, running = longest_first(config, names), []
        while pending or running:
            while pending and len(running) < jobs:
                name = pending.pop(0)
                command = _child_command(config, name, threads) + (["--retrain"] if retrain else [])
                log_file = open(Path(config.out) / f"{name}.log", "w")  # noqa: SIM115 - closed when it ends
                running.append(
                    (
                        name,
                        subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO),
                        log_file,
                    )
                )
            time.sleep(1.0)
            for item in list(running):
                if item[1].poll() is not None:
                    running.remove(item)
                    item[2].close()
                    if item[1].returncode:
                        log.error("%s failed (exit %d); see %s.log", item[0], item[1].returncode, item[0])
    else:
        for name in names:
            if retrain or not (Path(config.out) / name / "model.safetensors").exists():
                if not train_missing:
                    raise ValueError(f"{name}: no checkpoint in {config.out}; run it first")
                train_system(config, name)
            evaluate_system(config, name)
    if speed:
        measure_speed(config, names)

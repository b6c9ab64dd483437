"""Quality and speed against the number of sequential steps: MaskGIT's rounds, the diffusion baseline's Euler
steps. The study scores every system at one step count; a fair speed comparison takes each at the fewest
steps that keep its quality, so this scores a trained run's systems at several.

Each step count is scored as ``evaluate_system`` scores a system (public prompts: colour and kind adherence,
speckle; held-out captions: FD, KID, FD½ and the copy rate against the training textures) and timed as
``measure_speed`` times it (batch 1 and 32 in this process, and the work of one texture).

``python -m research steps --out RUN --only no_tv diffusion --steps 5 10 20 40`` writes ``RUN/steps.json`` (a
later call adds its step counts to it) and prints its table.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from pixelcore.bench import count_flops, timed
from pixelcore.evaluate import PromptSpec, copy_references, load_prompts, score_samples
from . import features as feat
from .config import SYSTEMS, ExperimentConfig
from .runner import heldout_prompts, load_system, sample_in_chunks, system_palette, training_split, write_json

log = logging.getLogger(__name__)

STEP_FIELDS = {"maskgit": "sample_steps", "diffusion": "diffusion_steps"}  # the ExperimentConfig field per kind
PROMPT = "a blue diamond sword"  # the prompt ``measure_speed`` times


def steps_sweep(config: ExperimentConfig, names: list[str], steps: list[int]) -> Path:
    """Scores and times each system of ``names`` at each step count of ``steps``; writes ``steps.json``.

    Raises:
        ValueError: for a system without a step count (AR, retrieval), a missing checkpoint or feature net, or
            a step count under 1.
    """
    config = config.resolved()
    out = Path(config.out)
    if not steps or min(steps) < 1:
        raise ValueError(f"step counts must be 1 or more, got {steps}")
    for name in names:
        if SYSTEMS[name].kind not in STEP_FIELDS:
            raise ValueError(f"{name} has no step count to vary: choose MaskGIT or diffusion systems")
        if not (out / name / "model.safetensors").exists():
            raise ValueError(f"{name}: no checkpoint in {out}; train it with `python -m research run --out {out} "
                             f"--only {name}` first")
    if not (out / "features.safetensors").exists():
        raise ValueError(f"{out}: no feature net; run `python -m research features` first")
    net = feat.load_feature_net(out / "features.safetensors")
    split = training_split(config)
    real_f = feat.extract_features(net, np.stack([r.pixels for r in split.held_out]))
    captions = heldout_prompts(split.held_out)
    specs = load_prompts(config.public_prompts)
    training = np.stack([r.pixels for r in split.records])
    references = {name: copy_references(training, system_palette(config, name)) for name in names}
    device = torch.device(config.device)
    header = {"device": str(device), "threads": torch.get_num_threads(), "seed": config.seed,
              "cfg_scale": config.cfg_scale, "guidance_schedule": config.guidance_schedule,
              "temperature": config.temperature}
    path = out / "steps.json"
    result = json.loads(path.read_text()) if path.exists() else {**header, "systems": {}}
    differs = [k for k in header if k != "threads" and result.get(k) != header[k]]
    if differs:  # rows scored another way cannot sit in one table
        raise ValueError(f"{path} was scored with other {', '.join(differs)}: use the same settings to add to it, "
                         "or move it away")
    for name in names:
        field = STEP_FIELDS[SYSTEMS[name].kind]
        rows = {r["steps"]: r for r in result["systems"].get(name, [])}  # a new count adds a row, a known one
        for count in steps:  # replaces it
            generate, params = load_system(replace(config, **{field: count}), name)
            public = score_samples(specs, sample_in_chunks(generate, [s.prompt for s in specs],
                                                           config.seeds_per_prompt, config.seed))
            generated = sample_in_chunks(generate, captions, 1, config.seed)[:, 0]
            gen_f = feat.extract_features(net, generated)
            halves = (feat.halves_distances(gen_f, real_f, seed=config.seed) if len(real_f) >= feat.MIN_HALVES
                      else {"fd": float("nan"), "kid": float("nan")})
            row = {"steps": count, "params": params,
                   **{f"public_{k}": v for k, v in public.items()},
                   "fd": feat.frechet_distance(gen_f, real_f), "kid": feat.kernel_distance(gen_f, real_f),
                   "fd_halves": halves["fd"], "kid_halves": halves["kid"],
                   "heldout_copy_rate": score_samples([PromptSpec("x")], generated[None],
                                                      references[name])["copy_rate"],
                   "batch1": 1 / timed(lambda: generate([PROMPT], 1, 0), config.speed_repeats, device),
                   "batch32": 32 / timed(lambda: generate([PROMPT], 32, 0), config.speed_repeats, device),
                   "mflop": count_flops(lambda: generate([PROMPT], 1, 0)) / 1e6}
            rows[count] = row
            log.info("%s at %d steps: %s", name, count, {k: round(v, 3) for k, v in row.items()
                                                         if isinstance(v, float)})
            result["systems"][name] = [rows[k] for k in sorted(rows)]
            write_json(path, result)  # after every count: an interrupted sweep keeps what it scored
    return path


def render_steps(path: str | Path) -> str:
    """A markdown table of a ``steps.json``: a row per system and step count."""
    result = json.loads(Path(path).read_text())
    lines = [f"Step counts on `{result['device']}` with {result['threads']} torch thread(s); guidance "
             f"{result['cfg_scale']} {result['guidance_schedule']}, temperature {result['temperature']}.", "",
             "| system | steps | colour adh. ↑ | kind adh. ↑ | isolated px ↓ | FD ↓ | FD½ ↓ | KID ↓ | copy rate "
             "(held-out) ↓ | img/s b1 | img/s b32 | MFLOP/img |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows in result["systems"].items():
        for r in rows:
            lines.append(f"| `{name}` | {r['steps']} | {r['public_color_adherence']:.3f} | "
                         f"{r['public_kind_adherence']:.3f} | {r['public_isolated_pixels']:.3f} | {r['fd']:.2f} | "
                         f"{r['fd_halves']:.2f} | {r['kid']:.3f} | {r['heldout_copy_rate']:.3f} | "
                         f"{r['batch1']:.1f} | {r['batch32']:.1f} | {r['mflop']:.0f} |")
    return "\n".join(lines)

"""Sampler sweep: a trained run's systems scored over a grid of sampling settings.

The design study scores every system at one shared sampler setting, so it compares networks. A user gets
each system at its best setting, so this module asks how far each one moves when its own sampler is tuned:
guidance scale, guidance schedule, and, for MaskGIT, the randomness and the transparency delay that decide
which cells each round keeps. Every setting is scored on the run's held-out captions (FD and KID against the
held-out textures, in the run's feature space) and on the public prompts (colour and kind adherence), each
averaged over a few sampling seeds so that one draw's luck does not pick the winner.

A setting chosen for its FD on one run's held-out set would be credited with its own selection luck, so
``render_sweep`` checks each run with the setting picked on the other runs (other seeds: another split,
feature net, initialisation and batches), leaving one run out at a time.

``python -m research sweep --out RUN --only no_tv ar`` (writes ``RUN/sweep.json``), then
``python -m research sweep-table --runs RUN1 RUN2 ... --out research/reports/quick/SAMPLER.md``.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pixelcore.evaluate import load_prompts, score_samples
from pixelcore.sampling import GUIDANCE_SCHEDULES, MAX_CFG, MAX_RANDOMNESS, MAX_TRANSPARENCY_DELAY
from . import features as feat
from .config import SYSTEMS, ExperimentConfig
from .runner import heldout_prompts, load_system, sample_in_chunks, training_split, write_json
from .notes import page_notes
from .table import fmt, run_command

log = logging.getLogger(__name__)

METRICS = (  # key, label, True where higher is better
    ("fd", "FD", False),
    ("kid", "KID", False),
    ("color_adherence", "colour", True),
    ("kind_adherence", "kind", True),
)
# Seeds of the repeats: the first is the study's own (the run's seed), the others are offset from it.
SEED_STRIDE = 1000


def _repeats(n: int) -> str:
    return "once, with the run's own sampling seed" if n == 1 else f"{n} times with other sampling seeds and averaged"


def settings_grid(kind: str, cfg_scales: list[float], schedules: list[str], randomness: list[float],
                  transparency_delays: list[float] = (0.0,)) -> list[dict]:
    """Every combination of the given values that applies to a system of ``kind`` (AR has no randomness and
    no transparency delay: it keeps every cell it draws)."""
    unknown = [s for s in schedules if s not in GUIDANCE_SCHEDULES]
    if unknown:
        raise ValueError(f"unknown guidance schedules {unknown}: use {', '.join(GUIDANCE_SCHEDULES)}")
    if not cfg_scales or not schedules or (kind == "maskgit" and not (randomness and transparency_delays)):
        raise ValueError("give at least one value for each swept setting")
    if not all(0.0 <= float(c) <= MAX_CFG for c in cfg_scales):
        raise ValueError(f"guidance scales must be in 0..{MAX_CFG:g}, got {cfg_scales}")
    if kind == "maskgit" and not all(0.0 <= float(r) <= MAX_RANDOMNESS for r in randomness):
        raise ValueError(f"randomness values must be in 0..{MAX_RANDOMNESS:g}, got {randomness}")
    if kind == "maskgit" and not all(0.0 <= float(d) <= MAX_TRANSPARENCY_DELAY for d in transparency_delays):
        raise ValueError(f"transparency delays must be in 0..{MAX_TRANSPARENCY_DELAY:g}, got {transparency_delays}")
    if kind != "maskgit":
        return [{"cfg_scale": float(c), "guidance_schedule": s} for c, s in itertools.product(cfg_scales, schedules)]
    return [{"cfg_scale": float(c), "guidance_schedule": s, "randomness": float(r), "transparency_delay": float(d)}
            for c, s, r, d in itertools.product(cfg_scales, schedules, randomness, transparency_delays)]


def sweep_run(config: ExperimentConfig, names: list[str], cfg_scales: list[float], schedules: list[str],
              randomness: list[float], repeats: int = 3, skip_scored: bool = False,
              transparency_delays: list[float] = (0.0,)) -> Path:
    """Scores each trained system of ``names`` at every setting of the grid into ``<out>/sweep.json``, adding
    to the settings already there (a setting scored again replaces its row, unless ``skip_scored``: then it
    keeps its row and costs nothing, so a wider grid can follow a narrow one, or resume an interrupted sweep).

    Raises:
        ValueError: for a retrieval system (it has no sampler), a missing checkpoint or feature net, an
            unknown schedule, fewer than one repeat, or a sweep.json scored with other repeats, seed,
            temperature or rounds.
    """
    config = config.resolved()
    out = Path(config.out)
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for name in names:
        if SYSTEMS[name].kind == "retrieval":
            raise ValueError(f"{name} has no sampler to sweep: choose MaskGIT or AR systems")
        if not (out / name / "model.safetensors").exists():
            raise ValueError(f"{name}: no checkpoint in {out}; train it with `python -m research "
                             f"run --out {out} --only {name}` first")
    if not (out / "features.safetensors").exists():
        raise ValueError(f"{out}: no feature net; run `python -m research features` first")
    grids = {name: settings_grid(SYSTEMS[name].kind, cfg_scales, schedules, randomness, transparency_delays)
             for name in names}
    net = feat.load_feature_net(out / "features.safetensors")
    split = training_split(config)
    real_f = feat.extract_features(net, np.stack([r.pixels for r in split.held_out]))
    captions = heldout_prompts(split.held_out)
    specs = load_prompts(config.public_prompts)
    path = out / "sweep.json"
    header = {"temperature": config.temperature, "sample_steps": config.sample_steps, "repeats": repeats,
              "seed": config.seed, "n_heldout": len(captions)}
    result = json.loads(path.read_text()) if path.exists() else {**header, "systems": {}}
    differs = [k for k, v in header.items() if result.get(k) != v]
    if differs:  # rows scored another way cannot sit in one grid
        raise ValueError(f"{path} was swept with other {', '.join(differs)}: sweep with the same settings to add "
                         "to it, or move it away to start a new sweep")
    systems = result["systems"]
    for name, grid in grids.items():
        rows = {_key(r): r for r in systems.get(name, [])}  # a new setting adds a row, a known one replaces it
        for setting in tqdm(grid, desc=f"sweep {name}", unit="setting"):
            if skip_scored and _key(setting) in rows:
                continue
            generate, _ = load_system(replace(config, **setting), name)
            start, scores = time.perf_counter(), {key: [] for key, _, _ in METRICS}
            for k in range(repeats):
                seed = config.seed + k * SEED_STRIDE
                generated = sample_in_chunks(generate, captions, 1, seed)[:, 0]
                gen_f = feat.extract_features(net, generated)
                scores["fd"].append(feat.frechet_distance(gen_f, real_f))
                scores["kid"].append(feat.kernel_distance(gen_f, real_f))
                public = score_samples(specs, sample_in_chunks(generate, [s.prompt for s in specs],
                                                         config.seeds_per_prompt, seed))
                scores["color_adherence"].append(public["color_adherence"])
                scores["kind_adherence"].append(public["kind_adherence"])
            row = {**setting, **{k: float(np.mean(v)) for k, v in scores.items()}, "per_repeat": scores,
                   "seconds": time.perf_counter() - start}
            rows[_key(row)] = row
            log.info("%s %s: %s", name, setting, {k: round(row[k], 3) for k in scores})
            systems[name] = sorted(rows.values(), key=lambda r: tuple(x or 0.0 for x in _key(r)))
            write_json(path, result)  # after every setting: an interrupted sweep keeps what it scored
    return path


def _key(row: dict) -> tuple:
    """(guidance, schedule, randomness, transparency delay); the last two None for AR. A MaskGIT row scored
    before the transparency delay existed was scored with none (0)."""
    if row.get("randomness") is None:
        return row["cfg_scale"], row["guidance_schedule"], None, None
    return row["cfg_scale"], row["guidance_schedule"], row["randomness"], row.get("transparency_delay", 0.0)


def _describe(row: dict) -> str:
    _, _, randomness, delay = _key(row)
    text = f"guidance {row['cfg_scale']:g} {row['guidance_schedule']}"
    text += f", randomness {randomness:g}" if randomness is not None else ""
    return text + (f", transparency delay {delay:g}" if delay else "")


def pick_setting(tables: list[dict[tuple, dict]]) -> tuple:
    """The setting with the best mean FD rank over ``tables`` (one {setting: row} per run); ties go to the
    lower mean FD. Ranks, not FDs, are averaged: each run has its own feature space and scale."""
    keys = sorted(tables[0], key=str)
    ranks = {k: 0.0 for k in keys}
    for table in tables:
        for rank, key in enumerate(sorted(keys, key=lambda k: table[k]["fd"])):
            ranks[key] += rank / len(tables)
    return min(keys, key=lambda k: (ranks[k], float(np.mean([t[k]["fd"] for t in tables]))))


def render_sweep(runs: list[str | Path], out: str | Path, notes: str | Path | None = None,
                 baseline: dict | None = None) -> Path:
    """Writes the sweep report. Each run is a check run in turn: each system's setting is picked on the other
    runs (``pick_setting``) and read off the check run beside the study's shared setting (``baseline``,
    default: the study's defaults). Hand-written notes go above the comparison: those already in the page are
    kept; a ``notes`` markdown file replaces them (``notes.page_notes``).

    Raises:
        ValueError: for a run with no sweep.json, runs that swept other systems, settings or repeats, runs
            that share a seed, fewer than two runs, or a missing notes file.
    """
    kept_notes = page_notes(out, notes)
    runs = [Path(r) for r in runs]
    if len(runs) < 2:
        raise ValueError("a sweep report needs at least two runs: the others pick the settings, one checks them")
    data = []
    for run in runs:
        path = run / "sweep.json"
        if not path.exists():
            raise ValueError(f"{run}: no sweep.json; run `python -m research sweep --out {run}` first")
        data.append(json.loads(path.read_text()))
    first = data[0]
    for run, d in zip(runs[1:], data[1:]):
        for key in ("temperature", "sample_steps", "repeats"):
            if d.get(key) != first.get(key):
                raise ValueError(f"{run} swept with {key} {d.get(key)}, {runs[0]} with {first.get(key)}")
        for name, rows in first["systems"].items():
            if sorted(map(_key, d["systems"].get(name, [])), key=str) != sorted(map(_key, rows), key=str):
                raise ValueError(f"{run} did not sweep {name} over the settings of {runs[0]}")
    seeds = [d["seed"] for d in data]
    if len(set(seeds)) < len(seeds):
        raise ValueError(f"the runs share a seed ({seeds}): replicates need different --seed values")
    defaults = ExperimentConfig()
    base = baseline or {"cfg_scale": defaults.cfg_scale, "guidance_schedule": defaults.guidance_schedule,
                        "randomness": defaults.randomness, "transparency_delay": defaults.transparency_delay}
    names = list(first["systems"])
    tables = [{name: {_key(r): r for r in d["systems"][name]} for name in names} for d in data]
    # picks[i][name]: the setting picked on every run but i
    picks = [{n: pick_setting([t[n] for j, t in enumerate(tables) if j != i]) for n in names}
             for i in range(len(runs))]
    shared = {n: _key(_with_base(first["systems"][n][0], base)) for n in names}
    parts = [
        "# Sampler sweep: each system at its own best setting",
        "",
        f"Runs: {', '.join(f'`{r.as_posix()}` (seed {s})' for r, s in zip(runs, seeds))}. Temperature "
        f"{first['temperature']}, {first['sample_steps']} MaskGIT rounds. Each setting is scored "
        f"{_repeats(first['repeats'])}: FD and KID of one texture per "
        f"held-out caption ({first['n_heldout']} on the first run) against the held-out textures, in the run's "
        "own feature space; colour and kind adherence on the public prompts. Each run is checked in turn "
        "with the setting picked on the **other** runs (best mean FD rank there), so no number below is the "
        "run's own selection luck; the study's shared setting is in brackets.",
        "",
        kept_notes,
        "## Every run, at the setting picked on the others",
        "",
        "| check run | system | picked setting | " + " | ".join(label for _, label, _ in METRICS) + " |",
        "|---|---|---|" + "---|" * len(METRICS),
    ]
    for seed, table, pick in zip(seeds, tables, picks):
        for n in names:
            row, at_shared = table[n][pick[n]], table[n].get(shared[n])
            cells = [f"{fmt(row[k])} ({fmt(at_shared[k]) if at_shared else '–'})" for k, _, _ in METRICS]
            parts.append(f"| seed {seed} | `{n}` | {_describe(row)} | " + " | ".join(cells) + " |")
    parts += ["", "Lowest FD of each run's own grid (in-sample: what a pick on that run alone would take):", ""]
    for seed, table in zip(seeds, tables):
        best = {n: min(table[n].values(), key=lambda r: r["fd"]) for n in names}
        parts.append(f"- seed {seed}: " + "; ".join(f"`{n}` {_describe(b)} (FD {b['fd']:.3f})"
                                                     for n, b in best.items()))
    parts += ["", "## Wins of each pair over the check runs (settings picked on the other runs)", ""]
    for a, b in itertools.combinations(names, 2):
        for key, label, higher in METRICS:
            diffs = [t[a][p[a]][key] - t[b][p[b]][key] for t, p in zip(tables, picks)]
            won = sum(d > 0 if higher else d < 0 for d in diffs)
            parts.append(f"- `{a}` vs `{b}`, {label}: `{a}` better in {won} of {len(diffs)} check runs "
                         f"(mean difference {np.mean(diffs):+.3f})")
    parts += ["", "## The whole grid", "",
              "FD on each run (the rank of the setting on that run in brackets); colour and kind averaged over runs.",
              ""]
    for n in names:
        parts += [f"### `{n}`", "",
                  "| setting | " + " | ".join(f"FD seed {s}" for s in seeds) + " | colour | kind |",
                  "|---|" + "---|" * (len(seeds) + 2)]
        ranks = [{k: i + 1 for i, k in enumerate(sorted(t[n], key=lambda k: t[n][k]["fd"]))} for t in tables]
        for key in sorted(tables[0][n], key=lambda k: float(np.mean([r[k] for r in ranks]))):
            rows = [t[n][key] for t in tables]
            parts.append(f"| {_describe(rows[0])} | "
                         + " | ".join(f"{r['fd']:.2f} ({rk[key]})" for r, rk in zip(rows, ranks))
                         + f" | {np.mean([r['color_adherence'] for r in rows]):.3f}"
                         + f" | {np.mean([r['kind_adherence'] for r in rows]):.3f} |")
        parts.append("")
    parts += ["## Regenerating this file", "", "```bash"]
    grid = _grid_flags(first)
    for run, d in zip(runs, data):
        saved = run / "experiment_config.json"
        config = json.loads(saved.read_text()) if saved.exists() else {}
        parts.append(run_command(config, run.as_posix()) + f" --only {' '.join(names)} --no-speed")
        parts.append(f"python -m research sweep --out {run.as_posix()}"
                     f"{' --quick' if config.get('quick') else ''} --seed {d['seed']} --only {' '.join(names)}"
                     f" {grid}")
    parts += [f"python -m research sweep-table --runs {' '.join(r.as_posix() for r in runs)} "
              f"--out {Path(out).as_posix()}", "```", ""]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out


def _with_base(row: dict, base: dict) -> dict:
    """The shared setting in the shape of ``row`` (randomness and transparency delay only where the row has a
    randomness: MaskGIT's)."""
    keys = ("cfg_scale", "guidance_schedule")
    keys += ("randomness", "transparency_delay") if row.get("randomness") is not None else ()
    return {k: base[k] if k != "transparency_delay" else base.get(k, 0.0) for k in keys}  # a baseline may omit it


def _grid_flags(sweep: dict) -> str:
    rows = [r for rows in sweep["systems"].values() for r in rows]
    cfg = sorted({r["cfg_scale"] for r in rows})
    schedules = sorted({r["guidance_schedule"] for r in rows})
    randomness = sorted({r["randomness"] for r in rows if r.get("randomness") is not None})
    delays = sorted({_key(r)[3] for r in rows if r.get("randomness") is not None})
    return (f"--cfg-scales {' '.join(f'{c:g}' for c in cfg)} --guidance-schedules {' '.join(schedules)}"
            + (f" --randomness-values {' '.join(f'{r:g}' for r in randomness)}" if randomness else "")
            + (f" --transparency-delays {' '.join(f'{d:g}' for d in delays)}" if any(delays) else "")
            + f" --repeats {sweep['repeats']}")

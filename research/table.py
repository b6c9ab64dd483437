"""Renders an experiment directory as ``research/reports/RESULTS.md``: one table of every system x every metric, the
reference distances, sample grids, the findings the numbers support, and the commands that regenerate it."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import asdict, fields
from pathlib import Path

from pixelcore.sampling import SamplerConfig

from .config import SYSTEMS, ExperimentConfig
from .notes import page_notes

# (metrics.json key, column title, better: "high", "low" or "" for no direction)
COLUMNS = (
    ("public_color_adherence", "colour adh. ↑", "high"),
    ("public_kind_adherence", "kind adh. ↑", "high"),
    ("public_unique_colors", "unique colours", ""),
    ("public_isolated_pixels", "isolated px ↓", "low"),
    ("public_diversity", "diversity ↑", "high"),
    ("novel_color_adherence", "novel colour adh. ↑", "high"),
    ("novel_copy_rate", "copy rate (novel) ↓", "low"),
    ("fd", "FD ↓", "low"),
    ("kid", "KID ↓", "low"),
    ("fd_halves", "FD½ ↓", "low"),
    ("kid_halves", "KID½ ↓", "low"),
)
# The baselines MaskGIT is compared with in the findings: (system, short name, long name).
BASELINES = (("ar", "AR", "AR baseline (with KV cache)"), ("diffusion", "diffusion", "diffusion baseline"))
# Distances that repeat FD/KID on another protocol: shown, but not counted again in the ablation verdicts.
REPEATED_DISTANCES = frozenset({"fd_halves", "kid_halves"})
# The reference rows: (references.json key, label); a reference fills the distance columns it has.
REFERENCES = (
    ("real_heldout", "reference: real held-out textures (other half)"),
    ("real_train", "reference: real training textures"),
    ("noise", "reference: noise"),
)

COMMANDS = """\
```bash
# everything: feature net, 7 systems (one after another), evaluation, speed, then the table
python -m research run --out runs/experiments [--quick] [--device cuda] [--minutes-per-system M]
# the same with the systems trained side by side (each child gets cpu_count / jobs threads)
python -m research run --out runs/experiments --jobs 7 [--device cuda]
# or by hand, one process per system, then speed (one process: comparable timings) and the table
python -m research features --out runs/experiments
python -m research run --out runs/experiments --only maskgit --no-speed   # ... one per system
python -m research eval --out runs/experiments [--only ar]   # re-score existing checkpoints
python -m research speed --out runs/experiments
python -m research table --runs runs/experiments --out research/reports/RESULTS.md   # keeps the page's notes
# replicates: the same study with other seeds (each its own --out), summarised with mean ± sd and win counts
python -m research run --out runs/experiments_seed1 --seed 1 [--quick] ...
python -m research replicates --runs runs/experiments runs/experiments_seed1 ... --out REPLICATES.md
```"""

METHOD = """\
## How each number is computed

- **Prompt sets.** Per-sample metrics use the public prompts (`prompts_public.jsonl`, 4 seeds each); the
  copy rate and "novel colour adh." use `eval/prompts_novel.jsonl` (new colour/object combinations).
- **colour / kind adherence, unique colours, isolated px, diversity, copy rate**: as defined in
  `pixelcore.evaluate.score_samples`. Copy rate = share of samples pixel-identical to a training texture
  (hue-shifted copies included, as the models saw them).
- **FD / KID** (`research/features.py`): a fixed share of real textures (`--holdout`, default
  10%, seeded) is held out of every system's training. Each system generates one texture per held-out
  texture, from an English caption of it (same templates as training). Both sets go through a small CNN
  trained once per experiment directory on the training split only (classifies kind, dominant colour word
  and name group; input premultiplied RGB + alpha; 64-wide features standardised on the training
  set; seeded; `features.safetensors`). FD is the Fréchet distance between Gaussians fitted to the two
  feature sets (as FID; biased up for small sets, so compare only at equal set size); KID is the unbiased
  MMD² with the kernel `(x·y/64 + 1)³`, averaged over 50 random subsets of at most 100 (can be slightly
  negative when the sets match). References: "real training textures" is as many real *training* textures
  as there are held-out ones, drawn at random (not matched to the captions); "noise" is uniform RGB noise
  with a random cut-out alpha. A sound metric puts real far below noise.
- **FD½ / KID½** (`features.halves_distances`): FD and KID against the full held-out set cannot score the
  real held-out textures themselves (they are the reference), and a system that copies caption-matched
  training textures can beat a random real sample there. So the held-out set is also cut in random halves
  A and B (20 seeded splits, averaged): a system's textures for B's captions are compared with A's real
  textures, and the real textures of B are scored the same way. That reference row is what a system
  matching the held-out distribution reaches (KID½ about 0; FD½ is its small-set bias, about 70 textures a
  side). Retrieval's copies should score worse than it. A run scored without FD½ / KID½ has no
  such columns.
- **images/s**: `sample` / `sample_ar` with classifier-free guidance, all systems timed one after another
  in one process on the same machine (device and thread count above), mean of repeats after a warm-up.
  MaskGIT runs its default number of rounds; the AR baseline decodes 256 positions with a key/value cache
  (its batch-1 speed without the cache is given above the table).
- **MFLOP/img** (`runner.count_flops`): the matrix products and convolutions, attention included, of sampling
  one image at batch 1 with guidance, counted by `torch.utils.flop_counter`; softmax, norms and sampling are
  not counted. A run timed without the count has no such column.
"""


def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


# The ExperimentConfig fields a system's sampling record holds, in the order of ``scored_sampling``'s tuple.
SAMPLING_KEYS = ("cfg_scale", "temperature", "guidance_schedule", "randomness", "transparency_delay")


def scored_sampling(metrics: dict[str, dict], config: dict, where: str | Path = "run") -> tuple:
    """(guidance, temperature, guidance schedule, MaskGIT randomness, MaskGIT transparency delay) the systems
    were scored with: each system's own record (a re-score with ``eval`` may change them), else the run's
    settings (runs scored before systems recorded them). The last two are MaskGIT's alone (None in a run
    without MaskGIT); a record written before the transparency delay existed was scored with none (0).

    Raises:
        ValueError: if the systems were scored with different settings.
    """
    # Runs written before these keys existed sampled at guidance 3 and each sampler's own temperature, with
    # constant guidance and the sampler's default randomness.
    old_defaults = (3.0, 0.0, "constant", SamplerConfig.randomness, 0.0)
    run_setting = {k: config.get(k, v) for k, v in zip(SAMPLING_KEYS, old_defaults)}
    shared, choice = set(), set()
    for name, m in metrics.items():
        kind = SYSTEMS[name].kind if name in SYSTEMS else None
        if kind == "retrieval":
            continue
        setting = {**run_setting, **m["sampling"]} if "sampling" in m else run_setting
        shared.add((setting["cfg_scale"], setting["temperature"], setting["guidance_schedule"]))
        if kind == "maskgit":
            choice.add((setting["randomness"], setting["transparency_delay"]))
    if len(shared) > 1 or len(choice) > 1:
        seen = [str(x) for x in sorted(shared)] + [f"MaskGIT randomness {r}, transparency delay {d}"
                                                   for r, d in sorted(choice)]
        raise ValueError(f"{where}: its systems were scored with different sampling settings {seen}; "
                         "re-score them together with `python -m research eval`")
    cfg_scale, temperature, schedule = shared.pop() if shared else (
        run_setting["cfg_scale"], run_setting["temperature"], run_setting["guidance_schedule"])
    return cfg_scale, temperature, schedule, *(choice.pop() if choice else (None, None))


def describe_sampling(sampling: tuple) -> str:
    """'guidance G, temperature T', plus the guidance schedule and MaskGIT's randomness and transparency delay
    where not the default."""
    cfg_scale, temperature, schedule, randomness, delay = sampling
    text = f"guidance {cfg_scale}, temperature {temperature or 'MaskGIT 0.7, AR 1.0 (each its own default)'}"
    if schedule != "constant":
        text += f", {schedule} guidance schedule"
    if randomness is not None and randomness != SamplerConfig.randomness:
        text += f", MaskGIT randomness {randomness}"
    if delay:
        text += f", MaskGIT transparency delay {delay}"
    return text


def sampling_settings(sampling: tuple) -> dict:
    """The ExperimentConfig fields of a ``scored_sampling`` tuple (MaskGIT's settings left out where None)."""
    return {k: v for k, v in zip(SAMPLING_KEYS, sampling) if v is not None}


def load_run(runs: Path) -> tuple[dict[str, dict], dict, dict, dict]:
    """An experiment directory's (metrics per system, references, speed, config); missing files read as {}."""
    metrics = {
        n: json.loads((runs / n / "metrics.json").read_text())
        for n in SYSTEMS
        if (runs / n / "metrics.json").exists()
    }

    def read(name: str) -> dict:
        return json.loads((runs / name).read_text()) if (runs / name).exists() else {}

    return metrics, read("references.json"), read("speed.json"), read("experiment_config.json")


def reference_values(refs: dict, ref: str) -> dict[str, float | None]:
    """A reference's distances by metrics.json key: full-set FD/KID and, under "halves", FD½/KID½."""
    full, half = refs.get(ref, {}), refs.get("halves", {}).get(ref, {})
    return {"fd": full.get("fd"), "kid": full.get("kid"), "fd_halves": half.get("fd"), "kid_halves": half.get("kid")}


def _findings(metrics: dict[str, dict], refs: dict, speed: dict) -> list[str]:
    """Plain statements the numbers support (or refute), generated so they never drift from the table."""
    lines = []
    fast = speed.get("systems", {})
    base = metrics.get("maskgit")
    for other, name, label in BASELINES:
        if "maskgit" in fast and other in fast:
            for batch in ("batch1", "batch32"):
                ratio = fast["maskgit"][batch] / fast[other][batch]
                verdict = "meets" if ratio >= 10 else "misses"
                lines.append(
                    f"Speed, {batch.replace('batch', 'batch ')}: MaskGIT is {ratio:.1f}x the {label} "
                    f"— {verdict} the 10x target."
                )
            if "mflop" in fast["maskgit"] and "mflop" in fast[other]:
                work = fast["maskgit"]["mflop"] / fast[other]["mflop"]
                lines.append(
                    f"Work per image at batch 1: MaskGIT {fast['maskgit']['mflop']:.1f} MFLOP, {name} "
                    f"{fast[other]['mflop']:.1f} MFLOP ({work:.2f}x). Where the device is saturated, throughput "
                    f"follows the work, so there MaskGIT can be at most about {1 / work:.1f}x as fast; its lead "
                    "beyond that comes from taking fewer sequential steps."
                )
        if base and other in metrics:
            for key, title, better in COLUMNS:
                if key in ("fd", "kid", "public_color_adherence", "public_kind_adherence"):
                    a, b = base.get(key), metrics[other].get(key)
                    if a is None or b is None:
                        continue
                    won = a > b if better == "high" else a < b
                    lines.append(
                        f"{title.rstrip(' ↑↓')}: MaskGIT {fmt(a)} vs {name} {fmt(b)} — "
                        f"{'MaskGIT better' if won else name + ' better or equal'}."
                    )
    if base and "novel_copy_rate" in base:
        rate = base["novel_copy_rate"]
        lines.append(
            f"Copy rate on novel prompts: MaskGIT {rate:.1%} "
            f"({'under' if rate < 0.10 else 'not under'} the 10% target); retrieval "
            f"{metrics.get('retrieval', {}).get('novel_copy_rate', float('nan')):.0%} by construction."
        )
    if refs and "noise" in refs and "real_train" in refs:
        ok = refs["real_train"]["fd"] < refs["noise"]["fd"]
        lines.append(
            f"Metric sanity: FD real-train {refs['real_train']['fd']:.2f} vs noise {refs['noise']['fd']:.2f}"
            f" — {'real ranked far above noise' if ok else 'METRIC FAILS: noise ranks above real'}."
        )
        if "retrieval" in metrics:
            r = metrics["retrieval"]["fd"]
            lines.append(
                f"Retrieval copies score FD {r:.2f} against real-train {refs['real_train']['fd']:.2f}: "
                + (
                    "real held-out-like textures ranked above copies."
                    if refs["real_train"]["fd"] < r
                    else "caption-matched copies beat a random real sample on the full set (FD½ compares "
                    "them with real held-out textures; the copy rate sees copying)."
                )
            )
    halves = refs.get("halves", {})
    if "real_heldout" in halves and "noise" in halves:
        real, noise = halves["real_heldout"]["fd"], halves["noise"]["fd"]
        line = f"Metric sanity, held-out halves: FD½ real held-out {real:.2f}, noise {noise:.2f}"
        ok = real < noise
        if "fd_halves" in metrics.get("retrieval", {}):
            copies = metrics["retrieval"]["fd_halves"]
            line += f", retrieval's copies {copies:.2f}"
            ok = ok and real < copies
        lines.append(line + (" — real ranked above the copies and far above noise." if ok
                             else " — METRIC FAILS: real held-out textures do not rank first."))
    if base:
        for name in ("no_weighting", "no_tv", "palette64", "no_2d"):
            if name not in metrics:
                continue
            m = metrics[name]
            changes = [(t.rstrip(" ↑↓"), improvement(m, base, k, b)) for k, t, b in COLUMNS
                       if b and k not in REPEATED_DISTANCES]
            worse = [title for title, sign in changes if sign < 0]
            better = [title for title, sign in changes if sign > 0]
            verdict = (
                "the design choice helps on most metrics"
                if len(worse) > len(better)
                else "**no evidence the design choice helps** at this budget"
            )
            lines.append(
                f"Ablation `{name}` vs `maskgit`: worse on {', '.join(worse) or 'nothing'}; better on "
                f"{', '.join(better) or 'nothing'} — {verdict}."
            )
    return lines


def improvement(metrics: dict, base: dict, key: str, better: str) -> int:
    """+1 if ``metrics[key]`` beats the default's value (higher or lower per ``better``), -1 if worse, else 0."""
    if key not in metrics or key not in base or math.isnan(metrics[key]) or math.isnan(base[key]):
        return 0
    diff = metrics[key] - base[key]
    sign = (diff > 0) - (diff < 0)
    return sign if better == "high" else -sign


# Settings that name this machine's paths, not the experiment.
_PATH_SETTINGS = ("data", "out", "public_prompts", "novel_prompts")


def run_command(config: dict, out: str = "runs/experiments") -> str:
    """The ``run`` command line that repeats an experiment into ``out``: the settings that differ from their
    defaults."""
    known = {f.name for f in fields(ExperimentConfig)}
    quick = bool(config.get("quick"))
    default = asdict(ExperimentConfig(quick=quick).resolved())
    flags = ["--quick"] if quick else []
    for key, value in config.items():
        if key in known and key not in _PATH_SETTINGS and key != "quick" and value != default[key]:
            flags.append(f"--{key.replace('_', '-')} {value}")
    return " ".join([f"python -m research run --out {out}", *flags])


def render(runs: str | Path, out: str | Path, notes: str | Path | None = None) -> Path:
    """Writes the markdown report for ``runs`` to ``out`` and copies the grids to ``<out dir>/results/``.

    Hand-written notes (what the grids show, caveats of the run) go above the findings: those already in the
    page are kept (see ``notes.page_notes``); a ``notes`` markdown file replaces them.

    Raises:
        ValueError: for a run directory with no scored system, or a missing notes file.
    """
    runs, out = Path(runs), Path(out)
    kept_notes = page_notes(out, notes)
    metrics, refs, speed, config = load_run(runs)
    if not metrics:
        raise ValueError(
            f"{runs}: no <system>/metrics.json yet; run `python -m research run` first"
        )
    grid_dir = out.parent / "results"
    grid_dir.mkdir(parents=True, exist_ok=True)
    fast = speed.get("systems", {})
    # A run scored before a metric existed has no values for it: leave its column out, not empty.
    columns = [c for c in COLUMNS if any(c[0] in m for m in metrics.values())]
    speed_keys = [("batch1", "img/s b1", 1), ("batch32", "img/s b32", 1), ("mflop", "MFLOP/img", 1)]
    speed_keys = [k for k in speed_keys if k[0] != "mflop" or any("mflop" in row for row in fast.values())]
    head = ["system", "params (M)", "train steps"] + [t for _, t, _ in columns] + [t for _, t, _ in speed_keys]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in metrics.items():
        s = fast.get(name, {})
        cells = [
            f"`{name}` ({m.get('label', '')})",
            fmt(m.get("params", 0) / 1e6, 2),
            fmt(m.get("train_steps")),
        ]
        cells += [fmt(m.get(key)) for key, _, _ in columns]
        cells += [fmt(s.get(key), digits) for key, _, digits in speed_keys]
        rows.append("| " + " | ".join(cells) + " |")
    for ref, label in REFERENCES:
        values = reference_values(refs, ref)
        if not any(values[key] is not None for key, _, _ in columns if key in values):
            continue
        cells = [label, "", ""] + ["" if key not in values else fmt(values[key]) for key, _, _ in columns]
        rows.append("| " + " | ".join(cells + [""] * len(speed_keys)) + " |")
    grids = []
    for name in metrics:
        for set_name in ("public", "novel"):
            src = runs / name / f"{set_name}.png"
            if src.exists():
                shutil.copyfile(src, grid_dir / f"{name}_{set_name}.png")
        grids.append(
            f"| `{name}` | ![{name} public](results/{name}_public.png) | "
            f"![{name} novel](results/{name}_novel.png) |"
        )
    sampling = scored_sampling(metrics, config, runs)
    config = {**config, **sampling_settings(sampling)}
    device = speed.get("gpu") or speed.get("device", "?")
    mode = "quick" if config.get("quick") else "full"
    parts = [
        "# Results: evidence for the design",
        "",
        f"Mode **{mode}**: preset `{config.get('preset')}`, {config.get('minutes_per_system')} min per "
        f"system (step cap {config.get('max_steps')}), batch {config.get('batch_size')}, device "
        f"`{config.get('device')}`, held-out share {config.get('holdout')}, seed {config.get('seed')}. "
        f"Sampling: {describe_sampling(sampling).replace(' (each its own default)', '')}. "
        f"Speed measured on `{device}` with "
        f"{speed.get('threads', '?')} torch threads, MaskGIT at {speed.get('sample_steps', '?')} rounds; "
        + (f"diffusion at {speed.get('diffusion_steps')} Euler steps; " if "diffusion" in fast else "")
        + f"AR with KV cache (batch 1 without cache: "
        f"{fmt(fast.get('ar', {}).get('batch1_nocache'), 2)} img/s). "
        f"{refs.get('n_heldout', '?')} held-out textures for FD/KID.",
        "",
        "\n".join(rows),
        "",
        kept_notes,
        "## Findings (generated from the numbers above)",
        "",
        "\n".join(f"- {line}" for line in _findings(metrics, refs, speed)) or "- (no comparisons available)",
        "",
        METHOD
        + (
            ""
            if "feature_scale" in refs
            else "\nThis run's feature file has no feature standardisation: its FD/KID are on a larger, "
            "arbitrary scale (FD rankings would be the same).\n"
        ),
        "## Sample grids (a row per prompt, 4 seeds)",
        "",
        "| system | public prompts | novel prompts |",
        "|---|---|---|",
        "\n".join(grids),
        "",
        "## Regenerating this file",
        "",
        "This table's settings (add `--jobs N` to train N systems side by side):",
        "",
        f"```bash\n{run_command(config, runs.as_posix())}\npython -m research table --runs "
        f"{runs.as_posix()} --out {out.as_posix()}\n```",
        "",
        "In general:",
        "",
        COMMANDS,
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out

"""Summarises replicates of the design study: the same experiment run again with other seeds, and scored at
one or more sampling settings, so that a verdict rests on more than one training run and one sampler.

A replicate's seed re-draws everything the study leaves to chance: the held-out split, the feature net, the
palette fit, the initialisation and the batches. Distances are only compared within a run (each has its own
held-out set and feature net); across runs this module reports each metric's mean and spread, and for each
pair of systems in how many runs one beat the other. Runs are grouped by the sampling they were scored with
(a copy of a run re-scored with ``eval --cfg-scale ... --temperature ...`` is its own entry). A design
choice is called helpful on a metric only where it won in every replicate.

``python -m research replicates --runs DIR DIR ... --out research/reports/quick/REPLICATES.md``
"""

from __future__ import annotations

import math
from pathlib import Path

from .config import SYSTEMS
from .notes import page_notes
from .table import (COLUMNS, REFERENCES, REPEATED_DISTANCES, describe_sampling, improvement, load_run,
                    reference_values, run_command, sampling_settings, scored_sampling)

# (system, what it is compared with, what a win of the first means): the ablations against the design as
# first built, and both MaskGIT designs (TV on, as first built; TV off, the default since) against AR.
PAIRS = (
    ("maskgit", "no_weighting", "loss weighting helps"),
    ("maskgit", "no_2d", "2D structure helps"),
    ("maskgit", "palette64", "the 256-entry palette helps"),
    ("maskgit", "no_tv", "the TV term helps"),
    ("maskgit", "ar", "MaskGIT (TV on) beats AR"),
    ("no_tv", "ar", "MaskGIT (TV off, the default) beats AR"),
)
# The settings replicates may not differ in: a summary over different budgets or models would mean nothing.
_SHARED = ("quick", "preset", "max_steps", "batch_size", "holdout", "sample_steps")


def load_replicates(runs: list[str | Path]) -> dict[tuple, list[dict]]:
    """Reads each run's config, references and metrics, grouped by the sampling they were scored with.

    Raises:
        ValueError: for a run with no metrics, runs that differ in budget, preset, split share or decoding
            rounds, or a sampling setting with fewer than two runs or two runs of one seed.
    """
    loaded = []
    for run in map(Path, runs):
        metrics, refs, _, config = load_run(run)
        if not metrics:
            raise ValueError(f"{run}: no <system>/metrics.json; run `python -m research run` first")
        loaded.append({"run": run, "config": config, "metrics": metrics, "refs": refs,
                       "sampling": scored_sampling(metrics, config, run)})
    for key in _SHARED:
        values = {str(r["config"].get(key)) for r in loaded}
        if len(values) > 1:
            raise ValueError(f"the runs differ in {key} ({', '.join(sorted(values))}): they are not replicates")
    groups: dict[tuple, list[dict]] = {}
    for r in loaded:
        groups.setdefault(r["sampling"], []).append(r)
    for sampling, group in groups.items():
        seeds = [r["config"].get("seed") for r in group]
        if len(group) < 2:
            raise ValueError(f"{describe_sampling(sampling)}: one run only; a replicate "
                             "summary needs at least two runs per sampling setting (the same experiment, other "
                             "--seed)")
        if len(set(seeds)) < len(seeds):
            raise ValueError(f"runs scored at {describe_sampling(sampling)} share a seed "
                             f"({seeds}): replicates need different --seed values")
    return groups


def _stats(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, sd


def _cell(values: list[float | None]) -> str:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return ""
    mean, sd = _stats(values)
    return f"{mean:.3f} ± {sd:.3f}" if len(values) > 1 else f"{mean:.3f}"


def wins(group: list[dict], a: str, b: str, key: str, better: str) -> tuple[int, int, int, float]:
    """(runs where ``a`` beat ``b`` on ``key``, runs where it lost, runs with both scored, mean of a - b)."""
    won, lost, diffs = 0, 0, []
    for r in group:
        first, second = r["metrics"].get(a, {}), r["metrics"].get(b, {})
        if not all(key in m and not math.isnan(m[key]) for m in (first, second)):
            continue
        diffs.append(first[key] - second[key])
        sign = improvement(first, second, key, better)
        won, lost = won + (sign > 0), lost + (sign < 0)
    return won, lost, len(diffs), (sum(diffs) / len(diffs) if diffs else float("nan"))


def _verdicts(groups: list[list[dict]], columns: list[tuple[str, str, str]]) -> list[str]:
    """One line per pair: the metrics where the first system won in every run of every group, lost in every
    one, tied in every one, or split."""
    lines = []
    for a, b, claim in PAIRS:
        always, never, tied, mixed = [], [], [], []
        for key, title, better in columns:
            if not better or key in REPEATED_DISTANCES:
                continue
            counts = [wins(group, a, b, key, better) for group in groups]
            won, lost, n = (sum(c[i] for c in counts) for i in range(3))
            if n == 0:
                continue
            name = title.rstrip(" ↑↓")
            if won == n:
                always.append(name)
            elif lost == n:
                never.append(name)
            elif won == lost == 0:
                tied.append(name)
            else:
                mixed.append(f"{name} ({won}/{n})")
        if not (always or never or mixed):
            continue
        verdict = ("**holds on most metrics**" if len(always) > len(never) + len(mixed)
                   else "**not shown**" if len(always) <= len(never) else "**mixed**")
        lines.append(f"`{a}` vs `{b}` — *{claim}*: {verdict}. Better in every run on "
                     f"{', '.join(always) or 'nothing'}; worse in every one on {', '.join(never) or 'nothing'}; "
                     f"split on {', '.join(mixed) or 'nothing'}" + (f"; tied on {', '.join(tied)}." if tied else "."))
    return lines


def _metric_table(group: list[dict], columns: list[tuple[str, str, str]]) -> list[str]:
    head = ["system", "runs", *[t for _, t, _ in columns]]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in SYSTEMS:
        present = [r["metrics"][name] for r in group if name in r["metrics"]]
        if present:
            rows.append("| " + " | ".join([f"`{name}`", str(len(present)),
                                           *[_cell([m.get(k) for m in present]) for k, _, _ in columns]]) + " |")
    for ref, label in REFERENCES:
        values = [reference_values(r["refs"], ref) for r in group]
        cells = [_cell([v.get(k) for v in values]) for k, _, _ in columns]
        if any(cells):
            rows.append("| " + " | ".join([label, "", *cells]) + " |")
    return rows


def _win_table(group: list[dict], columns: list[tuple[str, str, str]]) -> list[str]:
    directed = [c for c in columns if c[2]]
    head = ["first vs second", *[t for _, t, _ in directed]]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for a, b, _ in PAIRS:
        cells = []
        for key, _, better in directed:
            won, _, n, diff = wins(group, a, b, key, better)
            cells.append(f"{won}/{n} ({diff:+.3f})" if n else "–")
        if any(c != "–" for c in cells):
            rows.append("| " + " | ".join([f"`{a}` vs `{b}`", *cells]) + " |")
    return rows


def render_replicates(runs: list[str | Path], out: str | Path, notes: str | Path | None = None) -> Path:
    """Writes the replicate summary of ``runs`` to ``out``: per sampling setting, every metric's mean ± sd,
    the pairwise win counts and the verdicts; with several settings, the verdicts over all of them."""
    kept_notes = page_notes(out, notes)
    groups = load_replicates(runs)
    everything = [r for group in groups.values() for r in group]
    columns = [c for c in COLUMNS if any(c[0] in m for r in everything for m in r["metrics"].values())]
    config = everything[0]["config"]
    parts = [
        "# Results over replicates: the design study run with other seeds",
        "",
        f"Runs of the {'quick' if config.get('quick') else 'full'} study (preset `{config.get('preset')}`, step "
        f"cap {config.get('max_steps')}, batch {config.get('batch_size')}, device `{config.get('device')}`). "
        "Each seed re-draws the held-out split, the feature net, the palette fit, the initialisation and the "
        "batches, so distances are compared only within a run; this page gives their mean ± standard deviation "
        "over runs and how often one system beat another, for each sampling setting the runs were scored with. "
        "A verdict calls a claim shown on a metric only where it held in every run; FD½ and KID½ repeat FD and "
        "KID on another protocol and are not counted twice.",
        "",
        kept_notes,
    ]
    for sampling, group in groups.items():
        seeds = ", ".join(str(r["config"].get("seed")) for r in group)
        parts += [
            f"## G{describe_sampling(sampling)[1:]} (seeds {seeds})",
            "",
            *_metric_table(group, columns),
            "",
            "Wins per pair: runs where the first system was better (mean difference first − second).",
            "",
            *_win_table(group, columns),
            "",
            "Verdicts (generated from the win counts):",
            "",
            *[f"- {line}" for line in _verdicts([group], columns)],
            "",
        ]
    if len(groups) > 1:
        parts += [
            "## Verdicts over every setting and run (generated)",
            "",
            f"{len(everything)} scored runs: {'; '.join(describe_sampling(s) for s in groups)}.",
            "",
            *[f"- {line}" for line in _verdicts(list(groups.values()), columns)],
            "",
        ]
    parts += [
        "## Regenerating this file",
        "",
        "Runs scored at other sampling settings are copies of a trained run, re-scored with `python -m "
        "research eval --out <copy> --cfg-scale G --temperature T` (add the run's own flags).",
        "",
        "```bash",
        *[run_command({**r["config"], **sampling_settings(r["sampling"])}, r["run"].as_posix())
          for r in everything],
        "python -m research replicates --runs "
        + " ".join(r["run"].as_posix() for r in everything) + f" --out {Path(out).as_posix()}",
        "```",
        "",
    ]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out

"""Command line: ``python -m research COMMAND``, one of run, features, eval, speed, table,
replicates, sweep, sweep-table, steps, distill, adapt and cost."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import MISSING, fields
from pathlib import Path

import torch

from pixelcore.sampling import GUIDANCE_SCHEDULES
from .adapt import adapt_report
from .cost import render_cost, training_cost
from .distill import DistillConfig, distill, teacher_samples
from .config import SYSTEMS, ExperimentConfig
from .runner import evaluate_system, measure_speed, prepare_features, run
from .replicates import render_replicates
from .steps import STEP_FIELDS, render_steps, steps_sweep
from .sweep import render_sweep, sweep_run
from .table import render

log = logging.getLogger("research")


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    for f in fields(ExperimentConfig):
        flag = f"--{f.name.replace('_', '-')}"
        if f.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", help="small models, a few CPU minutes each")
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            default = f.default if f.default is not MISSING else None
            parser.add_argument(flag, type=kind, default=default, help=f"default: {default!r}")
    parser.add_argument("--only", nargs="+", choices=list(SYSTEMS), help="these systems only (default: all)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")


def _config(args: argparse.Namespace) -> ExperimentConfig:
    values = {f.name: getattr(args, f.name) for f in fields(ExperimentConfig)}
    return ExperimentConfig(**values).resolved()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m research", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser(
        "run", help="train (if needed), evaluate and time the systems; render <out>/RESULTS.md"
    )
    _add_config_args(r)
    r.add_argument(
        "--jobs", type=int, default=1, help="train/evaluate this many systems in parallel processes"
    )
    r.add_argument("--retrain", action="store_true", help="train again even where a checkpoint exists")
    r.add_argument("--no-speed", action="store_true", help="skip the speed measurement (parallel children)")
    for name, text in (
        ("features", "train the feature net and the reference distances"),
        ("eval", "re-evaluate existing checkpoints"),
        ("speed", "time the trained systems"),
    ):
        _add_config_args(sub.add_parser(name, help=text))
    t = sub.add_parser("table", help="render the results markdown")
    t.add_argument("--runs", default="runs/experiments")
    t.add_argument("--out", default="research/reports/RESULTS.md")
    t.add_argument("--notes", help="a hand-written markdown file to include above the findings")
    p = sub.add_parser("replicates", help="summarise runs of one experiment with different seeds")
    p.add_argument("--runs", nargs="+", required=True, help="the runs' directories (at least two per sampling setting)")
    p.add_argument("--out", default="research/reports/quick/REPLICATES.md")
    p.add_argument("--notes", help="a hand-written markdown file to include above the verdicts")
    w = sub.add_parser("sweep", help="score trained systems over a grid of sampling settings (<out>/sweep.json)")
    _add_config_args(w)
    w.add_argument("--cfg-scales", dest="cfg_scales", type=float, nargs="+", default=[1.5, 3.0, 5.0])
    w.add_argument("--guidance-schedules", dest="guidance_schedules", nargs="+", default=list(GUIDANCE_SCHEDULES))
    w.add_argument("--randomness-values", dest="randomness_values", type=float, nargs="+", default=[0.5, 2.0, 4.5],
                   help="MaskGIT's randomness values (AR has none)")
    w.add_argument("--repeats", type=int, default=3, help="sampling seeds per setting, averaged")
    w.add_argument("--transparency-delays", dest="transparency_delays", type=float, nargs="+", default=[0.0],
                   help="MaskGIT only: subtracted from the keep confidence of cells drawn transparent (0 = off)")
    w.add_argument("--skip-scored", dest="skip_scored", action="store_true",
                   help="keep the settings sweep.json already holds instead of scoring them again")
    wt = sub.add_parser("sweep-table",
                        help="render the sampler sweep of several runs (each checked with the others' pick)")
    wt.add_argument("--runs", nargs="+", required=True, help="swept runs (at least two, other seeds)")
    wt.add_argument("--out", default="research/reports/quick/SAMPLER.md")
    wt.add_argument("--notes", help="a hand-written markdown file to include above the comparison")
    a = sub.add_parser("adapt", help="score models on a pack's held-out textures (after a fine-tune on the rest)")
    a.add_argument("models", nargs="+", help="release .safetensors files ('default' = the shipped model)")
    a.add_argument("--pack", required=True, help="the pack the fine-tune trained on")
    a.add_argument("--out", default="runs/adapt")
    a.add_argument("--holdout", type=float, default=0.1, help="as given to train --holdout")
    a.add_argument("--seed", type=int, default=0, help="as given to train --seed")
    a.add_argument("--feature-steps", dest="feature_steps", type=int, default=1000)
    a.add_argument("--seeds", type=int, default=4, help="samples per public prompt")
    a.add_argument("--public-prompts", dest="public_prompts", default="eval/prompts_public.jsonl")
    a.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    st = sub.add_parser("steps", help="score and time MaskGIT or diffusion systems at several step counts "
                                      "(<out>/steps.json)")
    _add_config_args(st)
    st.add_argument("--steps", type=int, nargs="+", required=True, help="step counts (MaskGIT rounds, Euler steps)")
    d = sub.add_parser("distill", help="distil a shallower model from the default one (measured, not shipped)")
    dd = DistillConfig()
    d.add_argument("--data", default=dd.data, help="the teacher's training set (its captions are drawn from it)")
    d.add_argument("--out", default=dd.out, help="teacher_samples.safetensors and model.safetensors go here")
    d.add_argument("--teacher", default=dd.teacher, help="a release .safetensors, or 'default'")
    d.add_argument("--n-samples", dest="n_samples", type=int, default=dd.n_samples, help="teacher samples")
    d.add_argument("--layers", type=int, nargs="+", default=list(dd.layers),
                   help="the teacher blocks the student starts from")
    d.add_argument("--steps", type=int, default=dd.steps, help="student training steps")
    d.add_argument("--batch-size", dest="batch_size", type=int, default=dd.batch_size)
    d.add_argument("--lr", type=float, default=dd.lr)
    d.add_argument("--max-minutes", dest="max_minutes", type=float, default=dd.max_minutes,
                   help="stop training after this much wall time (0 = no limit)")
    d.add_argument("--seed", type=int, default=dd.seed)
    d.add_argument("--samples-only", dest="samples_only", action="store_true",
                   help="draw the teacher's samples and stop")
    d.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    c = sub.add_parser("cost", help="work (GFLOP) and, with --time-steps, seconds per training step of each system")
    _add_config_args(c)
    c.add_argument("--time-steps", dest="time_steps", type=int, default=0,
                   help="time this many steps of each system here (on a quiet machine); 0 = count the work only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if getattr(args, "threads", 0):
        torch.set_num_threads(args.threads)
    try:
        if args.command == "table":
            log.info("wrote %s", render(args.runs, args.out, args.notes))
            return 0
        if args.command == "replicates":
            log.info("wrote %s", render_replicates(args.runs, args.out, args.notes))
            return 0
        if args.command == "sweep-table":
            log.info("wrote %s", render_sweep(args.runs, args.out, args.notes))
            return 0
        if args.command == "distill":
            values = {k: getattr(args, k) for k in ("data", "out", "teacher", "n_samples", "steps", "batch_size",
                                                    "lr", "max_minutes", "seed")}
            config = DistillConfig(**values, layers=tuple(args.layers))
            log.info("wrote %s", teacher_samples(config) if args.samples_only else distill(config))
            return 0
        if args.command == "adapt":
            config = ExperimentConfig(data=args.pack, out=args.out, holdout=args.holdout, seed=args.seed,
                                      feature_steps=args.feature_steps)
            print(adapt_report(config, args.models, args.public_prompts, args.seeds))  # the command's result
            return 0
        config = _config(args)
        if args.command == "run":
            start = time.perf_counter()
            run(config, only=args.only, jobs=args.jobs, retrain=args.retrain, speed=not args.no_speed)
            if not args.only:
                log.info("wrote %s", render(config.out, f"{config.out}/RESULTS.md"))
            log.info("run took %.1f minutes (systems with a checkpoint already were not trained again)",
                     (time.perf_counter() - start) / 60)
        elif args.command == "features":
            prepare_features(config, force=True)
        elif args.command == "eval":
            for name in args.only or [
                n for n in SYSTEMS if (Path(config.out) / n / "model.safetensors").exists()
            ]:
                evaluate_system(config, name)
        elif args.command == "sweep":
            names = args.only or [n for n in SYSTEMS if SYSTEMS[n].kind != "retrieval"
                                  and (Path(config.out) / n / "model.safetensors").exists()]
            log.info("wrote %s", sweep_run(config, names, args.cfg_scales, args.guidance_schedules,
                                           args.randomness_values, args.repeats, args.skip_scored,
                                           args.transparency_delays))
        elif args.command == "steps":
            names = args.only or [n for n in SYSTEMS if SYSTEMS[n].kind in STEP_FIELDS
                                  and (Path(config.out) / n / "model.safetensors").exists()]
            print(render_steps(steps_sweep(config, names, args.steps)))  # the command's result
        elif args.command == "speed":
            measure_speed(config, args.only)
        elif args.command == "cost":
            rows = training_cost(config, args.only or list(SYSTEMS), args.time_steps)
            print(render_cost(config, rows))  # the command's result
    except ValueError as err:
        log.error("%s", err)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

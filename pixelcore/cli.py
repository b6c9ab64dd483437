"""Command line: ``python -m pixelcore {generate,train,eval,build-luanti,bench}``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import fields
from pathlib import Path

import torch

from .sampling import (DEFAULT_CFG, DEFAULT_GUIDANCE_SCHEDULE, DEFAULT_MIN_CUTOUT, DEFAULT_RANDOMNESS,
                       DEFAULT_TEMPERATURE, DEFAULT_TRANSPARENCY_DELAY, GUIDANCE_SCHEDULES)

GUIDANCE_SCHEDULE_HELP = ("constant: the full guidance scale every round; linear: no guidance while nothing is "
                          "decided, rising to the full scale as the grid fills; early: guidance in the rounds "
                          f"that start with under a third of the grid decided, none after (default "
                          f"{DEFAULT_GUIDANCE_SCHEDULE})")
RANDOMNESS_HELP = ("how freely each round picks the cells it keeps: noise on the confidences, annealed to 0 "
                   "(0..20; 0 = most confident first)")

log = logging.getLogger("pixelcore")


def _device(name: str) -> torch.device:
    from .devices import pick_device

    return pick_device(name)


def _add_guidance_schedule(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--guidance-schedule", dest="guidance_schedule", choices=GUIDANCE_SCHEDULES,
                        default=DEFAULT_GUIDANCE_SCHEDULE, help=GUIDANCE_SCHEDULE_HELP)


def _add_transparency_delay(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transparency-delay", dest="transparency_delay", type=float,
                        default=DEFAULT_TRANSPARENCY_DELAY,
                        help="keep the cells drawn transparent this much later in each round, so the silhouette "
                             "is decided before the background (0..10; 0 = off)")


def cmd_generate(args: argparse.Namespace) -> int:
    from .checkpoint import default_model_path, load_model
    from .images import MAX_SCALE, save_png, upscale_nearest
    from .sampling import encode_prompt, sample

    out = Path(args.output)
    if out.suffix.lower() != ".png":
        raise ValueError(f"{out}: the output must be a .png file")
    if not 1 <= args.scale <= MAX_SCALE:  # checked before anything is written
        raise ValueError(f"--scale must be in 1..{MAX_SCALE} (1 = no enlargement), got {args.scale}")
    model = load_model(args.model or default_model_path(), device=_device(args.device))
    cond = encode_prompt(model, args.prompt, args.negative or None)
    tokens = sample(model, cond, steps=args.steps, cfg_scale=args.cfg, temperature=args.temperature,
                    randomness=args.randomness, guidance_schedule=args.guidance_schedule, batch_size=args.n,
                    opaque=args.opaque, transparency_delay=args.transparency_delay,
                    generator=torch.Generator().manual_seed(args.seed), min_cutout=args.min_cutout)
    textures = model.palette.dequantize(tokens).cpu().numpy()
    for i, rgba in enumerate(textures):
        path = out if args.n == 1 else out.with_name(f"{out.stem}_{i}{out.suffix}")
        meta = {"prompt": args.prompt, "negative": args.negative or "", "seed": str(args.seed),
                "index": str(i), "steps": str(args.steps), "cfg": str(args.cfg),
                "temperature": str(args.temperature), "randomness": str(args.randomness),
                "guidance_schedule": args.guidance_schedule,
                "model": Path(args.model or "default").name, "min_cutout": str(args.min_cutout),
                **({"opaque": "true"} if args.opaque else {}),
                **({"transparency_delay": str(args.transparency_delay)} if args.transparency_delay else {})}
        save_png(rgba, path, meta)
        log.info("wrote %s", path)
        if args.scale > 1:
            big = path.with_name(f"{path.stem}_x{args.scale}{path.suffix}")
            save_png(upscale_nearest(rgba, args.scale), big, meta)
            log.info("wrote %s", big)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .losses import LossConfig
    from .train import train
    from .train_config import TrainConfig

    loss = LossConfig(weighting=not args.no_weighting, tv_weight=args.tv_weight, max_weight=args.max_weight,
                      split_alpha=args.split_alpha)
    overrides = json.loads(args.model_overrides) if args.model_overrides else {}
    names = {f.name for f in fields(TrainConfig)} - {"loss", "model_overrides", "hue_shifts"}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    shifts = tuple(float(s) for s in args.hue_shifts.split(",") if s.strip()) if args.hue_shifts else ()
    config = TrainConfig(**values, hue_shifts=shifts, loss=loss, model_overrides=overrides)
    path = train(config)
    log.info("model written to %s", path)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np

    from .checkpoint import default_model_path, load_model
    from .data import hue_shift_augment, hue_target_augment, load_textures, tone_augment
    from .evaluate import (copy_references, evaluate, format_metrics, format_per_prompt, load_prompts,
                           model_generator)

    specs = load_prompts(args.prompts)
    model = load_model(args.model or default_model_path(), device=_device(args.device))
    training = None
    if args.train_data:
        records, _ = load_textures(args.train_data)
        # Every view a model may have trained on: fixed and colour-balanced hue copies, white/gray/black copies.
        views = hue_shift_augment(records) + hue_target_augment(records)[len(records):] + tone_augment(records)
        training = copy_references(np.stack([r.pixels for r in views]), model.palette)
    out = Path(args.out)
    generate = model_generator(model, steps=args.steps, cfg_scale=args.cfg, temperature=args.temperature,
                               randomness=args.randomness, guidance_schedule=args.guidance_schedule,
                               min_cutout=args.min_cutout, transparency_delay=args.transparency_delay)
    rows: list[dict] = []
    metrics = evaluate(generate, specs, seeds=args.seeds, seed=args.seed, training=training,
                       grid_path=out / "samples.png", details=rows)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "per_prompt.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False))
    print(format_per_prompt(rows))  # the command's result, for the terminal
    print(format_metrics(metrics))
    log.info("grid and metrics written to %s", out)
    return 0


def cmd_build_luanti(args: argparse.Namespace) -> int:
    from .luanti import build_luanti_dataset, download_debs

    debs = Path(args.debs)
    if args.download:
        download_debs(debs)
    report = build_luanti_dataset(debs, Path(args.out))
    log.info("built %s: %s", args.out, report)
    return 0


_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def cmd_average(args: argparse.Namespace) -> int:
    from .checkpoint import average_models

    log.info("wrote %s", average_models(args.src, args.out, _DTYPES[args.dtype], weights=args.weights))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .checkpoint import export_model

    log.info("wrote %s", export_model(args.src, args.dst, _DTYPES[args.dtype]))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_benchmarks

    run_benchmarks(args.model, _device(args.device), args.steps, args.threads, args.guidance_schedule)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pixelcore",
                                     description="16x16 pixel-art textures from text")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write a texture for a prompt")
    g.add_argument("prompt", help="what to draw, in English or Chinese, e.g. 'a blue diamond sword'")
    g.add_argument("-o", "--output", default="texture.png", help="output PNG (16x16 RGBA)")
    g.add_argument("--model", help="a .safetensors model (default: the shipped model)")
    g.add_argument("--negative", default="", help="negative prompt: what to steer away from")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--steps", type=int, default=10, help="decoding rounds (1..64)")
    g.add_argument("--cfg", type=float, default=DEFAULT_CFG, help="classifier-free guidance scale (0..30, 1 = none)")
    g.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE, help="sampling temperature (0..5]")
    g.add_argument("--randomness", type=float, default=DEFAULT_RANDOMNESS, help=RANDOMNESS_HELP)
    _add_guidance_schedule(g)
    _add_transparency_delay(g)
    g.add_argument("--n", type=int, default=1, help="number of textures (written as NAME_i.png)")
    g.add_argument("--opaque", action="store_true",
                   help="never draw transparent pixels: a tile with no holes (for blocks)")
    g.add_argument("--min-cutout", type=float, default=DEFAULT_MIN_CUTOUT,
                   help=f"a texture with fewer transparent pixels than this share is a block with stray holes: "
                        f"they are drawn again, opaque (default {DEFAULT_MIN_CUTOUT:g}; 0 = keep them)")
    g.add_argument("--scale", type=int, default=1,
                   help="also write a nearest-neighbour enlargement (2..64; 1 = none)")
    g.add_argument("--device", default="auto")
    g.set_defaults(func=cmd_generate)

    t = sub.add_parser("train", help="train a model on a texture folder, resource pack or .zip")
    t.add_argument("--data", required=True)
    t.add_argument("--out", default="runs/default")
    t.add_argument("--preset", choices=["default", "quick", "tiny"])
    t.add_argument("--steps", type=int)
    t.add_argument("--batch-size", dest="batch_size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--warmup", type=int, help="learning-rate warm-up steps")
    t.add_argument("--max-minutes", dest="max_minutes", type=float, help="stop and save after this long")
    t.add_argument("--seed", type=int)
    t.add_argument("--palette-size", dest="palette_size", type=int)
    t.add_argument("--hue-shifts", dest="hue_shifts", default="60,120,180,240,300",
                   help="comma-separated hue rotations for colour augmentation ('' = none)")
    t.add_argument("--hue-targets", dest="hue_targets", action="store_true", default=None,
                   help="colour-balanced augmentation: rotate each texture onto every colour word's hue "
                        "(instead of --hue-shifts)")
    t.add_argument("--generic-captions", dest="generic_captions", action="store_true", default=None,
                   help="also caption material items by colour and noun alone ('a red sword')")
    t.add_argument("--kind-captions", dest="kind_captions", action="store_true", default=None,
                   help="for names found as both item and block (leaves with holes, opaque leaves), caption the "
                        "blocks only with 'block' captions")
    t.add_argument("--kind-pair-boost", dest="kind_pair_boost", type=float,
                   help="draw the records of such names this many times as often (default 1)")
    t.add_argument("--zh-prob", dest="zh_prob", type=float, help="share of Chinese captions")
    t.add_argument("--cond-dropout", dest="cond_dropout", type=float)
    t.add_argument("--sample-every", dest="sample_every", type=int)
    t.add_argument("--save-every", dest="save_every", type=int)
    t.add_argument("--holdout", type=float)
    t.add_argument("--device")
    t.add_argument("--amp", choices=["auto", "bf16", "none"])
    t.add_argument("--resume", action="store_true", help="continue from OUT/resume.pt")
    t.add_argument("--keep-checkpoints", dest="keep_checkpoints", action="store_true", default=None,
                   help="keep each saved model as OUT/checkpoints/step_N.safetensors (for `average`)")
    t.add_argument("--init-from", dest="init_from",
                   help="fine-tune a release .safetensors ('default' = the shipped model) instead of a fresh one")
    t.add_argument("--no-weighting", action="store_true", help="plain cross entropy (ablation)")
    t.add_argument("--tv-weight", type=float, default=0.0,
                   help="total-variation weight (default 0 = off; the shipped model used 0.05)")
    t.add_argument("--max-weight", type=float, default=4.0, help="clip for the colour loss weights")
    t.add_argument("--split-alpha", action="store_true",
                   help="weight only the colour choice: transparent-or-opaque gets an unweighted loss")
    t.add_argument("--model-overrides", help='JSON of PixelConfig fields, e.g. \'{"conv": false}\'')
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="sample a prompt set and print quality metrics")
    e.add_argument("--prompts", required=True, help="JSON lines with prompt, optional color and kind")
    e.add_argument("--model")
    e.add_argument("--train-data", help="training textures, for the copy rate")
    e.add_argument("--out", default="runs/eval")
    e.add_argument("--seeds", type=int, default=4)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--steps", type=int, default=10)
    e.add_argument("--cfg", type=float, default=DEFAULT_CFG)
    e.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE)
    e.add_argument("--randomness", type=float, default=DEFAULT_RANDOMNESS, help=RANDOMNESS_HELP)
    _add_guidance_schedule(e)
    _add_transparency_delay(e)
    e.add_argument("--min-cutout", type=float, default=DEFAULT_MIN_CUTOUT,
                   help="as for generate (0 = score the model's raw samples)")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("build-luanti", help="build the default training set from Debian's Luanti packages")
    b.add_argument("--debs", required=True, help="folder of minetest-data / minetest-mod-*.deb files")
    b.add_argument("--out", default="data/luanti")
    b.add_argument("--download", action="store_true", help="fetch the .deb files with apt-get download first")
    b.set_defaults(func=cmd_build_luanti)

    x = sub.add_parser("export", help="re-write a checkpoint in another float type (fp16 for release)")
    x.add_argument("src")
    x.add_argument("dst")
    x.add_argument("--dtype", choices=list(_DTYPES), default="fp16")
    x.set_defaults(func=cmd_export)

    a = sub.add_parser("average", help="average the weights of checkpoints of one run (e.g. its last few), or of "
                                       "a model and its fine-tune")
    a.add_argument("src", nargs="+", help="two or more .safetensors of the same run or lineage")
    a.add_argument("--weights", type=float, nargs="+", metavar="W",
                   help="one weight per file (normalised to sum 1); default: uniform")
    a.add_argument("-o", "--out", required=True)
    a.add_argument("--dtype", choices=list(_DTYPES), default="fp16")
    a.set_defaults(func=cmd_average)

    s = sub.add_parser("bench", help="print sampling and training speed")
    s.add_argument("--model", help="default: the shipped model")
    s.add_argument("--steps", type=int, default=10)
    s.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    _add_guidance_schedule(s)
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except ValueError as err:  # bad input: say what is wrong, no traceback
        log.error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Command line: ``python -m pixelcore COMMAND``: generate, train, lora, eval, vocab, build-luanti, build-extra,
export-pack, export, average, bench (``--help`` on each).

Every command checks its arguments before it loads a model or reads data, so a typo costs no waiting, and
reports bad input as one line (exit status 2), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from dataclasses import fields
from pathlib import Path

from .accel import ENGINES, PRECISIONS
from .lora_cli import add_generate_args as add_lora_generate_args
from .lora_cli import add_lora_parser, adapted_model
from .lora_cli import check_generate_args as check_lora_args
from .sampling import GUIDANCE_SCHEDULES, MAX_BATCH, MAX_CFG, MAX_STEPS, MAX_TEMPERATURE, SamplerConfig
from .train_config import PRESETS, TrainConfig
from .vocab import VOCAB_GROUPS

log = logging.getLogger("pixelcore")

SAMPLER = SamplerConfig()  # the defaults every flag below shows
MAX_SEED = 2**64 - 1
MAX_NAME_BYTES = 255  # the longest file name common file systems take
MODEL_HELP = "a .safetensors model (default: the shipped model, also named 'default')"


# --- shared flags ------------------------------------------------------------------------------------------

def add_sampler_args(parser: argparse.ArgumentParser, opaque: bool = False) -> None:
    """The sampling flags, their defaults taken from ``SamplerConfig``."""
    g = parser.add_argument_group("sampling")
    g.add_argument("--steps", type=int, default=SAMPLER.steps, help=f"decoding rounds (1..{MAX_STEPS})")
    g.add_argument("--cfg", dest="cfg_scale", type=float, default=SAMPLER.cfg_scale,
                   help=f"classifier-free guidance scale (0..{MAX_CFG:g}, 1 = none)")
    g.add_argument("--temperature", type=float, default=SAMPLER.temperature,
                   help=f"colour randomness (0.01..{MAX_TEMPERATURE:g}; lower is safer)")
    g.add_argument("--randomness", type=float, default=SAMPLER.randomness,
                   help="how freely each round picks the cells it keeps: noise on the confidences, annealed to "
                        "0 (0..20; 0 = most confident first)")
    g.add_argument("--guidance-schedule", dest="guidance_schedule", choices=GUIDANCE_SCHEDULES,
                   default=SAMPLER.guidance_schedule,
                   help="when guidance acts: early = only the rounds that start with under a third of the grid "
                        "decided (they fix shape and colours); constant = every round; linear = rising from none")
    g.add_argument("--min-cutout", dest="min_cutout", type=float, default=SAMPLER.min_cutout,
                   help="a texture with fewer transparent pixels than this share is a block with stray holes: "
                        "they are drawn again, opaque (0 = keep them)")
    g.add_argument("--precision", choices=PRECISIONS, default=SAMPLER.precision,
                   help="number format of the network: auto = bf16 where the CPU or GPU has it natively, else "
                        "fp32; int8 = quantised Linear layers (CPU)")
    g.add_argument("--engine", choices=ENGINES, default=SAMPLER.engine,
                   help="auto = CUDA graphs on a GPU, eager elsewhere; compile = torch.compile")
    if opaque:
        g.add_argument("--opaque", action="store_true",
                       help="never draw transparent pixels: a tile with no holes (for blocks)")
    g.add_argument("--sampler-overrides", dest="sampler_overrides", metavar="JSON",
                   help="research settings as JSON, e.g. '{\"transparency_delay\": 1}' (see SamplerConfig)")


def sampler_config(args: argparse.Namespace) -> SamplerConfig:
    """The validated ``SamplerConfig`` the flags of ``add_sampler_args`` describe."""
    values = {f.name: getattr(args, f.name) for f in fields(SamplerConfig) if hasattr(args, f.name)}
    return SamplerConfig(**values).with_overrides(args.sampler_overrides)


def _device(name: str):
    from .devices import pick_device

    return pick_device(name)


def _check_seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"--seed must be in 0..2^64-1, got {seed}")


def _check_output_png(path: Path, longest_name: str) -> None:
    """Refuses an output path that could not be written, before any work is done."""
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: the output must be a .png file")
    for name in (path.name, longest_name):
        if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise ValueError(f"the output name {name[:40]}... is too long ({len(name)} characters with its "
                             f"suffixes; at most {MAX_NAME_BYTES} bytes): choose a shorter name")
    try:
        if path.is_dir():
            raise ValueError(f"{path} is a folder: give a file name, e.g. {path / 'texture.png'}")
        existing = path.parent
        while not existing.exists():
            existing = existing.parent
    except OSError as err:
        raise ValueError(f"{path}: not a usable output path ({err.strerror or err})") from err
    if not existing.is_dir():
        raise ValueError(f"{existing} is a file, not a folder: choose another output folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write into {existing} (permission denied): choose another output folder")


# --- commands ----------------------------------------------------------------------------------------------

def cmd_generate(args: argparse.Namespace) -> int:
    from .images import MAX_SCALE
    from .sampling import check_batch
    from .text import check_prompts

    out = Path(args.output)
    if not 1 <= args.scale <= MAX_SCALE:
        raise ValueError(f"--scale must be in 1..{MAX_SCALE} (1 = no enlargement), got {args.scale}")
    check_batch(1, args.n)
    _check_seed(args.seed)
    suffix = (f"_{args.n - 1}" if args.n > 1 else "") + (f"_x{args.scale}" if args.scale > 1 else "")
    _check_output_png(out, f"{out.stem}{suffix}{out.suffix}")
    prompt = check_prompts(args.prompt)[0]
    negative = check_prompts(args.negative, what="negative prompt")[0] if args.negative.strip() else ""
    config = sampler_config(args)
    check_lora_args(args)
    device = _device(args.device)
    return _generate(args, out, prompt, negative, config, device)


def _generate(args, out: Path, prompt: str, negative: str, config: SamplerConfig, device) -> int:
    import torch

    from .checkpoint import load_model, resolve_model_path
    from .colors import texture_kind
    from .files import atomic_write_set
    from .images import save_png, upscale_nearest
    from .metadata import texture_info
    from .prompts import read_prompt, unknown_words_message
    from .sampling import encode_prompt, sample

    model_path = resolve_model_path(args.model)
    adapters = check_lora_args(args)
    model = adapted_model(load_model(model_path, device=device), adapters)
    model_name = model_path.name + "".join(f" + {path.name}@{strength:g}" for path, strength in adapters)
    # A pretrained open_clip encoder knows words of its own, and an adapter's new words are not in the list.
    if model.config.text_encoder == "builtin" and not model.text_encoder.new_words:
        for text in filter(None, (prompt, negative)):
            message = unknown_words_message(read_prompt(text))
            if message:
                log.warning("%s", message)
    cond = encode_prompt(model, prompt, negative or None)
    tokens = sample(model, cond, config, batch_size=args.n, generator=torch.Generator().manual_seed(args.seed))
    writes = []
    for i, rgba in enumerate(model.palette.dequantize(tokens).cpu().numpy()):
        path = out if args.n == 1 else out.with_name(f"{out.stem}_{i}{out.suffix}")
        text = texture_info(prompt, args.seed, i, config, negative=negative, model=model_name,
                            kind=texture_kind(rgba)).to_text()
        writes.append((path, lambda tmp, rgba=rgba, text=text: save_png(rgba, tmp, text)))
        if args.scale > 1:
            big = upscale_nearest(rgba, args.scale)
            writes.append((path.with_name(f"{path.stem}_x{args.scale}{path.suffix}"),
                           lambda tmp, big=big, text=text: save_png(big, tmp, text)))
    for path in atomic_write_set(writes):
        log.info("wrote %s", path)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .losses import LossConfig
    from .train import train

    loss = LossConfig(weighting=not args.no_weighting, tv_weight=args.tv_weight, max_weight=args.max_weight)
    if args.loss_overrides:
        loss = LossConfig(**{**loss.__dict__, **_json_object(args.loss_overrides, "--loss-overrides",
                                                            {f.name for f in fields(LossConfig)})})
    overrides = _json_object(args.model_overrides, "--model-overrides") if args.model_overrides else {}
    names = {f.name for f in fields(TrainConfig)} - {"loss", "model_overrides", "hue_shifts", "extra_data"}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    values["extra_data"] = tuple(args.extra_data)
    shifts = tuple(float(s) for s in args.hue_shifts.split(",") if s.strip()) if args.hue_shifts else ()
    config = TrainConfig(**values, hue_shifts=shifts, loss=loss, model_overrides=overrides)
    path = train(config)
    log.info("model written to %s", path)
    return 0


def _json_object(text: str, flag: str, known: set[str] | None = None) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{flag} is not valid JSON ({err})") from err
    if not isinstance(value, dict):
        raise ValueError(f"{flag} must be a JSON object of field: value")
    if known is not None and set(value) - known:
        raise ValueError(f"{flag}: unknown fields {sorted(set(value) - known)}; use {', '.join(sorted(known))}")
    return value


def cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np

    from .checkpoint import load_model, resolve_model_path
    from .data import hue_shift_augment, hue_target_augment, load_textures, tone_augment
    from .evaluate import (copy_references, evaluate, format_metrics, format_per_prompt, load_prompts,
                           model_generator)

    specs = load_prompts(args.prompts)
    config = sampler_config(args)
    device = _device(args.device)
    model = load_model(resolve_model_path(args.model), device=device)
    training = None
    if args.train_data:
        records, _ = load_textures(args.train_data)
        # Every view a model may have trained on: fixed and colour-balanced hue copies, white/gray/black copies.
        views = hue_shift_augment(records) + hue_target_augment(records)[len(records):] + tone_augment(records)
        training = copy_references(np.stack([r.pixels for r in views]), model.palette)
    out = Path(args.out)
    rows: list[dict] = []
    metrics = evaluate(model_generator(model, config), specs, seeds=args.seeds, seed=args.seed,
                       training=training, grid_path=out / "samples.png", details=rows)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "per_prompt.json").write_text(json.dumps(rows, indent=2, ensure_ascii=False))
    print(format_per_prompt(rows))  # the command's result, for the terminal
    print(format_metrics(metrics))
    log.info("grid and metrics written to %s", out)
    return 0


def cmd_vocab(args: argparse.Namespace) -> int:
    from .vocab import format_vocabulary

    print(format_vocabulary(tuple(args.group) if args.group else None))  # the command's result
    return 0


def cmd_build_extra(args: argparse.Namespace) -> int:
    from .sources import build_extra_dataset, download_extra_debs

    debs = Path(args.debs)
    if args.download:
        download_extra_debs(debs)
    log.info("built %s: %s", args.out, build_extra_dataset(debs, Path(args.out)).summary())
    return 0


def cmd_build_luanti(args: argparse.Namespace) -> int:
    from .luanti import build_luanti_dataset, download_debs

    debs = Path(args.debs)
    if args.download:
        download_debs(debs)
    report = build_luanti_dataset(debs, Path(args.out))
    log.info("built %s: %s", args.out, report)
    return 0


def cmd_export_pack(args: argparse.Namespace) -> int:
    from .export import check_output, export_pack, parse_mapping, read_texture, sanitize_name

    check_output(args.output, args.format)
    sanitize_name(args.namespace, "namespace")
    mapping = parse_mapping("\n".join(args.map))
    if mapping and args.format != "luanti":
        raise ValueError("--map names the Luanti textures to replace: add --format luanti, or drop --map")
    textures = [read_texture(path, args.kind) for path in args.png]
    export_pack(textures, args.output, args.format, args.namespace, mapping)  # logs what it wrote
    return 0


_DTYPES = ("fp16", "bf16", "fp32")


def _dtype(name: str):
    import torch

    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]


def cmd_average(args: argparse.Namespace) -> int:
    from .checkpoint import average_models

    log.info("wrote %s", average_models(args.src, args.out, _dtype(args.dtype), weights=args.weights))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .checkpoint import export_model

    log.info("wrote %s", export_model(args.src, args.dst, _dtype(args.dtype)))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_benchmarks

    config = sampler_config(args)
    run_benchmarks(args.model, _device(args.device), config, args.threads, repeats=args.repeats,
                   batches=tuple(args.batches) if args.batches else None, train_step=not args.no_train,
                   compare=tuple(args.compare))
    return 0


# --- the parser --------------------------------------------------------------------------------------------

def _add_train_parser(sub) -> None:
    d = TrainConfig(data="")
    t = sub.add_parser("train", help="train a model on a texture folder, resource pack or .zip",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--data", required=True, help="a folder of 16x16 PNGs, a resource pack folder or a .zip")
    t.add_argument("--extra-data", dest="extra_data", nargs="+", default=[], metavar="DIR",
                   help="more datasets for their shapes (e.g. data/extra from build-extra), never held out")
    t.add_argument("--extra-weight", dest="extra_weight", type=float, default=d.extra_weight,
                   help="how often an extra record is drawn, relative to a record of --data")
    t.add_argument("--out", default=d.out, help="run folder: model.safetensors, resume.pt, samples/")
    t.add_argument("--preset", choices=list(PRESETS), default=d.preset,
                   help="model size (ignored with --init-from, which keeps the checkpoint's config)")
    t.add_argument("--init-from", dest="init_from", default=d.init_from,
                   help="fine-tune a release .safetensors ('default' = the shipped model) instead of a fresh one")
    t.add_argument("--resume", action="store_true", help="continue from OUT/resume.pt")
    budget = t.add_argument_group("budget (the run ends at whichever limit comes first)")
    budget.add_argument("--steps", type=int, default=d.steps, help="optimizer steps")
    budget.add_argument("--max-minutes", dest="max_minutes", type=float, default=d.max_minutes,
                        help="stop and save after this much wall time (0 = no limit)")
    opt = t.add_argument_group("optimisation")
    opt.add_argument("--batch-size", dest="batch_size", type=int, default=d.batch_size, help="textures per step")
    opt.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (cosine decay after warm-up)")
    opt.add_argument("--warmup", type=int, default=d.warmup, help="learning-rate warm-up steps")
    opt.add_argument("--seed", type=int, default=d.seed, help="seed of the split, the batches and the palette")
    opt.add_argument("--cond-dropout", dest="cond_dropout", type=float, default=d.cond_dropout,
                     help="share of steps a caption is dropped (teaches the unconditional model guidance needs)")
    opt.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:N or mps")
    opt.add_argument("--amp", choices=["auto", "bf16", "none"], default=d.amp,
                     help="bf16 autocast (auto: on CUDA GPUs that support it)")
    data = t.add_argument_group("data and captions")
    data.add_argument("--palette-size", dest="palette_size", type=int, default=d.palette_size,
                      help="opaque colours of a palette fitted to the data (2..255)")
    data.add_argument("--holdout", type=float, default=d.holdout,
                      help="share of textures kept out of training (for evaluation)")
    data.add_argument("--hue-shifts", dest="hue_shifts", default=",".join(f"{s:g}" for s in d.hue_shifts),
                      help="comma-separated hue rotations for colour augmentation ('' = none)")
    data.add_argument("--hue-targets", dest="hue_targets", action="store_true",
                      help="colour-balanced augmentation: rotate each texture onto every colour word's hue "
                           "(instead of --hue-shifts)")
    data.add_argument("--colorless-captions", dest="colorless_captions", action="store_true",
                      help="original textures also get captions naming no colour ('a steel axe'), so a prompt "
                           "naming none draws the texture's own colours")
    data.add_argument("--generic-captions", dest="generic_captions", action="store_true",
                      help="also caption material items by colour and noun alone ('a red sword')")
    data.add_argument("--kind-captions", dest="kind_captions", action="store_true",
                      help="for names found as both item and block (leaves with holes, opaque leaves), caption "
                           "the blocks only with 'block' captions")
    data.add_argument("--kind-pair-boost", dest="kind_pair_boost", type=float, default=d.kind_pair_boost,
                      help="draw the records of such names this many times as often")
    data.add_argument("--zh-prob", dest="zh_prob", type=float, default=d.zh_prob,
                      help="share of steps that draw a Chinese caption (where the record has one)")
    out = t.add_argument_group("output")
    out.add_argument("--sample-every", dest="sample_every", type=int, default=d.sample_every,
                     help="write a sample grid every N steps (0 = only at the end)")
    out.add_argument("--save-every", dest="save_every", type=int, default=d.save_every,
                     help="save the model and resume state every N steps")
    out.add_argument("--keep-checkpoints", dest="keep_checkpoints", action="store_true",
                     help="keep each saved model as OUT/checkpoints/step_N.safetensors (for `average`)")
    loss = t.add_argument_group("objective")
    loss.add_argument("--no-weighting", action="store_true",
                      help="plain cross entropy instead of the colour-frequency and saturation weights")
    loss.add_argument("--tv-weight", type=float, default=d.loss.tv_weight,
                      help="total-variation weight (the shipped model used 0.05)")
    loss.add_argument("--max-weight", type=float, default=d.loss.max_weight, help="clip for the colour weights")
    loss.add_argument("--loss-overrides", dest="loss_overrides", metavar="JSON",
                      help="research settings of LossConfig as JSON, e.g. '{\"split_alpha\": true}'")
    loss.add_argument("--model-overrides", dest="model_overrides", metavar="JSON",
                      help='PixelConfig fields as JSON, e.g. \'{"conv": false}\'')
    t.set_defaults(func=cmd_train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pixelcore", description="16x16 pixel-art textures from text")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    defaults = argparse.ArgumentDefaultsHelpFormatter

    g = sub.add_parser("generate", help="write a texture for a prompt", formatter_class=defaults)
    g.add_argument("prompt", help="what to draw, in English or Chinese, e.g. 'a blue diamond sword'")
    g.add_argument("-o", "--output", default="texture.png", help="output PNG (16x16 RGBA)")
    g.add_argument("--model", help=MODEL_HELP)
    g.add_argument("--negative", default="", help="negative prompt: what to steer away from")
    g.add_argument("--seed", type=int, default=0, help="the same seed gives the same texture")
    g.add_argument("--n", type=int, default=1, help=f"number of textures, 1..{MAX_BATCH} (written as NAME_i.png)")
    g.add_argument("--scale", type=int, default=1, help="also write a nearest-neighbour enlargement (2..64; 1 = none)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    add_sampler_args(g, opaque=True)
    add_lora_generate_args(g)
    g.set_defaults(func=cmd_generate)

    _add_train_parser(sub)
    add_lora_parser(sub)

    e = sub.add_parser("eval", help="sample a prompt set and print quality metrics", formatter_class=defaults)
    e.add_argument("--prompts", required=True, help="JSON lines with prompt, optional color and kind")
    e.add_argument("--model", help=MODEL_HELP)
    e.add_argument("--train-data", help="training textures, for the copy rate")
    e.add_argument("--out", default="runs/eval", help="folder for metrics.json, per_prompt.json, samples.png")
    e.add_argument("--seeds", type=int, default=4, help="samples per prompt")
    e.add_argument("--seed", type=int, default=0, help="first seed (prompt i uses seed + i)")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    add_sampler_args(e)
    e.set_defaults(func=cmd_eval)

    b = sub.add_parser("build-luanti", help="build the default training set from Debian's Luanti packages")
    b.add_argument("--debs", required=True, help="folder of minetest-data / minetest-mod-*.deb files")
    b.add_argument("--out", default="data/luanti", help="output dataset folder")
    b.add_argument("--download", action="store_true", help="fetch the .deb files with apt-get download first")
    b.set_defaults(func=cmd_build_luanti)

    p = sub.add_parser("export-pack", help="put textures into a Minecraft resource pack or a Luanti texture pack",
                       description="Writes PNGs into a game's pack, or adds them to the pack already at OUT (never "
                                   "overwriting: a name taken by other pixels gets a _2, _3... suffix). Names are "
                                   "the files' stems reduced to a-z, 0-9 and _.")
    p.add_argument("png", nargs="+", help="16x16 RGBA PNGs, e.g. from generate")
    p.add_argument("-o", "--output", required=True, help="the pack: a folder, or a .zip")
    p.add_argument("--format", choices=["minecraft", "luanti"], default="minecraft",
                   help="minecraft: a Java resource pack (assets/NS/textures/item|block, models, pack.mcmeta); "
                        "luanti: a texture pack (PNGs, texture_pack.conf); default: minecraft")
    p.add_argument("--namespace", default="pixelcore",
                   help="Minecraft namespace (assets/NS/...; 'minecraft' replaces vanilla textures of the same "
                        "name); for Luanti, the pack's name; default: pixelcore")
    p.add_argument("--kind", choices=["item", "block"],
                   help="file every texture as this kind (default: each PNG's pixelcore_kind text, else read from "
                        "its transparency)")
    p.add_argument("--map", action="append", default=[], metavar="NAME=TEXTURE",
                   help="Luanti: write the texture NAME as TEXTURE.png, the file it replaces in the game "
                        "(repeat for more)")
    p.set_defaults(func=cmd_export_pack)

    v = sub.add_parser("vocab", help="list the words the default model's captions use, in English and Chinese")
    v.add_argument("--group", action="append", choices=VOCAB_GROUPS,
                   help="only this group (may be given more than once)")
    v.set_defaults(func=cmd_vocab)

    xb = sub.add_parser("build-extra", help="build the extra item shapes (Debian's famfamfam-silk and "
                                            "cataclysm-dda-data, each under a style condition)")
    xb.add_argument("--debs", required=True, help="folder of the .deb files")
    xb.add_argument("--out", default="data/extra", help="output dataset folder")
    xb.add_argument("--download", action="store_true", help="fetch the .deb files with apt-get download first")
    xb.set_defaults(func=cmd_build_extra)

    x = sub.add_parser("export", help="re-write a checkpoint in another float type (fp16 for release)")
    x.add_argument("src", help="a .safetensors model")
    x.add_argument("dst", help="the new file")
    x.add_argument("--dtype", choices=_DTYPES, default="fp16", help="float type of the weights")
    x.set_defaults(func=cmd_export)

    a = sub.add_parser("average", help="average the weights of checkpoints of one run (e.g. its last few), or of "
                                       "a model and its fine-tune")
    a.add_argument("src", nargs="+", help="two or more .safetensors of the same run or lineage")
    a.add_argument("--weights", type=float, nargs="+", metavar="W",
                   help="one weight per file (normalised to sum 1); default: uniform")
    a.add_argument("-o", "--out", required=True, help="the averaged model")
    a.add_argument("--dtype", choices=_DTYPES, default="fp16", help="float type of the weights")
    a.set_defaults(func=cmd_average)

    s = sub.add_parser("bench", help="print sampling speed (the previous release's sampler beside "
                                     "today's) and training speed", formatter_class=defaults)
    s.add_argument("--model", help=MODEL_HELP)
    s.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    s.add_argument("--repeats", type=int, default=5, help="interleaved timed runs per setting and batch")
    s.add_argument("--batches", type=int, nargs="+", help=f"batch sizes to time (default: 1 32 on the CPU, "
                                                          f"1 32 128 256 on CUDA; at most {MAX_BATCH})")
    s.add_argument("--compare", nargs="+", default=[], metavar="MODEL",
                   help="other .safetensors models to time with the same settings, interleaved")
    s.add_argument("--no-train", dest="no_train", action="store_true", help="skip the training-step timing")
    s.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps")
    add_sampler_args(s)
    s.set_defaults(func=cmd_bench)
    return parser


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    previous = signal.getsignal(signal.SIGTERM)
    in_main_thread = signal.getsignal(signal.SIGINT) is not None
    if in_main_thread:
        try:
            signal.signal(signal.SIGTERM, _interrupt)  # a kill ends like Ctrl-C: staged files are cleaned up
        except ValueError:  # not the main thread
            in_main_thread = False
    try:
        return args.func(args)
    except ValueError as err:  # bad input: say what is wrong, no traceback
        log.error("%s", err)
        return 2
    except OSError as err:  # a disk full, a folder removed meanwhile: what failed, without a traceback
        log.error("%s", err)
        return 1
    except KeyboardInterrupt:
        log.error("interrupted: files being written were removed, finished ones were kept")
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())

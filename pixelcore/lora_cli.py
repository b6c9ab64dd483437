"""The command line's adapter parts: ``lora train`` and the ``--lora``/``--lora-strength`` flags of ``generate``.

Kept apart from ``cli.py``, which only registers the subcommand and calls ``adapted_model`` after loading.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from .lora_train import PRIOR_MODES, LoraTrainConfig

log = logging.getLogger("pixelcore")


def add_generate_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("adapters")
    g.add_argument("--lora", action="append", default=[], metavar="FILE",
                   help="a LoRA adapter (.safetensors) made for the model; give several --lora to stack them")
    g.add_argument("--lora-strength", dest="lora_strength", action="append", type=float, default=[], metavar="S",
                   help="strength of the adapters: one for all, or one per --lora in order (default 1; "
                        "0 = not applied)")


def check_generate_args(args: argparse.Namespace) -> list[tuple[Path, float]]:
    """(file, strength) per --lora, checked before the model loads."""
    strengths = args.lora_strength or [1.0]
    if len(strengths) not in (1, len(args.lora)) or (args.lora_strength and not args.lora):
        raise ValueError(f"got {len(args.lora_strength)} --lora-strength for {len(args.lora)} --lora: give one "
                         "strength for all adapters or one per adapter")
    if not all(math.isfinite(s) and -4.0 <= s <= 4.0 for s in strengths):
        raise ValueError(f"--lora-strength must be in -4..4 (1 = as trained, 0 = off), got {strengths}")
    pairs = [(Path(p), strengths[i] if len(strengths) > 1 else strengths[0]) for i, p in enumerate(args.lora)]
    for path, _ in pairs:
        if path.suffix.lower() != ".safetensors" or not path.is_file():
            raise ValueError(f"{path}: no such adapter .safetensors file")
    return pairs


def adapted_model(model, pairs: list[tuple[Path, float]]):
    """The model with the adapters merged in (a copy), or the model itself when none is given or all are at 0."""
    from .lora import load_adapter
    from .lora_apply import merged

    adapters = [(load_adapter(path, model), strength) for path, strength in pairs if strength != 0]
    if not adapters:
        return model
    for adapter, strength in adapters:
        words = f", words {', '.join(adapter.info.trigger_words)}" if adapter.info.trigger_words else ""
        log.info("adapter %s at strength %g%s", adapter.name, strength, words)
    return merged(model, adapters)


def cmd_lora_train(args: argparse.Namespace) -> int:
    from .lora_train import train_lora

    d = LoraTrainConfig(data="")
    shifts = tuple(float(s) for s in args.hue_shifts.split(",") if s.strip()) if args.hue_shifts else ()
    config = LoraTrainConfig(
        data=args.data, out=args.output, base=args.model, rank=args.rank,
        alpha=args.alpha if args.alpha is not None else float(args.rank), text=args.text, words=tuple(args.word),
        word_vectors=args.word_vectors, steps=args.steps, max_minutes=args.max_minutes, batch_size=args.batch_size,
        lr=args.lr, word_lr=args.word_lr, prior=0.0 if args.no_prior else args.prior, prior_mode=args.prior_mode,
        hue_shifts=shifts,
        seed=args.seed, device=args.device, samples=not args.no_samples, warmup=d.warmup)
    config.validate()
    if not Path(args.data).exists():
        raise ValueError(f"--data {args.data} does not exist: give a folder of 16x16 PNGs, a resource pack or a .zip")
    result = train_lora(config)
    log.info("adapter written to %s after %d steps (%.1f min); use it with: python -m pixelcore generate "
             "\"...\" --lora %s", result.path, result.steps, result.seconds / 60, result.path)
    return 0


def add_lora_parser(sub) -> None:
    """``lora train``: an adapter for the shipped (or a given) model from a folder of textures."""
    d = LoraTrainConfig(data="")
    lora = sub.add_parser("lora", help="teach a model a new object or style from a few textures (LoRA adapters)")
    actions = lora.add_subparsers(dest="lora_command", required=True)
    t = actions.add_parser("train", help="train an adapter on a folder of textures",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--data", required=True, help="textures with captions: sidecar .txt, metadata.jsonl, file "
                                                 "names or a resource pack (as for train)")
    t.add_argument("-o", "--output", default=d.out, help="the adapter file (.safetensors); a before/after grid "
                                                         "is written beside it as NAME_samples.png")
    t.add_argument("--model", default="default", help="the base model: a release .safetensors, or default (shipped)")
    t.add_argument("--word", action="append", default=[], metavar="W",
                   help="a new word the textures show (e.g. disc or <mydisc>), learned as its own embedding; "
                        "captions that do not mention any new word are read as showing it")
    t.add_argument("--word-vectors", dest="word_vectors", type=int, default=d.word_vectors,
                   help="learned vectors per new word")
    t.add_argument("--rank", type=int, default=d.rank, help="LoRA rank")
    t.add_argument("--alpha", type=float, help="LoRA alpha; the change is scaled by alpha/rank (None = the rank)")
    t.add_argument("--text", action="store_true", help="also adapt the text encoder's attention and MLP")
    t.add_argument("--steps", type=int, default=d.steps, help="optimizer steps")
    t.add_argument("--max-minutes", dest="max_minutes", type=float, default=d.max_minutes,
                   help="stop and save after this much wall time (0 = no limit)")
    t.add_argument("--batch-size", dest="batch_size", type=int, default=d.batch_size, help="textures per step")
    t.add_argument("--lr", type=float, default=d.lr, help="peak learning rate of the LoRA factors")
    t.add_argument("--word-lr", dest="word_lr", type=float, default=d.word_lr, help="learning rate of new words")
    t.add_argument("--prior", type=float, default=d.prior,
                   help="share of each batch drawn from the base model's own samples (prior preservation)")
    t.add_argument("--no-prior", dest="no_prior", action="store_true", help="no prior preservation")
    t.add_argument("--prior-mode", dest="prior_mode", choices=PRIOR_MODES, default=d.prior_mode,
                   help="distill: keep the base model's predictions on its replay samples; samples: train on them")
    t.add_argument("--hue-shifts", dest="hue_shifts", default=",".join(f"{s:g}" for s in d.hue_shifts),
                   help="comma-separated hue rotations for colour augmentation ('' = none)")
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--no-samples", dest="no_samples", action="store_true", help="skip the before/after grid")
    t.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:N or mps")
    t.set_defaults(func=cmd_lora_train)

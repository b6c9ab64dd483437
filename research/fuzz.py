"""Fuzzing PixelCore's readers of untrusted input: model files, training sets, prompts and sampler settings.

Each case is generated from (seed, family, index) and run in a worker process that the driver kills when a
case takes longer than the hang limit; the worker runs under an address-space cap, so a memory bomb becomes
a MemoryError (counted as a crash) instead of taking the machine down. Per family the report counts:

- cases, accepted inputs (``ok``), clean refusals (the documented exception type: ``CheckpointError`` for
  ``load_model``, ``ValueError`` for ``load_textures``, ``build_luanti_dataset``, ``encode_prompt`` and
  ``sample``), crashes (any other exception type), hangs (over the limit);
- model files: silent bad loads (a mutated file that loads and samples other tokens than the original) and
  changed loads (loads with weights or config other than the original's, whatever it samples), counted
  apart for files that still carry a checksum and for files without one (``unverified_*``: a mutation
  removed it, or the ``legacy`` family, which mutates a file as PixelCore wrote them before checksums);
- prompts and settings: suspect outputs (every cell the last palette index, the mark of NaN probabilities,
  or more grids than ``MAX_BATCH``, or a wrong shape or range);
- peak RSS of the workers, and harness errors (a case this script failed to make; a bug of the script).

A training-set case that writes anywhere outside its own input and output folders counts as a crash.

    python -m research.fuzz --mode short              # a few hundred cases, under a minute
    python -m research.fuzz --mode long --json fuzz.json

The sampler is reached through ``run_sampler`` alone, so the harness follows a change of the sampling API by
a change of that one function.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import random
import resource
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from research.fuzz_cases import PROMPTS, make_dataset, make_deb, make_sampler_case, mutate_model, without_checksum

ROOT = Path(__file__).resolve().parent.parent
HANG_SECONDS = 10.0
MEMORY_CAP = 4 * 2**30  # address space a worker may add to what it holds after start-up
COUNTS = {"short": {"model": 300, "legacy": 40, "data": 80, "prompt": 300},
          "long": {"model": 10_000, "legacy": 500, "data": 1_000, "prompt": 10_000}}


def run_sampler(model, prompts, negative, settings: dict):
    """The harness's one call into the sampling API: prompts (and a negative) plus sampler settings -> tokens.

    ``settings`` names each knob as ``SamplerConfig`` does, plus the per-call arguments of ``sample``.
    """
    from pixelcore.sampling import SamplerConfig, encode_prompt, sample

    per_call = ("batch_size", "generator", "init_tokens", "keep_mask", "allowed_tokens")
    config = SamplerConfig(**{k: v for k, v in settings.items() if k not in per_call})
    return sample(model, encode_prompt(model, prompts, negative), config,
                  **{k: v for k, v in settings.items() if k in per_call})


# ----------------------------------------------------------------------------------------------------------
# The worker: runs cases, one JSON line in, one out


class Worker:
    """Holds the reference model and runs cases of every family in this process."""

    def __init__(self, seed: int, folder: Path | None = None):
        import numpy as np
        import torch

        from pixelcore.checkpoint import save_model
        from pixelcore.model import PixelConfig, PixelModel
        from pixelcore.palette import Palette

        torch.set_num_threads(1)
        _share_tokenizers()
        self.seed = seed
        self.tmp = Path(tempfile.mkdtemp(prefix="pixelcore-fuzz-", dir=folder))
        palette = Palette.from_colors(np.array([[20, 20, 20], [128, 128, 128], [250, 250, 250], [200, 30, 30],
                                                [30, 200, 30], [30, 30, 200], [230, 210, 40]], np.uint8))
        torch.manual_seed(0)
        model = PixelModel(PixelConfig.tiny(n_embd=32, text_width=16), palette).eval()
        gen = torch.Generator().manual_seed(5)
        with torch.no_grad():  # weights large enough that any change moves the sampled tokens
            for name, p in model.named_parameters():
                if p.dim() >= 2 and not name.startswith("text_encoder."):
                    p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)
        self.model = model
        self.files = {dtype: save_model(model, self.tmp / f"base_{dtype}.safetensors", dtype=getattr(torch, dtype))
                      .read_bytes() for dtype in ("float32", "float16")}
        self.legacy = {dtype: without_checksum(raw) for dtype, raw in self.files.items()}
        from pixelcore.checkpoint import load_model

        self.reference = {dtype: self._tokens(load_model(self.tmp / f"base_{dtype}.safetensors"))
                          for dtype in self.files}
        self.state = {dtype: load_model(self.tmp / f"base_{dtype}.safetensors").state_dict() for dtype in self.files}

    def _tokens(self, model):
        import torch

        return run_sampler(model, PROMPTS, None, {"steps": 3, "generator": torch.Generator().manual_seed(0)})

    def run(self, family: str, index: int) -> dict:
        rng = random.Random(f"{self.seed}:{family}:{index}")
        case = self.tmp / f"case_{family}_{index}"
        case.mkdir()
        start = time.perf_counter()
        try:
            result = getattr(self, f"_{'model' if family == 'legacy' else family}")(rng, case, family)
        except _HarnessError as exc:  # a bug of this script, not of PixelCore
            cause = exc.__cause__
            result = {"outcome": "harness", "type": type(cause).__name__, "message": str(cause)[:300]}
        except BaseException as exc:  # the worker reports every exception; the driver classifies it
            if isinstance(exc, KeyboardInterrupt):
                raise
            result = {"outcome": "error", "type": f"{type(exc).__module__}.{type(exc).__name__}",
                      "message": str(exc)[:300]}
        finally:
            shutil.rmtree(case, ignore_errors=True)
        result["seconds"] = round(time.perf_counter() - start, 3)
        result["rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return result

    def _model(self, rng: random.Random, case: Path, family: str) -> dict:
        import torch

        from pixelcore.checkpoint import CHECKSUM_KEY, CheckpointError, load_model, read_metadata

        with _harness():
            dtype = rng.choice(sorted(self.files))
            raw, what = mutate_model(rng, (self.legacy if family == "legacy" else self.files)[dtype])
            where = rng.choices(["file", "long name", "folder", "missing"], weights=[94, 2, 2, 2])[0]
            path = case / ("m" * 300 + ".safetensors" if where == "long name" else "model.safetensors")
            if where == "folder":
                path.mkdir()
            elif where == "file":
                path.write_bytes(raw)
            what = f"{dtype}: {what}" if where == "file" else where
        try:
            model = load_model(path)
        except CheckpointError as exc:
            return {"outcome": "refused", "type": "CheckpointError", "message": str(exc)[:300]}
        except Exception as exc:  # reported with the mutation that raised it
            return {"outcome": "error", "type": f"{type(exc).__module__}.{type(exc).__name__}",
                    "message": str(exc)[:300], "settings": what}
        verified = CHECKSUM_KEY in read_metadata(path)
        state = model.state_dict()
        same = (model.config == self.model.config and set(state) == set(self.state[dtype])
                and all(torch.equal(state[k], self.state[dtype][k]) for k in state))
        tokens_differ = not torch.equal(self._tokens(model), self.reference[dtype])
        return {"outcome": "ok", "changed": not same, "silent_bad": tokens_differ, "verified": verified,
                "settings": what}

    def _data(self, rng: random.Random, case: Path, family: str) -> dict:
        from pixelcore import data, luanti

        before = set(self.tmp.rglob("*"))
        with _harness():
            deb = rng.random() < 0.15
            made = make_deb(rng, case) if deb else make_dataset(rng, case)
        if deb:
            debs = made
            try:  # deep enough that the "../" of a hostile name stays inside the case folder
                luanti.build_luanti_dataset(debs, case / "a" / "b" / "c" / "d" / "e" / "out")
            except ValueError as exc:
                result = {"outcome": "refused", "type": "ValueError", "message": str(exc)[:300]}
            else:
                result = {"outcome": "ok"}
        else:
            try:
                records, report = data.load_textures(made)
            except ValueError as exc:
                result = {"outcome": "refused", "type": "ValueError", "message": str(exc)[:300]}
            else:
                for record in records:
                    if record.pixels.shape != (16, 16, 4) or not isinstance(record.caption, str):
                        raise AssertionError(f"a bad record from {record.source}")
                data.hue_shift_augment(records)
                result = {"outcome": "ok", "loaded": report.loaded}
        escaped = [str(p) for p in set(self.tmp.rglob("*")) - before if case not in p.parents and p != case]
        escaped += [str(p) for p in case.rglob("*") if p.is_file() and not _inside(p, case)]
        if escaped:
            result.update(outcome="error", type="escaped", message=f"wrote outside the case folder: {escaped[:3]}")
        return result

    def _prompt(self, rng: random.Random, case: Path, family: str) -> dict:
        import torch

        from pixelcore.sampling import MAX_BATCH

        with _harness():
            prompts, negative, settings = make_sampler_case(rng, self.model.config.vocab_size)
        try:
            tokens = run_sampler(self.model, prompts, negative, settings)
        except ValueError as exc:
            return {"outcome": "refused", "type": "ValueError", "message": str(exc)[:300]}
        except Exception as exc:  # reported with the arguments that raised it
            return {"outcome": "error", "type": f"{type(exc).__module__}.{type(exc).__name__}",
                    "message": str(exc)[:300], "settings": _describe(prompts, negative, settings)}
        vocab = self.model.config.vocab_size
        suspect = ""
        if tokens.dim() != 3 or tokens.shape[1:] != (16, 16) or tokens.dtype != torch.long:
            suspect = f"output of shape {tuple(tokens.shape)} and dtype {tokens.dtype}"
        elif tokens.numel() and (tokens.min() < 0 or tokens.max() >= vocab):
            suspect = "tokens outside the palette"
        elif len(tokens) > MAX_BATCH:
            suspect = f"{len(tokens)} grids, more than MAX_BATCH {MAX_BATCH}"
        elif "allowed_tokens" not in settings and bool((tokens == vocab - 1).all()):
            suspect = "every cell the last palette index (NaN probabilities)"
        return {"outcome": "ok", "suspect": suspect, "settings": _describe(prompts, negative, settings)}


class _HarnessError(Exception):
    """Making a case failed: a bug of this script, counted apart from PixelCore's results."""


@contextlib.contextmanager
def _harness():
    try:
        yield
    except Exception as exc:
        raise _HarnessError from exc


def _inside(path: Path, case: Path) -> bool:
    """Whether a file written for a case lies where that case may write: its input or its output folder."""
    rel = path.relative_to(case).parts
    return rel[:6] == ("a", "b", "c", "d", "e", "out") or rel[:1] in (("debs",), ("set",), ("set.zip",))


def _describe(prompts, negative, settings: dict) -> str:
    def short(value) -> str:
        if isinstance(value, (list, tuple)) and len(value) > 3:
            return f"[{short(value[0])}] * {len(value)}"
        if isinstance(value, str) and len(value) > 20:
            return f"{value[:10]!r} * ~{len(value) // max(1, len(value[:10]))}"
        if type(value).__name__ in ("Tensor", "Generator"):
            return type(value).__name__ + (f"{tuple(value.shape)}" if hasattr(value, "shape") else "")
        return ascii(value)

    named = ", ".join(f"{k}={short(v)}" for k, v in settings.items())
    return f"prompts={short(prompts)}, negative={short(negative)}, {named}"


def _share_tokenizers() -> None:
    """Builds open_clip's BPE tokenizer once per context length: building it costs 0.15 s per model load, most
    of a tiny model's load time, and it holds no state a case could change."""
    import functools

    import open_clip.tokenizer

    open_clip.tokenizer.SimpleTokenizer = functools.lru_cache(maxsize=8)(open_clip.tokenizer.SimpleTokenizer)


def worker_main(seed: int, folder: Path) -> None:
    logging.disable(logging.CRITICAL)
    import warnings

    warnings.simplefilter("ignore")
    worker = Worker(seed, folder)
    with open("/proc/self/status") as f:
        held = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))
    resource.setrlimit(resource.RLIMIT_AS, (held + MEMORY_CAP, resource.RLIM_INFINITY))
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing a case prints may break the protocol
    out.write(json.dumps({"ready": True, "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        result = worker.run(request["family"], request["index"])
        out.write(json.dumps(result) + "\n")
        out.flush()
    shutil.rmtree(worker.tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------
# The driver


class _Process:
    def __init__(self, seed: int, folder: Path):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        command = [sys.executable, "-m", "research.fuzz", "--worker", "--seed", str(seed), "--tmp", str(folder)]
        self.proc = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, text=True, bufsize=1)
        ready = self._read(120.0)
        if ready is None or not ready.get("ready"):
            raise RuntimeError("the fuzz worker did not start")
        self.startup_rss_mb = round(ready["rss_kb"] / 1024, 1)

    def _read(self, timeout: float) -> dict | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else {"outcome": "died"}

    def ask(self, family: str, index: int, timeout: float) -> dict | None:
        self.proc.stdin.write(json.dumps({"family": family, "index": index}) + "\n")
        self.proc.stdin.flush()
        return self._read(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def _new_totals() -> dict:
    counts = ["cases", "ok", "refused", "crashes", "hangs", "silent_bad", "changed", "unverified_silent_bad",
              "unverified_changed", "suspect", "harness_errors"]
    return {**dict.fromkeys(counts, 0), "peak_rss_mb": 0.0, "max_seconds": 0.0, "crash_types": Counter(),
            "crash_messages": Counter(), "examples": []}


def run(counts: dict[str, int], seed: int = 0, hang_seconds: float = HANG_SECONDS, progress: bool = False) -> dict:
    """Runs every case of every family; returns the report (see the module docstring)."""
    totals: dict[str, dict] = {family: _new_totals() for family in counts}
    folder = Path(tempfile.mkdtemp(prefix="pixelcore-fuzz-"))  # every worker's files, killed ones' included
    worker = _Process(seed, folder)
    started = time.time()
    try:
        for family, n in counts.items():
            t = totals[family]
            for index in range(n):
                result = worker.ask(family, index, hang_seconds)
                t["cases"] += 1
                if result is None or result.get("outcome") == "died":
                    key = "hangs" if result is None else "crashes"
                    t[key] += 1
                    t["crash_types"]["hang" if result is None else "worker died"] += 1
                    t["examples"].append({"index": index, "what": key})
                    worker.kill()
                    worker = _Process(seed, folder)
                    continue
                _tally(t, index, result)
                if progress and index % 500 == 0:
                    print(f"{family} {index}/{n} {time.time() - started:.0f}s", file=sys.stderr, flush=True)
    finally:
        worker.kill()
        shutil.rmtree(folder, ignore_errors=True)
    for t in totals.values():
        t["crash_types"] = dict(t["crash_types"])
        t["crash_messages"] = dict(t["crash_messages"].most_common())
        t["examples"] = t["examples"][:20]
    return {"seed": seed, "hang_seconds": hang_seconds, "seconds": round(time.time() - started, 1),
            "startup_rss_mb": worker.startup_rss_mb, "families": totals}


def _tally(t: dict, index: int, result: dict) -> None:
    t["peak_rss_mb"] = max(t["peak_rss_mb"], round(result["rss_kb"] / 1024, 1))
    t["max_seconds"] = max(t["max_seconds"], result["seconds"])
    outcome = result["outcome"]
    if outcome == "refused":
        t["refused"] += 1
    elif outcome == "ok":
        t["ok"] += 1
        if result.get("silent_bad") or result.get("changed"):
            prefix = "" if result.get("verified") else "unverified_"
            t[prefix + "silent_bad"] += int(bool(result["silent_bad"]))
            t[prefix + "changed"] += 1
            t["examples"].append({"index": index, "what": "silent bad load" if result.get("silent_bad")
                                  else "changed load, same tokens", "case": result.get("settings")})
        if result.get("suspect"):
            t["suspect"] += 1
            t["crash_types"][f"suspect: {result['suspect']}"] += 1
            t["examples"].append({"index": index, "what": result["suspect"], "case": result.get("settings")})
    elif outcome == "harness":
        t["harness_errors"] += 1
        t["examples"].append({"index": index, "what": f"harness {result['type']}: {result['message'][:160]}"})
    else:
        t["crashes"] += 1
        t["crash_types"][result["type"]] += 1
        t["crash_messages"][f"{result['type']}: {result['message'][:70]}".replace("\n", " ")] += 1
        t["examples"].append({"index": index, "what": f"{result['type']}: {result['message'][:160]}",
                              "case": result.get("settings")})


def _print(report: dict) -> None:
    print(f"seed {report['seed']}, {report['seconds']} s, hang limit {report['hang_seconds']} s, worker RSS after "
          f"start-up {report['startup_rss_mb']:.0f} MB")
    columns = [("cases", 6), ("ok", 5), ("refused", 7), ("crashes", 7), ("hangs", 5), ("silent_bad", 10),
               ("changed", 7), ("unverified_silent_bad", 21), ("unverified_changed", 18), ("suspect", 7),
               ("harness_errors", 14), ("max_seconds", 11), ("peak_rss_mb", 11)]
    print(f"{'family':8} " + " ".join(f"{name:>{width}}" for name, width in columns))
    for family, t in report["families"].items():
        print(f"{family:8} " + " ".join(f"{t[name]:>{width}.2f}" if isinstance(t[name], float)
                                       else f"{t[name]:>{width}}" for name, width in columns))
        for kind, n in sorted(t["crash_types"].items(), key=lambda kv: -kv[1]):
            print(f"    {n:6} x {kind}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=sorted(COUNTS), default="short")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the report here")
    parser.add_argument("--families", help="comma-separated subset of " + ",".join(COUNTS["short"]))
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every family's case count")
    parser.add_argument("--replay", metavar="FAMILY:INDEX", help="run one case in this process and print it")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.seed, args.tmp)
        return 0
    if args.replay:
        family, index = args.replay.split(":")
        with tempfile.TemporaryDirectory(prefix="pixelcore-fuzz-") as folder:
            print(json.dumps(Worker(args.seed, Path(folder)).run(family, int(index)), indent=1))
        return 0
    counts = {family: max(1, math.ceil(n * args.scale)) for family, n in COUNTS[args.mode].items()
              if not args.families or family in args.families.split(",")}
    report = run(counts, seed=args.seed, progress=args.mode == "long")
    _print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

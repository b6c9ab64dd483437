"""Speed benchmark: the sampler as the previous release ran it beside today's defaults (and other models, with
``--compare``); then prompt encoding and a training step. Prints numbers; not a test.

A shared machine's speed drifts from minute to minute, so the settings are timed interleaved (one call of
each, then the next repeat), and each cell is the median of the repeats with their range. The load average
before and after and the thread count are printed with the table: a table from a loaded machine says so.
"""

from __future__ import annotations

import logging
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .accel import cpu_has_native_bf16, int8_engine, resolve_engine, resolve_precision
from .checkpoint import load_model, resolve_model_path
from .losses import LossConfig, maskgit_loss, palette_features, token_weights
from .model import MaskedTokenModel, PixelModel
from .sampling import SamplerConfig, encode_prompt, sample
from .schedule import mask_batch

log = logging.getLogger(__name__)

PROMPT = "a blue diamond sword"
# How the shipped model was sampled up to release 0.3: 10 rounds, fp32, eager.
BEFORE = SamplerConfig(steps=10, precision="fp32", engine="eager")
CPU_BATCHES = (1, 32)
# A GPU needs large batches to fill; MAX_BATCH (256) is the most one ``sample`` call takes.
CUDA_BATCHES = (1, 32, 128, 256)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Mean seconds of ``repeats`` calls of ``fn`` after one warm-up call (CUDA work waited for)."""
    fn()  # warm-up
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / repeats


def count_flops(fn: Callable[[], object]) -> float:
    """Floating-point operations of one call of ``fn``, as ``torch.utils.flop_counter`` counts them: matrix
    products and convolutions, attention included (run through PyTorch's math kernel, whose products it sees;
    the fused kernels are invisible to it). Softmax, norms and sampling are not counted."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


@dataclass
class Setting:
    """One row of the table: a model sampled with some settings."""

    name: str
    model: PixelModel
    model_name: str
    config: SamplerConfig

    def draw(self, batch_size: int) -> None:
        cond = encode_prompt(self.model, PROMPT)
        sample(self.model, cond, self.config, batch_size=batch_size, generator=torch.Generator().manual_seed(0))


def interleaved(settings: list[Setting], batches: tuple[int, ...], repeats: int,
                device: torch.device) -> dict[tuple[str, int], list[float]]:
    """Seconds per call of every (setting, batch), ``repeats`` times, one of each in turn after a warm-up."""
    for s in settings:
        for b in batches:
            s.draw(b)  # warm-up: first-call costs (quantising, capturing graphs, compiling) are not timed
    seconds: dict[tuple[str, int], list[float]] = {(s.name, b): [] for s in settings for b in batches}
    for _ in range(repeats):
        for s in settings:
            for b in batches:
                _sync(device)
                start = time.perf_counter()
                s.draw(b)
                _sync(device)
                seconds[(s.name, b)].append(time.perf_counter() - start)
    return seconds


def machine_line(device: torch.device) -> str:
    """What the numbers were measured on: device, torch, threads and (CPU) what fast arithmetic it has."""
    if device.type == "cuda":
        where = f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    else:
        where = (f"{_cpu_name()}, {os.cpu_count()} cores, "
                 f"{torch.backends.cpu.get_cpu_capability()}, native bf16 {'yes' if cpu_has_native_bf16() else 'no'}"
                 f", int8 engine {int8_engine() or 'none'}")
    return f"device {device} ({where}); torch {torch.__version__}; {torch.get_num_threads()} threads"


def _cpu_name() -> str:
    """The CPU's model name where the system says it (Linux), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cell(values: list[float], batch: int) -> str:
    """Batch 1: milliseconds per texture; larger batches: textures per second. Median [range]."""
    if batch == 1:
        ms = [v * 1000 for v in values]
        return f"{statistics.median(ms):.1f} ms [{min(ms):.1f}-{max(ms):.1f}]"
    rates = [batch / v for v in values]
    return f"{statistics.median(rates):.1f}/s [{min(rates):.1f}-{max(rates):.1f}]"


def sampling_table(settings: list[Setting], device: torch.device, batches: tuple[int, ...],
                   repeats: int) -> dict:
    """Times every setting interleaved; prints the table; returns its numbers per setting."""
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    seconds = interleaved(settings, batches, repeats, device)
    load_after = os.getloadavg() if hasattr(os, "getloadavg") else None
    results = {}
    print(machine_line(device))  # the benchmark's output is its result
    if load_before is not None:
        print(f"load average {' '.join(f'{x:.2f}' for x in load_before)} before, "
              f"{' '.join(f'{x:.2f}' for x in load_after)} after; median of {repeats} interleaved runs [range]")
    header = ["setting", "MFLOP/texture"] + [f"batch {b}" for b in batches] + ["best"]
    rows = [header]
    for s in settings:
        mflop = count_flops(lambda s=s: s.draw(1)) / 1e6
        rates = {b: b / statistics.median(seconds[(s.name, b)]) for b in batches}
        best = max(rates, key=rates.get)
        results[s.name] = {
            "model": s.model_name, "sampler": s.config.to_dict(), "mflop_per_image": round(mflop, 1),
            "precision": resolve_precision(s.config.precision, device),
            "engine": resolve_engine(s.config.engine, device),
            "seconds": {str(b): seconds[(s.name, b)] for b in batches},
            "images_per_s": {str(b): round(r, 2) for b, r in rates.items()},
            "best_images_per_s": round(rates[best], 2), "best_batch": best,
        }
        if 1 in batches:
            results[s.name]["latency_1_image_ms"] = round(statistics.median(seconds[(s.name, 1)]) * 1000, 1)
        rows.append([s.name, f"{mflop:,.1f}"] + [_cell(seconds[(s.name, b)], b) for b in batches]
                    + [f"{rates[best]:.1f}/s at batch {best}"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    for s in settings:
        r = results[s.name]
        c = s.config
        print(f"{s.name}: model {s.model_name}, steps {c.steps}, cfg {c.cfg_scale:g}, guidance_schedule "
              f"{c.guidance_schedule}, order {c.order}, precision {r['precision']} ({c.precision}), engine "
              f"{r['engine']} ({c.engine})")
    return {"device": str(device), "threads": torch.get_num_threads(), "load_before": load_before,
            "load_after": load_after, "repeats": repeats, "settings": results}


def training_step_seconds(model: PixelModel, device: torch.device) -> float:
    """Seconds of one MaskGIT training step at batch 64 (random tokens, one caption)."""
    gen = torch.Generator()
    wrapped = MaskedTokenModel(model).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = torch.randint(0, len(model.palette), (64, 16, 16), generator=gen.manual_seed(1)).to(device)
    weights, features = token_weights(tokens, model.palette, LossConfig()), palette_features(model.palette)
    text_ids = model.text_encoder.tokenize(["a red sword item"] * 64).to(device)
    drop = torch.zeros(64, dtype=torch.bool, device=device)

    def train_step() -> None:
        inputs, masked = mask_batch(tokens, model.mask_token, "cosine", gen)
        loss, _ = maskgit_loss(wrapped(text_ids, inputs, drop), tokens, masked, weights, features, LossConfig())
        opt.zero_grad()
        loss.backward()
        opt.step()

    seconds = timed(train_step, 3, device)
    model.eval()
    return seconds


def run_benchmarks(model_path: str | None, device: torch.device, config: SamplerConfig | None = None,
                   threads: int = 0, repeats: int = 5, batches: tuple[int, ...] | None = None,
                   train_step: bool = True, compare: tuple[str, ...] = ()) -> dict:
    """Times the model at ``model_path`` (default: the shipped one) as the previous release sampled it
    (``BEFORE``) and with the sampler settings ``config`` (the shipped defaults when None), and each model of
    ``compare`` with ``config`` too, all interleaved; prints and returns numbers."""
    config = (config or SamplerConfig()).validate()
    if threads:
        torch.set_num_threads(threads)
    path = resolve_model_path(model_path)
    model = load_model(path, device=device)
    settings = [Setting("before", model, path.name, replace(config, steps=BEFORE.steps, precision=BEFORE.precision,
                                                            engine=BEFORE.engine)),
                Setting("default", model, path.name, config)]
    for other in map(Path, compare):
        settings.append(Setting(other.stem, load_model(other, device=device), other.name, config))
    batches = batches or (CUDA_BATCHES if device.type == "cuda" else CPU_BATCHES)
    results = sampling_table(settings, device, tuple(batches), repeats)
    results["prompt_encode_ms"] = round(timed(lambda: encode_prompt(model, PROMPT), 10, device) * 1000, 2)
    print(f"prompt encoding: {results['prompt_encode_ms']} ms")
    if train_step:
        results["train_step_batch64_s"] = round(training_step_seconds(model, device), 3)
        print(f"training step, batch 64: {results['train_step_batch64_s']} s")
    return results


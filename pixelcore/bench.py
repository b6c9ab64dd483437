"""Speed benchmark: prints sampling latency, batch throughput and training step time. Not a test."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch

from .checkpoint import default_model_path, load_model
from .losses import LossConfig, maskgit_loss, palette_features, token_weights
from .sampling import SamplerConfig, encode_prompt, sample
from .model import MaskedTokenModel
from .schedule import mask_batch

log = logging.getLogger(__name__)


def timed(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Mean seconds of ``repeats`` calls of ``fn`` after one warm-up call (CUDA work waited for)."""
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
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


def run_benchmarks(model_path: str | None, device: torch.device, config: SamplerConfig | None = None,
                   threads: int = 0) -> dict:
    """Measures the model at ``model_path`` (default: the shipped one) on ``device`` with the sampler settings
    ``config`` (the shipped ones when None); prints and returns numbers."""
    config = (config or SamplerConfig()).validate()
    if threads:
        torch.set_num_threads(threads)
    model = load_model(model_path or default_model_path(), device=device)
    gen = torch.Generator()
    cond1 = encode_prompt(model, "a blue diamond sword")

    def draw(batch_size: int) -> None:
        sample(model, cond1, config, batch_size=batch_size, generator=gen.manual_seed(0))

    one = timed(lambda: draw(1), 5, device)
    batch32 = timed(lambda: draw(32), 2, device)
    mflop = count_flops(lambda: draw(1)) / 1e6
    encode = timed(lambda: encode_prompt(model, "a blue diamond sword"), 10, device)

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

    step_time = timed(train_step, 3, device)
    results = {
        "device": str(device), "threads": torch.get_num_threads(), "steps": config.steps,
        "guidance_schedule": config.guidance_schedule, "params_M": round(model.num_params() / 1e6, 2),
        "mflop_per_image": round(mflop),
        "latency_1_image_ms": round(one * 1000, 1),
        "batch32_images_per_s": round(32 / batch32, 1),
        "prompt_encode_ms": round(encode * 1000, 2),
        "train_step_batch64_s": round(step_time, 3),
    }
    for key, value in results.items():
        print(f"{key:>24}: {value}")  # the benchmark's output is its result
    return results

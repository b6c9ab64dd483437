"""How the network runs while sampling: its number format and its engine, each checked against what the
device supports, falling back to plain fp32 eager decoding (with one log line) where it is not.

Precisions (``SamplerConfig.precision``):

- ``"fp32"``: the weights as loaded.
- ``"bf16"``: bf16 autocast of the matrix products (CUDA GPUs that support it; CPUs with native bf16 dot
  products, AVX512-BF16 or AMX, through oneDNN). Logits come back to fp32 before guidance and sampling.
- ``"int8"``: dynamic int8 quantisation of the Linear layers (``torch.ao.quantization.quantize_dynamic``):
  int8 weights, activations quantised per call. CPU only, with a quantised engine (x86, fbgemm, onednn or
  qnnpack). The convolutions, norms and attention stay fp32.
- ``"auto"``: :data:`AUTO_PRECISION` for the device type, where the device supports it, else fp32.

Engines (``SamplerConfig.engine``):

- ``"eager"``: one Python call of ``model.decode`` per pass.
- ``"graphs"``: CUDA graphs: each pass shape (batch, text length) is captured once per model and replayed,
  so a pass costs one launch instead of one per kernel (batch 1 on a GPU is launch-bound). CUDA only.
- ``"compile"``: ``torch.compile`` of ``model.decode`` (inductor; needs a C++ compiler on the CPU). Falls back
  to eager when compiling fails.
- ``"auto"``: graphs on CUDA once a model has stayed on its GPU between two calls (the first call on a
  model's weights runs eagerly: a one-off call, or a ComfyUI run that moves the model on and off the GPU
  each time, would pay for captures it never replays); eager elsewhere.

A :class:`Decoder` is built per ``sample`` call; what it caches (the int8 copy, the captured graphs, the
compiled function) is kept per model and rebuilt when the weights change.
"""

from __future__ import annotations

import itertools
import logging
import warnings
import weakref
from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import nn

from .model import PixelModel, TextStates

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "int8")
ENGINES = ("auto", "eager", "graphs", "compile")
# What "auto" means per device type, measured on the public prompts (docs/SPEED.md): on the CPU bf16 (where
# the CPU has native bf16) and int8 moved adherence less than seed noise, and bf16 was the faster of the two
# at batch 32.
AUTO_PRECISION = {"cpu": "bf16", "cuda": "bf16", "mps": "fp32"}
# Text lengths are padded up to a multiple of this for CUDA graphs, so prompts of similar length share a graph
# (a padded text position is masked out and changes no result).
GRAPH_TEXT_MULTIPLE = 16
# Graph shapes kept per model: (batch, text length) pairs; the oldest is dropped past this.
MAX_GRAPHS = 16
_warned: set[str] = set()
# Per model: what a Decoder built for it (int8 copy, graphs, compiled function), kept off the module so it is
# never saved, copied or moved with it.
_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CALLS = itertools.count()  # numbers each Decoder, so a graph knows when a new call's text must be copied in


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def cpu_has_native_bf16() -> bool:
    """True when oneDNN runs bf16 matrix products natively on this CPU (AVX512-BF16 or AMX); emulated bf16 is
    slower than fp32."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def int8_engine() -> str | None:
    """The quantised CPU engine dynamic int8 Linear layers run on, or None when this PyTorch has none."""
    engines = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    if not engines:
        return None
    current = torch.backends.quantized.engine
    return current if current in engines else engines[0]


def supports(precision: str, device: torch.device) -> bool:
    """Whether ``precision`` (not "auto") runs natively on ``device``."""
    if precision == "fp32":
        return True
    if precision == "bf16":
        if device.type == "cuda":
            return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return device.type == "cpu" and cpu_has_native_bf16()
    if precision == "int8":
        return device.type == "cpu" and int8_engine() is not None
    raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision a run on ``device`` uses: "auto" resolved, an unsupported one replaced by fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    wanted = AUTO_PRECISION.get(device.type, "fp32") if precision == "auto" else precision
    if supports(wanted, device):
        return wanted
    if precision != "auto":
        _warn_once(f"precision {precision} is not supported on {device} here: sampling in fp32")
    return "fp32"


def resolve_engine(engine: str, device: torch.device) -> str:
    """The engine a run on ``device`` uses: "auto" resolved, "graphs" off CUDA replaced by eager."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    if engine == "auto":
        return "graphs" if device.type == "cuda" else "eager"
    if engine == "graphs" and device.type != "cuda":
        _warn_once(f"CUDA graphs need a CUDA device, not {device}: decoding eagerly")
        return "eager"
    return engine


def _weights_version(model: nn.Module) -> tuple:
    """Changes when any parameter is replaced or updated in place (an optimizer step, ``load_state_dict``).

    Inference tensors (a model loaded under ``torch.inference_mode``, as ComfyUI runs its nodes) have no version
    counter; outside inference mode they cannot be updated in place, so their storage stands for them.
    """
    return tuple((p.data_ptr(), 0 if p.is_inference() else p._version) for p in model.parameters())


def _cache(model: PixelModel) -> dict:
    """The model's accelerator cache, emptied when its weights have changed since it was filled."""
    cache = _CACHES.setdefault(model, {})
    version = (_weights_version(model), model.device)
    if cache.get("version") != version:
        cache.clear()
        cache["version"] = version
    return cache


def quantized_int8(model: PixelModel) -> PixelModel:
    """A copy of ``model`` with dynamically quantised int8 Linear layers (cached while the weights stay)."""
    cache = _cache(model)
    if "int8" not in cache:
        engine = int8_engine()
        if engine is None:
            raise RuntimeError("this PyTorch has no quantised CPU engine")
        torch.backends.quantized.engine = engine
        with warnings.catch_warnings():  # torch.ao's quantised tensors are deprecated: one log line, not one each
            warnings.simplefilter("ignore")
            cache["int8"] = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    return cache["int8"]


def pad_text(text: TextStates, multiple: int) -> TextStates:
    """``text`` with its length padded up to a multiple of ``multiple`` (masked positions; no result changes)."""
    length = text.mask.shape[1]
    extra = -length % multiple
    if not extra:
        return text
    pad = torch.nn.functional.pad
    return TextStates([(pad(k, (0, 0, 0, extra)), pad(v, (0, 0, 0, extra))) for k, v in text.keys_values],
                      pad(text.mask, (0, extra)))


class _CudaGraph:
    """One captured ``decode`` pass for a fixed (batch, text length): static input buffers, replayed."""

    def __init__(self, decode: Callable, tokens: torch.Tensor, text: TextStates):
        self.tokens = tokens.clone()
        self.text = TextStates([(k.clone(), v.clone()) for k, v in text.keys_values], text.mask.clone())
        self.fed: tuple | None = None  # (the Decoder's call, the text it copied in)
        stream = torch.cuda.Stream(tokens.device)
        stream.wait_stream(torch.cuda.current_stream(tokens.device))
        with torch.cuda.stream(stream):  # warm-up off the main stream, as capture requires
            for _ in range(2):
                decode(self.tokens, self.text)
        torch.cuda.current_stream(tokens.device).wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = decode(self.tokens, self.text)

    def __call__(self, tokens: torch.Tensor, text: TextStates, call: int) -> torch.Tensor:
        """Replays the pass on ``tokens`` under ``text``; the text is copied in once per ``call`` (a freed and
        reused block of memory can give a later call's text the same address)."""
        self.tokens.copy_(tokens)
        fed = (call, id(text))
        if fed != self.fed:
            for (k_static, v_static), (k, v) in zip(self.text.keys_values, text.keys_values):
                k_static.copy_(k)
                v_static.copy_(v)
            self.text.mask.copy_(text.mask)
            self.fed = fed
        self.graph.replay()
        return self.logits  # valid until the next replay, which overwrites it


class Decoder:
    """``decoder(tokens, text) -> logits`` (B, G, G, V) in fp32 for one ``sample`` call, in the precision and
    on the engine asked for where the device supports them. ``text_states`` encodes the text stream in the
    same precision; ``eager`` is the plain path, for passes of one-off shapes (the stray-hole round)."""

    def __init__(self, model: PixelModel, precision: str = "auto", engine: str = "auto"):
        self.model = model
        device = model.device
        self.precision = resolve_precision(precision, device)
        self.engine = resolve_engine(engine, device)
        if self.precision == "int8" and self.engine != "eager":
            _warn_once("int8 decoding runs eagerly: quantised Linear layers are not captured or compiled here")
            self.engine = "eager"
        self._network = model
        if self.precision == "int8":
            try:
                self._network = quantized_int8(model)
            except Exception as err:  # noqa: BLE001 - torch.ao is deprecated: a later PyTorch may lack any part
                _warn_once(f"int8 quantisation failed ({type(err).__name__}: {err}): sampling in fp32")
                self.precision = "fp32"
        self._cache = _cache(model)
        if engine == "auto" and self.engine == "graphs" and not self._cache.get("called"):
            self.engine = "eager"
        self._cache["called"] = True
        self._call = next(_CALLS)
        self._padded: dict[tuple, TextStates] = {}  # the text this call pads for its graphs, by its rows
        self._compiled = self._compile() if self.engine == "compile" else None

    def text_states(self, cond: torch.Tensor, cond_mask: torch.Tensor) -> TextStates:
        with self._autocast_context():
            return self.model.text_states(cond, cond_mask)

    def _autocast_context(self):
        if self.precision != "bf16":
            return nullcontext()
        # No cast cache: a captured graph must not read casts freed when the context ends (and one pass uses
        # each weight once, so the cache saves nothing).
        return torch.autocast(self.model.device.type, dtype=torch.bfloat16, cache_enabled=False)

    def eager(self, tokens: torch.Tensor, text: TextStates) -> torch.Tensor:
        with self._autocast_context():
            return self._network.decode(tokens, text).float()

    def __call__(self, tokens: torch.Tensor, text: TextStates) -> torch.Tensor:
        if self.engine == "graphs":
            try:
                return self._graphed(tokens, text)
            except RuntimeError as err:  # capture refused (e.g. an op that syncs): eager from here on
                _warn_once(f"CUDA graph capture failed ({err}): decoding eagerly")
                self.engine = "eager"
        if self._compiled is not None:
            try:
                with self._autocast_context():
                    return self._compiled(tokens, text).float()
            except Exception as err:  # noqa: BLE001 - inductor raises many kinds; eager always works
                _warn_once(f"torch.compile failed ({type(err).__name__}: {str(err)[:200]}): decoding eagerly")
                self._compiled = None
                self._cache.pop("compiled", None)
        return self.eager(tokens, text)

    def _compile(self) -> Callable | None:
        cache = self._cache
        if "compiled" not in cache:
            try:
                cache["compiled"] = torch.compile(self._network.decode, dynamic=False)
            except Exception as err:  # noqa: BLE001 - no inductor, no compiler, an unsupported Python
                _warn_once(f"torch.compile is not available ({type(err).__name__}: {err}): decoding eagerly")
                return None
        return cache["compiled"]

    def _graphed(self, tokens: torch.Tensor, text: TextStates) -> torch.Tensor:
        rows = (text.mask.data_ptr(), tuple(text.mask.shape))  # the same rows of the call's text every round
        if rows not in self._padded:
            self._padded[rows] = pad_text(text, GRAPH_TEXT_MULTIPLE)
        text = self._padded[rows]
        graphs = self._cache.setdefault("graphs", {})
        key = (tuple(tokens.shape), len(text), text.mask.shape[1], self.precision)
        if key not in graphs:
            if len(graphs) >= MAX_GRAPHS:
                graphs.pop(next(iter(graphs)))
            graphs[key] = _CudaGraph(self.eager, tokens, text)
        return graphs[key](tokens, text, self._call)

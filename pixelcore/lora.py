"""LoRA adapters and learned words for a frozen PixelCore model: what an adapter is, and its file.

An adapter adds a low-rank change ``(alpha / rank) * up @ down`` to chosen weight matrices of a base model
(the image transformer's attention and MLP projections, optionally the builtin text encoder's) and may bring
new words: one or more learned vectors per word, which the text encoder reads wherever the word occurs in a
prompt (textual inversion). Each word borrows vocabulary rows of the BPE's rarest merges, counted down from
just below the special tokens; no texture prompt produces those pieces in practice.

The file (``Adapter.save``, ``load_adapter``) holds the factors and vectors, and names its base model by a
hash of the base's tensors (``base_hash``), its rank, alpha, targets and words. Putting an adapter on a model
(apply, remove, merge) is ``lora_apply``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

import safetensors
from safetensors import safe_open

from .checkpoint import PALETTE_KEY, release_state_dict, write_safetensors
from .model import PixelModel

log = logging.getLogger(__name__)

FORMAT = "pixelcore-lora"
FORMAT_VERSION = 1
# Target groups: the weights an adapter may change, by the end of their names inside a transformer block.
TARGET_GROUPS = {
    "attn": ("attn.qkv.weight", "attn.proj.weight"),  # image blocks
    "mlp": ("mlp.0.weight", "mlp.2.weight"),
    "text_attn": ("attn.in_proj_weight", "attn.out_proj.weight"),  # builtin text encoder blocks
    "text_mlp": ("mlp.c_fc.weight", "mlp.c_proj.weight"),
}
_BLOCK_PREFIX = {"attn": "blocks.", "mlp": "blocks.", "text_attn": "text_encoder.transformer.transformer.resblocks.",
                 "text_mlp": "text_encoder.transformer.transformer.resblocks."}
DEFAULT_TARGETS = ("attn", "mlp")
TEXT_TARGETS = ("text_attn", "text_mlp")
MAX_RANK = 256
MAX_WORD_VECTORS = 8
WORDS_KEY = "words"
_EMBEDDING = "text_encoder.transformer.token_embedding"
_WORD_RE = re.compile(r"^\S(.*\S)?$")
# Older safetensors releases do not export their error type at the top level.
_SafetensorError = getattr(safetensors, "SafetensorError", OSError)


class AdapterError(ValueError):
    """An adapter file that cannot be used (on this model); the message names the file and what is wrong."""


@dataclass
class LoraConfig:
    """What an adapter changes: its rank, scale, target groups and new words."""

    rank: int = 8
    alpha: float = 8.0  # the change is scaled by alpha / rank
    targets: tuple[str, ...] = DEFAULT_TARGETS
    words: tuple[str, ...] = ()
    word_vectors: int = 1  # learned vectors per new word

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def validate(self) -> None:
        if not isinstance(self.rank, int) or not 1 <= self.rank <= MAX_RANK:
            raise ValueError(f"rank must be an integer in 1..{MAX_RANK}, got {self.rank!r}")
        if not math.isfinite(self.alpha) or self.alpha <= 0:
            raise ValueError(f"alpha must be a positive number, got {self.alpha!r}")
        unknown = [t for t in self.targets if t not in TARGET_GROUPS]
        if unknown or not (self.targets or self.words):
            raise ValueError(f"targets must be some of {', '.join(TARGET_GROUPS)} (or none, with --word), "
                             f"got {list(self.targets)}")
        if not isinstance(self.word_vectors, int) or not 1 <= self.word_vectors <= MAX_WORD_VECTORS:
            raise ValueError(f"word_vectors must be an integer in 1..{MAX_WORD_VECTORS}, got {self.word_vectors!r}")
        for word in self.words:
            if not isinstance(word, str) or not _WORD_RE.match(word) or len(word) > 40:
                raise ValueError(f"a new word must be 1-40 characters without spaces at its ends, got {word!r}")
        if len({w.lower() for w in self.words}) != len(self.words):
            raise ValueError(f"the new words repeat one another: {list(self.words)}")


def target_names(model: PixelModel, targets: tuple[str, ...]) -> list[str]:
    """The names of the model's weights that the target groups select, in the model's order."""
    if any(t in TEXT_TARGETS for t in targets) and model.config.text_encoder != "builtin":
        raise ValueError("text-encoder targets need the builtin text encoder; this model uses "
                         f"{model.config.text_encoder!r}")
    patterns = [re.compile(rf"{re.escape(_BLOCK_PREFIX[t])}\d+\.{re.escape(end)}") for t in targets
                for end in TARGET_GROUPS[t]]
    return [name for name, _ in _base_parameters(model) if any(p.fullmatch(name) for p in patterns)]


def _base_parameters(model: nn.Module):
    """(name, tensor) of the model's own weights: a parametrized weight by its original, under its plain name."""
    for name, p in model.named_parameters():
        if ".parametrizations." in name:
            if not name.endswith(".original"):
                continue  # an adapter's own factors
            module, rest = name.split(".parametrizations.", 1)
            name = f"{module}.{rest[:-len('.original')]}"
        yield name, p


def base_hash(model: PixelModel) -> str:
    """A content hash of the base model an adapter is made for: its config, palette and weights.

    The weights are hashed as float16, so a model and its fp16 export (``python -m pixelcore export``) have the
    same hash and share adapters; any change of a weight beyond fp16 rounding (another fine-tune, an average, a
    bf16 export) gives another hash. Weights of applied adapters do not count; a merged copy keeps the hash of
    the base it was merged from.
    """
    recorded = getattr(model, "lora_base_hash", None)
    if recorded:
        return recorded
    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    digest.update(model.palette.colors.cpu().contiguous().numpy().tobytes())
    state = dict(_base_parameters(model))
    state.update({k: v for k, v in release_state_dict(model).items()
                  if ".parametrizations." not in k and k not in state})
    for key in sorted(state):
        if key == PALETTE_KEY or key.startswith("text_encoder.clip."):
            continue
        tensor = state[key].detach().cpu()
        tensor = tensor.half() if tensor.is_floating_point() else tensor
        digest.update(key.encode())
        digest.update(tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + digest.hexdigest()[:32]


class LoraPair(nn.Module):
    """The two factors of one weight's change: up (out, rank) @ down (rank, in)."""

    def __init__(self, out_features: int, in_features: int, rank: int):
        super().__init__()
        self.down = nn.Parameter(torch.empty(rank, in_features))
        self.up = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.down, a=math.sqrt(5))  # as nn.Linear; up = 0, so a new adapter changes nothing


@dataclass
class AdapterInfo:
    """What an adapter file says about itself besides its tensors."""

    base: str  # base_hash of the model it was made for
    trigger_words: list[str] = field(default_factory=list)
    training: dict = field(default_factory=dict)


class Adapter(nn.Module):
    """An adapter's tensors: a ``LoraPair`` per target weight and ``word_vectors`` vectors per new word."""

    def __init__(self, config: LoraConfig, shapes: dict[str, tuple[int, int]], word_width: int, info: AdapterInfo):
        super().__init__()
        config.validate()
        self.config, self.info, self.weight_names = config, info, list(shapes)
        self.pairs = nn.ModuleList(LoraPair(out, inp, config.rank) for out, inp in shapes.values())
        n_vectors = len(config.words) * config.word_vectors
        self.words = nn.Parameter(torch.zeros(n_vectors, word_width)) if n_vectors else None
        self.name = "adapter"

    @classmethod
    def create(cls, model: PixelModel, config: LoraConfig, trigger_words: list[str] | None = None) -> Adapter:
        """A new adapter for ``model`` that changes nothing yet (up factors zero); words start from the mean
        embedding of the pieces the tokenizer would split them into."""
        config.validate()
        if config.words and model.config.text_encoder != "builtin":
            raise ValueError("new words need the builtin text encoder")
        params = dict(_base_parameters(model))
        shapes = {name: tuple(params[name].shape) for name in target_names(model, config.targets)}
        width = model.config.text_width
        adapter = cls(config, shapes, width, AdapterInfo(base_hash(model), list(trigger_words or config.words)))
        if adapter.words is not None:
            encoder = model.text_encoder
            table = params[f"{_EMBEDDING}.weight"].detach()
            with torch.no_grad():
                for i, word in enumerate(config.words):
                    pieces = encoder.tokenizer.encode(word.lower()) or [encoder.tokenizer.eot_token_id]
                    rows = slice(i * config.word_vectors, (i + 1) * config.word_vectors)
                    adapter.words[rows] = table[pieces].mean(0).cpu()
        return adapter

    def tensors(self, dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
        out = {}
        for name, pair in zip(self.weight_names, self.pairs):
            out[f"lora.{name}.down"] = pair.down.detach().to("cpu", dtype).contiguous()
            out[f"lora.{name}.up"] = pair.up.detach().to("cpu", dtype).contiguous()
        if self.words is not None:
            out[WORDS_KEY] = self.words.detach().to("cpu", dtype).contiguous()
        return out

    def save(self, path: str | Path, dtype: torch.dtype = torch.float16) -> Path:
        """Writes the adapter file atomically; factors and vectors in ``dtype`` (fp16 halves the file)."""
        metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "base_model": self.info.base,
                    "rank": str(self.config.rank), "alpha": repr(float(self.config.alpha)),
                    "targets": json.dumps(list(self.config.targets)),
                    "words": json.dumps(list(self.config.words), ensure_ascii=False),
                    "word_vectors": str(self.config.word_vectors),
                    "trigger_words": json.dumps(self.info.trigger_words, ensure_ascii=False),
                    "training": json.dumps(self.info.training, ensure_ascii=False)}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return write_safetensors(self.tensors(dtype), path, metadata)


def _fail(path: Path, message: str) -> AdapterError:
    return AdapterError(f"{path}: {message}")


def _read(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    if not path.is_file():
        raise _fail(path, "no such adapter file; check the path")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != FORMAT:
                hint = (" it is a PixelCore model, not an adapter: give it as the model" if
                        metadata.get("format") == "pixelcore" else " make one with 'python -m pixelcore lora train'")
                raise _fail(path, f"not a PixelCore LoRA adapter (format {metadata.get('format')!r});{hint}")
            return metadata, {k: f.get_tensor(k) for k in f.keys()}
    except (_SafetensorError, OSError, RuntimeError) as err:
        raise _fail(path, f"not a readable .safetensors file ({err}); it may be truncated or another format") from err


def _config_from(path: Path, metadata: dict[str, str]) -> LoraConfig:
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        version = -1
    if not 1 <= version <= FORMAT_VERSION:
        raise _fail(path, f"adapter format version {metadata.get('format_version')!r} is not supported (this "
                          f"PixelCore reads 1..{FORMAT_VERSION}); update PixelCore")
    try:
        config = LoraConfig(rank=int(metadata["rank"]), alpha=float(metadata["alpha"]),
                            targets=tuple(json.loads(metadata["targets"])),
                            words=tuple(json.loads(metadata.get("words", "[]"))),
                            word_vectors=int(metadata.get("word_vectors", "1")))
        config.validate()
        if not metadata.get("base_model", "").startswith("sha256:"):
            raise ValueError("no base_model hash")
    except (KeyError, TypeError, ValueError) as err:  # json errors are ValueErrors
        raise _fail(path, f"invalid adapter metadata ({err})") from err
    return config


def load_adapter(path: str | Path, model: PixelModel | None = None) -> Adapter:
    """Reads and validates an adapter file (format, version, metadata, tensor names, shapes, dtypes, finite
    values); with ``model``, also checks that it was made for that base model.

    Raises:
        AdapterError: naming the file, for anything that makes it unusable.
    """
    path = Path(path)
    metadata, tensors = _read(path)
    config = _config_from(path, metadata)
    names = sorted({k[len("lora."):-len(".down")] for k in tensors if k.startswith("lora.") and k.endswith(".down")})
    expected = {f"lora.{n}.{part}" for n in names for part in ("down", "up")}
    if config.words:
        expected.add(WORDS_KEY)
    if set(tensors) != expected or not (names or config.words):
        raise _fail(path, f"tensors do not match an adapter: missing {sorted(expected - set(tensors))[:4]}, "
                          f"unexpected {sorted(set(tensors) - expected)[:4]}")
    shapes = {}
    for key, tensor in tensors.items():
        if tensor.dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise _fail(path, f"{key} has dtype {tensor.dtype}, expected a float type")
        if not torch.isfinite(tensor).all():
            raise _fail(path, f"{key} holds NaN or infinite values; the adapter is broken")
    for name in names:
        down, up = tensors[f"lora.{name}.down"], tensors[f"lora.{name}.up"]
        if down.dim() != 2 or up.dim() != 2 or down.shape[0] != config.rank or up.shape[1] != config.rank:
            raise _fail(path, f"{name}: factors of shapes {tuple(up.shape)} @ {tuple(down.shape)} do not have "
                              f"rank {config.rank}")
        shapes[name] = (up.shape[0], down.shape[1])
    words = tensors.get(WORDS_KEY)
    if words is not None and (words.dim() != 2 or len(words) != len(config.words) * config.word_vectors):
        raise _fail(path, f"{WORDS_KEY} has shape {tuple(words.shape)}, expected "
                          f"({len(config.words) * config.word_vectors}, width)")
    try:
        info = AdapterInfo(metadata["base_model"], list(json.loads(metadata.get("trigger_words", "[]"))),
                           dict(json.loads(metadata.get("training", "{}"))))
    except (TypeError, ValueError) as err:
        raise _fail(path, f"invalid adapter metadata ({err})") from err
    adapter = Adapter(config, shapes, 0 if words is None else words.shape[1], info)
    with torch.no_grad():
        for name, pair in zip(adapter.weight_names, adapter.pairs):
            pair.down.copy_(tensors[f"lora.{name}.down"].float())
            pair.up.copy_(tensors[f"lora.{name}.up"].float())
        if words is not None:
            adapter.words.copy_(words.float())
    adapter.name = path.stem
    adapter.requires_grad_(False)
    if model is not None:
        check_adapter(adapter, model, path)
    log.info("loaded adapter %s (rank %d, %d weights, words %s)", path.name, config.rank, len(names),
             list(config.words))
    return adapter


def check_adapter(adapter: Adapter, model: PixelModel, path: str | Path | None = None) -> None:
    """Raises AdapterError unless ``adapter`` was made for ``model`` (its base hash, weights and widths)."""
    where = Path(path) if path is not None else Path(adapter.name)
    have = base_hash(model)
    if adapter.info.base != have:
        raise _fail(where, f"made for another base model ({adapter.info.base}); this model is {have}. Use the "
                           "model the adapter was trained on, or train the adapter again on this one")
    params = dict(_base_parameters(model))
    for name, pair in zip(adapter.weight_names, adapter.pairs):
        if name not in params or tuple(params[name].shape) != (pair.up.shape[0], pair.down.shape[1]):
            raise _fail(where, f"{name} does not match this model's weights")
    if adapter.words is not None:
        if model.config.text_encoder != "builtin" or adapter.words.shape[1] != model.config.text_width:
            raise _fail(where, "its words do not fit this model's text encoder")

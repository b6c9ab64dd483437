"""Release checkpoints: one ``.safetensors`` file with weights, palette, config and format version.

The file holds no pickle; loading validates format, config, keys, shapes, dtypes, a content checksum and
finite values, and names the file in every error. Training state (optimizer, step) lives in a separate resume
file (see ``train``). Weights of a frozen pretrained open_clip text tower are not stored: the config names the
architecture, and whoever loads the model names the local weights file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from pathlib import Path

import torch
import safetensors
from safetensors import safe_open
from safetensors.torch import save_file

from .files import atomic_write
from .model import PixelConfig, PixelModel
from .palette import Palette

log = logging.getLogger(__name__)

FORMAT = "pixelcore"
FORMAT_VERSION = 1
PALETTE_KEY = "palette"
_FROZEN_PREFIX = "text_encoder.clip."  # pretrained open_clip weights: never stored, the loader names their file
_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# safetensors' names of the dtypes a release file may hold.
_DTYPE_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.uint8: "U8",
                torch.int64: "I64", torch.int32: "I32", torch.bool: "BOOL"}
_FLOAT_NAMES = ("F32", "F16", "BF16")
CHECKSUM_KEY = "checksum"
# A release file's header is a few kilobytes per hundred tensors; a config is under one kilobyte.
MAX_HEADER_BYTES = 16 * 2**20
MAX_CONFIG_CHARS = 64 * 1024
# Older safetensors releases do not export their error type at the top level.
_SafetensorError = getattr(safetensors, "SafetensorError", OSError)


class CheckpointError(ValueError):
    """A model file that cannot be used; the message names the file and what is wrong."""


def default_model_path() -> Path:
    """The shipped default model (the only one shipped: a distilled fast model was measured and not shipped,
    docs/SPEED.md)."""
    return Path(__file__).resolve().parent / "weights" / "pixelcore_default.safetensors"


def resolve_model_path(model: str | Path | None) -> Path:
    """The file a ``--model`` value names: None or "default" the shipped model, anything else a path."""
    return default_model_path() if model is None or str(model) == "default" else Path(model)


def release_state_dict(model: PixelModel) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if not k.startswith(_FROZEN_PREFIX)}


def save_model(model: PixelModel, path: str | Path, dtype: torch.dtype = torch.float32,
               extra_metadata: dict | None = None) -> Path:
    """Writes the release file atomically (a temp file renamed into place), float weights in ``dtype``.

    The metadata carries a ``checksum`` of the config and every tensor (see ``content_checksum``), so that
    ``load_model`` can tell an edited or damaged file from the one written here.
    """
    if dtype not in _FLOAT_DTYPES:
        raise ValueError(f"weights are stored as float32, float16 or bfloat16, not {dtype}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous()
               for k, v in release_state_dict(model).items()}
    tensors[PALETTE_KEY] = model.palette.colors.contiguous()
    config = json.dumps(model.config.to_dict())
    metadata = {}
    for key, value in (extra_metadata or {}).items():
        metadata[key] = value if isinstance(value, str) else json.dumps(value)
    metadata.update({"format": FORMAT, "format_version": str(FORMAT_VERSION), "config": config,
                     CHECKSUM_KEY: content_checksum(config, tensors)})
    return write_safetensors(tensors, path, metadata)


def content_checksum(config: str, tensors: dict[str, torch.Tensor]) -> str:
    """``sha256:<hex>`` over the config JSON and, in key order, each tensor's name, dtype, shape and bytes.

    The config is part of it because a config edit that keeps every shape (another ``n_head``) changes the
    model as surely as a flipped bit; the dtype is because the same bytes read as float16 or bfloat16 are
    different weights.
    """
    digest = hashlib.sha256(config.encode("utf-8", "surrogatepass"))
    for key in sorted(tensors):
        tensor = tensors[key].detach().cpu().contiguous()
        digest.update(f"\0{key}\0{_DTYPE_NAMES.get(tensor.dtype, tensor.dtype)}\0{list(tensor.shape)}\0"
                      .encode("utf-8", "surrogatepass"))
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + digest.hexdigest()


def read_safetensors(path: str | Path, fmt: str, what: str) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """Reads (metadata, tensors) of a .safetensors file whose ``format`` metadata must be ``fmt``.

    Raises:
        ValueError: naming the file and ``what`` it should have been, when the format differs.
    """
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        if metadata.get("format") != fmt:
            raise ValueError(f"{path}: not {what} (format {metadata.get('format')!r})")
        return metadata, {k: f.get_tensor(k) for k in f.keys()}


def write_safetensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]) -> Path:
    """Writes a .safetensors file atomically: a temp file beside it, renamed into place; no partial file."""
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def _check_file(path: Path) -> None:
    """Refuses what is not a regular file of a plausible .safetensors header, before safetensors reads it."""
    try:
        if path.is_dir():
            raise CheckpointError(f"{path}: a folder, not a model file; pick a .safetensors file")
        if not path.is_file():
            raise CheckpointError(f"{path}: no such model file; check the path or pick another model")
        with open(path, "rb") as f:
            head = f.read(8)
            size = os.fstat(f.fileno()).st_size
    except OSError as err:  # a name too long, a permission, an I/O error
        raise CheckpointError(f"{path}: cannot open the model file ({err.strerror or err})") from err
    header = int.from_bytes(head, "little") if len(head) == 8 else -1
    if not 2 <= header <= min(MAX_HEADER_BYTES, size - 8):
        detail = (f"its header claims {header:,} bytes" if header > MAX_HEADER_BYTES
                  else "the file is empty, truncated or another format")
        raise CheckpointError(f"{path}: not a readable .safetensors file ({detail}); it may be truncated, "
                              "corrupt or another format (pickled .pt/.ckpt files are not accepted)")


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a checkpoint, validated for format and version.

    Raises:
        CheckpointError: naming the file, when it is missing, unreadable, not a PixelCore model or of a format
            version this PixelCore does not read.
    """
    path = Path(path)
    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (_SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: not a readable .safetensors file ({str(err)[:200]}); it may be "
                              "truncated, corrupt or another format (pickled .pt/.ckpt files are not accepted)"
                              ) from err
    return _check_format(path, metadata)


def _check_format(path: Path, metadata: dict[str, str]) -> dict[str, str]:
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: a .safetensors file but not a PixelCore model (format "
                              f"{str(metadata.get('format'))[:40]!r}); train one with 'python -m pixelcore train'")
    version = metadata.get("format_version", "")
    # Plain ASCII digits only: int() would also take "+1", " 1" and full-width digits.
    if not (re.fullmatch(r"[0-9]{1,6}", version) and 1 <= int(version) <= FORMAT_VERSION):
        raise CheckpointError(f"{path}: format version {version[:40]!r} is not supported "
                              f"(this PixelCore reads 1..{FORMAT_VERSION}); update PixelCore")
    return metadata


def _read_config(path: Path, metadata: dict[str, str]) -> PixelConfig:
    """The config of the metadata, parsed and validated (sizes, ranges, the parameter cap) without building."""
    text = metadata.get("config", "")
    if len(text) > MAX_CONFIG_CHARS:
        raise CheckpointError(f"{path}: config is {len(text):,} characters long, more than {MAX_CONFIG_CHARS:,}")
    try:
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError(f"the config is a JSON {type(values).__name__}, not an object")
        config = PixelConfig.from_dict(values)
        config.validate()
    except RecursionError as err:
        raise CheckpointError(f"{path}: invalid config (nested too deeply)") from err
    except (ValueError, TypeError) as err:  # json errors are ValueErrors
        raise CheckpointError(f"{path}: invalid config ({str(err)[:300]})") from err
    return config


def _check_header(path: Path, f, expected: dict[str, torch.Tensor]) -> str:
    """Compares the file's tensor names, shapes and dtypes (its header only) with ``expected``.

    Returns:
        The name of the float dtype every float tensor is stored in (``save_model`` writes them in one).
    """
    keys = set(f.keys())
    missing, unexpected = sorted(set(expected) - keys), sorted(keys - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the config: missing {missing[:5]}, "
                              f"unexpected {[k[:80] for k in unexpected[:5]]}")
    float_dtypes = set()
    for key, want in expected.items():
        part = f.get_slice(key)
        shape, dtype = tuple(part.get_shape()), part.get_dtype()
        if shape != tuple(want.shape):
            raise CheckpointError(f"{path}: {key} has shape {shape}, expected {tuple(want.shape)}")
        if want.is_floating_point():
            if dtype not in _FLOAT_NAMES:
                raise CheckpointError(f"{path}: {key} has dtype {dtype}, expected a float type "
                                      f"({', '.join(_FLOAT_NAMES)})")
            float_dtypes.add(dtype)
        elif dtype != _DTYPE_NAMES[want.dtype]:
            raise CheckpointError(f"{path}: {key} has dtype {dtype}, expected {_DTYPE_NAMES[want.dtype]}")
    if len(float_dtypes) > 1:
        odd = sorted(float_dtypes)
        raise CheckpointError(f"{path}: float weights are stored in {' and '.join(odd)}; a PixelCore model "
                              "stores them all in one dtype, so its header has been edited")
    return float_dtypes.pop() if float_dtypes else ""


def _read_tensors(path: Path, f) -> dict[str, torch.Tensor]:
    try:
        return {k: f.get_tensor(k) for k in f.keys()}
    except (_SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: could not read the tensors ({str(err)[:200]}); the file may be "
                              "truncated") from err


def _verify_checksum(path: Path, metadata: dict[str, str], tensors: dict[str, torch.Tensor]) -> None:
    stored = metadata.get(CHECKSUM_KEY)
    if stored is None:
        log.info("%s has no checksum (written by an older PixelCore): its weights are checked for shapes, "
                 "dtypes and finite values only", path.name)
        return
    if stored != content_checksum(metadata.get("config", ""), tensors):
        raise CheckpointError(f"{path}: checksum mismatch: the weights or the config are not the ones this file "
                              "was saved with (a damaged download or an edited file); get a good copy")


def _check_values(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{path}: {key} holds NaN or infinite values; the model is broken")


def _read_palette(path: Path, f) -> Palette:
    if PALETTE_KEY not in set(f.keys()):
        raise CheckpointError(f"{path}: no palette stored in the model")
    part = f.get_slice(PALETTE_KEY)
    shape, dtype = tuple(part.get_shape()), part.get_dtype()
    if dtype != "U8" or len(shape) != 2 or shape[1] != 4 or not 2 <= shape[0] <= 256:
        raise CheckpointError(f"{path}: palette has dtype {dtype} and shape {shape}, expected U8 (K, 4) with "
                              "K in 2..256")
    try:
        return Palette(f.get_tensor(PALETTE_KEY))
    except (_SafetensorError, ValueError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path}: invalid palette ({err})") from err


def _build(path: Path, config: PixelConfig, palette: Palette, clip_weights: str | Path | None) -> PixelModel:
    if config.text_encoder == "open_clip" and clip_weights is None:
        raise CheckpointError(f"{path}: uses the pretrained open_clip text encoder {config.clip_model!r}: give "
                              "its local weights file (clip_weights); PixelCore never downloads weights and "
                              "never takes a weights path from a model file")
    try:
        return PixelModel(config, palette, clip_weights=clip_weights)
    except (ValueError, TypeError, RuntimeError, AssertionError) as err:
        raise CheckpointError(f"{path}: invalid config or palette ({str(err)[:300]})") from err


def load_model(path: str | Path, device: torch.device | str = "cpu",
               clip_weights: str | Path | None = None) -> PixelModel:
    """Loads and validates a release checkpoint; weights come back as float32 on ``device``.

    Everything a stranger's file could get wrong is checked before it costs memory: the config's fields and
    the size of the network it describes before anything is built, every tensor's name, shape and dtype
    against that network before any weight is read, then the checksum (files written without one are
    accepted, with a log line) and finite values.

    Args:
        path: the ``.safetensors`` file.
        device: where the model goes.
        clip_weights: the local weights file of a pretrained open_clip text encoder, for models that use one;
            nothing is ever downloaded, and a path or tag inside the file is never used.

    Raises:
        CheckpointError: naming the file, for anything that makes it unusable.
    """
    path = Path(path)
    _check_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = _check_format(path, f.metadata() or {})
            config = _read_config(path, metadata)
            model = _build(path, config, _read_palette(path, f), clip_weights)
            _check_header(path, f, {**release_state_dict(model), PALETTE_KEY: model.palette.colors})
            tensors = _read_tensors(path, f)
    except (_SafetensorError, OSError, RuntimeError) as err:
        raise CheckpointError(f"{path}: not a readable .safetensors file ({str(err)[:200]}); it may be "
                              "truncated, corrupt or another format (pickled .pt/.ckpt files are not accepted)"
                              ) from err
    _verify_checksum(path, metadata, tensors)
    _check_values(path, tensors)
    tensors.pop(PALETTE_KEY)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()},
                          strict=False)
    log.info("loaded %s (%.1fM parameters, %d colours)", path.name, model.num_params() / 1e6, len(model.palette))
    return model.to(device).eval()


def export_model(src: str | Path, dst: str | Path, dtype: torch.dtype = torch.float16) -> Path:
    """Re-writes a checkpoint with float weights in ``dtype`` (fp16 for release), keeping its metadata."""
    return save_model(load_model(src), dst, dtype=dtype, extra_metadata=_carried_metadata(src))


def _carried_metadata(path: str | Path) -> dict[str, str]:
    """A file's metadata minus what ``save_model`` writes itself (format, version, config, checksum)."""
    return {k: v for k, v in read_metadata(path).items()
            if k not in ("format", "format_version", "config", CHECKSUM_KEY)}


def average_models(paths: list[str | Path], dst: str | Path, dtype: torch.dtype = torch.float16,
                   weights: list[float] | None = None) -> Path:
    """Writes the average of the weights of several checkpoints of one lineage (same config and palette).

    Averaging the last checkpoints of a small-batch run smooths the step-to-step noise of its weights (as
    stochastic weight averaging does). ``weights`` (one per file, any positive scale) makes it a weighted
    average, e.g. of a model and its own fine-tune. The metadata keeps the last file's training record and
    lists the sources (and the normalised weights, when given).

    Raises:
        CheckpointError: for fewer than two files, a weight list of the wrong length or with a negative,
            non-finite or all-zero weight, or files whose config or palette differ (naming them).
    """
    if len(paths) < 2:
        raise CheckpointError(f"averaging needs at least two checkpoints, got {len(paths)}")
    if weights is not None:
        if len(weights) != len(paths):
            raise CheckpointError(f"got {len(weights)} weights for {len(paths)} checkpoints: give one per file")
        if not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
            raise CheckpointError(f"weights must be finite, non-negative and not all zero, got {weights}")
    coefficients = torch.tensor(weights if weights is not None else [1.0] * len(paths), dtype=torch.float64)
    coefficients = coefficients / coefficients.sum()
    models = [load_model(p) for p in paths]
    first = models[0]
    for path, model in zip(paths[1:], models[1:]):
        if model.config != first.config or not torch.equal(model.palette.colors, first.palette.colors):
            raise CheckpointError(f"{path}: its config or palette differs from {paths[0]}: only checkpoints of "
                                  "one run, or of a model and its fine-tunes, can be averaged")
    states = [m.state_dict() for m in models]

    def mean(key: str) -> torch.Tensor:
        stacked = torch.stack([s[key].double() for s in states])
        return (coefficients.view(-1, *[1] * (stacked.dim() - 1)) * stacked).sum(0).to(states[0][key].dtype)

    first.load_state_dict({key: mean(key) if value.is_floating_point() else value
                           for key, value in states[0].items()})
    extra = _carried_metadata(paths[-1])
    extra["averaged_from"] = json.dumps([Path(p).name for p in paths])
    if weights is not None:
        extra["averaged_weights"] = json.dumps([round(float(c), 6) for c in coefficients])
    return save_model(first, dst, dtype=dtype, extra_metadata=extra)

"""Release checkpoints: one ``.safetensors`` file with weights, palette, config and format version.

The file holds no pickle; loading validates format, keys, shapes, dtypes and finite values and names the
file in every error. Training state (optimizer, step) lives in a separate resume file (see ``train``).
Weights of a frozen pretrained open_clip text tower are not stored: the config names them instead.
"""

from __future__ import annotations

import json
import logging
import math
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
_FROZEN_PREFIX = "text_encoder.clip."  # pretrained open_clip weights, named by config, never stored
_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
# Older safetensors releases do not export their error type at the top level.
_SafetensorError = getattr(safetensors, "SafetensorError", OSError)


class CheckpointError(ValueError):
    """A model file that cannot be used; the message names the file and what is wrong."""


def default_model_path() -> Path:
    """The shipped default model."""
    return Path(__file__).resolve().parent / "weights" / "pixelcore_default.safetensors"


def release_state_dict(model: PixelModel) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if not k.startswith(_FROZEN_PREFIX)}


def save_model(model: PixelModel, path: str | Path, dtype: torch.dtype = torch.float32,
               extra_metadata: dict | None = None) -> Path:
    """Writes the release file atomically (a temp file renamed into place), float weights in ``dtype``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous()
               for k, v in release_state_dict(model).items()}
    tensors[PALETTE_KEY] = model.palette.colors.contiguous()
    metadata = {"format": FORMAT, "format_version": str(FORMAT_VERSION),
                "config": json.dumps(model.config.to_dict())}
    for key, value in (extra_metadata or {}).items():
        metadata[key] = value if isinstance(value, str) else json.dumps(value)
    return write_safetensors(tensors, path, metadata)


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


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a checkpoint, validated for format and version."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file; check the path or pick another model")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (_SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable .safetensors file ({err}); it may be truncated, "
                              "corrupt or another format (pickled .pt/.ckpt files are not accepted)") from err
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: a .safetensors file but not a PixelCore model (format "
                              f"{metadata.get('format')!r}); train one with 'python -m pixelcore train'")
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        version = -1
    if not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {metadata.get('format_version')!r} is not supported "
                              f"(this PixelCore reads 1..{FORMAT_VERSION}); update PixelCore")
    return metadata


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except (_SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: could not read the tensors ({err}); the file may be truncated"
                              ) from err


def _check_state(path: Path, tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the config: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")
    for key, want in expected.items():
        got = tensors[key]
        if got.shape != want.shape:
            raise CheckpointError(f"{path}: {key} has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        if want.is_floating_point():
            if got.dtype not in _FLOAT_DTYPES:
                raise CheckpointError(f"{path}: {key} has dtype {got.dtype}, expected a float type")
            if not torch.isfinite(got).all():
                raise CheckpointError(f"{path}: {key} holds NaN or infinite values; the model is broken")
        elif got.dtype != want.dtype:
            raise CheckpointError(f"{path}: {key} has dtype {got.dtype}, expected {want.dtype}")


def load_model(path: str | Path, device: torch.device | str = "cpu") -> PixelModel:
    """Loads and validates a release checkpoint; weights come back as float32 on ``device``.

    Raises:
        CheckpointError: naming the file, for anything that makes it unusable.
    """
    path = Path(path)
    metadata = read_metadata(path)
    tensors = _load_tensors(path)
    if PALETTE_KEY not in tensors:
        raise CheckpointError(f"{path}: no palette stored in the model")
    try:
        values = json.loads(metadata.get("config", ""))
        if not isinstance(values, dict):
            raise ValueError(f"the config is a JSON {type(values).__name__}, not an object")
        config = PixelConfig.from_dict(values)
        palette = Palette(tensors.pop(PALETTE_KEY))
        model = PixelModel(config, palette)
    # json errors are ValueErrors; a zero patch_size or n_head fails validation with a ZeroDivisionError
    except (ValueError, TypeError, ArithmeticError) as err:
        raise CheckpointError(f"{path}: invalid config or palette ({err})") from err
    expected = release_state_dict(model)
    _check_state(path, tensors, expected)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()},
                          strict=False)
    log.info("loaded %s (%.1fM parameters, %d colours)", path.name, model.num_params() / 1e6, len(palette))
    return model.to(device).eval()


def export_model(src: str | Path, dst: str | Path, dtype: torch.dtype = torch.float16) -> Path:
    """Re-writes a checkpoint with float weights in ``dtype`` (fp16 for release), keeping its metadata."""
    return save_model(load_model(src), dst, dtype=dtype, extra_metadata=_carried_metadata(src))


def _carried_metadata(path: str | Path) -> dict[str, str]:
    """A file's metadata minus what ``save_model`` writes itself (format, version, config)."""
    return {k: v for k, v in read_metadata(path).items() if k not in ("format", "format_version", "config")}


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

"""Putting LoRA adapters on a model: apply (live, trainable), set strength, remove, and merge into a copy.

Applied, an adapter is a parametrization of the weights it targets (``torch.nn.utils.parametrize``): the
weight is recomputed as ``W + strength * delta`` at every use, trainable, and removed exactly (the original
tensor comes back, never recomputed). A new word's vectors are a parametrization of the token embedding's
reserved rows. Merged, the same sums are computed once into a copy of the model; applied and merged weights are
the same numbers, so they sample the same tokens.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from .lora import _EMBEDDING, Adapter, base_hash, check_adapter
from .model import PixelModel


class _WeightChange(nn.Module):
    """Parametrization ``W -> W + sum of strength * (alpha / rank) * up @ down`` over applied adapters."""

    def __init__(self):
        super().__init__()
        self.pairs = nn.ModuleDict()
        self.strengths: dict[str, float] = {}
        self.scales: dict[str, float] = {}

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        for key, pair in self.pairs.items():
            weight = weight + (self.strengths[key] * self.scales[key]) * (pair.up @ pair.down)
        return weight


class _WordRows(nn.Module):
    """Parametrization of the token embedding: the rows reserved for new words hold their learned vectors."""

    def __init__(self):
        super().__init__()
        self.vectors = nn.ParameterDict()
        self.rows: dict[str, list[int]] = {}

    def forward(self, table: torch.Tensor) -> torch.Tensor:
        for key, vectors in self.vectors.items():
            table = table.index_put((torch.tensor(self.rows[key], device=table.device),), vectors.to(table.dtype))
        return table


def _module(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    owner, _, attr = name.rpartition(".")
    return model.get_submodule(owner), attr


def _change(module: nn.Module, attr: str, kind: type) -> nn.Module:
    """The module's parametrization of ``attr`` of this kind, registered if it has none yet."""
    if parametrize.is_parametrized(module, attr):
        return module.parametrizations[attr][0]
    change = kind()
    parametrize.register_parametrization(module, attr, change, unsafe=True)
    return change


def _reserve_rows(model: PixelModel, words: tuple[str, ...], count: int) -> dict[str, list[int]]:
    """Vocabulary rows for the new words, counted down from below the special tokens, skipping rows in use."""
    encoder = model.text_encoder
    taken = {i for ids in encoder.new_words.values() for i in ids}
    clash = [w for w in words if w.lower() in {k.lower() for k in encoder.new_words}]
    if clash:
        raise ValueError(f"the word(s) {clash} are already defined by another adapter on this model: use one of "
                         "the two adapters")
    row, rows = min(encoder.tokenizer.all_special_ids) - 1, {}
    for word in words:
        ids = []
        while len(ids) < count:
            if row not in taken:
                ids.append(row)
            row -= 1
        rows[word] = ids
    return rows


def applied(model: PixelModel) -> dict[str, float]:
    """Name -> strength of the adapters applied (live) to the model, in order."""
    return dict(getattr(model, "lora_applied", {}))


def apply_adapter(model: PixelModel, adapter: Adapter, strength: float = 1.0) -> None:
    """Applies ``adapter`` to ``model`` in place, live: its weights become ``W + strength * delta`` (recomputed
    at each use, so ``adapter``'s tensors may be trained), and its words are known to the tokenizer.

    ``strength`` scales the LoRA change (0 = the base weights exactly); new words are on while the adapter is
    applied. Undo with ``remove_adapter``.

    Raises:
        AdapterError: for an adapter made for another base model; ValueError for a name or word in use.
    """
    if not math.isfinite(strength):
        raise ValueError(f"strength must be a finite number, got {strength!r}")
    check_adapter(adapter, model)
    state = applied(model)
    if adapter.name in state:
        raise ValueError(f"an adapter named {adapter.name!r} is already applied; remove it first")
    model.lora_base_hash = base_hash(model)  # before any weight changes
    key = f"a{len(state)}_{id(adapter)}"
    device = model.null_cond.device
    adapter.to(device)
    for name, pair in zip(adapter.weight_names, adapter.pairs):
        change = _change(*_module(model, name), _WeightChange)
        change.pairs[key], change.strengths[key], change.scales[key] = pair, float(strength), adapter.config.scale
    if adapter.words is not None:
        rows = _reserve_rows(model, adapter.config.words, adapter.config.word_vectors)
        table = _change(*_module(model, f"{_EMBEDDING}.weight"), _WordRows)
        table.vectors[key] = adapter.words
        table.rows[key] = [i for ids in rows.values() for i in ids]
        model.text_encoder.new_words.update(rows)
    adapter.lora_key = key
    model.lora_applied = {**state, adapter.name: float(strength)}
    model.lora_keys = {**getattr(model, "lora_keys", {}), adapter.name: (key, adapter)}


def remove_adapter(model: PixelModel, name: str) -> None:
    """Removes an applied adapter by name; with the last one gone the model's weights are its base weights
    again, exactly (the original tensors, never recomputed)."""
    keys = getattr(model, "lora_keys", {})
    if name not in keys:
        raise ValueError(f"no adapter named {name!r} is applied (applied: {list(applied(model))})")
    key, adapter = keys[name]
    for module in list(model.modules()):
        for attr, chain in list(getattr(module, "parametrizations", {}).items()):
            change = chain[0]
            store = change.pairs if isinstance(change, _WeightChange) else change.vectors
            if key in store:
                del store[key]
                if isinstance(change, _WordRows):
                    del change.rows[key]
                if not len(store):
                    parametrize.remove_parametrizations(module, attr, leave_parametrized=False)
    for word in adapter.config.words:
        model.text_encoder.new_words.pop(word, None)
    model.lora_keys = {k: v for k, v in keys.items() if k != name}
    model.lora_applied = {k: v for k, v in applied(model).items() if k != name}
    if not model.lora_applied:
        del model.lora_base_hash


def merged(model: PixelModel, adapters: list[tuple[Adapter, float]]) -> PixelModel:
    """A copy of ``model`` with the adapters merged into its weights at their strengths; ``model`` is unchanged.

    The copy's weights are the numbers the applied adapters compute (the same sum, in the same order), so it
    samples the same tokens as ``model`` with them applied, without recomputing a weight at each use. The copy
    keeps the base's hash, so more adapters for that base can be merged into it later.

    Raises:
        AdapterError: for an adapter made for another base; ValueError for a model with applied adapters.
    """
    if getattr(model, "lora_keys", None):
        raise ValueError("merge into a model with no applied adapters (remove them first)")
    for adapter, _ in adapters:
        check_adapter(adapter, model)
    tokenizer = model.text_encoder.tokenizer
    out = copy.deepcopy(model, memo={id(tokenizer): tokenizer})  # the 49k-entry BPE tables are only read
    out.lora_base_hash = base_hash(model)
    params = dict(out.named_parameters())
    changes: dict[str, _WeightChange] = {}
    words = _WordRows()
    for i, (adapter, strength) in enumerate(adapters):  # the parametrizations apply_adapter would build
        key = f"a{i}"
        for name, pair in zip(adapter.weight_names, adapter.pairs):
            change = changes.setdefault(name, _WeightChange())
            change.pairs[key], change.strengths[key], change.scales[key] = pair, float(strength), adapter.config.scale
        if adapter.words is not None:
            rows = _reserve_rows(out, adapter.config.words, adapter.config.word_vectors)
            words.vectors[key], words.rows[key] = adapter.words, [i for ids in rows.values() for i in ids]
            out.text_encoder.new_words.update(rows)
    if len(words.vectors):
        changes[f"{_EMBEDDING}.weight"] = words
    with torch.no_grad():
        for name, change in changes.items():
            weight = params[name]
            params[name].copy_(change.to(weight.device)(weight.detach().clone()))
    out.lora_merged = {**getattr(model, "lora_merged", {}), **{a.name: float(s) for a, s in adapters}}
    return out


def set_strength(model: PixelModel, name: str, strength: float) -> None:
    """Changes the strength of an applied adapter (0 = its LoRA change off; its words stay known)."""
    keys = getattr(model, "lora_keys", {})
    if name not in keys:
        raise ValueError(f"no adapter named {name!r} is applied (applied: {list(applied(model))})")
    if not math.isfinite(strength):
        raise ValueError(f"strength must be a finite number, got {strength!r}")
    key, _ = keys[name]
    for module in model.modules():
        for chain in getattr(module, "parametrizations", {}).values():
            if isinstance(chain[0], _WeightChange) and key in chain[0].strengths:
                chain[0].strengths[key] = float(strength)
    model.lora_applied = {**applied(model), name: float(strength)}

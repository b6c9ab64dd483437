"""Baseline: an autoregressive transformer over the 256 tokens in raster order (DALL-E style).

Same text encoder, palette, width, depth and training loss as the MaskGIT model; the differences are the ones
under test: causal attention over single-pixel tokens (no patches, no conv stem) and one token per forward
pass when sampling. Text features form a prefix; every image position sees the real prefix positions and the
tokens before it. Sampling keeps a key/value cache (prefix computed once, then one position per step), so
the speed comparison is against a fair AR implementation; ``use_cache=False`` recomputes the whole sequence
every step, for checking the cache.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pixelcore.dataset import TrainingSet
from pixelcore.losses import maskgit_loss, palette_features, token_weights
from pixelcore.model import PixelConfig
from pixelcore.palette import Palette
from pixelcore.sampling import guidance_scale
from pixelcore.text import build_text_encoder, check_prompts
from pixelcore.train_config import TrainConfig
from .baseline import load_baseline, save_baseline, train_baseline

log = logging.getLogger(__name__)

FORMAT = "pixelcore-ar"
KVCache = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values (B, h, T, c)


class CausalAttention(nn.Module):
    def __init__(self, config: PixelConfig):
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (
            t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v)
        )  # (B, h, T, c)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(y.transpose(1, 2).reshape(B, T, C)), (k, v)


class CausalBlock(nn.Module):
    def __init__(self, config: PixelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalAttention(config)
        self.ln2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd),
            nn.GELU(),
            nn.Linear(4 * config.n_embd, config.n_embd),
        )

    def forward(self, x, attn_mask, past=None):
        y, kv = self.attn(self.ln1(x), attn_mask, past)
        x = x + y
        return x + self.mlp(self.ln2(x)), kv


class ARModel(nn.Module):
    """Next-token logits over a raster-order grid, conditioned on a text prefix."""

    def __init__(self, config: PixelConfig, palette: Palette):
        super().__init__()
        config = PixelConfig.from_dict({**config.to_dict(), "vocab_size": len(palette)})
        config.validate()
        self.config, self.palette = config, palette
        G, D, V = config.grid_size, config.n_embd, config.vocab_size
        self.n_tokens = G * G
        self.bos = V  # start-of-image token
        self.text_encoder = build_text_encoder(config)
        self.cond_in = nn.Linear(self.text_encoder.out_dim, D)
        self.null_cond = nn.Parameter(torch.randn(1, 1, D) * 0.02)
        self.embed = nn.Embedding(V + 1, D)
        if config.pos_2d:
            self.pos_row = nn.Parameter(torch.randn(G, 1, D) * 0.02)
            self.pos_col = nn.Parameter(torch.randn(1, G, D) * 0.02)
        else:
            self.pos_flat = nn.Parameter(torch.randn(G * G, D) * 0.02)
        self.blocks = nn.ModuleList(CausalBlock(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(D)
        self.head = nn.Linear(D, V)
        for name, child in self.named_children():
            if name != "text_encoder":
                child.apply(_init_weights)
        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * config.n_layer))

    @property
    def device(self) -> torch.device:
        return self.null_cond.device

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def positions(self) -> torch.Tensor:
        """(256, D) position embeddings in raster order."""
        if self.config.pos_2d:
            return (self.pos_row + self.pos_col).reshape(self.n_tokens, -1)
        return self.pos_flat

    def condition(
        self, text_ids: torch.Tensor, drop: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Text ids -> prefix (B, L, D) and its mask; rows where ``drop`` is True get the null condition."""
        features, mask = self.text_encoder(text_ids)
        cond = self.cond_in(features)
        if drop is not None:
            cond = torch.where(drop[:, None, None], self.null_cond.expand_as(cond), cond)
            only_first = torch.zeros_like(mask)
            only_first[:, 0] = True
            mask = torch.where(drop[:, None], only_first, mask)
        return cond, mask

    def _run(
        self, x: torch.Tensor, key_valid: torch.Tensor, cache: KVCache | None
    ) -> tuple[torch.Tensor, KVCache]:
        """Runs the blocks on new positions x (B, T, D); key_valid (B, T_past + T) marks usable keys."""
        T, total = x.shape[1], key_valid.shape[1]
        causal = torch.ones(T, total, dtype=torch.bool, device=x.device).tril(total - T)  # (T, T_total)
        attn_mask = causal[None, None] & key_valid[:, None, None, :]  # (B, 1, T, T_total)
        new_cache = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, attn_mask, cache[i] if cache is not None else None)
            new_cache.append(kv)
        return self.ln_f(x), new_cache

    def forward(self, tokens: torch.Tensor, cond: torch.Tensor, cond_mask: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, V): position t predicts token t from tokens < t (T <= 256)."""
        B, T = tokens.shape
        inputs = torch.cat([tokens.new_full((B, 1), self.bos), tokens[:, :-1]], dim=1)
        x = torch.cat([cond, self.embed(inputs) + self.positions()[:T]], dim=1)  # (B, L+T, D)
        key_valid = torch.cat([cond_mask, cond_mask.new_ones(B, T)], dim=1)
        h, _ = self._run(x, key_valid, None)
        return self.head(h[:, cond.shape[1] :])

    def prefill(
        self, cond: torch.Tensor, cond_mask: torch.Tensor
    ) -> tuple[torch.Tensor, KVCache, torch.Tensor]:
        """Runs the prefix and the start token: (logits for token 0 (B, V), cache, key_valid)."""
        B = cond.shape[0]
        start = self.embed(cond.new_full((B, 1), self.bos, dtype=torch.long)) + self.positions()[:1]
        key_valid = torch.cat([cond_mask, cond_mask.new_ones(B, 1)], dim=1)
        h, cache = self._run(torch.cat([cond, start], dim=1), key_valid, None)
        return self.head(h[:, -1]), cache, key_valid

    def extend(
        self, token: torch.Tensor, position: int, cache: KVCache, key_valid: torch.Tensor
    ) -> tuple[torch.Tensor, KVCache, torch.Tensor]:
        """Feeds token ``position`` (B,) and returns the logits for token ``position + 1``."""
        x = (
            self.embed(token[:, None]) + self.positions()[position + 1 : position + 2]
        )  # input at the next slot
        key_valid = torch.cat([key_valid, key_valid.new_ones(len(token), 1)], dim=1)
        h, cache = self._run(x, key_valid, cache)
        return self.head(h[:, -1]), cache, key_valid


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


def _pad_to(t: torch.Tensor, m: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    return F.pad(t, (0, 0, 0, length - t.shape[1])), F.pad(m, (0, length - m.shape[1]))


def _conditional_half(B: int, *tensors):
    """The first ``B`` rows (the prompts' half of a guided batch) of each tensor, of each cache entry's keys and
    values, None as None."""
    def half(t):
        if t is None:
            return None
        return [(k[:B], v[:B]) for k, v in t] if isinstance(t, list) else t[:B]

    return tuple(half(t) for t in tensors)


@torch.no_grad()
def sample_ar(
    model: ARModel,
    prompts: str | list[str],
    *,
    batch_size: int = 1,
    cfg_scale: float = 3.0,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
    guidance_schedule: str = "constant",
) -> torch.Tensor:
    """Samples ``batch_size`` grids per prompt (prompt-major): long tensor (P * batch_size, G, G).

    Classifier-free guidance mixes conditional and null-prompt logits at every position; uniforms are drawn
    on the CPU from ``generator`` so a seed repeats on any device. ``guidance_schedule`` is MaskGIT's
    (``sampling.GUIDANCE_SCHEDULES``), with the share of the grid decided read as the raster position. Once
    ``"early"`` guidance ends, the null-prompt half of the batch (and of the cache) is dropped, as MaskGIT's
    sampler skips its unconditional pass: the later positions cost half.
    """
    prompts = check_prompts(prompts)
    model.eval()
    device, G = model.device, model.config.grid_size
    ids = model.text_encoder.tokenize(prompts).to(device).repeat_interleave(batch_size, 0)
    cond, mask = model.condition(ids)
    B = cond.shape[0]
    guided = cfg_scale != 1.0
    guidance_scale(cfg_scale, guidance_schedule, 0.0)  # refuses an unknown schedule before any work
    if guided:
        null, null_mask = model.null_cond.expand(B, 1, -1), mask.new_ones(B, 1)
        length = cond.shape[1]
        cond, mask = (
            torch.cat(pair) for pair in zip(_pad_to(cond, mask, length), _pad_to(null, null_mask, length))
        )
    tokens = torch.zeros(B, model.n_tokens, dtype=torch.long, device=device)
    logits, cache, key_valid = model.prefill(cond, mask) if use_cache else (None, None, None)

    def guidance_over(position: int) -> bool:  # "early" guidance never comes back once it has ended
        return guidance_schedule == "early" and guidance_scale(cfg_scale, "early", position / model.n_tokens) == 1.0

    for t in range(model.n_tokens):  # position 0 is always guided: "early" starts with nothing decided
        if not use_cache:
            both = torch.cat([tokens, tokens]) if guided else tokens
            logits = model(both[:, : t + 1], cond, mask)[:, t]
        logits = logits.float()
        if guided:
            cond_logits, null_logits = logits.chunk(2)
            scale = guidance_scale(cfg_scale, guidance_schedule, t / model.n_tokens)
            logits = null_logits + scale * (cond_logits - null_logits)
        probs = F.softmax(logits / temperature, dim=-1)
        u = torch.rand(B, 1, generator=generator).to(device)
        cdf = probs.cumsum(-1)
        tokens[:, t] = torch.searchsorted(cdf, u * cdf[:, -1:]).clamp(max=probs.shape[-1] - 1).squeeze(1)
        if guided and guidance_over(t + 1):  # the next position needs no null half: do not compute it
            guided = False
            cond, mask, cache, key_valid = _conditional_half(B, cond, mask, cache, key_valid)
        if use_cache and t + 1 < model.n_tokens:
            step_tokens = torch.cat([tokens[:, t], tokens[:, t]]) if guided else tokens[:, t]
            logits, cache, key_valid = model.extend(step_tokens, t, cache, key_valid)
    return tokens.reshape(B, G, G)


def save_ar(model: ARModel, path: str | Path, info: dict | None = None) -> Path:
    return save_baseline(model, path, FORMAT, info)


def load_ar(path: str | Path, device: str | torch.device = "cpu") -> ARModel:
    return load_baseline(path, FORMAT, "an AR baseline checkpoint", ARModel, device)


def train_ar(config: TrainConfig) -> Path:
    """Trains the AR baseline with the MaskGIT run's data, budget, optimiser and loss (every position is a
    prediction target); writes ``model.safetensors`` in ``config.out`` and returns its path."""

    def build(data: TrainingSet, device: torch.device) -> ARModel:
        return ARModel(config.model_config(), data.palette)

    def batch_loss(data: TrainingSet, device: torch.device):
        weights = token_weights(data.tokens, data.palette, config.loss).to(device)
        features = palette_features(data.palette).to(device)

        def loss(model, ids, idx, drop, gen, amp):
            targets = data.tokens[idx].to(device)  # (B, G, G)
            with amp:
                cond, mask = model.condition(ids, drop)
                logits = model(targets.flatten(1), cond, mask)  # (B, 256, V)
            everywhere = torch.ones_like(targets, dtype=torch.bool)
            return maskgit_loss(logits.reshape(*targets.shape, -1), targets, everywhere, weights, features,
                                config.loss)[0]

        return loss

    return train_baseline(config, "AR baseline", build, batch_loss, save_ar)

"""Baseline: text -> nearest training texture. Copies by construction.

A CLIP-style pair of encoders is trained contrastively (InfoNCE both ways) on the same captions and textures
as the generators, for the same budget: the builtin open_clip text encoder of a ``PixelConfig`` and the small
texture CNN of :mod:`.features`. At inference the prompt's embedding picks the nearest textures of the
training set (hue-shifted copies included, as the generators saw them); the ``n`` samples of a prompt are its
``n`` nearest textures, so the seed changes nothing.
"""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pixelcore.captions import random_caption
from pixelcore.checkpoint import read_safetensors, write_safetensors
from pixelcore.model import PixelConfig
from pixelcore.text import build_text_encoder, check_prompts
from pixelcore.dataset import prepare_data
from pixelcore.devices import pick_device
from pixelcore.train_config import TrainConfig
from .features import TextureEncoder, texture_input

log = logging.getLogger(__name__)

FORMAT = "pixelcore-retrieval"
EMBED_DIM = 64


class RetrievalModel(nn.Module):
    """Text and texture encoders into one unit-norm space, plus the bank of textures to retrieve from."""

    def __init__(self, config: PixelConfig, bank: torch.Tensor):
        super().__init__()
        self.config = config
        self.text_encoder = build_text_encoder(config)
        self.text_proj = nn.Linear(self.text_encoder.out_dim, EMBED_DIM)
        self.image_encoder = TextureEncoder(EMBED_DIM)
        self.logit_scale = nn.Parameter(torch.tensor(np.log(1 / 0.07), dtype=torch.float32))
        self.register_buffer("bank", bank.to(torch.uint8), persistent=True)  # (N, G, G, 4) textures
        self._bank_embeddings: torch.Tensor | None = None

    @property
    def device(self) -> torch.device:
        return self.logit_scale.device

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        features, _ = self.text_encoder(ids)
        return F.normalize(self.text_proj(features[:, 0]), dim=-1)  # pooled sentence embedding

    def embed_images(self, rgba: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_encoder(texture_input(rgba.cpu()).to(self.device)), dim=-1)

    @torch.no_grad()
    def retrieve(self, prompts: str | list[str], n: int = 1) -> np.ndarray:
        """The ``n`` nearest bank textures for each prompt: uint8 (P, n, G, G, 4)."""
        prompts = check_prompts(prompts)
        self.eval()
        if self._bank_embeddings is None:
            self._bank_embeddings = torch.cat(
                [self.embed_images(self.bank[i : i + 1024]) for i in range(0, len(self.bank), 1024)]
            )
        text = self.embed_text(self.text_encoder.tokenize(prompts).to(self.device))
        nearest = (text @ self._bank_embeddings.T).topk(min(n, len(self.bank)), dim=1).indices.cpu()  # (P, n)
        if nearest.shape[1] < n:  # fewer textures than samples asked for: repeat the nearest
            nearest = nearest[:, torch.arange(n) % nearest.shape[1]]
        return self.bank.cpu()[nearest].numpy()


def save_retrieval(model: RetrievalModel, path: str | Path, info: dict | None = None) -> Path:
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "config": json.dumps(model.config.to_dict()), "training": json.dumps(info or {})}
    return write_safetensors(tensors, path, metadata)


def load_retrieval(path: str | Path, device: str | torch.device = "cpu") -> RetrievalModel:
    metadata, tensors = read_safetensors(path, FORMAT, "a retrieval baseline checkpoint")
    model = RetrievalModel(PixelConfig.from_dict(json.loads(metadata["config"])), tensors["bank"])
    model.load_state_dict(tensors)
    return model.to(device).eval()


def train_retrieval(config: TrainConfig) -> Path:
    """Trains the two encoders contrastively on the training split; returns the checkpoint path."""
    device = pick_device(config.device)
    data = prepare_data(config)
    bank = torch.from_numpy(np.stack([r.pixels for r in data.records]))
    torch.manual_seed(config.seed)
    model = RetrievalModel(config.model_config(), bank).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed * 1_000_003)
    rng = random.Random(config.seed)
    start, step, loss = time.time(), 0, torch.tensor(0.0)
    model.train()
    while step < config.steps and not (
        config.max_minutes > 0 and time.time() - start > config.max_minutes * 60
    ):
        idx = torch.randint(len(data.records), (min(config.batch_size, len(data.records)),), generator=gen)
        captions = [
            random_caption(
                data.records[i].name, data.records[i].color, data.records[i].kind, rng, zh_prob=config.zh_prob
            )
            for i in idx.tolist()
        ]
        text = model.embed_text(model.text_encoder.tokenize(captions).to(device))
        images = model.embed_images(bank[idx])
        logits = model.logit_scale.exp().clamp(max=100) * text @ images.T  # (B, B)
        # Textures drawn twice in a batch are both right answers: the target is spread over equal indices.
        same = (idx[:, None] == idx[None, :]).float().to(device)
        target = same / same.sum(1, keepdim=True)
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step % 100 == 0:
            log.info("retrieval step %d: loss %.3f", step, float(loss))
    info = {"step": step, "train_seconds": round(time.time() - start, 1), "loss": float(loss.detach())}
    return save_retrieval(model, Path(config.out) / "model.safetensors", info)

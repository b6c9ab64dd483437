"""A distribution metric for 16x16 textures: Fréchet and kernel distances in a small texture CNN's features.

Inception features (FID) know nothing of 16x16 RGBA pixel art, so the feature space here is learned from the
training split itself: a small CNN classifies each texture by kind (item/block), dominant colour word and
group (the first word of its name: the mod in Luanti's ``mod_thing`` naming), and its 64-wide penultimate
layer is the feature, centred on the training set's mean and divided by one scalar so that its per-dimension
variance there averages 1 (FD and KID are then on a fixed, readable scale; KID's polynomial kernel is not
shift-invariant, so the centring matters). Input channels are premultiplied RGB plus alpha, so
transparent pixels count the same whatever RGB they hide. The net is trained once per experiment
directory with a fixed seed and saved there; held-out textures never reach it.

- Fréchet distance (FD): ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` over the two feature sets'
  means and covariances, as in FID. It is biased upward for small sets, so systems are compared on sets of
  equal size only.
- Kernel distance (KID): the unbiased MMD^2 with the cubic polynomial kernel ``(x.y / d + 1)^3``, averaged
  over random subsets; unbiased at any set size, so it stays comparable when sets are small.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pixelcore.checkpoint import read_safetensors, write_safetensors
from pixelcore.data import TextureRecord

log = logging.getLogger(__name__)

FEATURE_DIM = 64
MIN_HALVES = 4  # held-out textures ``halves_distances`` needs: two a side
FORMAT = "pixelcore-texture-features"
# Groups seen fewer times than this are pooled into "other": a class with one example teaches nothing.
_MIN_GROUP_SIZE = 4


def texture_input(rgba: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 RGBA (N, H, W, 4) -> float (N, 4, H, W): premultiplied RGB in 0..1 and alpha."""
    x = torch.as_tensor(np.asarray(rgba)).float() / 255.0
    alpha = x[..., 3:]
    return torch.cat([x[..., :3] * alpha, alpha], dim=-1).permute(0, 3, 1, 2).contiguous()


class TextureEncoder(nn.Module):
    """Conv stages 16 -> 8 -> 4 -> pooled, to a ``dim``-wide vector; the retrieval baseline uses it too."""

    def __init__(self, dim: int = FEATURE_DIM, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(4, width, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.GELU(),
            nn.AvgPool2d(2),  # (B, w, 8, 8)
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.GELU(),
            nn.AvgPool2d(2),  # (B, 2w, 4, 4)
            nn.Conv2d(2 * width, 4 * width, 3, padding=1),
            nn.GELU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),  # (B, 4w)
            nn.Linear(4 * width, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TextureFeatureNet(nn.Module):
    """The encoder plus one linear classifier head per label set."""

    def __init__(self, classes: dict[str, list[str]]):
        super().__init__()
        self.classes = classes
        self.encoder = TextureEncoder()
        self.heads = nn.ModuleDict(
            {name: nn.Linear(FEATURE_DIM, len(names)) for name, names in classes.items()}
        )
        # Standardisation on the training set (set after training): features - mean, then / one scalar.
        self.feature_mean = np.zeros(FEATURE_DIM)
        self.feature_scale = 1.0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        features = self.encoder(x)
        return features, {name: head(F.gelu(features)) for name, head in self.heads.items()}


def _group(record: TextureRecord) -> str:
    words = record.name.split()
    return words[0] if words else "other"


def label_sets(records: Sequence[TextureRecord]) -> dict[str, list[str]]:
    """Class names per label: kind, colour and group (rare groups pooled into "other")."""
    groups = Counter(_group(r) for r in records)
    return {
        "kind": sorted({r.kind or "none" for r in records}),
        "color": sorted({r.color or "none" for r in records}),
        "group": sorted({g for g, n in groups.items() if n >= _MIN_GROUP_SIZE} | {"other"}),
    }


def _labels(records: Sequence[TextureRecord], classes: dict[str, list[str]]) -> dict[str, torch.Tensor]:
    index = {name: {c: i for i, c in enumerate(names)} for name, names in classes.items()}
    values = {
        "kind": [r.kind or "none" for r in records],
        "color": [r.color or "none" for r in records],
        "group": [_group(r) for r in records],
    }
    return {
        name: torch.tensor([index[name].get(v, index[name].get("other", 0)) for v in values[name]])
        for name in classes
    }


def train_feature_net(
    records: Sequence[TextureRecord],
    path: str | Path,
    steps: int = 1500,
    batch_size: int = 128,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> TextureFeatureNet:
    """Trains the feature net on ``records`` (the training split) and saves it to ``path`` (.safetensors)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    classes = label_sets(records)
    net = TextureFeatureNet(classes).to(device)
    x_all = texture_input(np.stack([r.pixels for r in records]))
    y_all = _labels(records, classes)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=max(steps, 2))
    net.train()
    for step in range(steps):
        idx = torch.randint(len(records), (min(batch_size, len(records)),), generator=gen)
        x = x_all[idx]
        flip = torch.rand(len(idx), generator=gen) < 0.5  # mirror images are the same kind of texture
        x = torch.where(flip[:, None, None, None], x.flip(-1), x).to(device)
        _, logits = net(x)
        loss = sum(F.cross_entropy(logits[name], y_all[name][idx].to(device)) for name in classes)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 250 == 0:
            log.info("feature net step %d/%d: loss %.3f", step + 1, steps, float(loss.detach()))
    net.eval().cpu()
    raw = extract_features(net, np.stack([r.pixels for r in records]))
    net.feature_mean, net.feature_scale = raw.mean(0), float(np.sqrt(raw.var(0).mean()))
    write_safetensors(
        {k: v.contiguous() for k, v in net.state_dict().items()},
        path,
        {
            "format": FORMAT,
            "classes": json.dumps(classes),
            "seed": str(seed),
            "steps": str(steps),
            "feature_scale": str(net.feature_scale),
            "feature_mean": json.dumps(net.feature_mean.tolist()),
        },
    )
    return net


def load_feature_net(path: str | Path) -> TextureFeatureNet:
    metadata, tensors = read_safetensors(path, FORMAT, "a texture feature net")
    net = TextureFeatureNet(json.loads(metadata["classes"]))
    net.load_state_dict(tensors)
    net.feature_scale = float(metadata.get("feature_scale", 1.0))
    net.feature_mean = np.array(json.loads(metadata.get("feature_mean", "null")) or np.zeros(FEATURE_DIM))
    return net.eval()


@torch.no_grad()
def extract_features(net: TextureFeatureNet, rgba: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Features (N, 64) float64 of uint8 RGBA textures (N, H, W, 4), unit spread on training data."""
    x = texture_input(rgba)
    device = next(net.parameters()).device
    parts = [net.encoder(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
    return (torch.cat(parts).double().numpy() - net.feature_mean) / net.feature_scale


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a (N, D) and b (M, D).

    ``tr((S_a S_b)^(1/2))`` is computed as the sum of square roots of the eigenvalues of the symmetric
    ``S_a^(1/2) S_b S_a^(1/2)``, which has the same spectrum and needs no general matrix square root.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrt_psd(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0.0, None)).sum()
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)
    return max(value, 0.0)


def kernel_distance(
    a: np.ndarray, b: np.ndarray, subsets: int = 50, subset_size: int = 100, seed: int = 0
) -> float:
    """KID: unbiased MMD^2 with kernel ``(x.y / d + 1)^3``, averaged over random subsets of both sets."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(a), len(b))
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        off = m * (m - 1)
        values.append(
            (kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off - 2.0 * kxy.mean()
        )
    return float(np.mean(values))


def halves_distances(
    made: np.ndarray, real: np.ndarray, splits: int = 20, seed: int = 0
) -> dict[str, float]:
    """FD and KID of textures made for one half of the held-out captions against the other half's real ones.

    ``made[i]`` holds the features of the texture made for held-out texture ``i``'s caption (N, D);
    ``real`` those of the held-out textures themselves (N, D). Each of ``splits`` seeded random splits cuts
    the indices into halves A and B and compares ``made[B]`` with ``real[A]``; the results are averaged.
    Passing ``real`` as ``made`` scores the real held-out textures on the same footing: the yardstick that
    a system matching the held-out distribution reaches (KID about 0; FD its small-set bias). The full-set
    distances cannot give that yardstick, since there the real held-out textures are the reference itself.
    """
    made, real = np.asarray(made, np.float64), np.asarray(real, np.float64)
    if made.shape != real.shape:
        raise ValueError(f"need one made texture per held-out texture: got {made.shape} and {real.shape}")
    if len(real) < MIN_HALVES:
        raise ValueError(f"need at least {MIN_HALVES} held-out textures to split in halves, got {len(real)}")
    rng = np.random.default_rng(seed)
    fds, kids = [], []
    for i in range(splits):
        order = rng.permutation(len(real))
        a, b = order[: len(real) // 2], order[len(real) // 2 :]
        fds.append(frechet_distance(made[b], real[a]))
        kids.append(kernel_distance(made[b], real[a], subsets=10, seed=seed + i))
    return {"fd": float(np.mean(fds)), "kid": float(np.mean(kids))}


def noise_textures(n: int, seed: int = 0) -> np.ndarray:
    """Uniform RGB noise with a random cut-out alpha: the floor a metric must rank far below real textures."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
    alpha = np.where(rng.random((n, 16, 16, 1)) < 0.3, 0, 255).astype(np.uint8)
    return np.concatenate([rgb, alpha], axis=-1)

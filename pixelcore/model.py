"""The bidirectional masked-token transformer over the 16x16 token grid.

Shape of the network (B = batch, G = grid side, P = patch side, N = (G/P)^2 patches, D = width):

    text features (B, L, D) -> transformer blocks, text attending to text -> keys/values per block (TextStates)
    tokens (B, G, G) -> embed (B, C, G, G) -> conv stem -> patchify (B, N, D) + 2D positions
    -> transformer blocks, patches attending to [text ; patches] -> patches (B, N, D)
    -> unpatchify (B, C, G, G) + stem skip -> conv head -> logits (B, G, G, V)

Text tokens attend only to text tokens, so their states do not depend on the image being decoded: the text
stream runs once per prompt batch (``text_states``) and every decoding round reuses its keys and values
(``decode``). This is the same network as one joint sequence of [text ; patches] under a mask that hides the
patches from the text, without the text's share of the work in every round. A padded prompt position never
changes a result.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .palette import Palette
from .text import build_text_encoder, check_clip_model


TEXT_ENCODERS = ("builtin", "open_clip")
# Bounds on a config read from a file, wide around every model trained so far (the default is 6 layers of 256
# wide and a 12M-parameter total): a config past them is a mistake or an attack, not a model.
_INT_RANGES = {
    "grid_size": (2, 64), "vocab_size": (2, 256), "patch_size": (1, 16), "n_layer": (1, 64), "n_head": (1, 64),
    "n_embd": (1, 4096), "pixel_dim": (1, 1024), "text_context": (2, 512), "text_width": (1, 2048),
    "text_layers": (1, 48), "text_heads": (1, 64),
}
MAX_PARAMS = 250_000_000  # 1 GiB of float32 weights; the default model has 12M
MAX_PATCHES = 1024
MAX_ATTENTION_BYTES = 256 * 2**20
_MAX_NAME_CHARS = 1000
TEXT_VOCAB = 49408  # open_clip's byte-level BPE vocabulary, the builtin text encoder's embedding rows
# The widest text embedding of open_clip's architectures (ViT-bigG: 1280) bounds cond_in for an open_clip model.
_CLIP_OUT_DIM_BOUND = 1280


def _block_params(width: int) -> int:
    """A pre-norm transformer block: two LayerNorms, qkv + output projections, a 4x MLP, all with biases."""
    return 12 * width * width + 13 * width


def _short(value) -> str:
    """A value for an error message, cut short: a hostile config may hold a megabyte string."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class PixelConfig:
    """Everything needed to rebuild a model; saved as JSON with the weights."""

    grid_size: int = 16
    vocab_size: int = 256  # palette entries; the mask token is vocab_size
    patch_size: int = 2
    n_layer: int = 6
    n_head: int = 8
    n_embd: int = 256
    pixel_dim: int = 64  # per-pixel embedding width before patchify
    conv: bool = True  # conv stem/head for local continuity (off = ablation)
    pos_2d: bool = True  # row + column position embeddings (off = flat 1D positions, ablation)
    dropout: float = 0.0
    text_encoder: str = "builtin"  # "builtin" (trained, stored) or "open_clip" (pretrained, frozen)
    text_context: int = 48
    text_width: int = 128
    text_layers: int = 4
    text_heads: int = 4
    clip_model: str = ""
    clip_pretrained: str = ""

    @classmethod
    def tiny(cls, **overrides) -> PixelConfig:
        """A few-thousand-parameter-wide config for tests (the text vocabulary still dominates its size)."""
        base = dict(n_layer=1, n_head=2, n_embd=16, pixel_dim=8, text_context=16, text_width=8,
                    text_layers=1, text_heads=2)
        return cls(**{**base, **overrides})

    @classmethod
    def from_dict(cls, values: dict) -> PixelConfig:
        """Builds a config from saved values; keys unknown to this version are ignored, missing ones default."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> None:
        """Checks every field's type and range, and the size of the network, before anything is built.

        Raises:
            ValueError: naming the field, for a value of the wrong type, out of range, a head count that does
                not divide its width, or a network over ``MAX_PARAMS`` parameters or ``MAX_ATTENTION_BYTES``
                of attention scores per image.
        """
        for name, (low, high) in _INT_RANGES.items():
            value = getattr(self, name)
            if type(value) is not int or not low <= value <= high:  # bool is an int; 6.0 is not
                raise ValueError(f"{name} must be an integer in {low}..{high}, got {_short(value)}")
        for name in ("conv", "pos_2d"):
            if type(getattr(self, name)) is not bool:
                raise ValueError(f"{name} must be true or false, got {_short(getattr(self, name))}")
        dropout = self.dropout
        if (type(dropout) not in (int, float) or not math.isfinite(dropout)
                or not 0.0 <= dropout < 1.0):
            raise ValueError(f"dropout must be a number in [0, 1), got {_short(dropout)}")
        if self.text_encoder not in TEXT_ENCODERS:
            raise ValueError(f"unknown text_encoder {_short(self.text_encoder)}: use 'builtin' or 'open_clip'")
        for name in ("clip_model", "clip_pretrained"):
            value = getattr(self, name)
            if type(value) is not str or len(value) > _MAX_NAME_CHARS:
                raise ValueError(f"{name} must be a string of at most {_MAX_NAME_CHARS} characters, "
                                 f"got {_short(value)}")
        if self.text_encoder == "open_clip":
            check_clip_model(self.clip_model)
        if self.grid_size % self.patch_size:
            raise ValueError(f"grid_size {self.grid_size} is not a multiple of patch_size {self.patch_size}")
        if (self.grid_size // self.patch_size) ** 2 > MAX_PATCHES:
            raise ValueError(f"grid_size / patch_size gives {(self.grid_size // self.patch_size) ** 2} patches, "
                             f"more than {MAX_PATCHES}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")
        if self.text_width % self.text_heads:
            raise ValueError(f"text_width {self.text_width} is not a multiple of text_heads {self.text_heads}")
        params = self.num_params()
        if params > MAX_PARAMS:
            raise ValueError(f"the config describes {params / 1e6:,.0f}M parameters (about "
                             f"{params * 4 / 2**30:,.1f} GiB as float32), more than the {MAX_PARAMS / 1e6:.0f}M "
                             "a PixelCore model may have (n_layer, n_embd, text_layers, text_width)")
        attention = self.attention_bytes()
        if attention > MAX_ATTENTION_BYTES:
            raise ValueError(f"the config needs {attention / 2**20:,.0f} MiB of attention scores per image, more "
                             f"than {MAX_ATTENTION_BYTES // 2**20} MiB (n_head, grid_size / patch_size, "
                             "text_context)")

    def num_params(self) -> int:
        """Parameters of the network this config describes, counted from the config alone (nothing is built).

        A frozen open_clip text tower is not counted (it is not stored; its size is the weights file's), and
        its embedding width, which sizes ``cond_in``, is taken at the widest of open_clip's architectures.
        """
        G, P, C, D, V = self.grid_size, self.patch_size, self.pixel_dim, self.n_embd, self.vocab_size
        side = G // P
        conv_block = 2 * C + 2 * (9 * C * C + C)  # GroupNorm + two 3x3 convs
        image = ((V + 1) * C  # token embedding, mask token included
                 + (2 * conv_block if self.conv else 0)  # stem and head convs
                 + (C * P * P * D + D) + (D * C * P * P + C * P * P)  # patch in / out
                 + (2 * side * D if self.pos_2d else side * side * D)
                 + D  # null condition
                 + self.n_layer * _block_params(D) + 2 * D  # blocks + final norm
                 + C * V + V)  # head
        if self.text_encoder == "builtin":
            W = self.text_width
            text = (TEXT_VOCAB * W + self.text_context * W + self.text_layers * _block_params(W)
                    + 2 * W + W * W)  # embeddings, blocks, final norm, projection
            text_out = W
        else:
            text, text_out = 0, _CLIP_OUT_DIM_BOUND
        return image + text + text_out * D + D  # cond_in

    def attention_bytes(self) -> int:
        """float32 attention scores of one image in one block, guided (two rows): the largest activation."""
        patches = (self.grid_size // self.patch_size) ** 2
        return 2 * 4 * self.n_head * patches * (patches + self.text_context + 1)

class ConvBlock(nn.Module):
    """Residual 3x3 conv pair; padding is zeros, or wrap-around for seamless tiles."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.GroupNorm(1, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3)
        self.conv2 = nn.Conv2d(channels, channels, 3)
        self.padding_mode = "constant"

    def _conv(self, conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        return conv(F.pad(x, (1, 1, 1, 1), mode=self.padding_mode))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self._conv(self.conv2, F.gelu(self._conv(self.conv1, self.norm(x))))


KeysValues = tuple[torch.Tensor, torch.Tensor]  # keys and values of one block, each (B, h, T, c)


@dataclass
class TextStates:
    """The text stream's keys and values in every block, computed once per prompt batch by
    ``PixelModel.text_states`` and attended to by the patches in every decoding round."""

    keys_values: list[KeysValues]  # one per block, each (B, h, L, c)
    mask: torch.Tensor  # (B, L) True on real text positions

    def __len__(self) -> int:
        return len(self.mask)

    def rows(self, index: torch.Tensor | slice) -> TextStates:
        """The states of some prompts of the batch (an index tensor or a slice over the batch)."""
        return TextStates([(k[index], v[index]) for k, v in self.keys_values], self.mask[index])


class Attention(nn.Module):
    def __init__(self, config: PixelConfig):
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor,
                prefix: KeysValues | None = None) -> tuple[torch.Tensor, KeysValues]:
        """Attention of x (B, T, C) to ``prefix`` (cached keys and values) followed by x itself.

        ``key_mask`` (B, T') is True on the keys that may be attended to, prefix first. Returns the output
        (B, T, C) and x's own keys and values.
        """
        B, T, C = x.shape
        q, k, v = (self._heads(t) for t in self.qkv(x).split(C, dim=2))  # (B, h, T, c)
        own = (k, v)
        if prefix is not None:
            k, v = torch.cat([prefix[0], k], dim=2), torch.cat([prefix[1], v], dim=2)  # (B, h, T', c)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :],
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, T, C)), own

    def keys_values(self, x: torch.Tensor) -> KeysValues:
        """x's own keys and values, as ``forward`` returns them, without the queries or the attention."""
        C = x.shape[-1]
        k, v = F.linear(x, self.qkv.weight[C:], self.qkv.bias[C:]).split(C, dim=2)
        return self._heads(k), self._heads(v)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """(B, T, C) -> (B, h, T, c)."""
        B, T, C = t.shape
        return t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)


class Block(nn.Module):
    def __init__(self, config: PixelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.attn = Attention(config)
        self.ln2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Sequential(nn.Linear(config.n_embd, 4 * config.n_embd), nn.GELU(),
                                 nn.Linear(4 * config.n_embd, config.n_embd), nn.Dropout(config.dropout))

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor,
                prefix: KeysValues | None = None) -> tuple[torch.Tensor, KeysValues]:
        """The block's output for x and x's keys and values (see ``Attention.forward``)."""
        attended, own = self.attn(self.ln1(x), key_mask, prefix)
        x = x + attended
        return x + self.mlp(self.ln2(x)), own


class PixelModel(nn.Module):
    """Predicts palette-token logits for every cell of a partly masked grid, given text features."""

    def __init__(self, config: PixelConfig, palette: Palette, clip_weights: str | Path | None = None):
        """Builds the network of ``config`` over ``palette``, with fresh weights.

        Args:
            config: the config (``vocab_size`` is taken from the palette).
            palette: the colours the tokens stand for.
            clip_weights: for an open_clip text encoder, the local weights file of the pretrained tower. A
                model built by its trainer may leave it out: ``config.clip_pretrained`` then names the file
                (``checkpoint.load_model`` never reads that field, it takes the file from its caller).
        """
        super().__init__()
        config = PixelConfig.from_dict({**config.to_dict(), "vocab_size": len(palette)})
        config.validate()
        self.config = config
        self.palette = palette
        self.mask_token = config.vocab_size
        G, P, C, D = config.grid_size, config.patch_size, config.pixel_dim, config.n_embd
        self.side = G // P  # patches per side
        self.text_encoder = build_text_encoder(config, clip_weights or config.clip_pretrained or None)
        self.embed = nn.Embedding(config.vocab_size + 1, C)
        self.stem = ConvBlock(C) if config.conv else nn.Identity()
        self.patch_in = nn.Linear(C * P * P, D)
        if config.pos_2d:
            self.pos_row = nn.Parameter(torch.randn(self.side, 1, D) * 0.02)
            self.pos_col = nn.Parameter(torch.randn(1, self.side, D) * 0.02)
        else:
            self.pos_flat = nn.Parameter(torch.randn(self.side * self.side, D) * 0.02)
        self.cond_in = nn.Linear(self.text_encoder.out_dim, D)
        self.null_cond = nn.Parameter(torch.randn(1, 1, D) * 0.02)  # the "no prompt" of classifier-free guidance
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(D)
        self.patch_out = nn.Linear(D, C * P * P)
        self.head_conv = ConvBlock(C) if config.conv else nn.Identity()
        self.head = nn.Linear(C, config.vocab_size)
        for name, child in self.named_children():
            if name != "text_encoder":  # open_clip initialises its own tower
                child.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2 style scaled init of residual projections
            if name.endswith(("attn.proj.weight", "mlp.2.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def set_seamless(self, seamless: bool) -> None:
        """Wrap-around convolution padding: makes the network see the tile as a torus, for seamless blocks."""
        for module in self.modules():
            if isinstance(module, ConvBlock):
                module.padding_mode = "circular" if seamless else "constant"

    def num_params(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    @property
    def device(self) -> torch.device:
        return self.null_cond.device

    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenizes and encodes prompts: (features (B, L, E), mask (B, L))."""
        ids = self.text_encoder.tokenize(prompts).to(self.device)
        return self.text_encoder(ids)

    def condition(self, features: torch.Tensor, mask: torch.Tensor,
                  drop: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Projects text features to the model width; rows where ``drop`` is True get the null condition."""
        cond = self.cond_in(features)  # (B, L, D)
        if drop is not None:  # always through where(): every parameter stays in the graph (DDP)
            cond = torch.where(drop[:, None, None], self.null_cond.expand_as(cond), cond)
            only_first = torch.zeros_like(mask)
            only_first[:, 0] = True
            mask = torch.where(drop[:, None], only_first, mask)
        return cond, mask

    def null_condition(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        cond = self.null_cond.expand(batch, 1, -1)
        return cond, torch.ones(batch, 1, dtype=torch.bool, device=cond.device)

    def text_states(self, cond: torch.Tensor, cond_mask: torch.Tensor) -> TextStates:
        """Runs projected text (B, L, D) through the blocks, text attending to real text only."""
        keys_values = []
        *inner, last = self.blocks
        for block in inner:
            cond, own = block(cond, cond_mask)
            keys_values.append(own)
        keys_values.append(last.attn.keys_values(last.ln1(cond)))  # nothing reads the last block's text output
        return TextStates(keys_values, cond_mask)

    def decode(self, tokens: torch.Tensor, text: TextStates) -> torch.Tensor:
        """Logits (k*B, G, G, V) for tokens (B, G, G) (mask token = ``vocab_size``) given the states of k*B
        prompts: k = 2 decodes each grid under its prompt (rows 0..B-1) and under the null or negative prompt
        (rows B..2B-1) in one pass, as guidance needs."""
        return self.head(self.trunk(self.embed(tokens).permute(0, 3, 1, 2), text))  # (k*B, G, G, V)

    def trunk(self, x: torch.Tensor, text: TextStates, patch_bias: torch.Tensor | None = None) -> torch.Tensor:
        """Per-pixel features (k*B, G, G, C) of per-pixel embeddings x (B, C, G, G) under the states of k*B
        prompts; ``patch_bias`` (B, D) is added to every patch of a grid (e.g. a noise level's embedding).

        The conv stem sees the image only, so with k > 1 it runs once per grid and its output is repeated.
        """
        B, _, G, _ = x.shape
        P, S = self.config.patch_size, self.side
        repeats = len(text) // B
        skip = self.stem(x)
        x = skip.reshape(B, -1, S, P, S, P).permute(0, 2, 4, 1, 3, 5).reshape(B, S * S, -1)  # (B, N, C*P*P)
        x = self.patch_in(x)  # (B, N, D)
        pos = (self.pos_row + self.pos_col).reshape(S * S, -1) if self.config.pos_2d else self.pos_flat
        x = x + pos if patch_bias is None else x + pos + patch_bias[:, None, :]
        if repeats > 1:
            x, skip = x.repeat(repeats, 1, 1), skip.repeat(repeats, 1, 1, 1)
        B = B * repeats
        key_mask = torch.cat([text.mask, text.mask.new_ones(B, S * S)], dim=1)  # (B, L+N): real text, all patches
        for block, prefix in zip(self.blocks, text.keys_values):
            x, _ = block(x, key_mask, prefix)
        x = self.patch_out(self.ln_f(x))  # (B, N, C*P*P)
        x = x.reshape(B, S, S, -1, P, P).permute(0, 3, 1, 4, 2, 5).reshape(B, -1, G, G)  # (B, C, G, G)
        return self.head_conv(x + skip).permute(0, 2, 3, 1)  # (B, G, G, C)

    def forward(self, tokens: torch.Tensor, cond: torch.Tensor, cond_mask: torch.Tensor) -> torch.Tensor:
        """Logits (B, G, G, V) for tokens (B, G, G) and projected text (B, L, D) with its mask (B, L)."""
        return self.decode(tokens, self.text_states(cond, cond_mask))


class MaskedTokenModel(nn.Module):
    """Wraps text encoding, condition dropout and the grid model into one forward, as DDP needs."""

    def __init__(self, model: PixelModel):
        super().__init__()
        self.model = model

    def forward(self, text_ids: torch.Tensor, tokens: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
        features, mask = self.model.text_encoder(text_ids)
        cond, cond_mask = self.model.condition(features, mask, drop)
        return self.model(tokens, cond, cond_mask)

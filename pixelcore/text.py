"""Text encoders built on open_clip: prompts -> a sequence of conditioning features.

Two kinds, chosen by ``PixelConfig.text_encoder``:

- ``"builtin"``: a small open_clip text transformer with open_clip's byte-level BPE tokenizer, trained jointly
  with the image model and stored in the checkpoint. It needs no download, so the shipped model works offline,
  and byte-level BPE covers any Unicode (Chinese included) without unknown tokens.
- ``"open_clip"``: a pretrained open_clip model named by architecture and pretrained tag (or a local weights
  file), frozen and not stored in the checkpoint; for users who have those weights.

Both return ``(features (B, L, D), mask (B, L))`` where position 0 is the pooled sentence embedding and the
rest (builtin only) are per-token features; ``mask`` is True on real positions.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from .prompts import MAX_PROMPT_CHARS, empty_prompt_message, normalize_prompt, read_prompt

log = logging.getLogger(__name__)


def check_prompts(prompts: str | list[str], what: str = "prompt") -> list[str]:
    """Validates prompts and returns them as a list.

    Raises:
        ValueError: when a prompt is not a string, is empty, or says nothing but filler ("pixel art", 像素风格),
            with a message saying what to type instead.
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise ValueError(f"expected a {what} string or a non-empty list of them, got {type(prompts).__name__}")
    checked = []
    for prompt in prompts:
        if not isinstance(prompt, str):
            raise ValueError(f"each {what} must be a string, got {type(prompt).__name__}")
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError as err:  # a lone surrogate: no file, terminal or tokenizer can take it
            raise ValueError(f"the {what} holds a broken character at position {err.start} (a lone surrogate): "
                             "type or paste it again as plain text") from None
        prompt = prompt.replace("\x00", " ").strip()
        if not prompt:
            raise ValueError(f"the {what} is empty: describe the texture, e.g. 'a blue diamond sword'")
        if len(prompt) > MAX_PROMPT_CHARS:
            log.warning("%s of %d characters cut to %d", what, len(prompt), MAX_PROMPT_CHARS)
            prompt = prompt[:MAX_PROMPT_CHARS]
        reading = read_prompt(prompt)
        if not reading.text:
            raise ValueError(empty_prompt_message(reading, what))
        checked.append(prompt)
    return checked


class BuiltinTextEncoder(nn.Module):
    """A small open_clip ``TextTransformer`` trained from scratch with the image model."""

    def __init__(self, context_length: int, width: int, layers: int, heads: int):
        super().__init__()
        from open_clip.tokenizer import SimpleTokenizer
        from open_clip.transformer import TextTransformer

        self.tokenizer = SimpleTokenizer(context_length=context_length)
        self.transformer = TextTransformer(
            context_length=context_length, vocab_size=self.tokenizer.vocab_size, width=width, heads=heads,
            layers=layers, output_dim=width, output_tokens=True,
        )
        self.out_dim = width

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        # The encoder is trained from scratch on captions with one word per colour and thing: prompts and captions
        # both go through the prompt reader's normaliser ("golden" -> "gold", 铲子 -> 锹, filler dropped). A text
        # that is nothing but filler is kept as typed rather than tokenized as empty.
        return self.tokenizer([normalize_prompt(p) or p for p in prompts])

    def forward(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, tokens = self.transformer(token_ids)  # (B, W), (B, T, W)
        features = torch.cat([pooled[:, None], tokens], dim=1)  # (B, 1+T, W)
        mask = torch.cat([torch.ones_like(token_ids[:, :1], dtype=torch.bool), token_ids != 0], dim=1)
        # Padding after the longest prompt carries nothing: trim it so attention stays short.
        length = int(mask.sum(1).max())
        return features[:, :length], mask[:, :length]


class OpenClipTextEncoder(nn.Module):
    """A frozen pretrained open_clip text tower; only its pooled embedding conditions the image model."""

    def __init__(self, model_name: str, pretrained: str):
        super().__init__()
        import open_clip

        try:
            model = open_clip.create_model(model_name, pretrained=pretrained or None, device="cpu")
        except RuntimeError as err:  # open_clip reports unknown tags and failed downloads this way
            raise ValueError(
                f"could not load open_clip model {model_name!r} with pretrained {pretrained!r}: {err}. "
                "Give a local weights file as the pretrained tag, or run once with internet access so "
                "open_clip can cache the weights."
            ) from err
        model.eval().requires_grad_(False)
        # Only the text tower is needed; dropping the image tower saves most of the memory.
        for attr in ("visual", "vision_model"):
            if hasattr(model, attr):
                setattr(model, attr, None)
        self.clip = model
        self.tokenizer = open_clip.get_tokenizer(model_name)
        with torch.no_grad():
            self.out_dim = int(model.encode_text(self.tokenizer(["a"])).shape[-1])

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        return self.tokenizer(prompts)

    def forward(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            pooled = self.clip.encode_text(token_ids).float()  # (B, E)
        return pooled[:, None], torch.ones(len(pooled), 1, dtype=torch.bool, device=pooled.device)

    def train(self, mode: bool = True) -> OpenClipTextEncoder:
        super().train(mode)
        self.clip.eval()  # frozen: never switch dropout or norm statistics on
        return self


def build_text_encoder(config) -> nn.Module:
    """Builds the text encoder a ``PixelConfig`` names."""
    if config.text_encoder == "builtin":
        return BuiltinTextEncoder(config.text_context, config.text_width, config.text_layers, config.text_heads)
    if config.text_encoder == "open_clip":
        if not config.clip_model:
            raise ValueError("text_encoder 'open_clip' needs clip_model (e.g. 'ViT-B-32') and clip_pretrained")
        return OpenClipTextEncoder(config.clip_model, config.clip_pretrained)
    raise ValueError(f"unknown text_encoder {config.text_encoder!r}: use 'builtin' or 'open_clip'")

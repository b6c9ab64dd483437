"""Text encoders built on open_clip: prompts -> a sequence of conditioning features.

Two kinds, chosen by ``PixelConfig.text_encoder``:

- ``"builtin"``: a small open_clip text transformer with open_clip's byte-level BPE tokenizer, trained jointly
  with the image model and stored in the checkpoint. It needs no download, so the shipped model works offline,
  and byte-level BPE covers any Unicode (Chinese included) without unknown tokens.
- ``"open_clip"``: a pretrained open_clip model named by architecture, its weights read from a local file the
  caller names (never a pretrained tag, a hub name or a path from a checkpoint, so nothing is downloaded),
  frozen and not stored in the checkpoint; for users who have those weights.

Both return ``(features (B, L, D), mask (B, L))`` where position 0 is the pooled sentence embedding and the
rest (builtin only) are per-token features; ``mask`` is True on real positions.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

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


def word_pattern(word: str) -> re.Pattern:
    """Finds ``word`` case-insensitively where no ASCII letter or digit continues it on either side, so
    "disc" matches in "a red disc" and "一个红色的disc" but not in "discount"."""
    before = r"(?<![a-z0-9])" if word[:1].isascii() and word[:1].isalnum() else ""
    after = r"(?![a-z0-9])" if word[-1:].isascii() and word[-1:].isalnum() else ""
    return re.compile(before + re.escape(word) + after, re.IGNORECASE)


def tokenize_with_words(tokenizer, prompts: list[str], words: dict[str, list[int]]) -> torch.Tensor:
    """Token ids (B, context) as ``tokenizer(prompts)`` gives them, except that each occurrence of a new word
    becomes its own ids (rows reserved for it) instead of the pieces the BPE would split it into.

    The text around a word is encoded piece by piece with the same BPE, so a prompt without a new word gets
    exactly the ids the plain tokenizer gives.
    """
    if not words:
        return tokenizer(prompts)
    pattern = re.compile("|".join(f"(?:{word_pattern(w).pattern})" for w in sorted(words, key=len, reverse=True)),
                         re.IGNORECASE)
    lookup = {w.lower(): ids for w, ids in words.items()}
    context = tokenizer.context_length
    out = tokenizer(prompts)
    for row, prompt in enumerate(prompts):
        if not pattern.search(prompt):
            continue
        ids, start = [tokenizer.sot_token_id], 0
        for match in pattern.finditer(prompt):
            ids += tokenizer.encode(prompt[start:match.start()]) + lookup[match.group(0).lower()]
            start = match.end()
        ids += tokenizer.encode(prompt[start:]) + [tokenizer.eot_token_id]
        if len(ids) > context:  # cut as the tokenizer cuts: the end-of-text id stays last
            ids = ids[:context - 1] + [tokenizer.eot_token_id]
        out[row] = 0
        out[row, :len(ids)] = torch.tensor(ids)
    return out


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
        # Learned words of applied adapters (pixelcore.lora): word -> the vocabulary rows that hold its vectors.
        self.new_words: dict[str, list[int]] = {}

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        # The encoder is trained from scratch on captions with one word per colour and thing: prompts and captions
        # both go through the prompt reader's normaliser ("golden" -> "gold", 铲子 -> 锹, filler dropped). A text
        # that is nothing but filler is kept as typed rather than tokenized as empty.
        prompts = [normalize_prompt(p) or p for p in prompts]
        if not self.new_words:
            return self.tokenizer(prompts)
        return tokenize_with_words(self.tokenizer, prompts, self.new_words)

    def forward(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, tokens = self.transformer(token_ids)  # (B, W), (B, T, W)
        features = torch.cat([pooled[:, None], tokens], dim=1)  # (B, 1+T, W)
        mask = torch.cat([torch.ones_like(token_ids[:, :1], dtype=torch.bool), token_ids != 0], dim=1)
        # Padding after the longest prompt carries nothing: trim it so attention stays short.
        length = int(mask.sum(1).max())
        return features[:, :length], mask[:, :length]


# Architecture names are open_clip's built-in config names ("ViT-B-32"): letters, digits and -_.+ only, so no
# "hf-hub:" or "local-dir:" schema and no path can get through.
_CLIP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}")
CLIP_WEIGHTS_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def check_clip_model(name: object) -> str:
    """Validates an open_clip architecture name from a config; returns it.

    Raises:
        ValueError: unless ``name`` is one of open_clip's built-in architectures whose text tower and tokenizer
            need nothing from the Hugging Face hub (a schema such as ``hf-hub:``, a path, or an architecture
            with a Hugging Face text model would make open_clip download).
    """
    import open_clip

    if not isinstance(name, str) or not _CLIP_NAME.fullmatch(name):
        raise ValueError(f"clip_model must be an open_clip architecture name such as 'ViT-B-32', got "
                         f"{name!r:.80}; hub names and paths are not accepted")
    config = open_clip.get_model_config(name) if name in open_clip.list_models() else None
    if config is None:
        raise ValueError(f"clip_model {name!r} is not an open_clip architecture this open_clip knows")
    text_cfg = config.get("text_cfg", {})
    if text_cfg.get("hf_model_name") or text_cfg.get("hf_tokenizer_name"):
        raise ValueError(f"clip_model {name!r} needs a text model or tokenizer from the Hugging Face hub; "
                         "PixelCore only uses open_clip architectures that work offline")
    return name


def check_clip_weights(path: object) -> Path:
    """Validates the local open_clip weights file a caller names; returns its resolved path.

    Raises:
        ValueError: unless ``path`` names an existing file with a weights suffix (CLIP_WEIGHTS_SUFFIXES).
    """
    if not isinstance(path, (str, Path)) or not str(path).strip():
        raise ValueError("the open_clip text encoder needs a local weights file (clip_weights): PixelCore "
                         "never downloads weights")
    try:
        resolved = Path(path).expanduser().resolve()
        is_file = resolved.is_file()
    except (OSError, RuntimeError, ValueError) as err:
        raise ValueError(f"open_clip weights file {str(path)!r:.200}: {err}") from err
    if not is_file:
        raise ValueError(f"open_clip weights file {str(path)!r:.200} does not exist or is not a file: give a "
                         "local weights file (PixelCore never downloads weights)")
    if resolved.suffix.lower() not in CLIP_WEIGHTS_SUFFIXES:
        raise ValueError(f"open_clip weights file {resolved.name!r}: expected one of "
                         f"{', '.join(CLIP_WEIGHTS_SUFFIXES)}")
    return resolved


class OpenClipTextEncoder(nn.Module):
    """A frozen pretrained open_clip text tower; only its pooled embedding conditions the image model.

    Args:
        model_name: an open_clip architecture name (see ``check_clip_model``).
        weights: the local weights file; never a pretrained tag or a hub name, so nothing is downloaded.
    """

    def __init__(self, model_name: str, weights: str | Path):
        super().__init__()
        import open_clip

        model_name, weights = check_clip_model(model_name), check_clip_weights(weights)
        try:
            # An absolute path is never taken for a pretrained tag; base tower weights are never fetched.
            model = open_clip.create_model(model_name, pretrained=str(weights), pretrained_text=False,
                                           pretrained_image=False, require_pretrained=True, weights_only=True,
                                           device="cpu")
            tokenizer = open_clip.get_tokenizer(model_name)
        except Exception as err:  # any failure of a third-party loader on a user's file
            raise ValueError(f"could not load open_clip model {model_name!r} from {weights.name!r}: "
                             f"{type(err).__name__}: {str(err)[:300]}") from err
        model.eval().requires_grad_(False)
        # Only the text tower is needed; dropping the image tower saves most of the memory.
        for attr in ("visual", "vision_model"):
            if hasattr(model, attr):
                setattr(model, attr, None)
        self.clip = model
        self.tokenizer = tokenizer
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


def build_text_encoder(config, clip_weights: str | Path | None = None) -> nn.Module:
    """Builds the text encoder a ``PixelConfig`` names.

    Args:
        config: the model config.
        clip_weights: for ``text_encoder="open_clip"``, the local weights file of the pretrained tower. The
            config's ``clip_pretrained`` is never read here: a config may come from a stranger's file.
    """
    if config.text_encoder == "builtin":
        return BuiltinTextEncoder(config.text_context, config.text_width, config.text_layers, config.text_heads)
    if config.text_encoder == "open_clip":
        if not config.clip_model:
            raise ValueError("text_encoder 'open_clip' needs clip_model (e.g. 'ViT-B-32') and a weights file")
        return OpenClipTextEncoder(config.clip_model, clip_weights)
    raise ValueError(f"unknown text_encoder {config.text_encoder!r}: use 'builtin' or 'open_clip'")

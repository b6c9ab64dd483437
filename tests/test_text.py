import json
import logging

import pytest
import torch

from pixelcore.checkpoint import CheckpointError, load_model, read_metadata, save_model
from pixelcore.model import PixelConfig, PixelModel
from pixelcore.sampling import SamplerConfig, encode_prompt, sample
from pixelcore.text import MAX_PROMPT_CHARS, check_prompts

TINY_CLIP = "pixelcore-test-tiny-clip"
TINY_CLIP_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.mark.parametrize("prompt", [
    "一把蓝色的钻石剑", "красный меч", "🗡️💎 sword", "a\x01b\x7fc\u200bd", "ＲＥＤ　ｗｏｏｌ", "x" * 10_000,
    "a red sword\x00 with nul",
])
def test_builtin_encoder_takes_any_unicode(tiny_model, prompt):
    features, mask = tiny_model.encode_text([prompt])
    assert features.shape[0] == 1 and features.shape[-1] == tiny_model.config.text_width
    assert 2 <= features.shape[1] <= tiny_model.config.text_context + 1 and mask.shape == features.shape[:2]
    assert torch.isfinite(features).all() and mask[0, 0]
    assert mask[0].sum() >= 3  # pooled + start + at least one real token + end: nothing became "unknown"


def test_chinese_prompts_are_told_apart(tiny_model):
    ids = tiny_model.text_encoder.tokenize(["一把蓝色的钻石剑", "一把红色的钻石剑", "a blue diamond sword"])
    assert not torch.equal(ids[0], ids[1]) and not torch.equal(ids[0], ids[2])


def test_long_prompt_is_cut_not_refused(caplog, tiny_model):
    with caplog.at_level(logging.WARNING, logger="pixelcore.text"):
        (checked,) = check_prompts("a red sword " * 1000)
    assert len(checked) == MAX_PROMPT_CHARS
    assert "cut" in caplog.text
    tokens = sample(tiny_model, encode_prompt(tiny_model, "x" * 10_000), SamplerConfig(steps=2),
                    generator=torch.Generator().manual_seed(0))
    assert tokens.shape == (1, 16, 16)


def test_check_prompts_cleans_and_refuses():
    assert check_prompts("  a red sword \n") == ["a red sword"]
    assert check_prompts(("a", "b")) == ["a", "b"]
    for bad in ("", " \t\u3000", "\x00\x00", [], None, 5, ["a", None], {"a": 1}):
        with pytest.raises(ValueError, match="prompt"):
            check_prompts(bad)
    with pytest.raises(ValueError, match="negative prompt"):
        check_prompts([""], what="negative prompt")


def test_unknown_text_encoder_is_refused(palette):
    with pytest.raises(ValueError, match="builtin"):
        PixelModel(PixelConfig.tiny(text_encoder="bert"), palette)
    with pytest.raises(ValueError, match="clip_model"):
        PixelModel(PixelConfig.tiny(text_encoder="open_clip"), palette)


@pytest.fixture(scope="module")
def tiny_clip_weights(tmp_path_factory):
    """A tiny open_clip architecture registered under a test name, with its weights in a local file."""
    import open_clip

    folder = tmp_path_factory.mktemp("clip")
    config_file = folder / f"{TINY_CLIP}.json"
    config_file.write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(config_file)
    torch.manual_seed(0)
    clip = open_clip.create_model(TINY_CLIP, pretrained=None)
    weights = folder / "tiny_clip.pt"
    torch.save(clip.state_dict(), weights)
    return clip, weights


def test_open_clip_pretrained_path(tmp_path, palette, tiny_clip_weights):
    clip, weights = tiny_clip_weights
    config = PixelConfig.tiny(text_encoder="open_clip", clip_model=TINY_CLIP, clip_pretrained=str(weights))
    torch.manual_seed(0)
    model = PixelModel(config, palette).eval()
    encoder = model.text_encoder
    assert encoder.out_dim == TINY_CLIP_CONFIG["embed_dim"]
    assert not any(p.requires_grad for p in encoder.clip.parameters())
    # The weights really came from the file: same text embedding as the model they were saved from.
    import open_clip

    ids = open_clip.get_tokenizer(TINY_CLIP)(["a red sword", "一把蓝色的钻石剑"])
    with torch.no_grad():
        features, mask = model.encode_text(["a red sword", "一把蓝色的钻石剑"])
        torch.testing.assert_close(features[:, 0], clip.encode_text(ids))
    assert features.shape == (2, 1, 16) and mask.all()
    assert not torch.allclose(features[0], features[1])
    model.train()
    assert not encoder.clip.training  # frozen tower stays in eval mode

    path = save_model(model, tmp_path / "clip_model.safetensors")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
    assert keys and not any(k.startswith("text_encoder.clip.") for k in keys)
    assert json.loads(read_metadata(path)["config"])["clip_pretrained"] == str(weights)

    loaded = load_model(path, clip_weights=weights)
    tokens = torch.full((2, 16, 16), model.mask_token)
    with torch.no_grad():
        want = model.eval()(tokens, *model.condition(features, mask))
        got = loaded(tokens, *loaded.condition(*loaded.encode_text(["a red sword", "一把蓝色的钻石剑"])))
    torch.testing.assert_close(got, want)
    assert sample(loaded, encode_prompt(loaded, "a red sword"), SamplerConfig(steps=2)).shape == (1, 16, 16)


def test_open_clip_bad_names_are_refused_usefully(tmp_path, palette, tiny_clip_weights):
    _, weights = tiny_clip_weights
    with pytest.raises(ValueError, match="no-such-clip"):
        PixelModel(PixelConfig.tiny(text_encoder="open_clip", clip_model="no-such-clip",
                                    clip_pretrained=str(weights)), palette)
    with pytest.raises(ValueError, match="local weights file"):
        PixelModel(PixelConfig.tiny(text_encoder="open_clip", clip_model=TINY_CLIP,
                                    clip_pretrained=str(tmp_path / "missing.pt")), palette)
    # A checkpoint whose CLIP weights file is gone is refused naming the model file.
    config = PixelConfig.tiny(text_encoder="open_clip", clip_model=TINY_CLIP, clip_pretrained=str(weights))
    path = save_model(PixelModel(config, palette), tmp_path / "needs_clip.safetensors")
    with pytest.raises(CheckpointError, match="needs_clip.safetensors.*open_clip"):
        load_model(path, clip_weights=tmp_path / "elsewhere.pt")
    not_weights = tmp_path / "weights.txt"
    not_weights.write_text("hello")
    with pytest.raises(CheckpointError, match="needs_clip.safetensors.*weights.txt"):
        load_model(path, clip_weights=not_weights)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(CheckpointError, match="needs_clip.safetensors.*garbage.pt"):
        load_model(path, clip_weights=garbage)


@pytest.fixture
def no_network(monkeypatch):
    """Every connection attempt is recorded and refused."""
    import socket

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def _with_config(src, dst, **changes):
    """``src`` with config fields changed in its header, data bytes untouched."""
    raw = src.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])
    header["__metadata__"]["config"] = json.dumps({**json.loads(header["__metadata__"]["config"]), **changes})
    header["__metadata__"].pop("checksum", None)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    dst.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + size:])
    return dst


@pytest.mark.parametrize("changes", [
    {"clip_model": "hf-hub:someone/their-model"}, {"clip_model": "local-dir:/tmp"}, {"clip_model": "../ViT-B-32"},
    {"clip_model": "ViT-B/32"}, {"clip_model": "coca_roberta-ViT-B-32"},  # a Hugging Face text tower
    {"clip_model": "ViT-B-32", "clip_pretrained": "openai"}, {"clip_model": "ViT-B-32", "clip_pretrained": ""},
])
def test_a_model_file_never_makes_the_loader_use_the_network(tmp_path, palette, tiny_clip_weights, no_network,
                                                             changes):
    _, weights = tiny_clip_weights
    config = PixelConfig.tiny(text_encoder="open_clip", clip_model=TINY_CLIP, clip_pretrained=str(weights))
    src = save_model(PixelModel(config, palette), tmp_path / "src.safetensors")
    path = _with_config(src, tmp_path / "hostile.safetensors", **changes)
    for clip_weights in (None, weights):
        with pytest.raises(CheckpointError, match="hostile.safetensors"):
            load_model(path, clip_weights=clip_weights)
    assert no_network == []


def test_weights_named_inside_a_model_file_are_never_read(tmp_path, palette, tiny_clip_weights, no_network):
    """Only the caller names the open_clip weights file; the model file's clip_pretrained is a record."""
    _, weights = tiny_clip_weights
    config = PixelConfig.tiny(text_encoder="open_clip", clip_model=TINY_CLIP, clip_pretrained=str(weights))
    path = save_model(PixelModel(config, palette), tmp_path / "clip_model.safetensors")
    with pytest.raises(CheckpointError, match="clip_model.safetensors.*local weights file"):
        load_model(path)
    elsewhere = _with_config(path, tmp_path / "elsewhere.safetensors", clip_pretrained="/nowhere/at/all.pt")
    assert load_model(elsewhere, clip_weights=str(weights)).text_encoder.out_dim == TINY_CLIP_CONFIG["embed_dim"]
    assert no_network == []

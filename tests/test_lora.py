"""LoRA adapters and new words: the file, apply/remove/merge, and a tiny training run."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from conftest import sensitize
from pixelcore.checkpoint import export_model, load_model, save_model
from pixelcore.lora import Adapter, AdapterError, LoraConfig, base_hash, load_adapter, target_names
from pixelcore.lora_apply import apply_adapter, applied, merged, remove_adapter, set_strength
from pixelcore.lora_train import REPLAY_NAMES, LoraTrainConfig, replay_specs, train_lora
from pixelcore.model import PixelConfig, PixelModel
from pixelcore.sampling import SamplerConfig, encode_prompt, sample
from pixelcore.text import tokenize_with_words

ALL_TARGETS = ("attn", "mlp", "text_attn", "text_mlp")


@pytest.fixture
def model(palette):
    torch.manual_seed(0)
    return sensitize(PixelModel(PixelConfig.tiny(), palette)).eval()


def _adapter(model, words=("disc",), targets=ALL_TARGETS, seed=3) -> Adapter:
    """An adapter with random (non-zero) factors and words, so that it visibly changes samples."""
    adapter = Adapter.create(model, LoraConfig(rank=4, alpha=4.0, targets=targets, words=words))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pair in adapter.pairs:
            pair.up.copy_(torch.randn(pair.up.shape, generator=gen))
        if adapter.words is not None:
            adapter.words.copy_(torch.randn(adapter.words.shape, generator=gen))
    return adapter


def _tokens(model, prompts=("a red disc", "a blue sword", "一个红色的disc")):
    # fp32: these tests compare adapter arithmetic (merged against applied weights), which bf16 rounding would blur
    return sample(model, encode_prompt(model, list(prompts)), SamplerConfig(precision="fp32"), batch_size=3,
                  generator=torch.Generator().manual_seed(7))


def test_targets_are_the_attention_and_mlp_projections(model):
    names = target_names(model, ALL_TARGETS)
    assert "blocks.0.attn.qkv.weight" in names and "blocks.0.mlp.2.weight" in names
    assert "text_encoder.transformer.transformer.resblocks.0.attn.in_proj_weight" in names
    assert len(names) == 4 * (model.config.n_layer + model.config.text_layers)
    assert all(n.startswith("blocks.") for n in target_names(model, ("attn", "mlp")))


def test_strength_zero_gives_the_base_tokens_exactly_and_remove_restores_the_weights(model):
    before_state = {k: v.clone() for k, v in model.state_dict().items()}
    base = _tokens(model, ("a blue sword", "red wool block"))
    adapter = _adapter(model)
    apply_adapter(model, adapter, 0.0)
    assert torch.equal(_tokens(model, ("a blue sword", "red wool block")), base)
    set_strength(model, adapter.name, 1.0)
    assert not torch.equal(_tokens(model, ("a blue sword", "red wool block")), base)
    remove_adapter(model, adapter.name)
    assert applied(model) == {} and model.text_encoder.new_words == {}
    assert model.state_dict().keys() == before_state.keys()
    assert all(torch.equal(v, before_state[k]) for k, v in model.state_dict().items())
    assert torch.equal(_tokens(model, ("a blue sword", "red wool block")), base)


def test_merged_copy_samples_the_same_tokens_as_the_applied_adapters(model):
    first, second = _adapter(model, seed=3), _adapter(model, words=("coin",), targets=("attn",), seed=4)
    second.name = "second"
    fused = merged(model, [(first, 0.7), (second, 1.0)])
    assert applied(model) == {}  # the input model is left as it was
    apply_adapter(model, first, 0.7)
    apply_adapter(model, second, 1.0)
    prompts = ("a red disc", "a gold coin", "a blue sword", "一个红色的disc")
    assert torch.equal(_tokens(fused, prompts), _tokens(model, prompts))
    remove_adapter(model, second.name)
    remove_adapter(model, first.name)
    assert not torch.equal(_tokens(fused, prompts), _tokens(model, prompts))
    assert base_hash(fused) == base_hash(model)  # more adapters for this base can be merged into the copy


def test_new_word_is_stored_reloaded_and_composes_with_known_words(model, tmp_path):
    adapter = _adapter(model, words=("disc",))
    path = adapter.save(tmp_path / "disc.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert json.loads(meta["words"]) == ["disc"] and meta["base_model"] == base_hash(model)
    assert meta["rank"] == "4" and json.loads(meta["targets"]) == list(ALL_TARGETS)
    loaded = load_adapter(path, model)
    assert torch.equal(loaded.words, adapter.words.detach().half().float())
    apply_adapter(model, loaded)
    rows = model.text_encoder.new_words["disc"]
    ids = model.text_encoder.tokenize(["a red disc", "一个红色的disc", "a red discount"])
    plain = model.text_encoder.tokenizer(["a red"])[0]
    assert ids[0, :3].tolist() == plain[:3].tolist() and ids[0, 3].item() == rows[0]  # "a red" + the new word
    assert rows[0] in ids[1].tolist() and rows[0] not in ids[2].tolist()
    table = model.text_encoder.transformer.token_embedding.weight
    assert torch.equal(table[rows[0]], loaded.words[0])


def test_tokenizing_with_words_changes_nothing_else(model):
    tokenizer = model.text_encoder.tokenizer
    prompts = ["a red sword", "一把蓝色的钻石剑", "discus thrower " * 20]
    assert torch.equal(tokenize_with_words(tokenizer, prompts, {"disc": [49405]}), tokenizer(prompts))
    long = tokenize_with_words(tokenizer, ["disc " * 100], {"disc": [49405]})[0]
    assert long[-1].item() == tokenizer.eot_token_id and (long[1:-1] == 49405).all()


def test_adapter_for_another_base_is_refused(model, palette, tmp_path):
    path = _adapter(model).save(tmp_path / "other.safetensors")
    torch.manual_seed(99)
    other = PixelModel(PixelConfig.tiny(), palette)
    with pytest.raises(AdapterError, match="other.safetensors.*another base model"):
        load_adapter(path, other)
    with pytest.raises(AdapterError, match="another base model"):
        apply_adapter(other, load_adapter(path))


def test_fp16_export_keeps_the_base_hash(model, tmp_path):
    src = save_model(model, tmp_path / "m.safetensors")
    half = export_model(src, tmp_path / "m16.safetensors")
    assert base_hash(load_model(src)) == base_hash(load_model(half))
    with torch.no_grad():
        model.blocks[0].mlp[0].weight[0, 0] += 0.01
    assert base_hash(model) != base_hash(load_model(src))


@pytest.mark.parametrize("problem, expected", [
    ("garbage", "not a readable .safetensors"),
    ("truncated", "not a readable .safetensors"),
    ("model", "a PixelCore model, not an adapter"),
    ("rank", "do not have rank"),
    ("nan", "NaN or infinite"),
    ("missing", "no such adapter file"),
])
def test_bad_adapter_files_are_refused_naming_the_file(model, tmp_path, problem, expected):
    good = _adapter(model).save(tmp_path / "good.safetensors")
    bad = tmp_path / f"{problem}.safetensors"
    if problem == "garbage":
        bad.write_bytes(b"not an adapter at all")
    elif problem == "truncated":
        bad.write_bytes(good.read_bytes()[:-100])
    elif problem == "model":
        save_model(model, bad)
    elif problem in ("rank", "nan"):
        with safe_open(str(good), framework="pt") as f:
            meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
        key = next(k for k in tensors if k.endswith(".down"))
        if problem == "rank":
            tensors[key] = tensors[key][:2].contiguous()
        else:
            tensors[key][0, 0] = float("nan")
        from safetensors.torch import save_file
        save_file(tensors, str(bad), metadata=meta)
    with pytest.raises(AdapterError, match=f"{problem}.safetensors.*{expected}"):
        load_adapter(bad, model)


def test_tiny_lora_run_lowers_its_loss_and_writes_a_grid(texture_dir, saved_tiny_model, tmp_path):
    out = tmp_path / "tiny_lora.safetensors"
    config = LoraTrainConfig(data=str(texture_dir), out=str(out), base=str(saved_tiny_model), rank=4, alpha=4.0,
                             words=("blade",), steps=30, batch_size=8, lr=1e-2, word_lr=1e-2, warmup=3,
                             max_minutes=0, device="cpu", prior_samples=1, hue_shifts=())
    result = train_lora(config)
    assert result.steps == 30 and result.loss_after < result.loss_before
    base = load_model(saved_tiny_model)
    adapter = load_adapter(out, base)
    assert adapter.config.words == ("blade",) and adapter.info.training["steps"] == 30
    assert out.with_name("tiny_lora_samples.png").is_file()


def test_time_budget_ends_a_run(texture_dir, saved_tiny_model, tmp_path):
    config = LoraTrainConfig(data=str(texture_dir), out=str(tmp_path / "a.safetensors"), base=str(saved_tiny_model),
                             steps=100_000, max_minutes=0.05, batch_size=4, device="cpu", prior=0.0,
                             samples=False, hue_shifts=())
    result = train_lora(config)
    assert result.steps < 100_000 and result.seconds < 30


def test_replay_prompts_stay_apart_from_the_public_evaluation_prompts():
    from pixelcore.captions import caption_variants
    from pixelcore.evaluate import load_prompts
    from pathlib import Path

    public = {s.prompt for s in load_prompts(Path(__file__).resolve().parents[1] / "eval" / "prompts_public.jsonl")}
    replay = [caption_variants(name, color, kind)[0] for name, color, kind in replay_specs()]
    assert len(set(replay)) == len(replay) == 3 * len(REPLAY_NAMES) and not public & set(replay)


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="rank"):
        LoraConfig(rank=0).validate()
    with pytest.raises(ValueError, match="new word"):
        LoraConfig(words=(" disc",)).validate()
    with pytest.raises(ValueError, match=".safetensors"):
        LoraTrainConfig(data=".", out=str(tmp_path / "x.pt")).validate()


def test_cli_trains_an_adapter_and_generates_with_it(tmp_path, texture_dir, saved_tiny_model, caplog):
    import numpy as np
    from PIL import Image

    from pixelcore.cli import main

    adapter = tmp_path / "blade.safetensors"
    assert main(["lora", "train", "--data", str(texture_dir), "-o", str(adapter), "--model", str(saved_tiny_model),
                 "--word", "blade", "--rank", "2", "--steps", "4", "--batch-size", "4", "--no-prior",
                 "--no-samples", "--hue-shifts", "", "--device", "cpu"]) == 0
    assert load_adapter(adapter).config.words == ("blade",)

    def generate(name, *extra):
        out = tmp_path / name
        assert main(["generate", "a red blade", "-o", str(out), "--model", str(saved_tiny_model), "--seed", "2",
                     "--device", "cpu", *extra]) == 0
        with Image.open(out) as png:
            return np.array(png), png.text

    base, _ = generate("base.png")
    off, _ = generate("off.png", "--lora", str(adapter), "--lora-strength", "0")
    assert np.array_equal(base, off)
    _, text = generate("on.png", "--lora", str(adapter), "--lora", str(adapter.with_name("blade.safetensors")),
                       "--lora-strength", "1", "--lora-strength", "0")
    assert "blade.safetensors@1" in json.dumps(text)
    with caplog.at_level("ERROR"):
        assert main(["generate", "a red blade", "-o", str(tmp_path / "x.png"), "--model", str(saved_tiny_model),
                     "--lora", str(adapter), "--lora-strength", "1", "--lora-strength", "2"]) == 2
        assert main(["generate", "a red blade", "-o", str(tmp_path / "x.png"),
                     "--lora", str(tmp_path / "no.safetensors")]) == 2
    assert "--lora-strength" in caplog.text and "no such adapter" in caplog.text
    assert not (tmp_path / "x.png").exists()


def test_distilled_prior_is_zero_until_the_adapter_moves(model, texture_dir, tmp_path):
    from pixelcore.data import load_textures
    from pixelcore.lora_train import _distill_loss, _Objective

    logits = torch.randn(2, 4, 4, 5)
    masked = torch.ones(2, 4, 4, dtype=torch.bool)
    assert float(_distill_loss(logits, logits, masked)) == pytest.approx(0.0, abs=1e-6)
    assert float(_distill_loss(logits, torch.randn(2, 4, 4, 5), masked)) > 0

    records, _ = load_textures(texture_dir)
    tokens = model.palette.quantize(torch.stack([torch.as_tensor(r.pixels) for r in records]).numpy())
    adapter = Adapter.create(model, LoraConfig(rank=2, alpha=2.0))  # up = 0: changes nothing yet
    apply_adapter(model, adapter)
    config = LoraTrainConfig(data=str(texture_dir), cond_dropout=0.0)
    objective = _Objective(model, records, tokens, config, torch.device("cpu"), n_data=4, adapter_name=adapter.name)
    replay_only = torch.arange(4, len(records))
    with torch.no_grad():
        assert float(objective(replay_only, torch.Generator().manual_seed(0))) == pytest.approx(0.0, abs=1e-6)
        for pair in adapter.pairs:
            pair.up.normal_()
        assert float(objective(replay_only, torch.Generator().manual_seed(0))) > 1e-4
    assert applied(model) == {adapter.name: 1.0}  # the base-model pass restores the strength

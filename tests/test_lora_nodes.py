"""The LoRA loader node against ComfyUI stand-ins (the ``pack`` fixture of test_nodes.py)."""

import pytest
import torch

from pixelcore.checkpoint import load_model
from pixelcore.lora import Adapter, LoraConfig, load_adapter
from pixelcore.lora_apply import merged
from pixelcore.model import PixelConfig, PixelModel
from pixelcore.sampling import encode_prompt, sample
from test_nodes import TINY, pack, run  # noqa: F401  (pack is a fixture)

LOAD_LORA = "PixelCore_LoadLoRA"


def _adapter_file(model, path, seed=0, word="disc"):
    adapter = Adapter.create(model, LoraConfig(rank=2, alpha=2.0, words=(word,)))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pair in adapter.pairs:
            pair.up.copy_(torch.randn(pair.up.shape, generator=gen) * 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    return adapter.save(path), adapter


def _tokens(model, prompt="a red disc"):
    return sample(model, encode_prompt(model, prompt), batch_size=2, generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def adapters(pack):  # noqa: F811
    base = load_model(pack.models / TINY)
    folder = pack.base / "models" / "pixelcore_lora"
    _adapter_file(base, folder / "disc.safetensors")
    _adapter_file(base, pack.base / "models" / "loras" / "pixelcore" / "sub" / "coin.safetensors", seed=1, word="coin")
    (folder / "notes.txt").write_text("not an adapter")
    torch.manual_seed(42)
    other = PixelModel(PixelConfig.tiny(), base.palette)
    _adapter_file(other, folder / "foreign.safetensors")
    return folder


def test_adapters_are_listed_from_both_folders_safetensors_only(pack, adapters):  # noqa: F811
    names = pack.nodes[LOAD_LORA].INPUT_TYPES()["required"]["lora_name"][0]
    assert names == ["disc.safetensors", "foreign.safetensors", "sub/coin.safetensors"]


def test_node_returns_a_merged_copy_and_leaves_the_input_model_alone(pack, adapters):  # noqa: F811
    (model,) = run(pack, "PixelCore_LoadPixelModel", TINY)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    base_tokens = _tokens(model)
    patched, words = run(pack, LOAD_LORA, model, "disc.safetensors", 1.0)
    assert patched is not model and words == "disc"
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert torch.equal(_tokens(model), base_tokens)
    assert not torch.equal(_tokens(patched), base_tokens)
    expected = merged(model, [(load_adapter(adapters / "disc.safetensors", model), 1.0)])
    assert torch.equal(_tokens(patched), _tokens(expected))
    stacked, _ = run(pack, LOAD_LORA, patched, "sub/coin.safetensors", 0.5)  # a second adapter on the copy
    assert not torch.equal(_tokens(stacked, "a red sword"), _tokens(patched, "a red sword"))
    unchanged, _ = run(pack, LOAD_LORA, model, "disc.safetensors", 0.0)
    assert unchanged is model


@pytest.mark.parametrize("name, expected", [
    ("foreign.safetensors", "another base model"),
    ("../pixelcore/" + TINY, "was not found"),
    ("notes.txt", "not a .safetensors"),
    ("missing.safetensors", "was not found"),
])
def test_bad_adapters_are_refused_with_a_message(pack, adapters, name, expected):  # noqa: F811
    (model,) = run(pack, "PixelCore_LoadPixelModel", TINY)
    with pytest.raises((ValueError, FileNotFoundError), match=expected):
        run(pack, LOAD_LORA, model, name, 1.0)

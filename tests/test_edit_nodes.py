"""The edit nodes against the same small stand-ins for ComfyUI that test_nodes.py uses."""

import numpy as np
import pytest
import torch

from pixelcore.checkpoint import save_model
from pixelcore.model import PixelConfig, PixelModel
from pixelcore.palette import Palette
import test_nodes
from test_nodes import TINY, Interrupted, generate, run

pack = test_nodes.pack  # the fixture that loads the pack under stand-ins for ComfyUI

EDIT_NODES = ["PixelCore_ImageToTokens", "PixelCore_RegionMask", "PixelCore_Inpaint", "PixelCore_Variations",
              "PixelCore_PaletteLock", "PixelCore_MaskGITSampleAdvanced", "PixelCore_Recolor",
              "PixelCore_TilePreview"]
SETTINGS = dict(seed=3, steps=4, cfg=3.0, temperature=1.0)


@pytest.fixture(scope="module")
def model(pack):
    return run(pack, "PixelCore_LoadPixelModel", TINY)[0]


@pytest.fixture(scope="module")
def cond(pack, model):
    return run(pack, "PixelCore_EncodePrompt", model, "a red sword")[0]


def test_edit_nodes_are_registered_with_prefix_category_and_tooltips(pack):
    for node_id in EDIT_NODES:
        cls = pack.nodes[node_id]
        assert cls.CATEGORY == "PixelCore/edit" and cls.DESCRIPTION.strip()
        inputs = cls.INPUT_TYPES()
        for name, spec in {**inputs["required"], **inputs.get("optional", {})}.items():
            assert spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"


def test_decoded_texture_converts_back_exactly_also_when_enlarged(pack, model):
    tokens = generate(pack, batch_size=2)
    image, mask = run(pack, "PixelCore_PaletteDecode", tokens)
    (back,) = run(pack, "PixelCore_ImageToTokens", model, image, mask)
    assert torch.equal(back.tokens, tokens.tokens) and back.batch_index == [0, 1]
    big, big_mask = run(pack, "PixelCore_Upscale", image, 4, mask)
    (back,) = run(pack, "PixelCore_ImageToTokens", model, big, big_mask)
    assert torch.equal(back.tokens, tokens.tokens)
    with pytest.raises(ValueError, match="got 20x20.*16x16"):
        run(pack, "PixelCore_ImageToTokens", model, torch.rand(1, 20, 20, 3))


def test_inpaint_repaints_only_the_region_and_records_prompt_and_seed(pack, model, cond):
    tokens = generate(pack, seed=1)
    (mask,) = run(pack, "PixelCore_RegionMask", 2, 3, 6, 5)
    assert mask.shape == (1, 16, 16) and mask.sum() == 30
    (out,) = run(pack, "PixelCore_Inpaint", model, cond, tokens, mask, **SETTINGS)
    keep = mask[0] == 0
    assert torch.equal(out.tokens[:, keep], tokens.tokens[:, keep])
    assert out.prompts == ["a red sword"] and out.seed == 3
    (big_mask,) = run(pack, "PixelCore_Upscale", mask[..., None].expand(-1, -1, -1, 3), 8)[:1]
    (again,) = run(pack, "PixelCore_Inpaint", model, cond, tokens, big_mask[..., 0], **SETTINGS)
    assert torch.equal(again.tokens, out.tokens)  # an enlarged mask marks the same cells


def test_inpaint_refuses_tokens_of_another_palette(pack, model, cond, tmp_path):
    other = Palette.from_colors(np.array([[9, 9, 9], [99, 99, 99]], np.uint8))
    save_model(PixelModel(PixelConfig.tiny(), other), pack.models / "other.safetensors")
    (other_model,) = run(pack, "PixelCore_LoadPixelModel", "other.safetensors")
    tokens = generate(pack)
    (mask,) = run(pack, "PixelCore_RegionMask", 0, 0, 4, 4)
    with pytest.raises(ValueError, match="another model's palette"):
        run(pack, "PixelCore_Inpaint", other_model, cond, tokens, mask, **SETTINGS)


def test_inpaint_reports_progress_and_can_be_cancelled(pack, model, cond):
    tokens = generate(pack)
    (mask,) = run(pack, "PixelCore_RegionMask", 0, 0, 8, 8)
    pack.progress.updates.clear()
    run(pack, "PixelCore_Inpaint", model, cond, tokens, mask, **SETTINGS)
    assert pack.progress.updates == [(i, 4) for i in range(1, 5)]
    pack.mm.checks, pack.mm.interrupt_after_checks = 0, 2
    try:
        with pytest.raises(Interrupted):
            run(pack, "PixelCore_Inpaint", model, cond, tokens, mask, **SETTINGS)
    finally:
        pack.mm.interrupt_after_checks = None


def test_variations_strength_zero_is_identity_and_batches_per_input(pack, model, cond):
    tokens = generate(pack, batch_size=2)
    (same,) = run(pack, "PixelCore_Variations", model, cond, tokens, 0.0, **SETTINGS, batch_size=3)
    assert torch.equal(same.tokens, tokens.tokens.repeat_interleave(3, 0))
    assert same.batch_index == [0, 1, 2, 0, 1, 2] and len(same.prompts) == 6
    (varied,) = run(pack, "PixelCore_Variations", model, cond, tokens, 0.5, **SETTINGS, batch_size=3)
    assert varied.tokens.shape == (6, 16, 16) and not torch.equal(varied.tokens, same.tokens)


def test_palette_lock_from_tokens_or_image_limits_the_colours(pack, model, cond):
    first = generate(pack, seed=2)
    (lock,) = run(pack, "PixelCore_PaletteLock", model, 1, tokens=first)
    assert len(lock.allowed) == 1
    (locked,) = run(pack, "PixelCore_MaskGITSampleAdvanced", model, cond, **SETTINGS, batch_size=3,
                    seamless=False, palette_lock=lock)
    assert set(locked.tokens.unique().tolist()) <= {0, int(lock.allowed[0])}
    swatch = torch.tensor([[[[0.12, 0.12, 0.78], [0.78, 0.12, 0.12]]]])  # blue and red, as an IMAGE
    (lock,) = run(pack, "PixelCore_PaletteLock", model, 0, palette_image=swatch)
    assert sorted(model.palette.colors[lock.allowed, :3].tolist()) == [[30, 30, 200], [200, 30, 30]]
    with pytest.raises(ValueError, match="Connect tokens"):
        run(pack, "PixelCore_PaletteLock", model, 4)


def test_seamless_sampling_node_and_tile_preview(pack, model, cond):
    (out,) = run(pack, "PixelCore_MaskGITSampleAdvanced", model, cond, **SETTINGS, batch_size=2,
                 seamless=True)
    assert out.tokens.shape == (2, 16, 16) and out.prompts == ["a red sword"] * 2
    assert out.batch_index == [0, 1]
    image, mask = run(pack, "PixelCore_PaletteDecode", out)
    tiled, tiled_mask = run(pack, "PixelCore_TilePreview", image, 3, mask)
    assert tiled.shape == (2, 48, 48, 3) and tiled_mask.shape == (2, 48, 48)
    assert torch.equal(tiled[:, 16:32, 32:48], image)
    (solid,) = run(pack, "PixelCore_MaskGITSampleAdvanced", model, cond, **{**SETTINGS, "temperature": 3.0},
                   batch_size=2, seamless=True, opaque=True)
    assert not (solid.tokens == 0).any()
    _, solid_mask = run(pack, "PixelCore_PaletteDecode", solid)
    assert (solid_mask == 0).all()  # MASK = 1 - alpha: nothing transparent


def test_sampling_node_fills_stray_holes_unless_told_not_to(pack, model, cond, monkeypatch):
    from pixelcore import editing
    from pixelcore.sampling import SamplerConfig

    seen, real = [], editing.sample
    monkeypatch.setattr(editing, "sample", lambda model, cond, config, **k: seen.append(config.min_cutout)
                        or real(model, cond, config, **k))
    run(pack, "PixelCore_MaskGITSampleAdvanced", model, cond, **SETTINGS, batch_size=1, seamless=False)
    run(pack, "PixelCore_MaskGITSampleAdvanced", model, cond, **SETTINGS, batch_size=1, seamless=False,
        fill_stray_holes=False)
    assert seen == [SamplerConfig.min_cutout, 0.0]


def test_recolor_makes_one_texture_per_variant(pack, model):
    tokens = generate(pack, seed=4)
    (out,) = run(pack, "PixelCore_Recolor", model, tokens, "blue, gold\niron", "sword", **SETTINGS)
    assert out.tokens.shape == (3, 16, 16)
    assert out.prompts == ["blue sword", "gold sword", "iron sword"]
    transparent = tokens.tokens[0] == 0
    assert (out.tokens[:, transparent] == 0).all()
    with pytest.raises(ValueError, match="at least one"):
        run(pack, "PixelCore_Recolor", model, tokens, " ", "sword", **SETTINGS)

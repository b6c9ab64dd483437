"""Contracts of pixelcore.editing on a tiny random-weight model: what is kept is kept, locks hold, errors say
what to do."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from pixelcore import editing
from pixelcore.model import ConvBlock, PixelConfig, PixelModel
from pixelcore.palette import Palette
from pixelcore.sampling import SamplerConfig, encode_prompt, sample

COLORS = np.array([[200, 30, 30], [30, 30, 200], [30, 200, 30], [240, 240, 60], [20, 20, 20],
                   [250, 250, 250]], np.uint8)
STEPS = 4


def gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return PixelModel(PixelConfig.tiny(), Palette.from_colors(COLORS))


@pytest.fixture(scope="module")
def cond(model):
    return encode_prompt(model, "a red diamond sword")


@pytest.fixture(scope="module")
def texture(model, cond):
    return sample(model, cond, generator=gen(1), config=SamplerConfig(steps=STEPS))  # (1, 16, 16)


# --- image -> tokens ---

def test_16x16_and_exact_enlargements_map_exactly(model):
    tokens = torch.randint(0, len(model.palette), (2, 16, 16), generator=gen(0))
    rgba = model.palette.dequantize(tokens).numpy()
    assert torch.equal(editing.image_to_tokens(rgba, model.palette), tokens)
    assert torch.equal(editing.image_to_tokens(rgba[0], model.palette), tokens[:1])
    for factor in (2, 3, 16):
        big = rgba.repeat(factor, 1).repeat(factor, 2)
        assert torch.equal(editing.image_to_tokens(big, model.palette), tokens)


def test_off_palette_colours_take_the_nearest_entry(model):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = (190, 40, 35), 255  # near the red entry
    rgba[0, 0, 3] = 20  # mostly transparent -> the transparent token
    tokens = editing.image_to_tokens(rgba, model.palette)[0]
    red = int(model.palette.nearest_tokens(np.array([[200, 30, 30]], np.uint8))[0])
    assert tokens[0, 0] == 0 and (tokens.reshape(-1)[1:] == red).all()


@pytest.mark.parametrize("shape, expected", [
    ((20, 20), "got 20x20.*nearest-neighbour"),
    ((16, 32), "got 32x16"),
    ((512, 512), "got 512x512"),
])
def test_other_sizes_are_refused_saying_what_to_do(model, shape, expected):
    with pytest.raises(ValueError, match=expected):
        editing.image_to_tokens(np.zeros((*shape, 4), np.uint8), model.palette)


def test_smoothed_enlargement_is_refused(model):
    rgba = model.palette.dequantize(torch.randint(1, 4, (16, 16), generator=gen(2))).numpy()
    big = rgba.repeat(2, 0).repeat(2, 1)
    big[1, 1, 0] ^= 1  # one pixel off: not an exact enlargement
    with pytest.raises(ValueError, match="not an exact 2x enlargement"):
        editing.image_to_tokens(big, model.palette)


def test_mask_cells_are_set_when_any_pixel_is_painted():
    mask = torch.zeros(1, 64, 64)
    mask[0, 5, 9] = 1.0  # one pixel in cell (1, 2) of a 4x view
    cells = editing.mask_to_grid(mask)
    assert cells.shape == (1, 16, 16) and cells.sum() == 1 and cells[0, 1, 2]
    with pytest.raises(ValueError, match="whole multiple"):
        editing.mask_to_grid(torch.zeros(1, 20, 20))


# --- inpaint ---

def test_inpaint_keeps_unmasked_cells_and_follows_the_seed(model, cond, texture):
    repaint = torch.zeros(1, 16, 16, dtype=torch.bool)
    repaint[:, 4:12, 2:9] = True
    out = editing.inpaint(model, cond, texture, repaint, generator=gen(3), config=SamplerConfig(steps=STEPS))
    assert torch.equal(out[~repaint], texture[~repaint])
    assert not torch.equal(out, texture)  # something was repainted
    again = editing.inpaint(model, cond, texture, repaint, generator=gen(3), config=SamplerConfig(steps=STEPS))
    assert torch.equal(out, again)


def test_inpaint_a_batch_with_one_prompt_and_a_palette_lock(model, cond, texture):
    batch = torch.cat([texture, texture.flip(-1)])
    repaint = torch.zeros(2, 16, 16, dtype=torch.bool)
    repaint[0, :8], repaint[1, 8:] = True, True
    allowed = torch.tensor([2, 3])
    out = editing.inpaint(model, cond, batch, repaint, allowed_tokens=allowed, generator=gen(4),
                          config=SamplerConfig(steps=STEPS))
    assert torch.equal(out[~repaint], batch[~repaint])
    assert set(out[repaint].unique().tolist()) <= {0, 2, 3}


# --- variations ---

def test_strength_zero_is_the_input(model, cond, texture):
    out = editing.variations(model, cond, texture, 0.0, batch_size=3, generator=gen(5))
    assert torch.equal(out, texture.expand(3, -1, -1))


def test_strength_one_ignores_the_input(model, cond, texture):
    other = torch.randint(0, len(model.palette), (1, 16, 16), generator=gen(6))
    a = editing.variations(model, cond, texture, 1.0, generator=gen(7), config=SamplerConfig(steps=STEPS))
    b = editing.variations(model, cond, other, 1.0, generator=gen(7), config=SamplerConfig(steps=STEPS))
    assert torch.equal(a, b)
    assert torch.equal(a, sample(model, cond, generator=gen(7), config=SamplerConfig(steps=STEPS)))


def test_partial_strength_changes_at_most_that_share(model, cond, texture):
    out = editing.variations(model, cond, texture, 0.25, batch_size=4, generator=gen(8),
                             config=SamplerConfig(steps=STEPS))
    changed = (out != texture).reshape(4, -1).sum(1)
    assert out.shape == (4, 16, 16) and (changed <= 64).all() and changed.sum() > 0
    with pytest.raises(ValueError, match="strength"):
        editing.variations(model, cond, texture, 1.5)


# --- palette lock ---

def test_locked_samples_use_only_allowed_colours(model, cond, texture):
    lock = editing.lock_most_used(texture, 2)
    assert len(lock) <= 2 and 0 not in lock.tolist()
    out = editing.sample_around(model, cond, None, None, 4, allowed_tokens=lock, generator=gen(9),
                                config=SamplerConfig(steps=STEPS))
    assert set(out.unique().tolist()) <= {0, *lock.tolist()}
    varied = editing.variations(model, cond, texture, 0.3, allowed_tokens=torch.tensor([5]), generator=gen(10),
                                config=SamplerConfig(steps=STEPS))
    assert set(varied.unique().tolist()) <= {0, 5}  # kept cells of other colours were re-masked too


def test_lock_to_palette_image_takes_the_nearest_entries(model):
    swatch = np.array([[[195, 35, 30, 255], [35, 35, 190, 255], [0, 0, 0, 0], [190, 30, 35, 255]]], np.uint8)
    lock = editing.lock_to_colors(model.palette, swatch)
    expected = model.palette.nearest_tokens(COLORS[:2]).sort().values
    assert torch.equal(lock, expected)
    assert torch.equal(editing.lock_to_colors(model.palette, swatch, max_colors=1),
                       model.palette.nearest_tokens(COLORS[:1]))
    with pytest.raises(ValueError, match="no opaque"):
        editing.lock_to_colors(model.palette, np.zeros((4, 4, 4), np.uint8))


# --- seamless ---

def test_seam_score_ranks_a_hard_seam_above_a_seamless_tile():
    triangle = np.abs(np.arange(16) - 8) * 24 + 20  # up and down again: every step, the wrap too, is 24
    seamless = np.zeros((16, 16, 4), np.uint8)
    seamless[..., 0], seamless[..., 2], seamless[..., 3] = triangle[None, :], triangle[:, None], 255
    seam = seamless.copy()
    seam[..., 0] = np.linspace(20, 220, 16).astype(np.uint8)[None, :]  # a ramp that jumps back at the wrap
    assert editing.seam_score(seamless) <= 1.1 < 2.0 < editing.seam_score(seam)
    assert editing.seam_score(np.full((16, 16, 4), 255, np.uint8)) == 1.0  # flat


def test_seamless_sampling_gives_a_finite_score_and_restores_the_model(model, cond):
    out = editing.sample_around(model, cond, None, None, 2, seamless=True, generator=gen(11),
                                config=SamplerConfig(steps=STEPS))
    scores = [editing.seam_score(model.palette.dequantize(t).numpy()) for t in out]
    assert all(np.isfinite(s) for s in scores)
    plain = sample(model, cond, batch_size=2, generator=gen(11), config=SamplerConfig(steps=STEPS))
    assert not torch.equal(out, plain)  # the wrap-around changed the network's view
    assert all(m.padding_mode == "constant" for m in model.modules() if isinstance(m, ConvBlock))
    assert editing.tile(np.zeros((16, 16, 4)), 3).shape == (48, 48, 4)


def test_opaque_sampling_never_draws_transparent_but_keeps_given_cells(model, cond):
    hot = SamplerConfig(steps=STEPS, temperature=3.0)
    plain = editing.sample_around(model, cond, None, None, 4, hot, generator=gen(12))
    assert (plain == editing.TRANSPARENT).any()  # a hot, untrained sampler draws holes
    solid = editing.sample_around(model, cond, None, None, 4, replace(hot, opaque=True), seamless=True,
                                  generator=gen(12))
    assert not (solid == editing.TRANSPARENT).any()
    init = torch.full((1, 16, 16), 2)
    init[:, :4] = editing.TRANSPARENT
    keep = torch.zeros(1, 16, 16, dtype=torch.bool)
    keep[:, :4] = True
    kept = editing.sample_around(model, cond, init, keep, 2, replace(hot, opaque=True), generator=gen(13))
    assert (kept[:, :4] == editing.TRANSPARENT).all() and not (kept[:, 4:] == editing.TRANSPARENT).any()
    assert not model._forward_hooks  # the model is left as it was
    assert torch.equal(editing.sample_around(model, cond, None, None, 4, hot, generator=gen(12)), plain)


# --- recolour ---

def test_recolor_keeps_silhouette_and_outline_and_makes_one_per_prompt(model, texture):
    prompts = editing.recolor_prompts("red, blue\n gold ,", "sword")
    assert prompts == ["red sword", "blue sword", "gold sword"]
    shape = texture.clone()
    shape[:, :, :4] = 0  # transparent band
    shape[:, 0, 4:] = model.palette.nearest_tokens(np.array([[20, 20, 20]], np.uint8))  # a dark outline row
    out = editing.recolor(model, shape, prompts, generator=gen(12), config=SamplerConfig(steps=STEPS))
    assert out.shape == (3, 16, 16)
    keep = editing.structure_mask(model.palette, shape)
    assert keep[0, :, :4].all()
    assert torch.equal(out[keep.expand_as(out)], shape.expand_as(out)[keep.expand_as(out)])
    assert torch.equal(out == 0, (shape == 0).expand_as(out))  # no new transparent cells either
    with pytest.raises(ValueError, match="at least one"):
        editing.recolor_prompts(" , ", "sword")

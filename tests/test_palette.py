import numpy as np
import pytest
import torch

from pixelcore.palette import MAX_OPAQUE_COLORS, TRANSPARENT, Palette, srgb_to_oklab

from conftest import BASE_COLORS, make_texture


def _images_from(colors: np.ndarray, seed: int = 0) -> np.ndarray:
    """(3, 16, 16, 4) images whose opaque pixels use only ``colors``, with some transparent ones."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(colors), (3, 16, 16))
    images = np.concatenate([colors[idx], np.full((3, 16, 16, 1), 255, np.uint8)], axis=-1)
    transparent = rng.random((3, 16, 16)) < 0.2
    images[transparent] = rng.integers(0, 256, (int(transparent.sum()), 4)) % 100  # alpha < 128, any RGB
    return images


def test_fit_is_exact_with_few_colours_and_round_trips():
    images = _images_from(BASE_COLORS)
    palette = Palette.fit(images)
    assert len(palette) == len(BASE_COLORS) + 1
    assert palette.colors[TRANSPARENT, 3] == 0
    fitted = {tuple(c) for c in palette.colors[1:, :3].tolist()}
    assert fitted == {tuple(c) for c in BASE_COLORS.tolist()}

    tokens = palette.quantize(images)
    assert tokens.shape == (3, 16, 16) and tokens.dtype == torch.long
    transparent = images[..., 3] < 128
    assert (tokens[torch.from_numpy(transparent)] == TRANSPARENT).all()
    assert (tokens[torch.from_numpy(~transparent)] > 0).all()
    back = palette.dequantize(tokens)
    assert back.shape == (3, 16, 16, 4) and back.dtype == torch.uint8
    np.testing.assert_array_equal(back.numpy()[~transparent], images[~transparent])
    assert (back.numpy()[transparent] == 0).all()


def test_quantize_accepts_torch_and_keeps_leading_shape(palette):
    texture = torch.from_numpy(make_texture((200, 30, 30), "item"))
    tokens = palette.quantize(texture)
    assert tokens.shape == (16, 16)
    assert palette.quantize(texture[None, None]).shape == (1, 1, 16, 16)
    np.testing.assert_array_equal(palette.dequantize(tokens).numpy(), texture.numpy())


def test_alpha_threshold_is_half():
    palette = Palette.from_colors(np.array([[200, 30, 30]]))
    pixels = np.array([[200, 30, 30, 127], [200, 30, 30, 128], [0, 0, 0, 0], [255, 255, 255, 0]], np.uint8)
    assert palette.quantize(pixels).tolist() == [0, 1, 0, 0]


def test_quantize_picks_the_perceptually_nearest_colour(palette):
    near_red = np.array([[190, 40, 35, 255], [140, 135, 120, 255], [5, 5, 5, 255]], np.uint8)
    colors = palette.dequantize(palette.quantize(near_red))[:, :3].tolist()
    assert colors == [[200, 30, 30], [128, 128, 128], [20, 20, 20]]


def test_kmeans_reduces_many_colours_to_at_most_max_colors():
    rng = np.random.default_rng(0)
    images = np.concatenate([rng.integers(0, 256, (4, 16, 16, 3)), np.full((4, 16, 16, 1), 255)], -1)
    images = images.astype(np.uint8)
    palette = Palette.fit(images, max_colors=12, seed=0)
    assert 2 <= len(palette) - 1 <= 12
    present = {tuple(c) for c in images.reshape(-1, 4)[:, :3].tolist()}
    assert {tuple(c) for c in palette.colors[1:, :3].tolist()} <= present  # snapped to colours in use
    # Deterministic for a seed.
    again = Palette.fit(images, max_colors=12, seed=0)
    assert torch.equal(again.colors, palette.colors)
    # Quantization error shrinks as the palette grows.
    def error(p: Palette) -> float:
        return float(np.abs(p.dequantize(p.quantize(images)).numpy().astype(int) - images).mean())
    assert error(Palette.fit(images, max_colors=64)) < error(palette)


def test_kmeans_keeps_a_dominant_colour():
    images = np.zeros((1, 16, 16, 4), np.uint8)
    images[..., 3] = 255
    images[0, :, :] = (30, 160, 40, 255)  # mostly one green
    rng = np.random.default_rng(1)
    images[0, :2] = np.c_[rng.integers(0, 256, (2, 16, 3)), np.full((2, 16, 1), 255)].astype(np.uint8)
    palette = Palette.fit(images, max_colors=4)
    assert [30, 160, 40] in palette.colors[1:, :3].tolist()


def test_order_greys_by_lightness_then_hues():
    colors = np.array([[250, 250, 250], [200, 30, 30], [10, 10, 10], [30, 30, 200], [60, 10, 10],
                       [128, 128, 128], [30, 200, 30], [255, 120, 120]], np.uint8)
    palette = Palette.from_colors(colors[::-1])
    rgb = palette.colors[1:, :3]
    assert rgb[:3].tolist() == [[10, 10, 10], [128, 128, 128], [250, 250, 250]]
    lab = srgb_to_oklab(rgb.float() / 255)
    hue = (torch.rad2deg(torch.atan2(lab[3:, 2], lab[3:, 1])) + 360) % 360
    bucket = torch.floor(hue / 15)
    assert (bucket[1:] >= bucket[:-1]).all()  # hue buckets ascend
    same = bucket[1:] == bucket[:-1]
    assert (lab[4:, 0][same] >= lab[3:-1, 0][same]).all()  # lightness ascends within a bucket
    # Order does not depend on input order, and duplicates are merged.
    repeated = np.concatenate([colors, colors[:3]])
    shuffled = Palette.from_colors(repeated[np.random.default_rng(0).permutation(len(repeated))])
    assert torch.equal(shuffled.colors, palette.colors)


def test_refusals(palette):
    with pytest.raises(TypeError, match="uint8"):
        palette.quantize(np.zeros((4, 4, 4), np.float32))
    with pytest.raises(ValueError, match="last dimension of 4"):
        palette.quantize(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="0..8"):
        palette.dequantize(torch.tensor([0, 9]))
    with pytest.raises(ValueError, match="integers"):
        palette.dequantize(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="integers"):
        palette.dequantize(torch.tensor([-1, 1]))
    with pytest.raises(ValueError, match="no opaque pixels"):
        Palette.fit(np.zeros((1, 16, 16, 4), np.uint8))
    with pytest.raises(ValueError, match="max_colors"):
        Palette.fit(np.full((1, 2, 2, 4), 255, np.uint8), max_colors=MAX_OPAQUE_COLORS + 1)
    with pytest.raises(ValueError, match="row 0"):
        Palette(np.array([[255, 0, 0, 255], [0, 255, 0, 255]], np.uint8))
    with pytest.raises(ValueError, match="opaque colours"):
        Palette(np.zeros((1, 4), np.uint8))


def test_duplicate_colours_are_refused(palette):
    rows = palette.colors.clone()
    rows[5] = rows[2]
    with pytest.raises(ValueError, match=r"rows 2 and 5 are the same colour"):
        Palette(rows)
    rows = palette.colors.clone()
    rows[3, :3], rows[3, 3] = rows[1, :3], 200  # the same colour at another (opaque) alpha
    with pytest.raises(ValueError, match="rows 1 and 3"):
        Palette(rows)


def test_nearest_tokens_lock_to_palette(palette):
    tokens = palette.nearest_tokens(np.array([[200, 30, 30], [31, 31, 199]]))
    assert palette.colors[tokens, :3].tolist() == [[200, 30, 30], [30, 30, 200]]
    assert (tokens > 0).all()

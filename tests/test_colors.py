import numpy as np
import pytest

from pixelcore import colors


def solid(rgb, alpha=255, size=16):
    img = np.zeros((size, size, 4), dtype=np.uint8)
    img[..., :3] = rgb
    img[..., 3] = alpha
    return img


@pytest.mark.parametrize("rgb, name", [
    ((220, 30, 30), "red"), ((255, 140, 0), "orange"), ((255, 255, 40), "yellow"),
    ((240, 190, 30), "gold"), ((110, 70, 30), "brown"), ((40, 180, 40), "green"),
    ((30, 200, 210), "cyan"), ((40, 60, 220), "blue"), ((120, 40, 200), "purple"),
    ((255, 170, 190), "pink"), ((245, 245, 245), "white"), ((128, 128, 128), "gray"),
    ((10, 10, 12), "black"), ((120, 20, 20), "red"),
])
def test_solid_colours_are_named(rgb, name):
    assert colors.dominant_color(solid(rgb)) == name


def test_pixel_classes_mark_transparent():
    img = solid((220, 30, 30))
    img[:4, :, 3] = 0
    cls = colors.pixel_color_classes(img)
    assert cls.shape == (16, 16)
    assert (cls[:4] == colors.TRANSPARENT).all()
    assert (cls[4:] == colors.COLOR_NAMES.index("red")).all()


def test_red_sword_beats_black_outline_and_gray_shading():
    img = solid((0, 0, 0), alpha=0)
    img[2:14, 7:9] = (200, 20, 20, 255)      # blade: 24 px
    img[1:15, 6] = (0, 0, 0, 255)            # outline: 14 px
    img[1:15, 9] = (0, 0, 0, 255)
    img[14:16, 4:12] = (128, 128, 128, 255)  # guard: 16 px
    assert colors.dominant_color(img) == "red"


def test_few_chromatic_pixels_do_not_win():
    img = solid((128, 128, 128))
    img[0, :10] = (30, 200, 30, 255)  # ~4% green specks
    assert colors.dominant_color(img) == "gray"


def test_fully_transparent_has_no_colour_and_is_item():
    img = solid((200, 0, 0), alpha=0)
    assert colors.dominant_color(img) is None
    assert colors.texture_kind(img) == "item"
    assert colors.texture_kind(solid((200, 0, 0))) == "block"


def test_dominant_colors_batch():
    batch = np.stack([solid((220, 30, 30)), solid((40, 60, 220))])
    assert colors.dominant_colors(batch) == ["red", "blue"]


def test_color_matches_is_tolerant_but_not_blind():
    assert colors.color_matches("gold", "yellow")
    assert colors.color_matches("orange", "golden")
    assert colors.color_matches("brown", "orange")
    assert colors.color_matches("gray", "grey")
    assert not colors.color_matches("gray", "red")
    assert not colors.color_matches(None, "red")
    assert colors.COLOR_SYNONYMS["violet"] == "purple"


def test_mean_hue_is_circular_and_ignores_grays_and_transparency():
    assert colors.mean_hue(solid((0, 0, 255))) == pytest.approx(240, abs=0.5)
    img = solid((255, 0, 12))  # hue ~357
    img[:8] = (255, 12, 0, 255)  # hue ~3: the mean is ~0, not 180
    assert min(colors.mean_hue(img), 360 - colors.mean_hue(img)) < 1
    img[8:, :, 3] = 0
    img[0] = (128, 128, 128, 255)
    assert colors.mean_hue(img) == pytest.approx(2.8, abs=0.5)
    assert colors.mean_hue(solid((128, 128, 128))) is None


def test_hue_centres_classify_as_their_word():
    # Bright and saturated (s >= 0.55 so gold is gold, v >= 0.75 so pink is pink).
    for word, hue in colors.HUE_CENTRES.items():
        rgb = colors.hsv_to_rgb(np.array([hue]), np.array([0.7]), np.array([0.9]))[0]
        assert colors.dominant_color(solid(tuple(int(c) for c in rgb))) == word


def test_hue_shift_rotates_colour_and_keeps_grays_and_alpha():
    img = solid((220, 30, 30))
    img[0] = (128, 128, 128, 255)
    img[1, :, 3] = 0
    out = colors.hue_shift(img, 120)
    assert out.dtype == np.uint8
    assert colors.dominant_color(out) == "green"
    assert (out[0] == img[0]).all()
    assert (out[..., 3] == img[..., 3]).all()
    back = colors.hue_shift(out, 240)
    assert np.abs(back.astype(int) - img.astype(int)).max() <= 2

import numpy as np
import pytest

from pixelcore import shapes


def texture(mask, rgb=(200, 60, 60)):
    """A (16, 16, 4) texture whose opaque pixels are ``mask``."""
    out = np.zeros((16, 16, 4), np.uint8)
    out[mask] = (*rgb, 255)
    return out


def sword_mask():
    """A diagonal blade with a cross-guard and a handle, as Luanti draws swords."""
    mask = np.zeros((16, 16), bool)
    for i in range(3, 13):
        mask[15 - i, i] = mask[15 - i, i + 1] = True  # blade, bottom-left to top-right
    mask[11, 2:6] = mask[9:13, 4] = True  # guard
    mask[12:15, 1:3] = True  # handle
    return mask


def apple_mask():
    yy, xx = np.mgrid[:16, :16]
    mask = (yy - 9) ** 2 + (xx - 7.5) ** 2 <= 25
    mask[2:5, 7] = True  # stem
    return mask


def pickaxe_mask():
    mask = np.zeros((16, 16), bool)
    for i in range(2, 14):
        mask[i, 15 - i] = True  # handle
    mask[1, 4:13] = mask[2, 3] = mask[2, 13] = mask[3, 2] = True  # head
    return mask


def tiny_refs():
    pixels = [texture(sword_mask()), texture(apple_mask()), texture(pickaxe_mask())]
    return shapes.ShapeReferences.from_textures(pixels, ["steel sword", "apple", "stone pickaxe"])


@pytest.mark.parametrize("name, cls", [
    ("diamond sword", "sword"), ("bucket water", "bucket"), ("vessels glass bottle", "potion"),
    ("award star", "medal"), ("submachine gun", "gun"), ("steel helmet", "helmet"), ("pick", "pickaxe"),
    ("diamond dental grill", None), ("mineral diamond", None), ("bottle jack", None), ("stone", None), ("", None),
])
def test_shape_class_reads_the_head_noun(name, cls):
    assert shapes.shape_class(name) == cls


def test_normalize_shape_accepts_classes_and_synonyms_only():
    assert [shapes.normalize_shape(w) for w in ("Sword", "pistol", "blob", None)] == ["sword", "gun", None, None]


def test_a_sword_is_a_sword_even_shifted_by_a_pixel():
    refs = tiny_refs()
    sword = sword_mask()
    shifted = np.roll(sword, (1, -1), axis=(0, 1))
    assert shapes.classify(np.stack([texture(sword), texture(shifted)]), refs) == ["sword", "sword"]
    assert shapes.classify(texture(apple_mask()), refs) == ["apple"]


def test_an_opaque_square_noise_and_an_empty_tile_are_no_class():
    refs = tiny_refs()
    square = np.ones((16, 16), bool)
    noise = np.random.default_rng(0).random((16, 16)) < 0.15
    empty = np.zeros((16, 16), bool)
    assert shapes.classify_masks(np.stack([square, noise, empty]), refs) == [None, None, None]


def test_shipped_references_read_their_own_swords_as_swords():
    refs = shapes.default_references()
    assert {"sword", "pickaxe", "potion", "bucket", "gem", "gun"} <= set(refs.classes)
    swords = refs.masks[refs.labels == refs.classes.index("sword")]
    assert len(swords) >= 5
    moved = np.roll(swords[:5], 1, axis=2)
    assert shapes.classify_masks(np.concatenate([swords[:5], moved])) == ["sword"] * 10
    assert shapes.classify(np.full((2, 16, 16, 4), 255, np.uint8)) == [None, None]


def test_references_round_trip_and_a_bad_file_names_itself(tmp_path):
    refs = tiny_refs()
    refs.save(tmp_path / "refs.npz")
    back = shapes.ShapeReferences.load(tmp_path / "refs.npz")
    assert back.classes == refs.classes and np.array_equal(back.masks, refs.masks)
    assert np.array_equal(back.labels, refs.labels)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        shapes.ShapeReferences.load(bad)


def test_references_keep_each_silhouette_and_class_once_and_skip_blocks_and_unknown_names():
    sword = texture(sword_mask())
    block = np.full((16, 16, 4), 255, np.uint8)
    refs = shapes.ShapeReferences.from_textures([sword, sword.copy(), block, sword], ["sword", "steel sword",
                                                                                      "sword", "wool"])
    assert len(refs) == 1 and refs.classes == ("sword",)


def test_leave_one_out_counts_hits_per_class_and_confusions():
    masks = np.stack([sword_mask(), np.roll(sword_mask(), 1, axis=1), apple_mask(), pickaxe_mask()])
    cal = shapes.leave_one_out(masks, ["sword", "sword", "apple", "pickaxe"])
    assert cal.per_class["sword"] == (2, 2)
    assert cal.per_class["apple"] == (0, 1) and cal.accuracy == 0.5
    assert cal.confusions[("apple", cal.found[2])] == 1
    strict = shapes.leave_one_out(masks, ["sword", "sword", "apple", "pickaxe"], exclude_same_silhouette=True)
    assert len(strict.labels) == 4 and strict.subset([0, 1]).per_class == {"sword": (2, 2)}

def test_shape_metrics_per_language_only_when_both_are_there():
    rows = [{"prompt": "a red sword", "shape": "sword", "found_shapes": ["sword", None]},
            {"prompt": "一把红色的剑", "shape": "sword", "found_shapes": [None, None]},
            {"prompt": "stone", "found_shapes": None}]
    assert shapes.shape_metrics(rows) == {"shape_adherence": 0.25, "shape_adherence_en": 0.5,
                                          "shape_adherence_zh": 0.0}
    assert shapes.shape_metrics(rows[:1]) == {"shape_adherence": 0.5}
    assert shapes.shape_metrics(rows[2:]) == {}

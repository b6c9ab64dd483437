import json

import numpy as np
import pytest

from pixelcore.evaluate import (PromptSpec, copy_rate, copy_references, diversity, evaluate, isolated_share,
                                format_per_prompt, kind_matches, load_prompts, score_samples, unique_colors)
from pixelcore import shapes
from pixelcore.palette import Palette

from conftest import make_texture


def _flat(rgb, alpha=255):
    out = np.zeros((16, 16, 4), np.uint8)
    out[..., :3] = rgb
    out[..., 3] = alpha
    return out


RED_BLOCK = _flat((220, 20, 20))


def test_pure_red_block_scores_full_adherence():
    specs = [PromptSpec("red wool", color="red", kind="block")]
    metrics = score_samples(specs, RED_BLOCK[None, None])
    assert metrics["color_adherence"] == 1.0 and metrics["kind_adherence"] == 1.0
    assert metrics["unique_colors"] == 1.0 and metrics["isolated_pixels"] == 0.0
    wrong = score_samples([PromptSpec("a blue item", color="blue", kind="item")], RED_BLOCK[None, None])
    assert wrong["color_adherence"] == 0.0 and wrong["kind_adherence"] == 0.0
    assert np.isnan(score_samples([PromptSpec("a thing")], RED_BLOCK[None, None])["color_adherence"])


def test_item_transparency_is_the_transparent_share_of_item_samples_only():
    sword = _flat((30, 30, 200), alpha=0)
    sword[4:12, 4:12, 3] = 255  # 64 opaque cells of 256
    sword[4, 4:12, 3] = 100  # 8 of them faint: read as transparent, as kind_matches reads them
    specs = [PromptSpec("a blue sword", kind="item"), PromptSpec("red wool", kind="block")]
    metrics = score_samples(specs, np.stack([[sword, _flat((30, 30, 200))], [RED_BLOCK, RED_BLOCK]]))
    assert metrics["item_transparency"] == pytest.approx((200 / 256 + 0.0) / 2)  # the blocks' row does not count
    assert np.isnan(score_samples(specs[1:], RED_BLOCK[None, None])["item_transparency"])


def test_kind_of_items_and_blocks():
    sword = make_texture((30, 30, 200), "item")
    assert kind_matches(sword, "item") and not kind_matches(sword, "block")
    assert kind_matches(RED_BLOCK, "block") and not kind_matches(RED_BLOCK, "item")
    almost_block = RED_BLOCK.copy()
    almost_block[0, 0, 3] = 0  # one hole: neither a clean block nor an item cut-out
    assert not kind_matches(almost_block, "block") and not kind_matches(almost_block, "item")
    with pytest.raises(ValueError, match="item"):
        kind_matches(RED_BLOCK, "liquid")


def test_isolated_share_of_checkerboard_and_flat_tile():
    ys, xs = np.mgrid[:16, :16]
    checker = np.where(((ys + xs) % 2 == 0)[..., None], _flat((250, 250, 250)), _flat((20, 20, 20)))
    assert isolated_share(checker) == 1.0
    assert isolated_share(RED_BLOCK) == 0.0
    one_speck = RED_BLOCK.copy()
    one_speck[5, 5, :3] = (20, 200, 20)
    assert isolated_share(one_speck) == pytest.approx(1 / 256)
    # Transparent pixels are not counted, and a pixel next to transparency is not isolated by it alone.
    sword = make_texture((30, 30, 200), "item")
    assert 0.0 <= isolated_share(sword) < 0.2
    assert isolated_share(_flat((0, 0, 0), alpha=0)) == 0.0


def test_unique_colors_counts_opaque_colours_only():
    tile = RED_BLOCK.copy()
    tile[0, :4] = (1, 2, 3, 255)
    tile[1, :4] = (9, 9, 9, 0)  # transparent: not a colour
    assert unique_colors(tile) == 2
    assert unique_colors(_flat((0, 0, 0), alpha=0)) == 0


def test_diversity():
    a, b = RED_BLOCK, _flat((20, 200, 20))
    assert diversity([a, a.copy(), a.copy()]) == 0.0
    assert diversity([a, b]) == 1.0
    half = a.copy()
    half[:8] = b[:8]
    assert diversity([a, half]) == pytest.approx(0.5)
    assert diversity([a]) == 0.0


def test_copy_rate_counts_exact_copies_and_ignores_hidden_rgb():
    training = np.stack([RED_BLOCK, make_texture((30, 30, 200), "item")])
    copy = training[1].copy()
    hidden = copy[..., 3] == 0
    copy[hidden, :3] = (123, 45, 67)  # different RGB under full transparency is still the same texture
    copy[hidden, 3] = 10
    changed = training[0].copy()
    changed[3, 3, :3] = (0, 0, 0)
    assert copy_rate(np.stack([copy, changed]), training) == 0.5
    assert copy_rate(np.stack([changed]), training) == 0.0
    assert copy_rate(np.zeros((0, 16, 16, 4), np.uint8), training) == 0.0
    assert score_samples([PromptSpec("x")], np.stack([copy, changed])[None], training)["copy_rate"] == 0.5


def test_a_memorised_texture_counts_as_a_copy_once_quantized():
    # The model can only draw palette colours: its copy of an off-palette training texture is the quantized one.
    texture = make_texture((200, 40, 40), "item")
    palette = Palette.from_colors(np.array([[190, 30, 30], [20, 20, 20]], np.uint8))
    drawn = palette.dequantize(palette.quantize(texture)).numpy()
    assert not np.array_equal(drawn, texture)
    assert copy_rate(drawn[None], texture[None]) == 0.0
    references = copy_references(texture[None], palette)
    assert len(references) == 2 and copy_rate(drawn[None], references) == 1.0


def test_load_prompts(tmp_path):
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "a red sword", "color": "red", "kind": "item"}\n\n{"prompt": "stone"}\n',
                    encoding="utf-8")
    specs = load_prompts(path)
    assert specs == [PromptSpec("a red sword", "red", "item"), PromptSpec("stone")]
    path.write_text('{"prompt": "a pistol", "shape": "pistol"}\n', encoding="utf-8")
    assert load_prompts(path) == [PromptSpec("a pistol", shape="pistol")]


@pytest.mark.parametrize("lines, line_number", [
    (['{"prompt": "ok"}', "{not json"], 2),
    (['{"prompt": "ok"}', "", '{"text": "no prompt key"}'], 3),
    (['["a", "list"]'], 1),
    (['"just a string"'], 1),
])
def test_load_prompts_names_the_bad_line(tmp_path, lines, line_number):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"bad.jsonl:{line_number}:"):
        load_prompts(path)


@pytest.mark.parametrize("row", [{"prompt": None}, {"prompt": ""}, {"prompt": 3},
                                 {"prompt": "ok", "kind": "liquid"}, {"prompt": "ok", "color": 7},
                                 {"prompt": "ok", "color": "chartreuse"}, {"prompt": "ok", "shape": "blob"}])
def test_load_prompts_refuses_bad_values_naming_the_line(tmp_path, row):
    path = tmp_path / "values.jsonl"
    path.write_text('{"prompt": "fine"}\n' + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"values.jsonl:2:"):
        load_prompts(path)


def test_load_prompts_refuses_missing_and_empty_files(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_prompts(tmp_path / "nothing.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(ValueError, match="no prompts"):
        load_prompts(tmp_path / "empty.jsonl")


def test_evaluate_calls_the_generator_per_prompt_and_writes_a_grid(tmp_path):
    calls = []

    def generate(prompt, n, seed):
        calls.append((prompt, n, seed))
        return np.stack([RED_BLOCK] * n)

    specs = [PromptSpec("red wool", "red", "block"), PromptSpec("a blue sword", "blue", "item")]
    metrics = evaluate(generate, specs, seeds=3, seed=10, grid_path=tmp_path / "grid.png")
    assert calls == [("red wool", 3, 10), ("a blue sword", 3, 11)]
    assert metrics["color_adherence"] == 0.5 and metrics["kind_adherence"] == 0.5
    assert metrics["diversity"] == 0
    assert (tmp_path / "grid.png").is_file()


def test_per_prompt_rows_say_what_each_seed_was_read_as():
    sword = np.zeros((16, 16, 4), np.uint8)
    sword[2:14, 7:9] = (30, 60, 220, 255)
    speck = RED_BLOCK.copy()
    speck[0, 0, 3] = 0  # one hole: not a block, far from an item
    specs = [PromptSpec("red wool", "red", "block"), PromptSpec("a blue sword", "blue", "item"),
             PromptSpec("anything")]
    rows = []
    evaluate(lambda prompt, n, seed: np.stack([RED_BLOCK, speck] if "wool" in prompt else [sword, RED_BLOCK]),
             specs, seeds=2, details=rows)
    assert [r["found_kinds"] for r in rows] == [["block", "neither"], ["item", "block"], ["item", "block"]]
    assert [r["found_colors"] for r in rows] == [["red", "red"], ["blue", "red"], ["blue", "red"]]
    assert (rows[0]["color_adherence"], rows[0]["kind_adherence"]) == (1.0, 0.5)
    assert (rows[1]["color_adherence"], rows[1]["kind_adherence"]) == (0.5, 0.5)
    assert "color_adherence" not in rows[2] and "kind_adherence" not in rows[2]
    table = format_per_prompt(rows).splitlines()
    assert table[0].startswith("! red wool") and table[2].startswith("  anything")


def test_shape_adherence_reads_silhouettes_per_prompt_and_language():
    refs = shapes.default_references()
    sword = np.zeros((16, 16, 4), np.uint8)
    sword[refs.masks[list(refs.labels).index(refs.classes.index("sword"))]] = (30, 60, 220, 255)
    specs = [PromptSpec("a blue sword", "blue", "item", "sword"), PromptSpec("一把蓝色的剑", shape="sword"),
             PromptSpec("stone")]
    rows = []
    metrics = evaluate(lambda prompt, n, seed: np.stack([sword, RED_BLOCK] if "剑" in prompt else [sword, sword]),
                       specs, seeds=2, details=rows)
    assert [r.get("found_shapes") for r in rows] == [["sword", "sword"], ["sword", None], None]
    assert (metrics["shape_adherence"], metrics["shape_adherence_en"], metrics["shape_adherence_zh"]) == (
        0.75, 1.0, 0.5)
    assert "shape_adherence" not in evaluate(lambda prompt, n, seed: np.stack([sword] * n), specs[2:], seeds=1)


def test_adherence_is_split_by_language_when_a_set_has_both():
    from pixelcore.evaluate import per_language

    rows = [{"prompt": "a red sword", "color": "red", "kind": "item", "found_colors": ["red", "red"],
             "found_kinds": ["item", "block"]},
            {"prompt": "一把红色的剑", "color": "red", "kind": "item", "found_colors": ["blue", "red"],
             "found_kinds": ["item", "item"]}]
    assert per_language(rows) == {"color_adherence_en": 1.0, "kind_adherence_en": 0.5,
                                  "color_adherence_zh": 0.5, "kind_adherence_zh": 1.0}
    assert per_language(rows[:1]) == {}

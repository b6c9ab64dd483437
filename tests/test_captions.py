import random
from pathlib import Path

import pytest

from pixelcore import captions


@pytest.mark.parametrize("stem, words", [
    ("default_tool_diamondsword", ["diamond", "sword"]),
    ("default_tool_steelpick", ["steel", "pickaxe"]),
    ("default_apple", ["apple"]),
    ("default_stone_brick", ["stone", "brick"]),
    ("wool_red", ["wool", "red"]),
    ("default_mese_crystal", ["mese", "crystal"]),
    ("farming_bread", ["bread"]),
    ("3d_armor_inv_helmet_steel", ["steel", "helmet"]),
    ("default_grass_side", ["grass"]),
    ("Fancy-Sword_2", ["fancy", "sword"]),
    # a mod named after its thing is said once; a mod name that is the thing itself stays
    ("beds_bed_fancy", ["bed", "fancy"]),
    ("butterflies_butterfly_white", ["butterfly", "white"]),
    ("nether_nether_sword", ["nether", "sword"]),
    ("bucket_lava", ["bucket", "lava"]),
    ("glass_glass", ["glass"]),
])
def test_split_name(stem, words):
    assert captions.split_name(stem) == words


def test_split_name_strips_given_prefix():
    assert captions.split_name("mymod_blue_gem", prefixes=("mymod",)) == ["blue", "gem"]


def test_strip_color_words():
    assert captions.strip_color_words("wool dark green") == ("wool", "green")
    assert captions.strip_color_words("a Grey stone") == ("stone", "gray")
    assert captions.strip_color_words("gold ingot") == ("gold ingot", None)
    assert captions.strip_color_words("orange") == ("orange", None)
    assert captions.strip_color_words("dye orange") == ("dye", "orange")


def test_replace_color_words_keeps_materials():
    assert captions.replace_color_words("a red gold ingot", "blue") == "a blue gold ingot"
    assert captions.replace_color_words("gold ingot", "blue") is None


def test_chinese_caption_translates_through_glossary():
    variants = captions.caption_variants("diamond sword", "cyan", "item")
    assert "一把青色的钻石剑" in variants
    assert "a cyan diamond sword" in variants
    block = captions.caption_variants("wool", "blue", "block")
    assert "蓝色的羊毛方块" in block and "blue wool block" in block
    assert captions.chinese_caption("apple", "red", "item", random.Random(0)).endswith("苹果")


def test_no_half_chinese_and_no_duplicate_colour():
    assert captions.chinese_caption("flux capacitor", "red", "item", random.Random(0)) is None
    variants = captions.caption_variants("red wool", "red", "block")
    assert not any("red red" in v for v in variants)
    assert all("金色的金" not in v for v in captions.caption_variants("gold ingot", "gold", "item"))


def test_glossary_covers_colours_and_domain():
    for word in ("red", "gray", "sword", "pickaxe", "ingot", "wool", "planks", "ore", "diamond"):
        assert word in captions.GLOSSARY
    assert captions.GLOSSARY["gold"] == "金色"


def test_random_caption_is_seeded_and_bilingual():
    captions_a = [captions.random_caption("diamond sword", "cyan", "item", random.Random(s))
                  for s in range(40)]
    captions_b = [captions.random_caption("diamond sword", "cyan", "item", random.Random(s))
                  for s in range(40)]
    assert captions_a == captions_b
    assert any(c.isascii() for c in captions_a) and any(not c.isascii() for c in captions_a)
    assert all("cyan" in c or "青色" in c for c in captions_a)
    english = captions.english_caption("stone", None, "block", random.Random(1))
    assert "None" not in english and "stone" in english


def test_generic_variants_name_colour_and_head_noun_for_material_items_only():
    assert captions.generic_variants("diamond sword", "red", "item") == [
        "a red sword", "red sword", "一把红色的剑", "红色的剑"]
    assert captions.generic_variants("steel ingot", "blue", "item")[2] == "一块蓝色的锭"
    assert captions.generic_variants("apple", "red", "item") == []  # nothing to drop
    assert captions.generic_variants("steel block", "red", "block") == []  # "a red block" says too little
    assert captions.generic_variants("diamond sword", None, "item") == []
    assert captions.generic_variants("fancy sword", "red", "item") == []  # not a material


def test_names_of_both_kinds_finds_the_item_and_block_pairs():
    pairs = [("leaves", "item"), ("leaves", "block"), ("stone", "block"), ("sword", "item"), ("sword", "item"),
             ("grass", "block"), ("grass", None)]
    assert captions.names_of_both_kinds(pairs) == frozenset({"leaves"})
    assert captions.names_of_both_kinds([]) == frozenset()


@pytest.mark.parametrize("caption, expected", [
    ("green leaves block", True), ("a green leaves block", True), ("绿色的树叶方块", True),
    ("leaves, green", False), ("绿色的树叶", False), ("a blockade", False), ("Block of gold", True),
])
def test_says_block(caption, expected):
    assert captions.says_block(caption) is expected


def test_kind_marked_variants_leave_blocks_only_their_block_captions():
    block = captions.caption_variants("leaves", "green", "block")
    assert "green leaves" in block and "绿色的树叶" in block  # the caption an item cut-out also gets
    marked = captions.kind_marked_variants(block, "block")
    assert marked == ["green leaves block", "a green leaves block", "绿色的树叶方块", "绿色树叶方块"]
    item = captions.caption_variants("leaves", "green", "item")
    assert captions.kind_marked_variants(item, "item") == item
    assert not any(captions.says_block(v) for v in item)  # items never say block, so the pair is told apart
    assert captions.kind_marked_variants(["oak"], "block") == ["oak"]  # never left with nothing



def test_every_word_has_a_chinese_rendering_and_codes_are_said_as_is():
    assert captions._translate("carts rail t junction brk") == "铁轨丁字交叉口刹车"
    assert captions._translate("mk10 egg") == "MK10蛋" and captions._translate("bed side2") == "床侧面2"
    assert captions._translate("moretrees acacia leaves") == "金合欢木树叶"  # a mod name said in English only
    assert captions._translate("doors steel a") == "门铁A"
    assert captions._translate("flux capacitor") is None


def _luanti_names() -> list[tuple[str, str]]:
    rows = (line.split("\t") for line in (Path(__file__).parent / "luanti_names.tsv").read_text().splitlines()
            if line and not line.startswith("#"))
    return [(name, kind) for kind, name in rows]


def test_every_luanti_name_has_a_chinese_caption():
    names = _luanti_names()
    assert len(names) > 1000
    for name, kind in names:
        assert captions._chinese_templates(name, "red", kind), name
        assert all(captions._render_word(word) is not None for word in name.split()), name

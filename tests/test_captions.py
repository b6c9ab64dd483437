import random
import re
from pathlib import Path

import numpy as np
import pytest

from pixelcore import captions, phrasing


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


def test_replace_color_words_takes_linear_time():
    """A 10 MB caption file must not stall training: 8,000 words in milliseconds, 80,000 in ten times that."""
    import time

    def seconds(n):
        text = " ".join(["a", "dark", "red", "sword,", "gold", "ingot"] * (n // 6))
        start = time.perf_counter()
        out = captions.replace_color_words(text, "blue")
        return time.perf_counter() - start, out

    small, out = seconds(8_000)
    assert out.startswith("a blue sword, gold ingot a blue sword,") and small < 0.5
    large, _ = seconds(80_000)
    assert large < 5.0


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
    assert marked[:2] == ["green leaves block", "a green leaves block"]
    assert {"绿色的树叶方块", "绿色树叶方块"} <= set(marked) and all(captions.says_block(v) for v in marked)
    assert "green leaves" not in marked and "绿色的树叶" not in marked
    item = captions.caption_variants("leaves", "green", "item")
    assert captions.kind_marked_variants(item, "item") == item
    assert not any(captions.says_block(v) for v in item)  # items never say block, so the pair is told apart
    assert captions.kind_marked_variants(["oak"], "block") == ["oak"]  # never left with nothing


def _training_names(source: str | None = None) -> list[tuple[str, str]]:
    rows = (line.split("\t") for line in (Path(__file__).parent / "training_names.tsv").read_text().splitlines()
            if line and not line.startswith("#"))
    return [(name, kind) for src, kind, name in rows if source in (None, src)]


def test_every_training_name_has_chinese_captions():
    assert len(_training_names("luanti")) > 1000 and len(_training_names("extra")) > 150
    for name, kind in _training_names():
        assert captions._chinese_templates(name, "red", kind), name
        assert all(captions.chinese_word(word) is not None for word in name.split()), name
        assert sum(captions._has_han(v) for v in captions.caption_variants(name, "red", kind)) == captions.ZH_VARIANTS


def _han(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.mark.parametrize("name, kind", [
    ("diamond sword", "item"), ("steel shovel", "item"), ("apple", "item"), ("wool", "block"),
    ("stone brick", "block"), ("carts rail t junction brk", "item"), ("mk10 egg", "item"),
    ("moretrees acacia leaves", "block"), ("kitchen cabinet colored with drawers", "block"), ("fpga", "block"),
])
def test_every_record_gets_a_fixed_number_of_captions_in_both_languages(name, kind):
    for color in ("red", "cyan", "white", None):
        variants = captions.caption_variants(name, color, kind)
        english = [v for v in variants if not _han(v)]
        chinese = [v for v in variants if _han(v)]
        assert len(english) == captions.EN_VARIANTS and len(chinese) == captions.ZH_VARIANTS, (name, color)
        assert variants == captions.caption_variants(name, color, kind)  # the same list on every call
        assert variants[:2] == (captions._english_templates(name, color, kind))[:2]  # templates come first


def _union(names, kind="item") -> str:
    return "\n".join(v for name in names for color in ("red", "blue", "green", "yellow", "purple", "gray")
                     for v in captions.caption_variants(name, color, kind))


def test_captions_use_synonyms_measure_words_and_word_orders():
    swords = _union(["diamond sword", "steel sword", "mese sword", "bronze sword"])
    assert "blade" in swords and ("宝剑" in swords or "长剑" in swords)
    assert re.search(r"剑，(红|蓝|绿|黄|紫|灰)色", swords)  # 剑，红色
    assert re.search(r"[红蓝绿黄紫灰](钻石|铁|梅斯|青铜)", swords)  # 红钻石剑: the one-character colour
    assert re.search(r"一把.+色的.*剑", swords) and "iron sword" in swords
    shovels = _union(["steel shovel", "diamond shovel", "bronze shovel"])
    assert "spade" in shovels and ("铲子" in shovels or "铲" in shovels)
    assert "钻石铁锹" not in shovels  # 铁锹 says a material of its own
    assert {"斧头", "斧子"} & set(re.findall("斧.", _union(["steel axe", "diamond axe", "bronze axe"])))
    assert "锄头" in _union(["steel hoe", "diamond hoe", "bronze hoe"])
    blocks = _union(["wool", "stone brick"], kind="block")
    assert "方块" in blocks and "block of" in blocks
    shades = _union(["apple"])
    assert re.search(r"(dark|light|bright) red|crimson|scarlet", shades) and re.search("赤红|深红|鲜红|大红", shades)


def test_captions_carry_filler_and_traditional_characters():
    everything = _union(["diamond sword", "steel pickaxe", "apple", "gold ingot", "steel axe", "bucket"])
    assert re.search(r"pixel art|minecraft style|texture|draw me|16x16", everything)
    assert re.search("像素风|我的世界|贴图|画一|给我画|帮我", everything)
    assert re.search("[劍鐵鎬錠蘋顏綠紅藍]", everything)


def _sword(blade, handle, handle_rows=4):
    """A 16x16 sprite: a diagonal blade of one colour, a handle of another, a black outline, the rest clear."""
    pixels = np.zeros((16, 16, 4), np.uint8)
    for i in range(2, 14):
        pixels[i, 15 - i, :] = (*blade, 255)
        pixels[i, 14 - i, :] = (*blade, 255)
        pixels[i, 16 - i, :] = (0, 0, 0, 255)
    for i in range(14 - handle_rows, 14):
        pixels[i, 15 - i, :3] = handle
        pixels[i, 14 - i, :3] = handle
    return pixels


def test_two_colour_captions_come_from_the_texture():
    blue, brown = (40, 90, 230), (120, 70, 30)
    two = captions.caption_variants("diamond sword", "blue", "item", pixels=_sword(blue, brown))
    assert any("blue and brown" in v for v in two) and any("蓝色和棕色" in v or "带有棕色" in v or "蓝色配棕色" in v
                                                          for v in two)
    one = captions.caption_variants("diamond sword", "blue", "item", pixels=_sword(blue, blue))
    assert not any(" and " in v or "和" in v for v in one)
    assert one == captions.caption_variants("diamond sword", "blue", "item")  # no second colour: as without pixels


def test_second_color_leaves_out_outlines_shades_and_small_shares():
    blue, brown = (40, 90, 230), (120, 70, 30)
    assert phrasing.second_color(_sword(blue, brown), "blue") == "brown"
    assert phrasing.second_color(_sword(blue, brown, handle_rows=1), "blue") is None  # a speck
    assert phrasing.second_color(_sword(blue, blue), "blue") is None  # the black outline is no colour
    assert phrasing.second_color(_sword((250, 250, 250), (150, 150, 150)), "white") is None  # grey shading
    assert phrasing.second_color(None, "blue") is None and phrasing.second_color(_sword(blue, brown), None) is None
    assert phrasing.second_color(np.zeros((16, 16, 4), np.uint8), "blue") is None


def test_every_word_has_a_chinese_rendering_and_codes_are_said_as_is():
    assert captions._translate("carts rail t junction brk") == "铁轨丁字交叉口刹车"
    assert captions._translate("mk10 egg") == "MK10蛋" and captions._translate("bed side2") == "床侧面2"
    assert captions._translate("moretrees acacia leaves") == "金合欢木树叶"  # a mod name said in English only
    assert captions._translate("doors steel a") == "门铁A"
    assert captions._translate("flux capacitor") is None

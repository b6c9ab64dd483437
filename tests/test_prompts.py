import json
import os
import re
from pathlib import Path

import pytest

from pixelcore import captions, glossary
from pixelcore.colors import COLOR_NAMES, COLOR_SYNONYMS
from pixelcore.prompts import MAX_PROMPT_CHARS, normalize_prompt, read_prompt, unknown_words_message
from pixelcore.shapes import normalize_shape
from pixelcore.text import check_prompts
from pixelcore.vocab import VOCAB_GROUPS, format_vocabulary, vocabulary

TESTS = Path(__file__).resolve().parent
EVAL = TESTS.parent / "eval"

# A spread of Luanti names (the shipped model was trained on them), the odd ones included (codes, mod words,
# phrases, several words).
SAMPLE_NAMES = [
    ("diamond sword", "item"), ("steel pickaxe", "item"), ("bronze shovel", "item"), ("wood axe", "item"),
    ("mese hoe", "item"), ("apple", "item"), ("gold ingot", "item"), ("steel helmet", "item"), ("bucket", "item"),
    ("bucket lava", "item"), ("mese crystal", "item"), ("wool", "block"), ("stone brick", "block"),
    ("leaves", "block"), ("leaves", "item"), ("stone with iron", "block"), ("wood", "block"), ("glass", "item"),
    ("dirt", "block"), ("sand", "block"), ("carts rail t junction brk", "item"), ("mk10 egg", "item"),
    ("moretrees acacia leaves", "block"), ("kitchen cabinet colored with drawers", "block"),
    ("doors steel a", "item"), ("gate xor", "item"), ("nether book of portals", "item"),
    ("clothes female1", "item"), ("fpga", "block"), ("rope texture", "block"), ("painting", "item"),
    ("dvd player", "item"), ("fish clownfish", "item"), ("washing machine", "block"), ("silver ingot", "item"),
]
# and of the extra item sources
EXTRA_NAMES = [("submachine gun", "item"), ("hatchet", "item"), ("burnt out torch", "item"),
               ("olympic style target bow", "item"), ("chunk of tainted meat", "item"), ("award star", "item")]


def _old_colour_normaliser(prompt: str) -> str:
    """What the builtin encoder did to a prompt before the reader: colour synonyms only."""
    words = sorted(COLOR_SYNONYMS, key=len, reverse=True)
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b", re.IGNORECASE)
    return pattern.sub(lambda m: COLOR_SYNONYMS[m.group(0).lower()], prompt)


@pytest.mark.parametrize("prompt, text", [
    ("一把黑色的铲子", "一把黑色的锹"), ("一把青色的锄头", "一把青色的锄"), ("橙色的斧子", "橙色的斧"),
    ("钻石十字镐", "钻石镐"), ("一瓶红色药剂", "一瓶红色药水"), ("蓝色的金属锭", "蓝色的锭"),
    ("black spade", "black shovel"), ("an iron hatchet", "an iron axe"), ("a diamond pick", "a diamond pickaxe"),
    ("blue jewel", "blue gem"), ("mossy cobblestone", "mossy cobble"),
    # caption synonyms are known and kept: the model learns them
    ("蓝色铁锹", "蓝色铁锹"), ("a red blade", "a red blade"), ("灰色的水桶", "灰色的水桶"),
])
def test_synonyms_become_caption_words(prompt, text):
    reading = read_prompt(prompt)
    assert reading.text == text
    assert reading.unknown == ()


def test_synonyms_name_the_shape():
    assert read_prompt("一把黑色的铲子").shape == "shovel"
    assert read_prompt("画一把赤红色的宝剑").shape == "sword"
    assert read_prompt("a green hatchet").shape == "axe"
    assert read_prompt("一颗红宝石").shape == "gem"
    assert read_prompt("an ingot of iron").shape == "ingot"  # the thing, not its material
    assert read_prompt("diamond ore").shape is None


@pytest.mark.parametrize("prompt, text", [
    ("一把藍色的寶劍", "一把蓝色的剑"), ("紅色的鐵鍬", "红色的铁锹"), ("綠色的鎬", "绿色的镐"),
    ("ＲＥＤ　ＷＯＯＬ", "red wool"), ("一把蓝色的钻石剑！", "一把蓝色的钻石剑"),
])
def test_traditional_characters_and_full_width_forms(prompt, text):
    assert read_prompt(prompt).text == text


@pytest.mark.parametrize("prompt, text", [
    ("draw me a red sword, pixel art", "a red sword"), ("a texture of a red sword", "a red sword"),
    ("a red sword in minecraft style", "a red sword"), ("16 x 16 red sword icon please", "red sword"),
    ("给我画一把像素风格的红色剑", "一把红色剑"), ("红剑的贴图", "红剑"), ("剑，绿色，像素风", "剑,绿色"),
    ("我的世界风格的蓝色钻石剑", "蓝色钻石剑"), ("画一把赤红色的宝剑", "红色的剑"),
    ("金黄色的长剑图标 16x16", "金色的剑"),
])
def test_filler_is_dropped(prompt, text):
    assert read_prompt(prompt).text == text


@pytest.mark.parametrize("prompt, text, colors", [
    ("a dark red pickaxe", "a red pickaxe", ("red",)), ("golden apple", "gold apple", ("gold",)),
    ("a dark orange axe", "an orange axe", ("orange",)), ("sky blue wool", "blue wool", ("blue",)),
    ("天蓝色的羊毛", "蓝色的羊毛", ("blue",)), ("一个红红的苹果", "一个红色的苹果", ("red",)),
    ("红蓝两色的剑", "红蓝两色的剑", ("red", "blue")),
    # materials that look like colours stay materials
    ("一块金锭", "一块金锭", ()), ("青铜剑", "青铜剑", ()), ("黑曜石", "黑曜石", ()), ("红宝石", "红宝石", ()),
])
def test_colour_words_and_shades(prompt, text, colors):
    reading = read_prompt(prompt)
    assert (reading.text, reading.colors) == (text, colors)


def test_unknown_words_are_reported_in_both_languages():
    english = read_prompt("a sci-fi gun with a purple body and a white scope")
    assert english.unknown == ("sci-fi", "scope") and english.shape == "gun"
    assert unknown_words_message(english) == "unknown words, not learned by the model: sci-fi, scope"
    assert english.text == "a sci-fi gun with a purple body and a white scope"  # kept: a model may know them
    chinese = read_prompt("一把科幻风格的枪，带有紫色的枪身和白色的瞄准镜")
    assert chinese.unknown == ("科幻", "身", "瞄准镜")
    assert chinese.colors == ("purple", "white") and chinese.language == "zh"
    assert unknown_words_message(read_prompt("一把蓝色的钻石剑")) == ""
    many = read_prompt(" ".join(f"word{chr(97 + i)}x" for i in range(20)))
    assert unknown_words_message(many).endswith("and 8 more")


def test_reading_reports_kind_language_and_known_words():
    reading = read_prompt("一把蓝色的钻石剑")
    assert (reading.kind, reading.shape, reading.language, reading.colors) == ("item", "sword", "zh", ("blue",))
    assert reading.known == ("蓝色", "钻石", "剑")
    assert [w.concept for w in reading.words if w.category in ("material", "thing")] == ["diamond", "sword"]
    assert read_prompt("red wool block").kind == "block" and read_prompt("红色的羊毛方块").kind == "block"
    assert read_prompt("红色的羊毛").kind is None
    assert read_prompt("a 蓝色 sword").language == "mixed"


ODD = [
    "", " ", "\x00\x00", "a\ud800b red sword", "\udfff", "🗡️💎 sword", "красный меч", "سيف أحمر", "e\u0301\u0301\u0301",
    "\u200b\u200d\ufeff", "ＲＥＤ　ｗｏｏｌ", "!!!???，。、", "x" * 10_000, "剑" * 10_000, "a red sword " * 2000,
    "\U0001f600" * 3000, "pixel art, 像素风格, 16x16", "画一把", "xyzzy plugh", "𠀀𠀁 sword", "\t\n\r", "#%&*",
]


@pytest.mark.parametrize("prompt", ODD)
def test_odd_input_never_crashes(prompt, tiny_model):
    reading = read_prompt(prompt)
    assert isinstance(reading.text, str) and len(reading.text) <= MAX_PROMPT_CHARS
    assert not re.search(r"[\ud800-\udfff]", reading.text)
    assert reading.truncated == (len(prompt) > MAX_PROMPT_CHARS)
    unknown_words_message(reading)
    ids = tiny_model.text_encoder.tokenize([prompt])
    assert ids.shape[0] == 1
    if re.search(r"[\ud800-\udfff]", prompt):  # refused before reading: no file or terminal can hold it
        with pytest.raises(ValueError, match="surrogate"):
            check_prompts(prompt)
    elif reading.text:
        assert check_prompts(prompt)
    else:  # nothing with content: a clear message saying what to type
        with pytest.raises(ValueError, match="e.g."):
            check_prompts(prompt)


def test_filler_only_prompt_is_refused_with_advice():
    with pytest.raises(ValueError, match="names nothing to draw.*pixel art.*'a blue diamond sword'"):
        check_prompts("pixel art, minecraft style")
    with pytest.raises(ValueError, match="negative prompt"):
        check_prompts("画一把", what="negative prompt")
    assert check_prompts("xyzzy") == ["xyzzy"]  # only unknown words: drawn, with a message to show
    assert unknown_words_message(read_prompt("xyzzy")) == "unknown words, not learned by the model: xyzzy"


def test_read_prompt_refuses_non_strings():
    for bad in (None, 5, b"sword", ["a"]):
        with pytest.raises(ValueError, match="string"):
            read_prompt(bad)


def test_captions_of_the_shipped_model_read_as_before_and_chinese_as_its_english_twin():
    """The shipped model was trained on these templates through the colour-word normaliser alone: the reader
    gives it the same English text, except that filler ("icon", "texture") is now dropped; a Chinese caption
    reads as the English caption words it stands for, so it meets its English twin."""
    changed = []
    for name, kind in SAMPLE_NAMES:
        for color in (*COLOR_NAMES, None):
            for caption in captions._english_templates(name, color, kind):
                if normalize_prompt(caption) != _old_colour_normaliser(caption).lower():
                    changed.append(caption)
            for caption in captions._chinese_templates(name, color, kind):
                reading = read_prompt(normalize_prompt(caption))  # the English text the model reads
                assert reading.text.isascii() and not reading.unknown, (caption, reading.text)
                if color and color not in name.split():
                    assert color in reading.colors, (caption, reading.text)
                if "方块" in caption:
                    assert reading.kind == "block", (caption, reading.text)
    assert changed and all(re.search(r"\b(icon|texture)\b", c) for c in changed)


@pytest.mark.parametrize("prompt, model_text", [
    ("一桶水", "bucket of water"), ("一个水桶", "bucket"), ("一桶", "bucket"),  # 桶 as a measure word is the bucket
    ("一颗红宝石", "red gem"), ("绿宝石", "green gem"), ("a sapphire", "a blue gem"), ("an amethyst", "a purple gem"),
    ("red ruby gemstone", "red gem"), ("a ruby sword", "a red sword"), ("一把红宝石剑", "red sword"),
    ("red ruby", "red gem"), ("blue jewel", "blue gem"),
])
def test_the_model_reads_containers_and_gemstones_as_what_it_can_draw(prompt, model_text):
    """The shipped model draws "ruby" and "sapphire" as blocks and "bucket of water" as a bucket but "water" as a
    block: the reader gives it the words it draws (docs/PROMPTS.md)."""
    assert read_prompt(prompt).model_text == model_text


def test_every_caption_is_read_without_unknown_words_and_normalising_twice_changes_nothing():
    for name, kind in SAMPLE_NAMES + EXTRA_NAMES:
        for color in ("red", "blue", "gray", None):
            for caption in captions.caption_variants(name, color, kind) + captions.generic_variants(
                    name, color, kind):
                reading = read_prompt(caption)
                assert reading.unknown == () and reading.text, caption
                assert normalize_prompt(reading.model_text) == reading.model_text, caption


def test_vocabulary_lists_both_languages_by_group():
    vocab = vocabulary()
    assert tuple(vocab) == VOCAB_GROUPS
    assert len(vocab["colours"]) == len(COLOR_NAMES)
    red = vocab["colours"][0]
    assert red.english[0] == "red" and "crimson" in red.english and {"红色", "红", "赤红色"} <= set(red.chinese)
    sword = next(e for e in vocab["items and shapes"] if e.english[0] == "sword")
    assert "blade" in sword.english and {"剑", "宝剑", "长剑"} <= set(sword.chinese)
    shovel = next(e for e in vocab["items and shapes"] if e.english[0] == "shovel")
    assert "spade" in shovel.english and {"锹", "铲子", "铁锹"} <= set(shovel.chinese)
    assert any(e.english[0] == "planks" for e in vocab["blocks"])
    assert "pixel art" in vocab["filler"][0].english and "像素风格" in vocab["filler"][0].chinese
    text = format_vocabulary()
    assert "colours (13):" in text and "sword, blade  剑" in text and "filler:" in text
    assert format_vocabulary(("colours",)).count("\n") == len(COLOR_NAMES)
    with pytest.raises(ValueError, match="colours"):
        format_vocabulary(("weapons",))


def test_every_vocabulary_word_reads_as_known():
    for group in ("colours", "items and shapes", "materials", "blocks"):
        for entry in vocabulary()[group]:
            for word in (*entry.english, *entry.chinese):
                assert read_prompt(word).unknown == (), (group, word)


def test_synonym_tables_do_not_rewrite_name_words():
    name_words = {w for key in glossary.GLOSSARY for w in key.split()} - set(captions.NAME_ALIASES)
    assert not set(glossary.EN_CANONICAL) & name_words
    renderings = {zh for zh in glossary.GLOSSARY.values() if zh} | set(glossary.ZH_COLORS.values())
    assert not set(glossary.ZH_CANONICAL) & renderings
    assert not set(glossary.ZH_COLOR_SYNONYMS) & renderings
    simplified = "".join(renderings | set(glossary.ZH_FILLER) | set(glossary.ZH_PARTICLES))
    assert not set(glossary.TRAD_TO_SIMP) & set(simplified)
    assert not {f for f in glossary.EN_FILLER if " " not in f} & (name_words - {"texture", "style"})


def test_builtin_encoder_tokenizes_the_reading(tiny_model):
    tokenize = tiny_model.text_encoder.tokenize
    same = tokenize(["一把黑色的铲子", "一把黑色的锹", "draw me a golden spade, pixel art", "a gold shovel"])
    assert (same[0] == same[1]).all() and (same[2] == same[3]).all()
    # a text of filler alone is tokenized as typed, not as an empty prompt
    assert not (tokenize(["pixel art"])[0] == tokenize([""])[0]).all()


# --- the natural-prompt sets ---------------------------------------------------------------------------------

def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (EVAL / name).read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("name, pairs", [("prompts_natural_b.jsonl", 40), ("prompts_natural_c.jsonl", 24)])
def test_every_natural_prompt_set_is_made_of_twins(name, pairs):
    twins: dict[str, dict[str, dict]] = {}
    for row in _rows(name):
        assert set(row) <= {"prompt", "color", "kind", "shape", "lang", "twin"}
        assert row["color"] in (*COLOR_NAMES, None) and row["kind"] in ("item", "block", None)
        assert row.get("shape") is None or normalize_shape(row["shape"]) == row["shape"]
        assert row["lang"] not in twins.get(row["twin"], {}), row
        twins.setdefault(row["twin"], {})[row["lang"]] = row
    assert len(twins) >= pairs and all(set(pair) == {"en", "zh"} for pair in twins.values())
    for pair in twins.values():
        keys = [{k: v for k, v in pair[lang].items() if k not in ("prompt", "lang")} for lang in ("en", "zh")]
        assert keys[0] == keys[1], pair


def test_natural_prompt_set_has_english_and_chinese_twins():
    rows = _rows("prompts_natural.jsonl")
    twins: dict[str, dict[str, dict]] = {}
    for row in rows:
        assert set(row) <= {"prompt", "color", "kind", "shape", "lang", "twin"}
        assert row["color"] in (*COLOR_NAMES, None) and row["kind"] in ("item", "block", None)
        assert row.get("shape") is None or normalize_shape(row["shape"]) == row["shape"]
        twins.setdefault(row["twin"], {})[row["lang"]] = row
    assert len(twins) >= 40 and all(set(pair) == {"en", "zh"} for pair in twins.values())
    for pair in twins.values():
        keys = [{k: v for k, v in pair[lang].items() if k not in ("prompt", "lang")} for lang in ("en", "zh")]
        assert keys[0] == keys[1]
    shapes = {row.get("shape") for row in rows}
    assert {"sword", "pickaxe", "axe", "shovel", "hoe", "apple", "ingot", "potion", "bucket", "gem"} <= shapes
    assert any(set(row["prompt"]) & set(glossary.TRAD_TO_SIMP) for row in rows)  # a few in traditional
    assert len(_rows("prompts_writeup.jsonl")) == 3


def _training_names() -> list[tuple[str, str, str]]:
    rows = (line.split("\t") for line in (TESTS / "training_names.tsv").read_text().splitlines()
            if line and not line.startswith("#"))
    return [(source, name, kind) for source, kind, name in rows]


def _words_in(prompt: str) -> set[str]:
    """Name words whose English or Chinese (or a synonym of either) occurs in ``prompt``; mod words said in
    English only count as found."""
    text = prompt.lower().translate(str.maketrans(glossary.TRAD_TO_SIMP))
    found = {word for word, zh in glossary.GLOSSARY.items() if zh == ""}
    for word, zh in {**glossary.GLOSSARY, **glossary.NOUN_SENSES, **glossary.ZH_SINGLE}.items():
        forms = {word, *glossary.EN_CAPTION_SYNONYMS.get(word, ())}
        forms |= {k for k, v in glossary.EN_CANONICAL.items() if v == word}
        if zh:
            forms |= {zh, *glossary.ZH_CAPTION_SYNONYMS.get(zh, ())}
            forms |= {k for k, v in glossary.ZH_CANONICAL.items() if v == zh}
        if any(form in text for form in forms):
            found.update(word.split())
    return found


def test_natural_prompts_are_not_caption_templates():
    """Held-out discipline: no natural prompt is a caption written for a training name (in any colour or kind)
    that it could be about."""
    names = [(name, kind) for _, name, kind in _training_names()]
    for row in _rows("prompts_natural.jsonl"):
        found = _words_in(row["prompt"])
        for name, kind in names:
            if not set(name.split()) <= found:
                continue
            for color in (*COLOR_NAMES, None):
                captions_of_name = captions.caption_variants(name, color, kind) + captions.generic_variants(
                    name, color, kind)
                assert row["prompt"] not in captions_of_name, (row["prompt"], name, color)


@pytest.mark.skipif(not os.environ.get("PIXELCORE_LUANTI_DATA"), reason="set PIXELCORE_LUANTI_DATA to a built "
                    "Luanti set (python -m pixelcore build-luanti) to compare its names with tests/training_names.tsv")
def test_luanti_name_list_matches_the_built_set():
    metadata = Path(os.environ["PIXELCORE_LUANTI_DATA"]) / "metadata.jsonl"
    built = {(row["name"], row["kind"]) for row in map(json.loads, metadata.read_text().splitlines())}
    assert built == {(name, kind) for source, name, kind in _training_names() if source == "luanti"}

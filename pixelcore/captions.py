"""Captions for textures: file-name parsing and English/Chinese caption templates.

A texture is described by a *name* (noun phrase without colour words, e.g.
"diamond sword"), a *colour* word from :mod:`pixelcore.colors` and a *kind*
("item" or "block"). Chinese captions are made word by word through
:data:`GLOSSARY`; when any word of the name is missing from the glossary,
:func:`chinese_caption` returns None rather than a half-Chinese caption.
"""

from __future__ import annotations

import logging
import random
import re
import zlib
from functools import lru_cache

from pixelcore import glossary, phrasing
from pixelcore.colors import COLOR_SYNONYMS, normalize_color
from pixelcore.glossary import GLOSSARY, ZH_DEFAULT_MEASURE, ZH_MEASURE

_ZH_COLORS = glossary.ZH_COLORS
_NOUN_SENSES = glossary.NOUN_SENSES
_ZH_SINGLE = glossary.ZH_SINGLE

logger = logging.getLogger(__name__)

_TOOLS = glossary.TOOL_HEADS
_REORDER_HEADS = frozenset(_TOOLS) | {
    "helmet", "chestplate", "leggings", "boots", "shield", "door", "trapdoor", "fence", "gate",
    "ingot", "lump", "block", "bar", "pane", "slab", "stair", "stairs", "rail", "ladder", "sign"}
_MATERIALS = frozenset({"wood", "stone", "iron", "steel", "gold", "diamond", "mese", "copper",
                        "bronze", "tin", "obsidian", "glass", "mithril", "silver", "brass",
                        "cactus", "crystal", "admin", "leather", "wooden", "golden"})

NAMESPACES: frozenset[str] = frozenset({
    "default", "farming", "moreores", "homedecor", "ethereal", "pipeworks", "xdecor",
    "jeija", "mesecons", "cc", "unifieddyes", "moreblocks", "technic", "mobs", "throwing",
    "protector", "currency", "skyblock", "maidroid", "craftguide", "ui", "basic",
    "materials", "building", "blocks", "minecraft", "mcl", "mcl_core", "advtrains",
})
"""Mod prefixes dropped from the start of a file stem (only when more words follow)."""

# Mod names of several tokens whose tokens are nouns on their own ("armor").
_MULTI_PREFIXES = ("3d_armor", "mobs_redo", "throwing_arrows", "unified_inventory")
_NOISE = frozenset({"left", "right", "lr", "on", "off", "edges", "anim", "animated", "active",
                    "inactive", "preview", "tool", "tools", "inv", "inventory", "item", "png",
                    "top", "bottom",
                    "side", "sides", "front", "back", "3d", "icon", "overlay", "tb", "opaque"})
NAME_ALIASES: dict[str, str] = {"pick": "pickaxe", "cobblestone": "cobble", "grey": "gray", "woods": "wood",
                                "ingots": "ingot", "logs": "log", "swords": "sword", "bricks": "brick"}
"""File-name words said another way in names ("steelpick" is a steel pickaxe)."""
_SHADE_WORDS = frozenset({"dark", "light", "pale", "bright", "deep"})
# Colour words that are also materials or fruit ("gold ingot", "an orange"): stripped
# only when they trail another word ("wool orange").
_AMBIGUOUS_COLORS = frozenset({"gold", "golden", "silver", "orange", "rose", "emerald", "lime"})
_ARTICLES = frozenset({"a", "an", "the"})


@lru_cache(maxsize=1)
def _vocabulary() -> frozenset[str]:
    """Words a glued file-name token may be split into (three letters or more: "or", "bg" would split
    unknown tokens into noise)."""
    words = {w for key in GLOSSARY for w in key.split() if len(w) >= 3}
    return frozenset(words | set(NAME_ALIASES) | set(COLOR_SYNONYMS) | set(_SHADE_WORDS))


def _segment(token: str) -> list[str]:
    """Split a glued token into vocabulary words (fewest pieces), or keep it whole."""
    vocab = _vocabulary()
    if token in vocab or len(token) < 5:
        return [token]
    best: list[list[str] | None] = [None] * (len(token) + 1)
    best[0] = []
    for end in range(2, len(token) + 1):
        for start in range(0, end - 1):
            prev = best[start]
            piece = token[start:end]
            if prev is not None and piece in vocab:
                if best[end] is None or len(prev) + 1 < len(best[end]):
                    best[end] = prev + [piece]
    return best[-1] or [token]


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def split_name(stem: str, prefixes: tuple[str, ...] = ()) -> list[str]:
    """Turn a texture file stem into lower-case words.

    Args:
        stem: File name without extension, e.g. "default_tool_diamondsword".
        prefixes: Extra mod names to strip from the front (e.g. the mod folder).

    Returns:
        Words such as ["diamond", "sword"]: mod prefix, noise words ("tool",
        "inv", digits) removed, glued words split, "pick" normalised to "pickaxe".
    """
    text = re.sub(r"([a-z])([A-Z])", r"\1_\2", stem)
    text = re.sub(r"[\s\-.]+", "_", text.lower())
    for prefix in sorted((*prefixes, *_MULTI_PREFIXES), key=len, reverse=True):
        if prefix and text.startswith(prefix.lower() + "_"):
            text = text[len(prefix) + 1:]
            break
    tokens = [t for t in text.split("_") if t]
    while len(tokens) > 1 and tokens[0] in NAMESPACES:
        tokens = tokens[1:]
    words: list[str] = []
    for token in tokens:
        if token in _NOISE or re.fullmatch(r"\d+|[a-z]?\d+[a-z]?", token):
            continue
        words.extend(NAME_ALIASES.get(piece, piece) for piece in _segment(token))
    if len(words) >= 2 and _singular(words[0]) == _singular(words[1]):
        words = words[1:]  # a mod named after its thing: "beds_bed" -> "bed", "nether_nether..." -> "nether..."
    if len(words) >= 2 and words[-1] in _MATERIALS and words[-2] in _REORDER_HEADS:
        words = [words[-1]] + words[:-1]  # "helmet steel" -> "steel helmet"
    return words or [t for t in tokens if not t.isdigit()][:1]


def _color_at(words: list[str], i: int) -> str | None:
    """Colour meant by ``words[i]``, or None when it is no colour or a material/fruit."""
    word = words[i].strip(",.")
    color = normalize_color(word)
    if color is not None and word in _AMBIGUOUS_COLORS and (i == 0 or i < len(words) - 1):
        return None
    return color


def replace_color_words(text: str, new_color: str) -> str | None:
    """Swap the colour words of a caption for ``new_color``; None if it has none.

    Shade words before a colour ("dark green") go too; materials ("gold ingot") stay.
    """
    words = text.split()
    lowered = [w.lower() for w in words]
    out: list[str] = []
    replaced = False
    for i in range(len(words)):
        if _color_at(lowered, i) is None:
            out.append(words[i])
            continue
        if out and out[-1].lower() in _SHADE_WORDS:
            out.pop()
        out.append(new_color + ("," if words[i].endswith(",") else ""))
        replaced = True
    return " ".join(out) if replaced else None


def strip_color_words(name: str) -> tuple[str, str | None]:
    """Remove colour words from a name.

    Returns:
        (name without colour words and leading articles, first colour found
        normalised to :data:`COLOR_NAMES`). The name is kept whole when stripping
        would leave nothing, e.g. "orange" the fruit.
    """
    words = [w for w in re.split(r"[\s_]+", name.strip().lower()) if w]
    while words and words[0] in _ARTICLES:
        words = words[1:]
    kept: list[str] = []
    found: str | None = None
    for i, word in enumerate(words):
        color = _color_at(words, i)
        if color is None:
            kept.append(word)
            continue
        found = found or color
        if kept and kept[-1] in _SHADE_WORDS:
            kept.pop()
    if not kept:
        return " ".join(words), found
    return " ".join(kept).strip(" ,"), found


def _article(phrase: str) -> str:
    return "an" if phrase[:1] in "aeiou" else "a"


def _english_templates(name: str, color: str | None, kind: str | None) -> list[str]:
    words = name.split()
    if color and color in words:
        color = None
    noun = f"{color} {name}" if color else name
    is_block = kind == "block" and words[-1:] != ["block"]
    out = [f"{_article(noun)} {noun}", noun]
    if color:
        out.append(f"{name}, {color}")
    if is_block:
        out = [f"{noun} block", f"{_article(noun)} {noun} block", *out]
    elif kind == "item":
        out += [f"{_article(noun)} {noun} item", f"{noun} icon"]
    return out


def english_caption(name: str, color: str | None, kind: str | None, rng: random.Random) -> str:
    """One randomly chosen English caption, e.g. "a red diamond sword"."""
    return rng.choice(_english_templates(name, normalize_color(color), kind))


def chinese_word(word: str) -> str | None:
    """Chinese for one name word: the glossary's (a synonym's: "hatchet" is said as "axe" is), or a code said as
    is ("t" is T, "mk10" is MK10, "side2" is 侧面2); "" for a mod name said in English only. None when the word is
    not known."""
    zh = _NOUN_SENSES.get(word, GLOSSARY.get(word, GLOSSARY.get(glossary.EN_CANONICAL.get(word, ""))))
    if zh is not None:
        return zh
    if re.fullmatch(r"[a-z]", word):
        return word.upper()
    match = re.fullmatch(r"([a-z]+)(\d+)", word)
    base = match and _NOUN_SENSES.get(match.group(1), GLOSSARY.get(match.group(1)))
    return None if base is None or not match else base + match.group(2)


def _translate(name: str) -> str | None:
    words = name.split()
    out: list[str] = []
    i = 0
    while i < len(words):
        for size in (3, 2, 1):
            if len(words) - i < size:
                continue
            phrase = " ".join(words[i:i + size])
            zh = chinese_word(phrase) if size == 1 else GLOSSARY.get(phrase)
            if zh is not None:
                out.append(zh)
                i += size
                break
        else:
            return None
    return "".join(out)


def _zh_name(name: str) -> str | None:
    return _ZH_SINGLE.get(name) or _translate(name) or None


def _zh_words(name: str, zh_name: str) -> tuple[str, ...] | None:
    """The Chinese of each word of ``name`` when together they are ``zh_name`` (no phrase, no single form)."""
    rendered = tuple(chinese_word(w) for w in name.split())
    if any(zh is None for zh in rendered) or "".join(rendered) != zh_name:
        return None
    return rendered


def _has_han(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def _chinese_templates(name: str, color: str | None, kind: str | None) -> list[str]:
    zh_name = _zh_name(name) if name else None
    if zh_name is None:
        return []
    zh_color = None if color in name.split() else _ZH_COLORS.get(color or "")
    head = name.split()[-1]
    if kind == "block":
        needs_block = not zh_name.endswith("方块")
        base = [f"{zh_color}的{zh_name}", f"{zh_color}{zh_name}"] if zh_color else [zh_name]
        out = base + ([f"{b}方块" for b in base] if needs_block else [])
    else:
        measure = ZH_MEASURE.get(head, ZH_DEFAULT_MEASURE) if kind == "item" else ""
        if zh_color:
            out = [f"{measure}{zh_color}的{zh_name}", f"{zh_color}的{zh_name}", f"{zh_color}{zh_name}"]
        else:
            out = [f"{measure}{zh_name}", zh_name] if measure else [zh_name]
    return [c for c in out if _has_han(c)]  # "FPGA" alone is no Chinese caption


def chinese_caption(name: str, color: str | None, kind: str | None,
                    rng: random.Random) -> str | None:
    """A random Chinese caption, e.g. "一把青色的钻石剑".

    Returns None when any word of ``name`` is missing from :data:`GLOSSARY`
    (no half-translated captions).
    """
    options = _chinese_templates(name, normalize_color(color), kind)
    return rng.choice(options) if options else None


EN_VARIANTS = 12
ZH_VARIANTS = 12
"""Captions per record and language: the fixed templates, then phrasings drawn by :mod:`pixelcore.phrasing`
(the training bank tokenizes every one: 6,500 records x 24 x 48 tokens of int64 is about 60 MB)."""


def caption_variants(name: str, color: str | None, kind: str | None, pixels=None) -> list[str]:
    """Captions of one texture in both languages, English first, the same list on every call.

    The fixed templates come first ("a red diamond sword", 一把红色的钻石剑), then phrasings as people write
    them, up to :data:`EN_VARIANTS` English and :data:`ZH_VARIANTS` Chinese captions.

    Args:
        name: The name without colour words, e.g. "diamond sword".
        color: Its colour word (synonyms accepted), or None.
        kind: "item", "block" or None.
        pixels: The uint8 (16, 16, 4) texture, optional: with it, a texture with a second colour of real share
            also gets two-colour captions ("a cyan and brown diamond sword").
    """
    color = normalize_color(color)
    return list(_variants(name, color, kind, phrasing.second_color(pixels, color)))


@lru_cache(maxsize=1 << 16)
def _variants(name: str, color: str | None, kind: str | None, second: str | None) -> tuple[str, ...]:
    rng = random.Random(zlib.crc32(f"{name}|{color}|{kind}|{second}".encode()))
    if color in name.split():  # "gold ingot" is not said "gold gold ingot" (nor 金色的金锭)
        color = second = None
    english = phrasing.fill(_english_templates(name, color, kind), EN_VARIANTS,
                            lambda: phrasing.english_phrasing(name, color, kind, second, rng))
    chinese = _chinese_templates(name, color, kind)
    if chinese:
        zh_name = _zh_name(name)
        words = _zh_words(name, zh_name)
        head = name.split()[-1]
        chinese = phrasing.fill(chinese, ZH_VARIANTS,
                                lambda: phrasing.chinese_phrasing(zh_name, words, head, color, kind, second, rng),
                                keep=_has_han)  # "FPGA" alone is no Chinese caption
    return tuple(dict.fromkeys(english + chinese))


def generic_variants(name: str, color: str | None, kind: str | None) -> list[str]:
    """Captions that name an item by colour and head noun only: "a red sword" for a red diamond sword.

    Hue-shifted copies keep their material in the caption ("a red diamond sword", 一把红色的钻石剑), so a
    prompt naming only the colour and the thing ("一把红色的剑") had examples only where some sword was red to
    begin with. Only items whose other words are all materials get these; blocks do not ("a red block" says
    nothing about which block). Returns [] otherwise.
    """
    color = normalize_color(color)
    words = name.split()
    if kind != "item" or color is None or len(words) < 2 or not all(w in _MATERIALS for w in words[:-1]):
        return []
    head = words[-1]
    return _english_templates(head, color, kind)[:2] + _chinese_templates(head, color, kind)[:2]


def colorless_variants(name: str, kind: str | None) -> list[str]:
    """Captions that name no colour ("a steel axe", 一把铁斧), for a texture in its own colours.

    Every other caption names a colour, and hue-shifted copies teach that "steel axe" comes in every colour, so
    a prompt naming none ("an iron hatchet") had no caption to land on and drew any colour. Only the original
    textures get these (see ``dataset.CaptionBank``): without a colour word, a name means its own colours.
    """
    return _english_templates(name, None, kind)[:3] + _chinese_templates(name, None, kind)[:2]


def names_of_both_kinds(pairs) -> frozenset[str]:
    """Names that occur both as an item and as a block in ``(name, kind)`` pairs.

    Luanti ships leaves twice: with see-through holes (read as an item cut-out) and as an opaque tile. Such
    names are where the word "block" alone decides what the texture looks like.
    """
    kinds: dict[str, set[str]] = {}
    for name, kind in pairs:
        kinds.setdefault(name, set()).add(kind)
    return frozenset(n for n, k in kinds.items() if {"item", "block"} <= k)


def says_block(caption: str) -> bool:
    """True when a caption names its kind as a block ("block" in English, 方块 in Chinese)."""
    return "方块" in caption or "block" in caption.lower().replace(",", " ").split()


def kind_marked_variants(variants: list[str], kind: str | None) -> list[str]:
    """The variants of a block whose name is also an item's: only those that say "block" (or 方块).

    Without this, "green leaves" captions both the leaves with holes and the opaque leaves tile, and the
    prompt "green leaves block" differs from the cut-out's caption by one word the model can learn to ignore.
    Items never say "block", so they keep all their variants. Returns the input when nothing would be left.
    """
    if kind != "block":
        return variants
    return [v for v in variants if says_block(v)] or variants


def random_caption(name: str, color: str | None, kind: str | None, rng: random.Random,
                   zh_prob: float = 0.3) -> str:
    """Training caption: Chinese with probability ``zh_prob`` when translatable."""
    if rng.random() < zh_prob:
        zh = chinese_caption(name, color, kind, rng)
        if zh is not None:
            return zh
    return english_caption(name, color, kind, rng)


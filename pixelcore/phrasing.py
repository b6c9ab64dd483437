"""Captions as people write them: sampled phrasings of one texture description in English and Chinese.

:func:`pixelcore.captions.caption_variants` starts from a few fixed templates ("a red diamond sword",
一把红色的钻石剑) and fills up to a fixed number of variants per language with phrasings drawn here: synonyms
(blade, 宝剑, 铲子), measure words and word orders (红色的剑, 红剑, 剑，红色), colour shades (dark red, 深红色),
filler people add (pixel art, 像素风格, 画一把 ...), traditional characters, and two-colour descriptions ("a blue
and brown sword") when the texture has a second colour with a real share. The draw is seeded by the
description, so a record always gets the same list.
"""

from __future__ import annotations

import random
from functools import lru_cache

import numpy as np

from . import glossary as g
from .colors import ACHROMATIC, COLOR_NAMES, COLOR_SYNONYMS, TRANSPARENT, color_matches, pixel_color_classes

SECOND_COLOR_SHARE = 0.15
"""A second colour is named when at least this share of the opaque pixels has it (a sword's handle: ~0.15)."""
FILLER_SHARE = 0.3
TRADITIONAL_SHARE = 0.1

_EN_PREFIXES = ("draw me", "draw", "make me", "please draw", "generate", "create", "give me", "i want", "i need")
_EN_SUFFIXES = ("pixel art", "texture", "icon", "sprite", "minecraft style", "in minecraft style", "16x16",
                "16x16 pixel art", "for minecraft", "game asset", "please", "pixel art style")
_ZH_PREFIXES = ("给我画", "帮我画", "帮我生成", "生成", "我想要", "来", "请画", "给我做")
_ZH_SUFFIXES = ("，像素风格", "，像素风", "，我的世界风格", "的贴图", "贴图", "图标", " 16x16", "（像素画）",
                "，16x16像素")
_ZH_STYLE_PREFIXES = ("像素风格的", "我的世界风格的", "像素风的")
_SIMP_TO_TRAD = {simp: trad for trad, simp in reversed(list(g.TRAD_TO_SIMP.items()))}


def second_color(pixels: np.ndarray | None, color: str | None) -> str | None:
    """The colour to name beside ``color``: the most common other colour class of the opaque pixels.

    Black (outlines), shades of the first colour (gold beside yellow, grey beside white) and shares under
    :data:`SECOND_COLOR_SHARE` do not count. None when there is no such colour.
    """
    if pixels is None or color is None:
        return None
    classes = pixel_color_classes(pixels)
    opaque = classes[classes != TRANSPARENT].astype(np.int64)
    if opaque.size == 0:
        return None
    shares = np.bincount(opaque, minlength=len(COLOR_NAMES)) / opaque.size
    for index in np.argsort(-shares, kind="stable"):
        name = COLOR_NAMES[int(index)]
        if shares[index] < SECOND_COLOR_SHARE:
            return None
        if name == color or name == "black" or color_matches(name, color) or {name, color} <= ACHROMATIC:
            continue
        return name
    return None


def _article(phrase: str) -> str:
    return "an" if phrase[:1] in "aeiou" else "a"


def _en_synonyms(word: str) -> list[str]:
    return [*g.EN_CAPTION_SYNONYMS.get(word, ()), *(k for k, v in g.EN_CANONICAL.items() if v == word)]


def _en_colors(color: str) -> list[str]:
    """Ways to say ``color`` in English, the caption word counted several times."""
    shades = [f"{shade} {color}" for shade in ("dark", "light", "bright")]
    synonyms = [w for w, c in {**COLOR_SYNONYMS, **g.EN_COLOR_EXTRA, **g.EN_COLOR_PHRASES}.items()
                if c == color and not w.startswith(("light", "dark"))]  # not the glued "lightgray"
    return [color] * 6 + shades + synonyms


def _en_names(name: str, rng: random.Random) -> str:
    words = name.split()
    head_options = _en_synonyms(words[-1])
    if head_options and rng.random() < 0.4:
        words[-1] = rng.choice(head_options)
    material_options = _en_synonyms(words[0]) if len(words) > 1 else []
    if material_options and rng.random() < 0.3:
        words[0] = rng.choice(material_options)
    return " ".join(words)


def english_phrasing(name: str, color: str | None, kind: str | None, second: str | None,
                     rng: random.Random) -> str:
    """One English caption for the description, drawn from the phrasings above."""
    noun = _en_names(name, rng)
    block = " block" if kind == "block" and not noun.endswith("block") else ""
    if color and second and rng.random() < 0.35:
        pair = f"{color} and {second}"
        text = rng.choice([f"{_article(pair)} {pair} {noun}", f"{pair} {noun}{block}", f"{noun} in {pair}"])
    elif color:
        c = rng.choice(_en_colors(color))
        options = [f"{_article(c)} {c} {noun}", f"{c} {noun}", f"the {c} {noun}", f"{noun}, {c}",
                   f"{noun} in {c}", f"{_article(c)} {c} colored {noun}", f"{noun} that is {c}"]
        if block:
            options += [f"{c} {noun}{block}", f"a block of {c} {noun}", f"{noun}{block}, {c}",
                        f"{_article(c)} {c} {noun}{block}"]
        elif kind == "item":
            options += [f"{_article(c)} {c} {noun} item", f"one {c} {noun}"]
        text = rng.choice(options)
    else:
        options = [f"{_article(noun)} {noun}", noun, f"the {noun}"]
        options += [f"{noun}{block}", f"a block of {noun}"] if block else [f"{_article(noun)} {noun} item"]
        text = rng.choice(options)
    if rng.random() < FILLER_SHARE:
        if rng.random() < 0.5:
            text = f"{rng.choice(_EN_PREFIXES)} {text}"
        else:
            text = f"{text}{rng.choice([' ', ', '])}{rng.choice(_EN_SUFFIXES)}"
    return text


def _zh_synonyms(word: str) -> list[str]:
    return [*g.ZH_CAPTION_SYNONYMS.get(word, ()), *(k for k, v in g.ZH_CANONICAL.items() if v == word)]


def _zh_colors(color: str, zh_name: str) -> list[str]:
    """Ways to say ``color`` before ``zh_name`` in Chinese; the one-character form only where it cannot run
    into the name as another word (青 before 铜 reads 青铜, bronze)."""
    canonical = g.ZH_COLORS[color]
    out = [canonical] * 6 + [w for w, c in g.ZH_COLOR_SYNONYMS.items() if c == canonical and w.endswith("色")]
    bare = g.ZH_BARE_COLORS.get(color)
    if bare and not any((bare + zh_name).startswith(w) for w in _zh_words_from(bare)):
        out += [bare] * 3
    return out


@lru_cache(maxsize=None)
def _zh_words_from(char: str) -> tuple[str, ...]:
    """Chinese vocabulary words longer than one character that start with ``char``."""
    words = {*g.GLOSSARY.values(), *g.ZH_CANONICAL, *g.ZH_COLOR_SYNONYMS, *g.ZH_COLORS.values()}
    return tuple(w for w in words if len(w) > 1 and w.startswith(char))


def _zh_names(zh_name: str, zh_words: tuple[str, ...] | None, rng: random.Random) -> str:
    """``zh_name`` or, sometimes, the name with a synonym for its head noun or its first word (a material)."""
    if not zh_words:
        return zh_name
    words = list(zh_words)
    head_options = _zh_synonyms(words[-1])
    if len(words) > 1:  # 铁锹 and 水桶 say a material of their own: not after another one (钻石铁锹)
        head_options = [h for h in head_options if not h.startswith(_MATERIAL_RENDERINGS)]
    if head_options and rng.random() < 0.5:
        words[-1] = rng.choice(head_options)
    first_options = _zh_synonyms(words[0]) if len(words) > 1 else []
    if first_options and rng.random() < 0.3:
        words[0] = rng.choice(first_options)
    return "".join(words)


_MATERIAL_RENDERINGS = tuple(sorted({zh for zh in g.MATERIALS.values() if zh}))


def _measures(head: str, kind: str | None) -> list[str]:
    if kind == "block":
        return ["", "", "一块", "一个"]
    main = g.ZH_MEASURE.get(head, g.ZH_DEFAULT_MEASURE)
    return [main, main, "", *g.ZH_MEASURE_ALT.get(head, ()), g.ZH_DEFAULT_MEASURE]


def chinese_phrasing(zh_name: str, zh_words: tuple[str, ...] | None, head: str, color: str | None,
                     kind: str | None, second: str | None, rng: random.Random) -> str:
    """One Chinese caption for the description, drawn from the phrasings above.

    Args:
        zh_name: The name in Chinese (钻石剑).
        zh_words: The Chinese of each English word when ``zh_name`` is made of them (钻石, 剑), else None.
        head: The English head noun, for the measure word.
    """
    noun = _zh_names(zh_name, zh_words, rng)
    measure = rng.choice(_measures(head, kind))
    block = "方块" if kind == "block" and not noun.endswith(("方块", "块")) else ""
    if color and second and rng.random() < 0.35:
        c1, c2 = g.ZH_COLORS[color], g.ZH_COLORS[second]
        text = rng.choice([f"{measure}{c1}和{c2}的{noun}", f"{c1}和{c2}的{noun}{block}",
                           f"带有{c2}的{c1}{noun}", f"{c1}配{c2}的{noun}"])
    elif color:
        c = rng.choice(_zh_colors(color, noun))
        if len(c) == 1:  # 红剑, 一把红剑
            options = [f"{measure}{c}{noun}", f"{c}{noun}{block}"]
        else:
            joined = rng.choice([f"{c}的{noun}", f"{c}{noun}"])
            options = [f"{measure}{joined}", joined, f"{noun}，{c}", f"{measure}{noun}，{c}的", f"{noun}，颜色是{c}"]
            if block:
                options += [f"{joined}{block}", f"{noun}{block}，{c}", f"一块{c}的{noun}"]
        text = rng.choice(options)
    else:
        text = rng.choice([f"{measure}{noun}", noun, f"{noun}{block}" if block else noun])
    if rng.random() < FILLER_SHARE:
        text = _zh_filler(text, measure, rng)
    if rng.random() < TRADITIONAL_SHARE:
        text = "".join(_SIMP_TO_TRAD.get(ch, ch) for ch in text)
    return text


def _zh_filler(text: str, measure: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.25 and measure and text.startswith(measure):
        return "画" + text  # 画一把红色的剑
    if roll < 0.5:
        return rng.choice(_ZH_PREFIXES) + text
    if roll < 0.65:  # 像素风格的红色剑, 一把像素风格的红色剑
        cut = len(measure) if measure and text.startswith(measure) else 0
        return text[:cut] + rng.choice(_ZH_STYLE_PREFIXES) + text[cut:]
    return text + rng.choice(_ZH_SUFFIXES)


def fill(core: list[str], budget: int, draw, keep=bool) -> list[str]:
    """``core`` followed by new captions from ``draw()`` that ``keep`` accepts, until there are ``budget`` (or
    draws stop being new)."""
    out = list(dict.fromkeys(core))
    for _ in range(budget * 8):
        if len(out) >= budget:
            break
        caption = draw()
        if caption not in out and keep(caption):
            out.append(caption)
    return out

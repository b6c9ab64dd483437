"""What the builtin model's captions say, for ``python -m pixelcore vocab``: the vocabulary in English and Chinese,
grouped (colours, items and shapes, materials, blocks, modifiers, other words, kind words, styles, measure words,
filler), from the tables of :mod:`pixelcore.glossary` that captions and the prompt reader share.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import glossary as g
from .colors import COLOR_NAMES, COLOR_SYNONYMS
from .prompts import styles


@dataclass(frozen=True)
class VocabEntry:
    """One thing the model has words for: its English words (caption word first) and its Chinese words."""

    english: tuple[str, ...]
    chinese: tuple[str, ...]


VOCAB_GROUPS = ("colours", "items and shapes", "materials", "blocks", "modifiers", "other words", "kind words",
                "styles", "measure words", "filler")


def _entry(word: str, zh: str) -> VocabEntry:
    english = (word, *g.EN_CAPTION_SYNONYMS.get(word, ()), *(k for k, v in g.EN_CANONICAL.items() if v == word))
    chinese = (zh, *g.ZH_CAPTION_SYNONYMS.get(zh, ()), *(k for k, v in g.ZH_CANONICAL.items() if v == zh))
    return VocabEntry(english, tuple(c for c in chinese if c))


def vocabulary() -> dict[str, list[VocabEntry]]:
    """What the builtin model's captions say, grouped as :data:`VOCAB_GROUPS`, in both languages."""
    by_color: dict[str, list[str]] = {c: [] for c in COLOR_NAMES}
    for word, color in {**COLOR_SYNONYMS, **g.EN_COLOR_EXTRA, **g.EN_COLOR_PHRASES}.items():
        by_color[color].append(word)
    zh_by_color: dict[str, list[str]] = {zh: [] for zh in g.ZH_COLORS.values()}
    for word, zh in g.ZH_COLOR_SYNONYMS.items():
        zh_by_color[zh].append(word)
    colours = [VocabEntry((c, *by_color[c]), tuple(dict.fromkeys(
        [g.ZH_COLORS[c], *filter(None, [g.ZH_BARE_COLORS.get(c)]), *zh_by_color[g.ZH_COLORS[c]]])))
        for c in COLOR_NAMES]
    materials = {**g.MATERIALS, "gold": g.NOUN_SENSES["gold"]}
    things = {**g.TOOLS, **g.ITEMS}

    def listed(table: dict[str, str]) -> list[VocabEntry]:
        return [_entry(word, zh) for word, zh in sorted(table.items()) if zh]

    measures = sorted({m for m in g.ZH_MEASURE.values()} | {m for ms in g.ZH_MEASURE_ALT.values() for m in ms})
    zh_filler = [f for f in g.ZH_FILLER if not (f.startswith("画") and len(f) == 3)] + ["画一把 (画 + measure)"]
    return {
        "colours": colours,
        "items and shapes": listed(things),
        "materials": listed(materials),
        "blocks": listed(g.BLOCKS),
        "modifiers": listed(g.MODIFIERS),
        "other words": listed({**g.OTHER, **g.PHRASES}),
        "kind words": [VocabEntry(("block",), ("方块", "块")), VocabEntry(("item",), ("物品", "道具"))],
        "styles": [VocabEntry((style.en,), (style.zh,)) for style in styles().values()],
        "measure words": [VocabEntry((), tuple(measures))],
        "filler": [VocabEntry(g.EN_FILLER, tuple(zh_filler))],
    }


def format_vocabulary(groups: tuple[str, ...] | None = None) -> str:
    """The vocabulary as text for a terminal, one entry a line: "sword, blade  剑, 宝剑, 长剑"."""
    vocab = vocabulary()
    unknown = [name for name in groups or () if name not in vocab]
    if unknown:
        raise ValueError(f"unknown vocabulary group {unknown[0]!r}: use one of {', '.join(VOCAB_GROUPS)}")
    lines: list[str] = []
    for name in groups or VOCAB_GROUPS:
        entries = vocab[name]
        lines.append(f"{name} ({len(entries)}):" if len(entries) > 1 else f"{name}:")
        for entry in entries:
            english, chinese = ", ".join(entry.english), ", ".join(entry.chinese)
            lines.append(f"  {english}  {chinese}" if english else f"  {chinese}")
    return "\n".join(lines)

"""Reading prompts as people type them: one normaliser for the tokenizer, and a report of the words it knows.

:func:`read_prompt` turns any string into a :class:`PromptReading`: the text the builtin text encoder gets, the
words it recognised (with the caption word each stands for), the words it did not, and the colours, kind and
item shape the prompt names. What it changes is safe to change, because training captions go through it too:

- Unicode compatibility forms (NFKC: full-width letters and punctuation), case, lone surrogates and control
  characters; traditional characters to simplified ones by :data:`pixelcore.glossary.TRAD_TO_SIMP`;
- words without content are dropped ("pixel art", "draw me", 像素风格, 画一把 ...);
- colour synonyms and shades become the caption colour words ("golden" gold, "dark red" red, 天蓝色 蓝色);
- synonyms that never occur in a texture name become the caption word ("spade" shovel, 铲子 锹).

Chinese is split into words by longest match against the vocabulary (glossary renderings, synonyms, colour,
measure and filler words, particles); a run of Han characters that matches nothing is one unknown word.
English words are known when they (or their singular) are in the vocabulary. Unknown words stay in the text:
a model trained on its own captions may know them; :func:`unknown_words_message` tells the user about them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from . import glossary as g
from .captions import NAME_ALIASES
from .colors import COLOR_NAMES, COLOR_SYNONYMS
from .shapes import normalize_shape

MAX_PROMPT_CHARS = 2000
"""Prompts are cut to this many characters before reading; the tokenizer keeps far fewer anyway."""

CONTENT = frozenset({"color", "thing", "material", "block", "modifier", "kind", "style", "unknown"})
"""Categories of words that say something about the texture (filler without any of them reads as empty)."""

_HAN_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_HAN_RUNS = re.compile(f"[{_HAN_CLASS}]+")
_PIECES = re.compile(
    r"(?P<latin>[a-z0-9]+(?:['\-][a-z0-9]+)*)"
    f"|(?P<han>[{_HAN_CLASS}]+)"
    r"|(?P<space>\s+)"
    r"|(?P<other>.)", re.DOTALL)
_SIZE = re.compile(r"(\d+)\s*[x×*]\s*(\d+)")  # 16x16, 16 x 16, 16×16
_EDGES = " ,.;:!?~-/\\|·、。，；：！？…\"'()[]{}<>《》「」【】（）"
_TRAD = str.maketrans(g.TRAD_TO_SIMP)


@dataclass(frozen=True)
class Word:
    """One word of a prompt as read.

    Attributes:
        text: The word as found (after Unicode cleaning, lower case, simplified characters).
        normalized: What the tokenizer gets for it: the caption word, the word itself, or "" when dropped.
        category: "color", "thing", "material", "block", "modifier", "kind", "style" (a source's style
            condition, :data:`pixelcore.sources.STYLES`), "measure", "grammar", "filler" or "unknown"; spaces and
            punctuation are words of category "space" and "punct".
        concept: The English caption word it stands for (剑 is "sword"), or None.
    """

    text: str
    normalized: str
    category: str
    concept: str | None = None


@dataclass(frozen=True)
class PromptReading:
    """What :func:`read_prompt` made of a prompt."""

    original: str
    text: str  # the prompt normalised, in its own language; "" when nothing with content is left
    words: tuple[Word, ...]
    unknown: tuple[str, ...]  # unknown words, each once, in order of appearance
    colors: tuple[str, ...]  # colour words named, as words of colors.COLOR_NAMES
    kind: str | None  # "block" or "item" when the prompt says so (or names an item shape)
    shape: str | None  # the item class the head noun names (pixelcore.shapes.SHAPE_CLASSES), if any
    language: str  # "en", "zh", "mixed" or "" (no words)
    truncated: bool = False
    # What the builtin encoder tokenizes: ``text`` for English; for Chinese (and mixed) prompts, the English
    # caption words its known words stand for (see ``_as_english``).
    model_text: str = ""

    @property
    def known(self) -> tuple[str, ...]:
        """The recognised words with content, as found."""
        return tuple(w.text for w in self.words if w.category in CONTENT and w.category != "unknown")


@dataclass(frozen=True)
class _Entry:
    category: str
    replacement: str | None = None  # None keeps the word; "" drops it
    concept: str | None = None


_GROUPS = (("material", g.MATERIALS), ("thing", g.TOOLS), ("thing", g.ITEMS), ("block", g.BLOCKS),
           ("modifier", g.MODIFIERS), ("thing", g.OTHER), ("thing", g.PHRASES))
_KIND_EN = {"block": "block", "blocks": "block", "item": "item", "items": "item"}


def _category_of(word: str) -> str:
    if word in g.ZH_COLORS:
        return "color"
    return next((cat for cat, table in _GROUPS if word in table), "thing")


@lru_cache(maxsize=1)
def _english_table() -> dict[tuple[str, ...], _Entry]:
    table: dict[tuple[str, ...], _Entry] = {}
    for category, words in _GROUPS:
        for word in words:
            table[tuple(word.split())] = _Entry(category, concept=word)
    for word, target in NAME_ALIASES.items():
        table.setdefault((word,), _Entry(_category_of(target), concept=target))
    for word, synonyms in g.EN_CAPTION_SYNONYMS.items():
        for synonym in synonyms:
            table.setdefault(tuple(synonym.split()), _Entry(_category_of(word), concept=word))
    for word, target in g.EN_CANONICAL.items():
        table[tuple(word.split())] = _Entry(_category_of(target), target, target)
    colors = {c: c for c in COLOR_NAMES} | COLOR_SYNONYMS | g.EN_COLOR_EXTRA | g.EN_COLOR_PHRASES
    for word, color in colors.items():
        table[tuple(word.split())] = _Entry("color", None if word == color else color, color)
        for shade in g.EN_SHADES:
            table[(shade, *word.split())] = _Entry("color", color, color)
    for word in g.EN_FUNCTION_WORDS:
        table[(word,)] = _Entry("grammar")
    for word, kind in _KIND_EN.items():
        table[(word,)] = _Entry("kind", concept=kind)
    for phrase in g.EN_FILLER:
        table[tuple(phrase.split())] = _Entry("filler", "")
    for key, style in styles().items():  # "silk icon style" is a condition, not the filler "icon" and "style"
        table[tuple(style.en.split())] = table[(style.en.split()[0],)] = _Entry("style", concept=key)
    return table


def styles() -> dict:
    """The style conditions of the extra item sources (:data:`pixelcore.sources.STYLES`), whose words the reader
    keeps whole."""
    from .sources import STYLES  # the data builder's table; imported late, it reads .deb packages

    return STYLES


@lru_cache(maxsize=1)
def _chinese_table() -> dict[str, _Entry]:
    # inside a name, gold, silver and emerald are materials and orange a fruit (金锭, 银, 绿宝石, 橙子)
    table = {zh: _Entry("thing" if word in g.ITEMS else "material", concept=word) for word, zh in g.NOUN_SENSES.items()}
    for category, words in _GROUPS:  # the first word that renders as 桶 names it (bucket, not barrel)
        for word, zh in words.items():
            for run in _HAN_RUNS.findall(zh):  # DVD播放器: 播放器
                table.setdefault(run, _Entry(category, concept=word))
    for word, zh in g.ZH_SINGLE.items():
        table.setdefault(zh, _Entry(_category_of(word), concept=word))
    for word, synonyms in g.ZH_CAPTION_SYNONYMS.items():
        for synonym in synonyms:
            table.setdefault(synonym, _Entry(table[word].category, concept=table[word].concept))
    for word, target in g.ZH_CANONICAL.items():
        table[word] = _Entry(table[target].category, target, table[target].concept)
    for color, zh in g.ZH_COLORS.items():
        table[zh] = _Entry("color", concept=color)
    for color, zh in g.ZH_BARE_COLORS.items():
        table.setdefault(zh, _Entry("color", concept=color))
    table.setdefault("青", _Entry("color", concept="cyan"))
    by_zh = {zh: color for color, zh in g.ZH_COLORS.items()}
    for word, zh in g.ZH_COLOR_SYNONYMS.items():
        table[word] = _Entry("color", zh, by_zh[zh])
    for word, kind in g.ZH_KIND_WORDS.items():
        table[word] = _Entry("kind", concept=kind)
    for count in g.ZH_NUMERALS:
        for measure in g.ZH_MEASURE_CHARS:
            table.setdefault(count + measure, _Entry("measure"))
    for measure in g.ZH_MEASURE_CHARS:
        table.setdefault(measure, _Entry("measure"))
    for word in g.ZH_PARTICLES:
        table.setdefault(word, _Entry("grammar"))
    for word in g.ZH_FILLER:
        table[word] = _Entry("filler", "")
    for key, style in styles().items():
        for run in _HAN_RUNS.findall(style.zh):  # Silk图标风格: 图标风格, kept whole
            table[run] = _Entry("style", concept=key)
    return table


@lru_cache(maxsize=1)
def _longest_chinese() -> int:
    return max(map(len, _chinese_table()))


def _is_han(text: str) -> bool:
    return _HAN_RUNS.search(text) is not None




def _clean(text: str) -> str:
    """Unicode compatibility forms, lower case, simplified characters; no surrogates or control characters."""
    text = "".join(" " if unicodedata.category(ch) in ("Cs", "Cc", "Cf", "Co", "Cn") else ch for ch in text)
    text = unicodedata.normalize("NFKC", text).lower().translate(_TRAD)
    return _SIZE.sub(r"\1x\2", text)


def _split(text: str) -> list[tuple[str, str]]:
    """(kind, piece) for every run: "latin", "han", "space", "punct" or "other" (symbols, other scripts)."""
    pieces: list[tuple[str, str]] = []
    for match in _PIECES.finditer(text):
        kind, piece = match.lastgroup, match.group()
        if kind == "other":
            kind = "punct" if unicodedata.category(piece).startswith("P") else "other"
            if kind == "other" and pieces and pieces[-1][0] == "other":
                pieces[-1] = ("other", pieces[-1][1] + piece)  # an emoji sequence, a word in Cyrillic
                continue
        pieces.append((kind, piece))
    return pieces


def _segment_chinese(run: str) -> list[Word]:
    """Longest match against the Chinese vocabulary; unmatched characters in a row are one unknown word."""
    table, longest = _chinese_table(), _longest_chinese()
    words: list[Word] = []
    unknown = ""
    i = 0
    while i < len(run):
        for size in range(min(longest, len(run) - i), 0, -1):
            entry = table.get(run[i:i + size])
            if entry is not None:
                break
        else:
            unknown += run[i]
            i += 1
            continue
        if unknown:
            words.append(Word(unknown, unknown, "unknown"))
            unknown = ""
        piece = run[i:i + size]
        words.append(Word(piece, piece if entry.replacement is None else entry.replacement, entry.category,
                          entry.concept))
        i += size
    if unknown:
        words.append(Word(unknown, unknown, "unknown"))
    return words


def _english_word(word: str) -> _Entry | None:
    """The entry of one word not matched as part of a phrase: itself, its singular, or a code ("mk10")."""
    table = _english_table()
    for form in (word, word[:-1] if word.endswith("s") else None, word[:-2] if word.endswith("es") else None,
                 word[:-3] + "y" if word.endswith("ies") else None):
        if form and (form,) in table:
            entry = table[(form,)]
            return _Entry(entry.category, None, entry.concept) if form != word else entry
    if re.fullmatch(r"\d+x\d+", word):
        return _Entry("filler", "")
    if re.fullmatch(r"\d+|[a-z]", word):
        return _Entry("grammar")
    match = re.fullmatch(r"([a-z]+)\d+", word)
    if match and (match.group(1),) in table:
        return _Entry(table[(match.group(1),)].category, concept=word)
    if "-" in word and all(_english_word(part) is not None for part in word.split("-") if part):
        return _Entry("thing", concept=word)
    return None


def _read_english(tokens: list[tuple[int, str]], out: list[tuple[int, Word]]) -> None:
    """Matches phrases (longest first) over Latin words separated by single spaces."""
    table = _english_table()
    i = 0
    while i < len(tokens):
        for size in range(min(6, len(tokens) - i), 1, -1):
            run = tokens[i:i + size]
            if run[-1][0] - run[0][0] != 2 * (size - 1):  # not consecutive (something between)
                continue
            entry = table.get(tuple(t for _, t in run))
            if entry is not None:
                text = " ".join(t for _, t in run)
                out.append((run[0][0], Word(text, text if entry.replacement is None else entry.replacement,
                                            entry.category, entry.concept)))
                out.extend((index, Word("", "", "joined")) for index, _ in run[1:])
                i += size
                break
        else:
            index, word = tokens[i]
            entry = _english_word(word)
            if entry is None:
                out.append((index, Word(word, word, "unknown")))
            else:
                out.append((index, Word(word, word if entry.replacement is None else entry.replacement,
                                        entry.category, entry.concept)))
            i += 1


def _words(pieces: list[tuple[str, str]]) -> list[Word]:
    """Every piece as a word; spaces and punctuation become words of category "space" and "punct"."""
    placed: list[tuple[int, Word]] = []
    latin: list[tuple[int, str]] = []
    for index, (kind, piece) in enumerate(pieces):
        if kind == "latin":
            latin.append((index, piece))
        elif kind == "han":
            placed.extend((index, w) for w in _segment_chinese(piece))
        elif kind == "other":
            placed.append((index, Word(piece, piece, "unknown")))
        else:
            placed.append((index, Word(piece, piece, kind)))
    _read_english(latin, placed)
    placed.sort(key=lambda item: item[0])  # stable: a Han run keeps its words in order
    return [w for _, w in placed if w.category != "joined"]


def _drop_filler(words: list[Word]) -> list[Word]:
    """Drops filler with what hangs on it: 的 after it, an article before and "of" after a noun ("a texture
    of a red sword"), and 的 before it at the end (红剑的贴图)."""
    keep = [True] * len(words)

    def neighbour(i: int, step: int) -> int | None:
        j = i + step
        while 0 <= j < len(words) and words[j].category == "space":
            j += step
        return j if 0 <= j < len(words) else None

    for i, word in enumerate(words):
        if word.category != "filler":
            continue
        keep[i] = False
        after, before = neighbour(i, 1), neighbour(i, -1)
        if after is not None and words[after].text in ("的", "of"):
            keep[after] = False
        if word.text in g.EN_FILLER_NOUNS and before is not None and words[before].text in ("a", "an", "the"):
            keep[before] = False
        if after is None and before is not None and words[before].text == "的":
            keep[before] = False
    return [w for w, k in zip(words, keep) if k]


def _join(words: list[Word], changed: bool) -> str:
    text = "".join(w.normalized for w in words)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r" ([,.;:!?、。，；：！？])", r"\1", text)
    text = re.sub(r"([,，、;；])(\s*[,，、;；])+", r"\1", text)
    if changed:  # "a dark orange" read as "an orange"
        text = re.sub(r"\ba ([aeiou])", r"an \1", text)
    return text.strip(_EDGES)


def read_prompt(prompt: str) -> PromptReading:
    """Reads a prompt in English, Chinese or both; never raises for any string.

    Args:
        prompt: Any text. Only the first :data:`MAX_PROMPT_CHARS` characters are read.

    Returns:
        The reading; its ``text`` is "" when filler was all there was to say ("pixel art", 画一把) or nothing but
        punctuation and spaces was typed.

    Raises:
        ValueError: When ``prompt`` is not a string.
    """
    if not isinstance(prompt, str):
        raise ValueError(f"a prompt must be a string, got {type(prompt).__name__}")
    truncated = len(prompt) > MAX_PROMPT_CHARS
    words = _words(_split(_clean(prompt[:MAX_PROMPT_CHARS])))
    kept = _drop_filler(words)
    changed = len(kept) < len(words) or any(w.normalized != w.text for w in kept)
    only_filler = len(kept) < len(words) and not any(w.category in CONTENT for w in kept)
    text = "" if only_filler else _join(kept, changed)
    unknown = tuple(dict.fromkeys(w.text for w in words if w.category == "unknown"))
    colors = tuple(dict.fromkeys(w.concept for w in words if w.category == "color" and w.concept))
    things = [w.concept for w in words if w.category == "thing"]  # "an ingot of iron": the ingot
    nouns = things or [w.concept for w in words if w.category in ("material", "block")]
    shape = normalize_shape(nouns[-1]) if nouns else None  # a ruby is a gem
    kinds = [w.concept for w in words if w.category == "kind"]
    kind = "block" if "block" in kinds else "item" if kinds or shape else None
    content = [w for w in words if w.category in CONTENT or w.category == "measure"]
    han = any(_is_han(w.text) for w in content)
    latin = any(w.text[:1].isascii() and w.text[:1].isalnum() for w in content)
    language = "mixed" if han and latin else "zh" if han else "en" if latin else ""
    model_text = _gems_as_colours(text)
    if language in ("zh", "mixed") and text:
        # read again as English, to meet an English prompt's reading (gems first: English reads emerald as green)
        english = _gems_as_colours(_as_english(kept))
        model_text = read_prompt(english).model_text if english else text
    return PromptReading(prompt, text, tuple(words), unknown, colors, kind, shape, language, truncated, model_text)


# Chinese words that join two words of a description ("蓝色和棕色的剑": a blue and brown sword).
_ZH_AND = frozenset({"和", "与", "跟", "及"})
# Measure words that are the thing drawn: 一桶水 is a bucket of water, not water.
_ZH_CONTAINERS = {"桶": "bucket"}
# Gemstones no training texture is named for. The builtin model draws "ruby" and "sapphire" as blocks and reads
# "emerald" as a shade of green, but draws "red gem" as a cut-out gem: a ruby is read as a red gem, and a ruby
# sword as a red sword.
GEMSTONES = {"ruby": "red", "sapphire": "blue", "emerald": "green", "amethyst": "purple"}
_GEM_WORDS = "|".join(GEMSTONES)


def _gems_as_colours(text: str) -> str:
    """ruby -> red gem, red ruby gem -> red gem, ruby sword -> red sword (English model words)."""
    words = text.split(" ")
    out: list[str] = []
    for i, word in enumerate(words):
        bare = word.rstrip(",")
        if bare not in GEMSTONES:
            out.append(word)
            continue
        colour, tail = GEMSTONES[bare], word[len(bare):]
        head = tail or i + 1 == len(words)  # nothing follows in its phrase: the gem is the thing drawn
        said = bool(out) and out[-1] == colour  # "red ruby": the colour is named already
        if out and out[-1] == "an" and not said:  # an amethyst -> a purple gem
            out[-1] = "a"
        out.extend(([] if said else [colour]) + (["gem"] if head else []))
        out[-1] += tail
    return " ".join(out)


def _as_english(words: list[Word]) -> str:
    """A Chinese (or mixed) prompt as the English caption words its known words stand for, in its order:
    一把青色的铲子 -> "cyan shovel", 剑，绿色 -> "sword, green", 带红色矿石的石头 -> "stone with red ore".

    The builtin model learnt its words from captions written in both languages for every texture, and it draws
    the English ones more faithfully (research/reports/PROMPT_READER.md): read this way, a Chinese prompt and its
    English twin reach the same text. Measure words, 的 and other grammar go; Chinese words the vocabulary does
    not know are left out (they are reported); Latin words stay as read, so "一个红色的disc" is "red disc".
    """
    out: list[str] = []
    for word in words:
        if word.category == "space":
            continue
        if word.category == "punct":
            if word.text in ",，、;；" and out and out[-1] != ",":
                out.append(",")
            continue
        if not _is_han(word.text):
            out.append(word.normalized or word.text)
        elif word.text in _ZH_AND and out and out[-1] not in (",", "and"):
            out.append("and")
        elif word.category == "measure" and word.text[-1] in _ZH_CONTAINERS:
            out.extend([_ZH_CONTAINERS[word.text[-1]], "of"])
        elif word.concept and word.category not in ("measure", "grammar", "filler", "unknown"):
            out.append(word.concept)
    while out and out[-1] in (",", "and", "of"):
        out.pop()
    if len(out) > 2 and out[0] == "with":  # 带红色矿石的石头: a with-phrase before its noun goes after it
        out = [out[-1], *out[:-1]]
    return re.sub(r" ,", ",", " ".join(out)).strip(" ,")


def normalize_prompt(prompt: str) -> str:
    """The text the builtin text encoder tokenizes for ``prompt`` ("" when only filler is left)."""
    return _normalize_short(prompt) if len(prompt) <= 200 else read_prompt(prompt).model_text


@lru_cache(maxsize=1 << 16)  # training captions are read once per record and variant: most repeat
def _normalize_short(prompt: str) -> str:
    return read_prompt(prompt).model_text


def unknown_words_message(reading: PromptReading, limit: int = 12) -> str:
    """One line naming the words the builtin model's captions never used, e.g. "unknown words, not learned by
    the model: scope, sci-fi"; "" when every word is known.

    It does not say "ignored": the words stay in the text, and on the shipped model they do change the result
    (as much as another seed, sometimes the kind), in no learned way. Dropping them was no better on the
    natural-prompt set (colour adherence up, kind adherence down), so they are kept and named.
    """
    if not reading.unknown:
        return ""
    shown = ", ".join(reading.unknown[:limit])
    more = f" and {len(reading.unknown) - limit} more" if len(reading.unknown) > limit else ""
    left_out = reading.model_text != reading.text and any(_is_han(w) for w in reading.unknown)
    return (f"unknown words, not learned by the model: {shown}{more}"
            + (" (the Chinese ones are left out of what the model reads)" if left_out else ""))


def empty_prompt_message(reading: PromptReading, what: str = "prompt") -> str:
    """Why a prompt with an empty reading cannot be drawn, and what to type instead."""
    dropped = [w.text for w in reading.words if w.category == "filler"]
    said = f" ({', '.join(dropped[:6])} say nothing about the texture)" if dropped else ""
    return (f"the {what} {reading.original[:60]!r} names nothing to draw{said}: say what it is and its colour, "
            "e.g. 'a blue diamond sword' or '一把蓝色的钻石剑'")


def prompt_notes(prompt: str, negative: str = "", builtin: bool = True) -> str:
    """What a user should know about how a model reads their prompt, as one line: the unknown words of the
    prompt (and of the negative prompt), or that every word is known. A pretrained open_clip encoder
    (``builtin`` False) has a vocabulary of its own, so nothing is said for it.
    """
    if not builtin:
        return "prompt read by a pretrained open_clip encoder: no word list to check"
    notes = []
    for what, text in (("prompt", prompt), ("negative prompt", negative)):
        message = unknown_words_message(read_prompt(text)) if text and text.strip() else ""
        if message:
            notes.append(f"{what}: {message}")
    return "; ".join(notes) or "every word is known to the model"

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
from functools import lru_cache

from pixelcore.colors import COLOR_SYNONYMS, normalize_color

logger = logging.getLogger(__name__)

_ZH_COLORS = {
    "red": "红色", "orange": "橙色", "yellow": "黄色", "gold": "金色", "brown": "棕色",
    "green": "绿色", "cyan": "青色", "blue": "蓝色", "purple": "紫色", "pink": "粉色",
    "white": "白色", "gray": "灰色", "black": "黑色",
}
_ZH_WORDS = {
    # materials
    "wood": "木", "wooden": "木", "stone": "石", "iron": "铁", "steel": "铁", "gold": "金",
    "golden": "金", "diamond": "钻石", "mese": "梅斯", "copper": "铜", "bronze": "青铜",
    "tin": "锡", "obsidian": "黑曜石", "glass": "玻璃", "wool": "羊毛", "silver": "银",
    "mithril": "秘银", "brass": "黄铜", "coal": "煤", "clay": "黏土", "cotton": "棉花",
    "paper": "纸", "leather": "皮革", "crystal": "水晶", "quartz": "石英", "marble": "大理石",
    "granite": "花岗岩", "basalt": "玄武岩", "plastic": "塑料", "metal": "金属", "cactus": "仙人掌",
    "ice": "冰", "snow": "雪", "lava": "岩浆", "water": "水", "fire": "火", "bone": "骨头",
    "bones": "骨头", "silicon": "硅", "sandstone": "砂石", "desert": "沙漠", "mossy": "苔",
    "moss": "苔藓", "tar": "焦油", "oil": "油", "rubber": "橡胶", "concrete": "混凝土",
    "terracotta": "陶瓦", "emerald": "绿宝石", "ruby": "红宝石", "sapphire": "蓝宝石",
    "amethyst": "紫水晶", "netherrack": "地狱岩", "nether": "下界", "glowstone": "萤石",
    "wrought": "锻", "chainlink": "链环", "straw": "稻草", "bamboo": "竹", "pine": "松木",
    "acacia": "金合欢木", "aspen": "白杨木", "jungle": "丛林", "birch": "桦木", "oak": "橡木",
    "willow": "柳木", "palm": "棕榈", "redwood": "红木", "mahogany": "桃花心木",
    "sakura": "樱花", "cobblestone": "圆石", "mineral": "矿物",
    # tools and weapons
    "sword": "剑", "pickaxe": "镐", "axe": "斧", "shovel": "锹", "hoe": "锄", "knife": "刀",
    "sickle": "镰刀", "hammer": "锤", "bow": "弓", "arrow": "箭", "shield": "盾牌",
    "helmet": "头盔", "chestplate": "胸甲", "leggings": "护腿", "boots": "靴子", "armor": "盔甲",
    "spear": "矛", "wrench": "扳手", "screwdriver": "螺丝刀", "key": "钥匙", "shears": "剪刀",
    "crossbow": "弩", "staff": "法杖", "wand": "魔杖", "trowel": "泥铲", "scythe": "长柄镰刀",
    # items
    "apple": "苹果", "ingot": "锭", "lump": "矿块", "gem": "宝石", "potion": "药水",
    "bottle": "瓶", "feather": "羽毛", "flower": "花", "torch": "火把", "bucket": "桶",
    "book": "书", "stick": "棍", "seed": "种子", "seeds": "种子", "bread": "面包", "dye": "染料",
    "flour": "面粉", "wheat": "小麦", "string": "线", "ball": "球", "egg": "蛋", "meat": "肉",
    "fish": "鱼", "mushroom": "蘑菇", "sapling": "树苗", "coin": "硬币",
    "dust": "粉", "fragment": "碎片", "shard": "碎片", "nugget": "粒", "bar": "条", "rod": "棒",
    "wire": "电线", "plate": "板", "sheet": "片", "gear": "齿轮", "chip": "芯片", "bag": "袋子",
    "banana": "香蕉", "orange": "橙子", "lemon": "柠檬", "strawberry": "草莓", "coconut": "椰子",
    "onion": "洋葱", "carrot": "胡萝卜", "potato": "土豆", "blueberry": "蓝莓", "cake": "蛋糕",
    "cookie": "饼干", "pie": "派", "soup": "汤", "bowl": "碗", "cup": "杯子", "mug": "杯子",
    "heart": "心", "star": "星星", "skull": "头骨", "eye": "眼睛", "ring": "戒指",
    "gunpowder": "火药", "rope": "绳子", "map": "地图", "sign": "告示牌", "ladder": "梯子",
    "door": "门", "trapdoor": "活板门", "gate": "门", "fence": "栅栏", "rail": "铁轨",
    "cart": "矿车", "boat": "船", "bed": "床", "chest": "箱子", "furnace": "熔炉",
    "lamp": "灯", "lantern": "灯笼", "candle": "蜡烛", "vessel": "容器", "vase": "花瓶",
    "pot": "锅", "cauldron": "大锅", "barrel": "桶", "crate": "木箱", "table": "桌子",
    "chair": "椅子", "bench": "长椅", "shelf": "架子", "bookshelf": "书架", "window": "窗户",
    "pane": "窗格", "slab": "台阶", "stair": "楼梯", "stairs": "楼梯", "pillar": "柱子",
    "post": "柱", "beam": "横梁", "lever": "拉杆", "button": "按钮", "pipe": "管道",
    "tube": "管道", "cloth": "布", "fabric": "布料", "rug": "地毯", "carpet": "地毯",
    "painting": "画", "picture": "图画", "clock": "钟", "flag": "旗帜", "coral": "珊瑚",
    "shell": "贝壳", "horn": "角", "tooth": "牙", "paw": "爪", "wing": "翅膀", "tnt": "炸药",
    "bomb": "炸弹", "fern": "蕨类", "rose": "玫瑰", "tulip": "郁金香", "dandelion": "蒲公英",
    "geranium": "天竺葵", "viola": "紫罗兰", "daisy": "雏菊", "reed": "芦苇", "papyrus": "纸莎草",
    "kelp": "海带", "vine": "藤蔓", "vines": "藤蔓", "root": "根", "berry": "浆果",
    "berries": "浆果", "fruit": "水果", "nut": "坚果", "blossom": "花", "petal": "花瓣",
    # blocks and terrain
    "block": "方块", "planks": "木板", "plank": "木板", "brick": "砖", "bricks": "砖",
    "leaves": "树叶", "leaf": "树叶", "ore": "矿石", "sand": "沙", "dirt": "泥土", "grass": "草",
    "stone with": "石头里的",  # "stone with iron ore" -> 石头里的铁矿石, the engine's ore-in-stone blocks
    "log": "原木", "tree": "原木", "trunk": "树干", "cobble": "圆石", "gravel": "沙砾",
    "soil": "土壤", "mud": "泥", "rock": "岩石", "tile": "瓷砖", "tiles": "瓷砖",
    "shingles": "瓦片", "roof": "屋顶", "wall": "墙", "floor": "地板", "pavement": "路面",
    "cobweb": "蜘蛛网", "bush": "灌木", "shrub": "灌木", "hedge": "树篱", "hay": "干草",
    "bale": "捆", "bookcase": "书架", "glowlight": "发光灯",
    "lightstone": "光石", "meselamp": "梅斯灯", "permafrost": "永久冻土", "crust": "硬壳",
    "frame": "框", "panel": "面板", "grate": "格栅", "lattice": "格子", "mesh": "网",
    "cage": "笼子", "chain": "链条", "scaffolding": "脚手架", "hive": "蜂巢",
    # modifiers
    "small": "小", "large": "大", "big": "大", "dry": "干", "wet": "湿", "dark": "深",
    "light": "浅", "burning": "燃烧的", "polished": "抛光", "smooth": "光滑", "cut": "切制",
    "cracked": "裂纹", "carved": "雕刻", "raw": "生", "cooked": "熟", "empty": "空",
    "full": "满", "old": "旧", "fancy": "精美", "round": "圆", "square": "方",
    "snowy": "积雪", "frozen": "冰冻", "crystalline": "晶体", "wild": "野", "tall": "高",
    "short": "矮", "long": "长",
}
GLOSSARY: dict[str, str] = {**_ZH_WORDS, **_ZH_COLORS}
"""English word (or short phrase) to Chinese, covering Luanti texture vocabulary."""
# Inside a name, these colour words are materials or fruit ("gold ingot" is 金锭).
_NOUN_SENSES = {"gold": "金", "orange": "橙子", "silver": "银", "emerald": "绿宝石"}
# A material named alone is the block of it: "wood" is planks (木板), not 木.
_ZH_SINGLE = {"wood": "木板", "stone": "石头", "gold": "金", "iron": "铁", "steel": "钢",
              "cobble": "圆石", "glass": "玻璃", "tree": "原木"}
_MATERIALS = frozenset({"wood", "stone", "iron", "steel", "gold", "diamond", "mese", "copper",
                        "bronze", "tin", "obsidian", "glass", "mithril", "silver", "brass",
                        "cactus", "crystal", "admin", "leather", "wooden", "golden"})

_TOOLS = ("sword", "pickaxe", "axe", "shovel", "hoe", "knife", "sickle", "hammer", "bow",
          "crossbow", "spear", "wrench", "screwdriver", "key", "shears", "staff", "wand",
          "trowel", "scythe")
ZH_MEASURE: dict[str, str] = {**{tool: "一把" for tool in _TOOLS},
                              "ingot": "一块", "lump": "一块", "brick": "一块", "gem": "一颗",
                              "seed": "一颗", "apple": "一个", "book": "一本", "bottle": "一瓶",
                              "potion": "一瓶", "feather": "一根", "stick": "一根"}
"""Measure word by head noun for item captions; other items get 一个, blocks none."""
ZH_DEFAULT_MEASURE = "一个"
_REORDER_HEADS = frozenset(_TOOLS) | {
    "helmet", "chestplate", "leggings", "boots", "shield", "door", "trapdoor", "fence", "gate",
    "ingot", "lump", "block", "bar", "pane", "slab", "stair", "stairs", "rail", "ladder", "sign"}

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
_ALIASES = {"pick": "pickaxe", "cobblestone": "cobble", "grey": "gray", "woods": "wood",
            "ingots": "ingot", "logs": "log", "swords": "sword", "bricks": "brick"}
_SHADE_WORDS = frozenset({"dark", "light", "pale", "bright", "deep"})
# Colour words that are also materials or fruit ("gold ingot", "an orange"): stripped
# only when they trail another word ("wool orange").
_AMBIGUOUS_COLORS = frozenset({"gold", "golden", "silver", "orange", "rose", "emerald", "lime"})
_ARTICLES = frozenset({"a", "an", "the"})


@lru_cache(maxsize=1)
def _vocabulary() -> frozenset[str]:
    words = {w for key in GLOSSARY for w in key.split()}
    return frozenset(words | set(_ALIASES) | set(COLOR_SYNONYMS) | set(_SHADE_WORDS))


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
        words.extend(_ALIASES.get(piece, piece) for piece in _segment(token))
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
    out: list[str] = []
    replaced = False
    for i in range(len(words)):
        if _color_at([w.lower() for w in words], i) is None:
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


def _translate(name: str) -> str | None:
    words = name.split()
    out: list[str] = []
    i = 0
    while i < len(words):
        for size in (3, 2, 1):
            phrase = " ".join(words[i:i + size])
            zh = _NOUN_SENSES.get(phrase) or GLOSSARY.get(phrase)
            if len(words) - i >= size and zh:
                out.append(zh)
                i += size
                break
        else:
            return None
    return "".join(out)


def _chinese_templates(name: str, color: str | None, kind: str | None) -> list[str]:
    zh_name = _ZH_SINGLE.get(name) or _translate(name)
    if zh_name is None or not name:
        return []
    zh_color = None if color in name.split() else _ZH_COLORS.get(color or "")
    head = name.split()[-1]
    if kind == "block":
        needs_block = not zh_name.endswith("方块")
        base = [f"{zh_color}的{zh_name}", f"{zh_color}{zh_name}"] if zh_color else [zh_name]
        return base + ([f"{b}方块" for b in base] if needs_block else [])
    measure = ZH_MEASURE.get(head, ZH_DEFAULT_MEASURE) if kind == "item" else ""
    if zh_color:
        return [f"{measure}{zh_color}的{zh_name}", f"{zh_color}的{zh_name}", f"{zh_color}{zh_name}"]
    return [f"{measure}{zh_name}", zh_name] if measure else [zh_name]


def chinese_caption(name: str, color: str | None, kind: str | None,
                    rng: random.Random) -> str | None:
    """A random Chinese caption, e.g. "一把青色的钻石剑".

    Returns None when any word of ``name`` is missing from :data:`GLOSSARY`
    (no half-translated captions).
    """
    options = _chinese_templates(name, normalize_color(color), kind)
    return rng.choice(options) if options else None


def caption_variants(name: str, color: str | None, kind: str | None) -> list[str]:
    """Every template in both languages, English first, deterministic order."""
    color = normalize_color(color)
    variants = _english_templates(name, color, kind) + _chinese_templates(name, color, kind)
    return list(dict.fromkeys(variants))


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


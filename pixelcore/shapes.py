"""Shape adherence: which item class a texture's silhouette shows.

A texture's silhouette is its mask of opaque pixels (alpha >= ``ALPHA_THRESHOLD``, i.e. > 127). It is read as the
class of the most similar reference silhouette by IoU (intersection over union, the best over shifts of up to
:data:`MAX_SHIFT` pixels) among real items of known class, or as no class when the best IoU is under
:data:`NO_CLASS_IOU` or the texture is no cut-out at all (a block: under ``ITEM_MIN_TRANSPARENT`` transparent).

A record's class comes from the head noun of its name (:func:`shape_class`, synonyms in :data:`SHAPE_CLASSES`).
The references ship as a small file (:data:`REFERENCES_PATH`, built by ``scripts/build_shape_references.py`` from the
training data), so evaluation works from a clean checkout.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .colors import ITEM_MIN_TRANSPARENT
from .palette import ALPHA_THRESHOLD

logger = logging.getLogger(__name__)

SHAPE_CLASSES: dict[str, tuple[str, ...]] = {
    "sword": ("sword", "blade", "sabre", "saber", "katana", "rapier", "longsword", "broadsword", "scimitar",
              "cutlass", "claymore", "machete"),
    "knife": ("knife", "dagger"),
    "pickaxe": ("pickaxe", "pick", "mattock"),
    "axe": ("axe", "hatchet"),
    "hoe": ("hoe",),
    "shovel": ("shovel", "spade"),
    "hammer": ("hammer", "mallet", "sledgehammer"),
    "mace": ("mace", "morningstar"),
    "spear": ("spear", "pike", "javelin", "trident"),
    "bow": ("bow", "longbow", "shortbow"),
    "crossbow": ("crossbow",),
    "arrow": ("arrow",),
    "gun": ("gun", "pistol", "revolver", "rifle", "shotgun", "handgun", "carbine", "musket", "blaster"),
    "shield": ("shield", "buckler"),
    "helmet": ("helmet", "helm"),
    "chestplate": ("chestplate", "breastplate", "cuirass"),
    "leggings": ("leggings", "greaves", "pants", "trousers", "jeans"),
    "boots": ("boots", "boot", "shoes"),
    "gloves": ("gloves", "gauntlets"),
    "potion": ("potion", "bottle", "flask", "vial", "phial", "elixir"),
    "bucket": ("bucket", "pail"),
    "gem": ("gem", "gemstone", "jewel", "diamond", "ruby", "sapphire", "emerald", "amethyst", "topaz", "crystal"),
    "ingot": ("ingot",),
    "lump": ("lump", "nugget"),
    "coin": ("coin", "coins"),
    "medal": ("medal", "badge", "award star", "rosette"),
    "ring": ("ring",),
    "key": ("key",),
    "apple": ("apple",),
    "bread": ("bread", "loaf"),
    "meat": ("meat", "steak", "ham"),
    "fish": ("fish",),
    "book": ("book", "tome"),
    "egg": ("egg", "eggs"),
    "stick": ("stick",),
    "torch": ("torch",),
    "cup": ("cup", "mug", "goblet", "chalice"),
    "heart": ("heart",),
}
"""Item class -> the head nouns (or two-word phrases) that name it."""

_WORD_CLASS = {word: cls for cls, words in SHAPE_CLASSES.items() for word in words}
# Words before the head that make the name another thing: an ore overlay ("mineral diamond"), a display stand
# ("stand shield"), dynamite ("tnt stick"), a fish ("fish pike").
_OTHER_THING = frozenset({"mineral", "stand", "tnt", "fish"})
# Names of a bucket and what it holds, as Luanti spells them ("bucket water", "bucket lava"): the bucket is the
# shape. Only buckets: "bottle jack" is a jack.
_CONTAINERS = frozenset({"bucket", "pail"})

MAX_SHIFT = 1
"""Silhouettes are compared at every shift of up to this many pixels; a sword one pixel off is still a sword."""
NO_CLASS_IOU = 0.4
"""Below this best IoU a silhouette is no class (a blob, noise). Calibrated in docs/SHAPES.md."""
NEIGHBOURS = 1
"""Votes among the best references (1: the nearest alone decides)."""
REFERENCES_PATH = Path(__file__).parent / "weights" / "shape_references.npz"
SIZE = 16


def shape_class(name: str) -> str | None:
    """The item class a name's head noun says, e.g. "diamond sword" -> "sword", "bucket water" -> "bucket".

    The head is the last word (or last two words, "award star"); a name that starts with a bucket
    ("bucket lava") is the bucket. None when the head is no known class.
    """
    words = name.lower().replace(",", " ").split()
    if not words or _OTHER_THING.intersection(words[:-1]):
        return None
    for phrase in (" ".join(words[-2:]), words[-1]):
        if phrase in _WORD_CLASS:
            return _WORD_CLASS[phrase]
    if words[0] in _CONTAINERS:
        return _WORD_CLASS[words[0]]
    return None


def normalize_shape(word: str | None) -> str | None:
    """A class name or one of its synonyms ("pistol") as its class ("gun"); None if unknown."""
    if not isinstance(word, str):
        return None
    word = word.strip().lower()
    return word if word in SHAPE_CLASSES else _WORD_CLASS.get(word)


def silhouette(rgba: np.ndarray) -> np.ndarray:
    """Opaque-pixel masks (..., 16, 16) bool of RGBA textures (..., 16, 16, 4)."""
    return np.asarray(rgba)[..., 3] >= ALPHA_THRESHOLD


@dataclass(frozen=True)
class ShapeReferences:
    """Silhouettes of real items and their classes."""

    masks: np.ndarray  # (N, 16, 16) bool
    labels: np.ndarray  # (N,) int, index into classes
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def from_textures(cls, pixels: Iterable[np.ndarray], names: Iterable[str]) -> ShapeReferences:
        """References from item textures (16, 16, 4) and their names; those of no class are left out.

        Each (silhouette, class) pair is kept once: Luanti's tools of every material share one outline.
        """
        seen: dict[tuple[bytes, str], np.ndarray] = {}
        for rgba, name in zip(pixels, names):
            cls_name = shape_class(name)
            mask = silhouette(rgba)
            if cls_name is not None and is_cutout(mask):
                seen.setdefault((mask.tobytes(), cls_name), mask)
        classes = tuple(sorted({c for _, c in seen}))
        if not seen:
            raise ValueError("no item texture with a known shape class: check the data folders")
        masks = np.stack(list(seen.values()))
        labels = np.array([classes.index(c) for _, c in seen], dtype=np.int64)
        return cls(masks, labels, classes)

    def save(self, path: str | Path) -> None:
        """Write a compressed .npz: packed masks, labels and the class names (as JSON)."""
        np.savez_compressed(path, masks=np.packbits(self.masks.reshape(len(self), -1), axis=1),
                            labels=self.labels.astype(np.int16), classes=np.array(json.dumps(self.classes)))

    @classmethod
    def load(cls, path: str | Path) -> ShapeReferences:
        """Read a file written by :meth:`save`; raises ValueError naming the file when it is not one."""
        try:
            with np.load(path, allow_pickle=False) as data:
                packed, labels = data["masks"], data["labels"].astype(np.int64)
                classes = tuple(json.loads(str(data["classes"])))
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(f"{path}: not a shape reference file ({err})") from err
        masks = np.unpackbits(packed, axis=1)[:, :SIZE * SIZE].reshape(-1, SIZE, SIZE).astype(bool)
        if len(masks) != len(labels) or (len(labels) and not 0 <= labels.min() <= labels.max() < len(classes)):
            raise ValueError(f"{path}: masks, labels and classes do not agree")
        return cls(masks, labels, classes)


@lru_cache(maxsize=1)
def default_references() -> ShapeReferences:
    """The shipped references (:data:`REFERENCES_PATH`)."""
    return ShapeReferences.load(REFERENCES_PATH)


def is_cutout(masks: np.ndarray) -> np.ndarray:
    """True where a mask has the transparent share of an item (the kind rule of :mod:`pixelcore.colors`)."""
    return (1.0 - masks.reshape(*masks.shape[:-2], -1).mean(-1)) >= ITEM_MIN_TRANSPARENT


def _shifted(masks: np.ndarray, max_shift: int) -> np.ndarray:
    """Every shift of (M, 16, 16) masks by up to ``max_shift`` pixels: (S, M, 256), zeros shifted in."""
    pad = np.pad(masks, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    offsets = range(2 * max_shift + 1)
    return np.stack([pad[:, dy:dy + SIZE, dx:dx + SIZE].reshape(len(masks), -1)
                     for dy in offsets for dx in offsets])


def iou_matrix(masks: np.ndarray, refs: np.ndarray, max_shift: int = MAX_SHIFT) -> np.ndarray:
    """IoU (M, N) of masks (M, 16, 16) with reference masks (N, 16, 16), the best over shifts of the masks."""
    shifted = _shifted(np.asarray(masks, bool), max_shift).astype(np.float32)  # (S, M, 256)
    ref = np.asarray(refs, bool).reshape(len(refs), -1).astype(np.float32)  # (N, 256)
    inter = shifted @ ref.T  # (S, M, N)
    union = shifted.sum(-1, keepdims=True) + ref.sum(-1) - inter
    return (inter / np.maximum(union, 1.0)).max(0)


def _vote(iou: np.ndarray, labels: np.ndarray, classes: Sequence[str], neighbours: int,
          threshold: float) -> list[str | None]:
    """The class of each row of ``iou`` (M, N): IoU-weighted votes of its ``neighbours`` best references."""
    k = min(neighbours, iou.shape[1])
    top = np.argsort(-iou, axis=1, kind="stable")[:, :k]
    found: list[str | None] = []
    for row, idx in zip(iou, top):
        if row[idx[0]] < threshold:
            found.append(None)
            continue
        votes = np.zeros(len(classes))
        np.add.at(votes, labels[idx], row[idx])
        found.append(classes[int(votes.argmax())])
    return found


def classify(rgba: np.ndarray, refs: ShapeReferences | None = None, max_shift: int = MAX_SHIFT,
             neighbours: int = NEIGHBOURS, threshold: float = NO_CLASS_IOU) -> list[str | None]:
    """The item class of each texture (M, 16, 16, 4), or None: no cut-out, or like no reference item."""
    rgba = np.asarray(rgba)
    masks = silhouette(rgba.reshape(-1, *rgba.shape[-3:]))
    return classify_masks(masks, refs, max_shift, neighbours, threshold)


def classify_masks(masks: np.ndarray, refs: ShapeReferences | None = None, max_shift: int = MAX_SHIFT,
                   neighbours: int = NEIGHBOURS, threshold: float = NO_CLASS_IOU) -> list[str | None]:
    """:func:`classify` for silhouettes (M, 16, 16) bool."""
    refs = refs or default_references()
    masks = np.asarray(masks, bool)
    found = _vote(iou_matrix(masks, refs.masks, max_shift), refs.labels, refs.classes, neighbours, threshold)
    return [cls if cutout else None for cls, cutout in zip(found, is_cutout(masks))]


def is_chinese(text: str) -> bool:
    """True when a prompt has CJK characters."""
    return any("\u3400" <= ch <= "\u9fff" for ch in text)


def shape_metrics(rows: Sequence[dict]) -> dict[str, float]:
    """``shape_adherence`` over the :func:`pixelcore.evaluate.per_prompt` rows with a shape, and per language
    (``shape_adherence_en`` / ``_zh``) when the set has prompts of both. Empty when no prompt gives a shape."""
    hits: dict[str, list[bool]] = {"": [], "_en": [], "_zh": []}
    for row in rows:
        if row.get("shape"):
            found = [f == row["shape"] for f in row["found_shapes"]]
            hits[""].extend(found)
            hits["_zh" if is_chinese(row["prompt"]) else "_en"].extend(found)
    if not hits[""]:
        return {}
    out = {"shape_adherence": float(np.mean(hits[""]))}
    if hits["_en"] and hits["_zh"]:
        out.update({f"shape_adherence{k}": float(np.mean(v)) for k, v in hits.items() if k})
    return out


@dataclass
class Calibration:
    """How real items of known class are read when each is left out of the references."""

    labels: list[str]  # each texture's class
    found: list[str | None]  # what it was read as

    @property
    def per_class(self) -> dict[str, tuple[int, int]]:
        """Class -> (textures read as it, textures)."""
        out: dict[str, tuple[int, int]] = {}
        for true, got in zip(self.labels, self.found):
            hits, total = out.get(true, (0, 0))
            out[true] = (hits + (got == true), total + 1)
        return out

    @property
    def confusions(self) -> Counter:
        """(class, read as or None) -> count, misses only."""
        return Counter((t, f) for t, f in zip(self.labels, self.found) if t != f)

    @property
    def accuracy(self) -> float:
        """Share of textures read as their own class."""
        return float(np.mean([t == f for t, f in zip(self.labels, self.found)])) if self.labels else 0.0

    @property
    def class_mean(self) -> float:
        """Accuracy averaged over classes (each class counts once, however many textures it has)."""
        return float(np.mean([h / n for h, n in self.per_class.values()])) if self.labels else 0.0

    def subset(self, keep: Sequence[int]) -> Calibration:
        """The readings of the textures at ``keep`` (e.g. one source's)."""
        return Calibration([self.labels[i] for i in keep], [self.found[i] for i in keep])


def leave_one_out(masks: np.ndarray, labels: Sequence[str], max_shift: int = MAX_SHIFT,
                  neighbours: int = NEIGHBOURS, threshold: float = NO_CLASS_IOU,
                  exclude_same_silhouette: bool = False) -> Calibration:
    """Classify each mask (N, 16, 16) against all the others and compare with its class ``labels``.

    Args:
        exclude_same_silhouette: Also leave out references with exactly this silhouette (another material of
            the same tool), so a texture must be recognised from other drawings.
    """
    masks = np.asarray(masks, bool)
    classes = tuple(sorted(set(labels)))
    iou = iou_matrix(masks, masks, max_shift)
    np.fill_diagonal(iou, -1.0)
    if exclude_same_silhouette:
        flat = masks.reshape(len(masks), -1)
        iou[(flat[:, None] == flat[None]).all(-1)] = -1.0
    found = _vote(iou, np.array([classes.index(c) for c in labels]), classes, neighbours, threshold)
    return Calibration(list(labels), found)

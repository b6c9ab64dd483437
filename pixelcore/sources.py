"""More item shapes: openly licensed item sprites from Debian packages, each under its own style condition.

The Luanti set (:mod:`pixelcore.luanti`) has few potions, gems, medals or guns. :func:`build_extra_dataset`
writes a second imagefolder dataset from other packages (:data:`EXTRA_PACKAGES`), keeping only items whose name
says a shape class (:func:`pixelcore.shapes.shape_class`). Every record names its ``style`` (:data:`STYLES`) and
its captions end with the style words ("a red gem, silk icon style"), so a model trained on both sets keeps the
Luanti look for unstyled prompts and learns the shapes under a condition of their own (:func:`with_style`).

- ``famfamfam-silk``: the Silk icons (16x16, Mark James, CC BY 3.0), those whose whole name is an item class
  ("medal_gold_1", "ruby", "coins"); icons with an overlay badge ("ruby_add") are left out.
- ``cataclysm-dda-data``: item sprites of the game's 16x16 tilesets (CC BY-SA 3.0, :mod:`pixelcore.tilesets`),
  named by the game's English item names, at least :data:`MIN_EXTENT` pixels across, moved to the tile's centre.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from . import captions, colors, shapes, tilesets
from .data import decode_png
from .luanti import first_seen, read_deb, summarize_copyright, swap_into_place, unique_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Style:
    """A style condition: words appended to every caption of a source's textures."""

    key: str
    en: str
    zh: str


STYLES: dict[str, Style] = {
    "silk": Style("silk", "silk icon style", "Silk图标风格"),
    "cataclysm": Style("cataclysm", "cataclysm tile style", "大灾变图块风格"),
}
"""Style key -> caption words. Textures without a style (the Luanti set) are the default look."""

MIN_EXTENT = 10
"""Tileset sprites narrower and shorter than this are left out: 93% of Luanti items span at least 10 pixels, and
tiny sprites teach dots, not shapes."""
_GUN_SKILLS = {"pistol": "pistol", "rifle": "rifle", "shotgun": "shotgun", "smg": "submachine gun"}
_FOOD = frozenset({"apple", "bread", "meat", "fish", "egg"})
# Words that make a name with a class head something else: an implant, a holder, a can or a dish of the food, a
# razor blade, a welding torch, a pineapple (split as "pine apple").
_NOT_ITEMS = re.compile(r"\b(cbm|grill|holster|sheath|scabbard|stand|rack|mold|mould|kit|trap|stock|bayonet|canned|"
                        r"pickled|scrambled|powdered|curry|lunch|rehydrated|razor|acetylene|pine apple)\b")


def with_style(variants: list[str], style: str | None) -> list[str]:
    """Captions with the style's words appended ("a red gem, silk icon style"; Chinese "，Silk图标风格")."""
    spec = STYLES.get(style or "")
    if spec is None:
        return list(variants)
    return [f"{v}，{spec.zh}" if shapes.is_chinese(v) else f"{v}, {spec.en}" for v in variants]


@dataclass
class Candidate:
    """A texture a source offers, before selection."""

    stem: str  # output file stem
    name: str  # noun phrase, e.g. "glass bottle"
    pixels: np.ndarray  # (16, 16, 4) uint8
    origin: str  # where in the package it came from
    centre: bool = False  # move it to the middle of the tile
    group: str = ""  # the part of the package it came from (a tileset), for the attribution


@dataclass(frozen=True)
class Source:
    """How to read one package."""

    package: str
    style: str
    wanted: Callable[[str], bool]  # archive paths to read
    candidates: Callable[[Mapping[str, bytes]], Iterator[Candidate]]
    credit: str


def _silk_wanted(path: str) -> bool:
    return "/icons/silk/16x16/" in path and path.endswith(".png")


def _silk_candidates(files: Mapping[str, bytes]) -> Iterator[Candidate]:
    for path, payload in sorted(files.items()):
        if not _silk_wanted(path):
            continue
        stem = PurePosixPath(path).stem
        words = captions.split_name(stem)
        name, _ = captions.strip_color_words(" ".join(words))
        if name.endswith(" bronze"):  # "medal_bronze_1": gold and silver are colour words, bronze a material
            name = "bronze " + name[:-len(" bronze")]
        if shapes.normalize_shape(name.removeprefix("bronze ")) is None or words[0] != stem.split("_")[0]:
            continue  # "ruby_add", "book_open": an overlay or a scene; "building_key": a mod prefix was cut
        yield Candidate(stem, name, decode_png(payload), path)


def _cataclysm_name(sprite: tilesets.ItemSprite) -> str:
    text = re.sub(r"\(.*?\)", " ", sprite.name.lower())
    text = re.sub(r"^pairs? of ", "", text.strip())
    words = [w for w in captions.split_name(re.sub(r"[^a-z0-9]+", "_", text))
             if w == "of" or (len(w) > 2 and not any(ch.isdigit() for ch in w))]  # model numbers: "rm51", "xm"
    name, _ = captions.strip_color_words(" ".join(words))
    if sprite.item_type == "GUN" and shapes.shape_class(name) != "gun" and sprite.skill in _GUN_SKILLS:
        name = _GUN_SKILLS[sprite.skill]  # brand names ("Glock 19") say nothing a prompt would
    return name


def _cataclysm_candidates(files: Mapping[str, bytes]) -> Iterator[Candidate]:
    named = [(sprite, _cataclysm_name(sprite)) for sprite in tilesets.item_sprites(files)]
    # A picture that items of several classes share (no class counts as one) is a stand-in, not a drawing of the
    # item: Hoder's tileset draws all armour as a "[" glyph and all food as "%".
    classes: dict[tuple[str, bytes], set[str | None]] = {}
    for sprite, name in named:
        classes.setdefault((sprite.tileset, sprite.pixels.tobytes()), set()).add(shapes.shape_class(name))
    for sprite, name in named:
        shape = shapes.shape_class(name)
        if len(classes.get((sprite.tileset, sprite.pixels.tobytes()), ())) > 1:
            continue
        if (_NOT_ITEMS.search(name) or (sprite.item_type == "COMESTIBLE") != (shape in _FOOD)
                or (sprite.item_type == "BOOK") != (shape == "book")):
            continue  # "onion ring" is food, "the tao of the handgun" a book
        yield Candidate(f"{sprite.tileset}_{sprite.item_id}", name, sprite.pixels,
                        f"gfx/{sprite.tileset} {sprite.item_id}", centre=True, group=sprite.tileset)


SOURCES: dict[str, Source] = {
    "famfamfam-silk": Source(
        "famfamfam-silk", "silk", _silk_wanted, _silk_candidates,
        "Silk icon set by Mark James, http://www.famfamfam.com/lab/icons/silk/ (CC BY 3.0). Icons unmodified."),
    "cataclysm-dda-data": Source(
        "cataclysm-dda-data", "cataclysm", tilesets.wanted_member, _cataclysm_candidates,
        "Cataclysm: Dark Days Ahead tilesets, https://github.com/CleverRaven/Cataclysm-DDA (CC BY-SA 3.0). "
        "Sprites cut out of the tileset sheets and moved to the centre of the 16x16 tile."),
}
EXTRA_PACKAGES: tuple[str, ...] = tuple(SOURCES)


@dataclass
class ExtraReport:
    """Counts from :func:`build_extra_dataset`."""

    out_dir: Path
    per_package: dict[str, int] = field(default_factory=dict)
    shapes: dict[str, Counter] = field(default_factory=dict)  # package -> shape class -> count
    no_class: int = 0
    too_small: int = 0
    not_cutout: int = 0
    duplicates: int = 0
    glossary_gaps: Counter = field(default_factory=Counter)  # name words with no Chinese rendering

    @property
    def total(self) -> int:
        """Textures written."""
        return sum(self.per_package.values())

    def summary(self) -> str:
        """One line for logs."""
        return (f"{self.total} textures {self.per_package} into {self.out_dir}; left out {self.no_class} with no "
                f"shape class, {self.too_small} too small, {self.not_cutout} not cut out, "
                f"{self.duplicates} duplicates; {len(self.glossary_gaps)} name words outside the glossary")


def download_extra_debs(dest: Path) -> list[Path]:
    """Fetch :data:`EXTRA_PACKAGES` with ``apt-get download`` into ``dest``.

    Raises:
        RuntimeError: If apt-get is missing or the download fails.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    apt = shutil.which("apt-get")
    if apt is None:
        raise RuntimeError(f"apt-get not found: download {', '.join(EXTRA_PACKAGES)} on a Debian/Ubuntu machine "
                           "and pass their folder as the .deb folder")
    result = subprocess.run([apt, "download", *EXTRA_PACKAGES], cwd=dest,  # noqa: S603
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"apt-get download failed (exit {result.returncode}); run `apt-get update` first?\n"
                           f"{result.stderr[-2000:]}")
    return sorted(dest.glob("*.deb"))


def _extent(mask: np.ndarray) -> int:
    ys, xs = np.nonzero(mask)
    return int(max(ys.max() - ys.min(), xs.max() - xs.min())) + 1 if len(ys) else 0


def centred(pixels: np.ndarray) -> np.ndarray:
    """The sprite moved (whole pixels, nothing cut) so its bounding box of non-empty pixels sits in the middle."""
    ys, xs = np.nonzero(pixels[..., 3] > 0)
    if not len(ys):
        return pixels
    dy = (pixels.shape[0] - (ys.max() - ys.min() + 1)) // 2 - ys.min()
    dx = (pixels.shape[1] - (xs.max() - xs.min() + 1)) // 2 - xs.min()
    return np.roll(pixels, (dy, dx), axis=(0, 1))


def _read_files(tar, source: Source) -> tuple[dict[str, bytes], list[str]]:
    files: dict[str, bytes] = {}
    licences: list[str] = []
    for member in tar:
        if not member.isfile():
            continue
        if member.name.endswith(f"/doc/{source.package}/copyright"):
            licences = summarize_copyright(tar.extractfile(member).read().decode("utf-8", "replace"))
        elif source.wanted(member.name):
            files[member.name] = tar.extractfile(member).read()
    return files, licences


def _describe(cand: Candidate, pixels: np.ndarray, source: Source) -> dict:
    color = colors.dominant_color(pixels)
    variants = captions.caption_variants(cand.name, color, "item")
    english = [v for v in variants if not shapes.is_chinese(v)]
    chinese = [v for v in variants if shapes.is_chinese(v)]
    return {"text": with_style(english[:1], source.style)[0],
            "text_zh": with_style(chinese[:1], source.style)[0] if chinese else None,
            "name": cand.name, "color": color, "kind": "item", "shape": shapes.shape_class(cand.name),
            "source": source.package, "style": source.style, "origin": cand.origin}


def _select(cand: Candidate, report: ExtraReport, seen: set[str]) -> np.ndarray | None:
    if shapes.shape_class(cand.name) is None:
        report.no_class += 1
        return None
    mask = shapes.silhouette(cand.pixels)
    if colors.transparent_share(cand.pixels) < colors.ITEM_MIN_TRANSPARENT:
        report.not_cutout += 1
        return None
    if cand.centre and _extent(mask) < MIN_EXTENT:
        report.too_small += 1
        return None
    pixels = centred(cand.pixels) if cand.centre else cand.pixels
    if not first_seen(pixels, seen):
        report.duplicates += 1
        return None
    return pixels


def _extract(deb: Path, tmp: Path, seen: set[str], report: ExtraReport, rows: list[dict]) -> dict | None:
    control, tar = read_deb(deb)
    package = control.get("Package", deb.name.split("_")[0])
    source = SOURCES.get(package)
    if source is None:
        logger.info("%s: no extra source reads %s; skipped", deb.name, package)
        tar.close()
        return None
    with tar:
        files, licences = _read_files(tar, source)
    count, shape_counts, groups = 0, Counter(), set()
    for cand in source.candidates(files):
        pixels = _select(cand, report, seen)
        if pixels is None:
            continue
        folder = tmp / package
        folder.mkdir(exist_ok=True)
        target = unique_path(folder, re.sub(r"[^A-Za-z0-9_.+-]+", "_", cand.stem))
        Image.fromarray(pixels, "RGBA").save(target)
        row = {"file_name": target.relative_to(tmp).as_posix(), **_describe(cand, pixels, source)}
        rows.append(row)
        report.glossary_gaps.update(w for w in cand.name.split() if captions.chinese_word(w) is None)
        count += 1
        shape_counts[row["shape"]] += 1
        groups.add(cand.group)
    report.per_package[package] = count
    report.shapes[package] = shape_counts
    credits = [source.credit] + [f"{tileset}: " + " ".join(lines)
                                 for tileset, lines in sorted(tilesets.tileset_credits(files, groups).items())]
    return {"package": package, "version": control.get("Version", "?"), "licences": licences,
            "credits": credits, "count": count, "style": source.style}


def _attribution(infos: list[dict]) -> str:
    lines = ["# Attribution", "",
             "Item textures from Debian packages other than Luanti's, kept for their shapes. Each record's "
             "`source` is its package and `style` its style condition; captions end with the style words. "
             "Licences below come from each package's `usr/share/doc/<package>/copyright` file "
             "(the `Files: *` stanza covers the images).", ""]
    for info in infos:
        style = STYLES[info["style"]]
        lines.append(f"## {info['package']} {info['version']} ({info['count']} textures, style \"{style.en}\")")
        lines.extend(f"- {credit}" for credit in info["credits"])
        lines.extend(f"- {lic}" for lic in info["licences"][:12])
        lines.append("")
    return "\n".join(lines)


def build_extra_dataset(deb_dir: Path, out_dir: Path) -> ExtraReport:
    """Extract the item textures of the :data:`EXTRA_PACKAGES` .deb files in ``deb_dir`` into ``out_dir``.

    Writes ``out_dir/<package>/<file>.png``, ``metadata.jsonl`` (file_name, text, text_zh, name, color, kind,
    shape, source, style, origin) and ``ATTRIBUTION.md``; other .deb files in the folder are ignored. Built in a
    temporary sibling folder and renamed at the end, like :func:`pixelcore.luanti.build_luanti_dataset`.

    Raises:
        ValueError: If ``deb_dir`` holds none of the packages or no texture was kept.
    """
    deb_dir, out_dir = Path(deb_dir), Path(out_dir)
    debs = sorted(deb for deb in deb_dir.glob("*.deb") if deb.name.split("_")[0] in SOURCES)
    if not debs:
        raise ValueError(f"no {' / '.join(EXTRA_PACKAGES)} .deb in {deb_dir}: fetch them with "
                         "`apt-get download` (or download_extra_debs)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    report = ExtraReport(out_dir=out_dir)
    try:
        rows: list[dict] = []
        seen: set[str] = set()
        infos = [info for deb in debs if (info := _extract(deb, tmp, seen, report, rows))]
        if not rows:
            raise ValueError(f"no item texture with a shape class in the .deb files of {deb_dir}")
        with open(tmp / "metadata.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (tmp / "ATTRIBUTION.md").write_text(_attribution(infos), encoding="utf-8")
        swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(report.summary())
    return report

"""Build the default training set from Debian's Luanti (minetest) ``.deb`` packages.

A dev-time data tool: :func:`download_debs` fetches the packages with
``apt-get download``; :func:`build_luanti_dataset` reads them in pure Python
(``ar`` container, ``data.tar.xz``/``.gz`` inside), keeps the 16x16 textures and
writes an imagefolder dataset (PNGs + ``metadata.jsonl`` + ``ATTRIBUTION.md``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import lzma
import os
import re
import shutil
import subprocess
import tarfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from pixelcore import captions, colors
from pixelcore.data import MAX_IMAGE_BYTES, decode_png, to_16x16

logger = logging.getLogger(__name__)

LUANTI_PACKAGES: tuple[str, ...] = (
    "minetest-data", "minetest-mod-3d-armor", "minetest-mod-advmarkers-csm",
    "minetest-mod-basic-materials", "minetest-mod-basic-robot-csm",
    "minetest-mod-character-creator", "minetest-mod-craftguide", "minetest-mod-currency",
    "minetest-mod-ethereal", "minetest-mod-homedecor", "minetest-mod-infinite-chest",
    "minetest-mod-lucky-block", "minetest-mod-maidroid", "minetest-mod-mesecons",
    "minetest-mod-meshport", "minetest-mod-mobs-redo", "minetest-mod-moreblocks",
    "minetest-mod-moreores", "minetest-mod-nether", "minetest-mod-pipeworks",
    "minetest-mod-protector", "minetest-mod-pycraft", "minetest-mod-quartz",
    "minetest-mod-skyblock", "minetest-mod-throwing", "minetest-mod-throwing-arrows",
    "minetest-mod-unified-inventory", "minetest-mod-unifieddyes", "minetest-mod-worldedit",
    "minetest-mod-xdecor",
)
_TAR_MODES = {".xz": "r:xz", ".gz": "r:gz", ".bz2": "r:bz2", ".tar": "r:"}
# Names whose head noun says "item" even when the sprite happens to be opaque.
_ITEM_HEADS = frozenset({
    "sword", "pickaxe", "axe", "shovel", "hoe", "knife", "sickle", "hammer", "bow", "key",
    "ingot", "lump", "gem", "crystal", "dust", "fragment", "coin", "bread", "apple", "feather",
    "stick", "seed", "seeds", "potion", "bottle", "book", "helmet", "chestplate", "leggings",
    "boots", "shield", "arrow", "dye", "wrench", "screwdriver", "bucket"})
_EXCLUDED_PARTS = ("/games/devtest/", "/textures/base/pack/")
# Ore textures are overlays the engine draws over stone ("default_stone.png^default_mineral_iron.png").
_ORE_BASE = "minetest-data/default_stone.png"
_ORE_MARK = "_mineral_"
# Debian policy's package names; anything else (a "/", "..") could name a folder outside the output.
_PACKAGE_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]{0,99}")
# Texture file names keep to these characters (Luanti's own are [a-z0-9_]); others become "_".
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_.+-]")
# A Luanti .deb is tens of megabytes; a control or copyright file some kilobytes.
MAX_DEB_BYTES = 2**30
MAX_TEXT_BYTES = 2**20


@dataclass
class BuildReport:
    """Counts from :func:`build_luanti_dataset`."""

    out_dir: Path
    per_package: dict[str, int] = field(default_factory=dict)
    kinds: Counter = field(default_factory=Counter)
    colors: Counter = field(default_factory=Counter)
    skipped_size: int = 0
    unreadable: int = 0
    duplicates: int = 0
    reduced: int = 0
    rendered: int = 0  # ore-on-stone and opaque-leaves blocks made from extracted textures

    @property
    def total(self) -> int:
        """Textures written."""
        return sum(self.per_package.values()) + self.rendered

    def summary(self) -> str:
        """One line for logs."""
        return (f"{self.total} textures ({dict(self.kinds)}, {self.rendered} rendered blocks) from "
                f"{len(self.per_package)} packages into {self.out_dir}; skipped {self.skipped_size} by size, "
                f"{self.duplicates} duplicates, {self.unreadable} unreadable")


def download_debs(dest: Path) -> list[Path]:
    """Fetch :data:`LUANTI_PACKAGES` with ``apt-get download`` into ``dest``.

    Raises:
        RuntimeError: If apt-get is missing or the download fails.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    apt = shutil.which("apt-get")
    if apt is None:
        raise RuntimeError("apt-get not found: download the minetest-data and minetest-mod-* "
                           "packages on a Debian/Ubuntu machine and pass their folder as --debs")
    result = subprocess.run([apt, "download", *LUANTI_PACKAGES], cwd=dest,  # noqa: S603
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"apt-get download failed (exit {result.returncode}); run "
                           f"`apt-get update` first?\n{result.stderr[-2000:]}")
    return sorted(dest.glob("*.deb"))


def read_ar(data: bytes, origin: str = "<ar>") -> Iterator[tuple[str, bytes]]:
    """Yield (member name, bytes) from a Unix ``ar`` archive (the .deb container)."""
    if not data.startswith(b"!<arch>\n"):
        raise ValueError(f"{origin} is not an ar archive (.deb)")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos:pos + 60]
        if header[58:60] != b"`\n":
            raise ValueError(f"{origin}: corrupt ar header at byte {pos}")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size_field = header[48:58].strip()
        if not re.fullmatch(rb"[0-9]+", size_field):  # int() would take "-5" and walk backwards for ever
            raise ValueError(f"{origin}: corrupt ar member size {size_field!r} at byte {pos}")
        size = int(size_field)
        yield name, data[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)


def open_member_tar(name: str, payload: bytes, origin: str) -> tarfile.TarFile:
    """Open a ``control.tar.*``/``data.tar.*`` member; only xz, gz, bz2 and plain tar."""
    suffix = PurePosixPath(name).suffix
    mode = _TAR_MODES.get(suffix)
    if mode is None:
        raise ValueError(f"{origin}: {name} uses unsupported compression {suffix!r}; "
                         "repack it with xz or gzip (e.g. `dpkg-deb -Zxz`)")
    return tarfile.open(fileobj=io.BytesIO(payload), mode=mode)


def read_deb(path: Path) -> tuple[dict[str, str], tarfile.TarFile]:
    """(control fields, open data tar) of a .deb; raises ValueError for a file that is none."""
    control: dict[str, str] = {}
    data_tar = None
    if path.stat().st_size > MAX_DEB_BYTES:
        raise ValueError(f"{path}: {path.stat().st_size:,} bytes, more than the {MAX_DEB_BYTES:,} a Luanti "
                         "package may be")
    for name, payload in read_ar(path.read_bytes(), str(path)):
        if name.startswith("control.tar"):
            with open_member_tar(name, payload, str(path)) as tar:
                member = next((m for m in tar.getmembers() if m.name.endswith("control")), None)
                text = _read_member(tar, member, MAX_TEXT_BYTES).decode("utf-8", "replace") if member else ""
            control = _parse_control(text)
        elif name.startswith("data.tar"):
            data_tar = open_member_tar(name, payload, str(path))
    if data_tar is None:
        raise ValueError(f"{path}: no data.tar member; is this a .deb package?")
    return control, data_tar


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    """A regular member's bytes, refused past ``limit`` (its header's size) without reading it.

    Raises:
        ValueError: for a member that is not a regular file or is larger than ``limit``.
    """
    if not member.isfile():
        raise ValueError(f"{member.name} is not a regular file")
    if member.size > limit:
        raise ValueError(f"{member.name} is {member.size:,} bytes, more than the {limit:,} allowed")
    return tar.extractfile(member).read(limit)


def package_name(control: dict[str, str], deb: Path) -> str:
    """The package's name, used as a folder of the output: Debian's form (lowercase letters, digits, ``+``,
    ``-``, ``.``, starting with a letter or digit), so it can never name a path outside that folder.

    Raises:
        ValueError: naming the .deb, for any other name.
    """
    name = control.get("Package", deb.name.split("_")[0])
    if not _PACKAGE_NAME.fullmatch(name):
        raise ValueError(f"{deb}: Package {name[:80]!r} is not a Debian package name (lowercase letters, digits, "
                         "'+', '-', '.'); refusing a package that could write outside the output folder")
    return name


def _parse_control(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line[0].isspace() and ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
    return fields


def summarize_copyright(text: str) -> list[str]:
    """One line per DEP-5 ``Files:`` stanza outside debian/: "pattern: licence"."""
    lines: list[str] = []
    for stanza in text.split("\n\n"):
        fields = _parse_control(stanza)
        files, lic = fields.get("Files"), fields.get("License")
        if files and lic and not files.startswith("debian/"):
            lines.append(f"{files[:120]}: {lic}")
    return list(dict.fromkeys(lines))


def _texture_path_ok(path: str) -> bool:
    return ("/textures/" in path and path.lower().endswith(".png")
            and not any(part in path for part in _EXCLUDED_PARTS))


def _mod_name(path: str) -> str:
    parts = PurePosixPath(path).parts
    idx = parts.index("textures")
    return parts[idx - 1] if idx > 0 else ""


def _describe(stem: str, pixels: np.ndarray) -> dict[str, str | None]:
    words = captions.split_name(stem)
    name, _ = captions.strip_color_words(" ".join(words))
    color = colors.dominant_color(pixels)
    head = name.split()[-1] if name else ""
    kind = "item" if head in _ITEM_HEADS else colors.texture_kind(pixels)
    english = captions.caption_variants(name, color, kind)[0]
    rng_free_zh = [v for v in captions.caption_variants(name, color, kind) if not v.isascii()]
    return {"text": english, "text_zh": rng_free_zh[0] if rng_free_zh else None,
            "name": name, "color": color, "kind": kind}


@dataclass
class _PackageInfo:
    name: str
    version: str
    licences: list[str]
    count: int = 0


def unique_path(folder: Path, stem: str) -> Path:
    """``folder/stem.png``, or ``stem_2.png``, ``stem_3.png``, ... when taken."""
    candidate, n = folder / f"{stem}.png", 2
    while candidate.exists():
        candidate, n = folder / f"{stem}_{n}.png", n + 1
    return candidate


def _extract_package(deb: Path, tmp: Path, seen: set[str], report: BuildReport,
                     rows: list[dict]) -> _PackageInfo:
    control, tar = read_deb(deb)
    with tar:
        package = package_name(control, deb)
        info = _PackageInfo(package, control.get("Version", "?")[:100], [])
        for member in tar:
            if not member.isfile():
                continue
            path = member.name
            if path.endswith(f"/doc/{package}/copyright"):
                try:
                    info.licences = summarize_copyright(_read_member(tar, member, MAX_TEXT_BYTES).decode(
                        "utf-8", "replace"))
                except ValueError as exc:
                    logger.warning("%s:%s skipped: %s", deb.name, path, exc)
            if not _texture_path_ok(path):
                continue
            try:
                rgba = decode_png(_read_member(tar, member, MAX_IMAGE_BYTES))
            except ValueError as exc:
                report.unreadable += 1
                logger.warning("%s:%s skipped: %s", deb.name, path, exc)
                continue
            pixels, reduced = to_16x16(rgba, animation_frames=True)
            if pixels is None or not (pixels[..., 3] >= 128).any():
                report.skipped_size += 1
                continue
            if not first_seen(pixels, seen):
                report.duplicates += 1
                continue
            report.reduced += int(reduced)
            rows.append(_write_texture(tmp, package, path, pixels))
            info.count += 1
    return info


def _extract_package_or_refuse(deb: Path, tmp: Path, seen: set[str], report: BuildReport,
                               rows: list[dict]) -> _PackageInfo:
    """``_extract_package``, with a damaged archive inside the .deb reported as a ValueError naming it."""
    try:
        return _extract_package(deb, tmp, seen, report, rows)
    except (tarfile.TarError, lzma.LZMAError, zlib.error, EOFError, OSError) as exc:
        raise ValueError(f"{deb}: a damaged package ({type(exc).__name__}: {exc})") from exc


def _write_texture(tmp: Path, package: str, path: str, pixels: np.ndarray) -> dict:
    stem, mod = PurePosixPath(path).stem, _mod_name(path)
    folder = tmp / package
    folder.mkdir(exist_ok=True)
    target = unique_path(folder, _UNSAFE_FILE_CHARS.sub("_", stem)[:100])
    Image.fromarray(pixels, "RGBA").save(target)
    row = {"file_name": target.relative_to(tmp).as_posix(), **_describe(stem, pixels),
           "package": package, "mod": mod}
    return row


def first_seen(pixels: np.ndarray, seen: set[str]) -> bool:
    """True the first time these exact pixels come by (and records them); False for a duplicate."""
    digest = hashlib.sha1(pixels.tobytes()).hexdigest()  # noqa: S324 - dedup key only
    if digest in seen:
        return False
    seen.add(digest)
    return True


def _render_variants(tmp: Path, rows: list[dict], seen: set[str]) -> list[dict]:
    """Block textures as the engine renders them, from textures that are only parts of a block.

    - Ores: a ``*_mineral_<name>`` overlay drawn over ``default_stone`` is the "stone with <name> ore" node.
    - Leaves: with the ``leaves_style = opaque`` setting the engine ignores alpha, so the cut-out's hidden
      pixels (black in minetest_game) show: an opaque "leaves" block.
    Each variant is written next to its source and described like any texture (a composite of textures
    under the same licence).
    """
    stone = np.array(Image.open(tmp / _ORE_BASE).convert("RGBA")) if (tmp / _ORE_BASE).is_file() else None
    variants = []
    for row in rows:
        stem = PurePosixPath(row["file_name"]).stem
        is_ore = _ORE_MARK in stem and stone is not None
        if not (is_ore or row["name"].split()[-1:] == ["leaves"]):
            continue  # only ores and leaves are read back from disk
        pixels = np.array(Image.open(tmp / row["file_name"]).convert("RGBA"))
        if not (pixels[..., 3] < 128).any():
            continue
        if is_ore:
            mineral = stem.split(_ORE_MARK, 1)[1]
            alpha = pixels[..., 3:].astype(np.float32) / 255.0
            rgb = pixels[..., :3] * alpha + stone[..., :3] * (1.0 - alpha)
            derived = np.concatenate([np.rint(rgb).astype(np.uint8), stone[..., 3:]], axis=-1)
            new_stem = f"stone_with_{mineral}_ore"
        else:
            derived = pixels.copy()
            derived[..., 3] = 255
            new_stem = f"{stem}_opaque"
        if first_seen(derived, seen):
            variants.append(_write_texture(tmp, row["package"], f"{row['mod']}/textures/{new_stem}.png",
                                           derived))
    return variants


def _attribution(infos: list[_PackageInfo]) -> str:
    lines = [
        "# Attribution", "",
        "Textures extracted from Debian's Luanti (minetest) packages. The minetest_game "
        "textures (package minetest-data) are licensed CC BY-SA 3.0; most mods use CC BY-SA "
        "or similar free licences for media. Per-package details below come from each "
        "package's `usr/share/doc/<package>/copyright` file; see it for authors.",
        "Files named `stone_with_*_ore.png` (an ore overlay drawn over `default_stone.png`) and "
        "`*_leaves*_opaque.png` (a leaves texture with alpha ignored, as the engine's opaque leaves "
        "style draws it) are composites of the textures beside them, under the same licences.", "",
    ]
    for info in infos:
        lines.append(f"## {info.name} {info.version} ({info.count} textures)")
        lines.extend(f"- {lic}" for lic in info.licences[:12]) if info.licences else (
            lines.append("- no machine-readable copyright file found"))
        if len(info.licences) > 12:
            lines.append(f"- ... and {len(info.licences) - 12} more stanzas")
        lines.append("")
    return "\n".join(lines)


def swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Rename a finished build folder to ``out_dir``, replacing the previous one."""
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def build_luanti_dataset(deb_dir: Path, out_dir: Path) -> BuildReport:
    """Extract the 16x16 textures of every ``*.deb`` in ``deb_dir`` into ``out_dir``.

    Writes ``out_dir/<package>/<file>.png``, ``metadata.jsonl`` (file_name, text,
    text_zh, name, color, kind, package, mod) and ``ATTRIBUTION.md``. Identical
    pixel content is kept once; devtest and engine GUI textures are left out. The
    set is built in a temporary sibling folder and renamed at the end, so an
    interrupted build leaves the previous ``out_dir`` untouched.

    Raises:
        ValueError: If ``deb_dir`` holds no .deb or no usable texture was found.
    """
    deb_dir, out_dir = Path(deb_dir), Path(out_dir)
    debs = sorted(deb_dir.glob("*.deb"))
    if not debs:
        raise ValueError(f"no .deb files in {deb_dir}: run with --download or fetch "
                         f"{', '.join(LUANTI_PACKAGES[:2])}, ... with `apt-get download`")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    report = BuildReport(out_dir=out_dir)
    try:
        rows: list[dict] = []
        seen: set[str] = set()
        infos = [_extract_package_or_refuse(deb, tmp, seen, report, rows) for deb in debs]
        if not rows:
            raise ValueError(f"no 16x16 textures found in the .deb files of {deb_dir}")
        variants = _render_variants(tmp, rows, seen)
        report.rendered = len(variants)
        rows.extend(variants)
        with open(tmp / "metadata.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (tmp / "ATTRIBUTION.md").write_text(_attribution(infos), encoding="utf-8")
        swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.per_package = {info.name: info.count for info in infos if info.count}
    report.kinds = Counter(row["kind"] for row in rows)
    report.colors = Counter(row["color"] for row in rows)
    logger.info(report.summary())
    return report

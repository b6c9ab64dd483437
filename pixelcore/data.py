"""Reading texture datasets into :class:`TextureRecord` lists, plus hue-shift augmentation.

Two layouts are recognised, in a folder or a ``.zip``:

* a Minecraft resource pack: ``assets/<namespace>/textures/{item,items,block,blocks}/**.png``,
  the kind taken from the folder;
* any folder of PNGs, read recursively.

Captions come from a sidecar ``<name>.txt``, else a ``metadata.jsonl`` (Hugging Face
imagefolder convention: ``file_name`` + ``text``, optional ``name``/``color``/``kind``/``style``),
else the file name. The kind comes from ``metadata.jsonl``, else the pack folder, else the PNG's
``pixelcore_kind`` text (as PixelCore and its pack export write it), else the transparency.
"""

from __future__ import annotations

import io
import json
import logging
import lzma
import random
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
from PIL import Image

from pixelcore import captions, colors
from pixelcore.metadata import KINDS, PREFIX

logger = logging.getLogger(__name__)

SIZE = 16
# Caps on what one file of a dataset may be. A 16x16 or 32x32 PNG is a few hundred bytes (a megabyte leaves
# room for any metadata chunk), a caption a line; a metadata.jsonl of a million rows fits in 256 MiB.
MAX_IMAGE_BYTES = 2**20
MAX_IMAGE_PIXELS = 512 * 512  # a tall animation strip of 16x16 frames, decoded, is 1 MiB at most
MAX_CAPTION_BYTES = 4096
MAX_CAPTION_CHARS = 1000
MAX_METADATA_BYTES = 256 * 2**20
MAX_METADATA_LINE = 64 * 1024
MAX_FILES = 200_000
# What reading a damaged, encrypted or oddly compressed zip member (or any file) can raise.
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError, zlib.error,
                lzma.LZMAError, EOFError, OSError, ValueError, struct.error)
_PACK_RE = re.compile(r"(?:^|/)assets/[^/]+/textures/(items?|blocks?)/", re.IGNORECASE)


@dataclass
class TextureRecord:
    """One 16x16 texture with its description."""

    pixels: np.ndarray  # uint8 (16, 16, 4) RGBA
    name: str  # noun phrase without colour words, e.g. "diamond sword"
    color: str | None  # dominant colour word (computed)
    kind: str | None  # "item" / "block"
    caption: str  # the human caption (from sidecar/metadata/filename)
    source: str  # file path or archive member
    style: str | None = None  # a style condition (metadata "style", see sources.STYLES); None is the default look
    recolored: bool = False  # a hue-shifted or white/gray/black copy, not the texture as drawn


@dataclass
class LoadReport:
    """What :func:`load_textures` kept and skipped."""

    loaded: int = 0
    skipped_size: int = 0
    skipped_unreadable: int = 0
    reduced: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and UIs."""
        return (f"loaded {self.loaded} textures ({self.reduced} reduced from 32x32), "
                f"skipped {self.skipped_size} with wrong size, "
                f"{self.skipped_unreadable} unreadable")


def decode_png(data: bytes) -> np.ndarray:
    """Decode image bytes of any PIL mode to a uint8 (H, W, 4) RGBA array.

    16-bit greyscale is scaled to 8 bits (PIL's own conversion would clip it to black and white); 16-bit
    RGB(A) and grey-with-alpha PNGs come from PIL already reduced to 8 bits per channel.

    Raises:
        ValueError: If the bytes are not a readable image, the image has more than ``MAX_IMAGE_PIXELS``
            pixels, or its mode (32-bit integer or float) has no faithful 8-bit reading.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise ValueError(f"{img.width}x{img.height} pixels, more than a texture has "
                                 f"({MAX_IMAGE_PIXELS:,} at most)")
            img.load()
            return _to_rgba(img)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"not a readable image: {exc}") from exc


def png_kind(data: bytes) -> str | None:
    """The ``pixelcore_kind`` text of PNG bytes ("item" or "block"), or None."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            kind = (getattr(img, "text", {}) or {}).get(PREFIX + "kind")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    return kind if kind in KINDS else None


def _to_rgba(img: Image.Image) -> np.ndarray:
    if img.mode.startswith("I;16"):
        grey16 = np.asarray(img).astype(np.uint32)
        grey = ((grey16 * 255 + 32767) // 65535).astype(np.uint8)  # 0..65535 -> 0..255, rounded
        alpha = np.full(grey.shape, 255, np.uint8)
        transparent = img.info.get("transparency")
        if isinstance(transparent, int):
            alpha[grey16 == transparent] = 0
        return np.stack([grey, grey, grey, alpha], axis=-1)
    if img.mode in ("I", "F"):
        raise ValueError(f"{'32-bit integer' if img.mode == 'I' else 'floating-point'} pixels have no 8-bit "
                         "reading here; save the texture as an 8-bit RGBA PNG")
    return np.asarray(img.convert("RGBA"), dtype=np.uint8).copy()


def to_16x16(rgba: np.ndarray, animation_frames: bool = False) -> tuple[np.ndarray | None, bool]:
    """Return (16x16 pixels or None, whether the image was reduced).

    Reductions: a pixel-doubled 32x32 becomes 16x16; with ``animation_frames``, a vertical animation strip
    (16 wide, a multiple of 16 high, as Luanti and Minecraft store torches, water and fire) gives its first
    frame.
    """
    if rgba.shape[:2] == (SIZE, SIZE):
        return rgba, False
    height, width = rgba.shape[:2]
    if animation_frames and width == SIZE and height % SIZE == 0:
        return np.ascontiguousarray(rgba[:SIZE]), True
    if rgba.shape[:2] == (2 * SIZE, 2 * SIZE):
        base = rgba[0::2, 0::2]
        doubled = all(np.array_equal(base, rgba[dy::2, dx::2]) for dy in (0, 1) for dx in (0, 1))
        if doubled:
            return np.ascontiguousarray(base), True
    return None, False


class _Member:
    """One file of a dataset, folder or archive: its declared size and a way to open it."""

    def __init__(self, size: int, open_stream: Callable[[], BinaryIO]):
        self.size = size
        self.open = open_stream

    def read(self, limit: int) -> bytes:
        """The whole member, refused past ``limit`` bytes without reading more than ``limit + 1``.

        Raises:
            ValueError: when the member is larger than ``limit`` or cannot be read (a damaged, encrypted or
                unsupported zip member, an I/O error).
        """
        if self.size > limit:
            raise ValueError(f"{self.size:,} bytes, more than the {limit:,} allowed")
        try:
            with self.open() as stream:
                payload = stream.read(limit + 1)
        except _READ_ERRORS as exc:
            raise ValueError(f"unreadable ({type(exc).__name__}: {exc})") from exc
        if len(payload) > limit:
            raise ValueError(f"more than the {limit:,} bytes allowed")
        return payload

    def lines(self, limit: int, line_limit: int) -> Iterator[tuple[bytes | None, str | None]]:
        """Streams (line, None) pairs, or (None, reason) for a line over ``line_limit`` bytes (skipped) and,
        last, for a member over ``limit`` bytes (the rest unread).

        Raises:
            ValueError: when the member cannot be read.
        """
        total = 0
        try:
            with self.open() as stream:
                while line := stream.readline(line_limit + 1):
                    total += len(line)
                    if total > limit:
                        yield None, f"longer than the {limit:,} bytes allowed; the rest is ignored"
                        return
                    if len(line) > line_limit and not line.endswith(b"\n"):
                        while (rest := stream.readline(line_limit)) and not rest.endswith(b"\n"):
                            total += len(rest)
                        total += len(rest)
                        yield None, f"a line longer than {line_limit:,} bytes"
                        continue
                    yield line, None
        except _READ_ERRORS as exc:
            raise ValueError(f"unreadable ({type(exc).__name__}: {exc})") from exc


def _folder_files(root: Path) -> dict[str, _Member]:
    files = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            if len(files) >= MAX_FILES:
                raise ValueError(f"{root} holds more than {MAX_FILES:,} files; point at a texture pack")
            files[p.relative_to(root).as_posix()] = _Member(p.stat().st_size, lambda p=p: open(p, "rb"))
    return files


def _zip_files(archive: zipfile.ZipFile) -> dict[str, _Member]:
    infos = [info for info in archive.infolist() if not info.is_dir()]
    if len(infos) > MAX_FILES:
        raise ValueError(f"{archive.filename} holds {len(infos):,} files, more than {MAX_FILES:,}")
    return {info.filename: _Member(info.file_size, lambda info=info: archive.open(info)) for info in infos}


def _read_metadata(files: dict[str, _Member], report: LoadReport) -> dict[str, dict]:
    """Rows of every metadata.jsonl, keyed by image path relative to the dataset root.

    A line that is not a JSON object with a string ``file_name`` and string (or absent) ``text``, ``name``,
    ``color``, ``kind`` and ``style``, each of bounded length, is skipped with a warning.
    """
    rows: dict[str, dict] = {}
    for rel, member in files.items():
        if PurePosixPath(rel).name != "metadata.jsonl":
            continue
        folder = PurePosixPath(rel).parent
        try:
            for lineno, (line, problem) in enumerate(member.lines(MAX_METADATA_BYTES, MAX_METADATA_LINE), 1):
                if problem is not None:
                    _warn(report, f"{rel}:{lineno}: skipped: {problem}")
                    continue
                text = line.decode("utf-8", "replace")
                if not text.strip():
                    continue
                try:
                    row = _metadata_row(text)
                    rows[(folder / row["file_name"]).as_posix()] = row
                except (ValueError, RecursionError) as exc:  # json errors are ValueErrors
                    _warn(report, f"{rel}:{lineno}: bad metadata line ({str(exc)[:200]})")
        except ValueError as exc:
            _warn(report, f"{rel}: skipped: {exc}")
    return rows


def _metadata_row(text: str) -> dict:
    row = json.loads(text)
    if not isinstance(row, dict):
        raise ValueError(f"a JSON {type(row).__name__}, not an object")
    if not isinstance(row.get("file_name"), str) or not row["file_name"]:
        raise ValueError("file_name must be a non-empty string")
    for key in ("file_name", "text", "name", "color", "kind", "style"):
        value = row.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{key} must be a string, got {type(value).__name__}")
        if isinstance(value, str) and len(value) > MAX_CAPTION_CHARS:
            raise ValueError(f"{key} is {len(value):,} characters long, more than {MAX_CAPTION_CHARS:,}")
    return row


def _warn(report: LoadReport, message: str) -> None:
    logger.warning(message)
    report.warnings.append(message)


def _pack_kind(rel: str) -> str | None:
    match = _PACK_RE.search(rel)
    if match is None:
        return None
    return "item" if match.group(1).lower().startswith("item") else "block"


def _make_record(pixels: np.ndarray, rel: str, source: str, row: dict | None,
                 sidecar: str | None, folder_kind: str | None) -> TextureRecord:
    """``folder_kind``: the kind the pack folder or the PNG's own text gives."""
    row = row or {}
    stem_words = captions.split_name(PurePosixPath(rel).stem)
    caption = sidecar or row.get("text") or ""
    if not caption:
        name_part, color_in_name = captions.strip_color_words(" ".join(stem_words))
        caption = f"{color_in_name} {name_part}" if color_in_name else name_part
    name = row.get("name") or captions.strip_color_words(caption)[0]
    color = colors.normalize_color(row.get("color")) or colors.dominant_color(pixels)
    kind = row.get("kind") or folder_kind or colors.texture_kind(pixels)
    return TextureRecord(pixels=pixels, name=name, color=color, kind=kind,
                         caption=caption.strip(), source=source, style=row.get("style") or None)


def _load_files(files: dict[str, _Member], origin: str, report: LoadReport) -> list[TextureRecord]:
    pack_mode = any(_PACK_RE.search(rel) for rel in files)
    metadata = _read_metadata(files, report)
    records: list[TextureRecord] = []
    for rel, member in files.items():
        if not rel.lower().endswith(".png") or (pack_mode and not _PACK_RE.search(rel)):
            continue
        source = f"{origin}/{rel}" if origin else rel
        try:
            data = member.read(MAX_IMAGE_BYTES)
            rgba = decode_png(data)
        except ValueError as exc:
            report.skipped_unreadable += 1
            _warn(report, f"skipped {source}: {exc}")
            continue
        pixels, reduced = to_16x16(rgba)
        if pixels is None:
            report.skipped_size += 1
            continue
        report.reduced += int(reduced)
        records.append(_make_record(pixels, rel, source, metadata.get(rel), _sidecar(files, rel, report),
                                    _pack_kind(rel) or png_kind(data)))
    report.loaded = len(records)
    return records


def _sidecar(files: dict[str, _Member], rel: str, report: LoadReport) -> str | None:
    """The caption of ``<name>.txt`` beside an image, if there is one and it is short enough."""
    member = files.get(rel[:-4] + ".txt")
    if member is None:
        return None
    try:
        return member.read(MAX_CAPTION_BYTES).decode("utf-8", "replace").strip() or None
    except ValueError as exc:
        _warn(report, f"caption {rel[:-4]}.txt ignored: {exc}")
        return None


def load_textures(path: str | Path) -> tuple[list[TextureRecord], LoadReport]:
    """Read a texture dataset (resource pack folder/zip or folder of PNGs).

    Raises:
        ValueError: If ``path`` does not exist or holds no usable 16x16 PNG.
    """
    path = Path(path).expanduser()
    report = LoadReport()
    if not path.exists():
        raise ValueError(f"dataset path {path} does not exist: point it at a folder of 16x16 "
                         "PNGs, a resource pack folder or a .zip")
    if path.is_dir():
        records = _load_files(_folder_files(path), str(path), report)
    elif zipfile.is_zipfile(path):
        try:
            archive = zipfile.ZipFile(path)
        except _READ_ERRORS as exc:
            raise ValueError(f"{path}: not a readable .zip archive ({type(exc).__name__}: {exc})") from exc
        with archive:
            records = _load_files(_zip_files(archive), str(path), report)
    else:
        raise ValueError(f"{path} is neither a folder nor a .zip archive")
    if not records:
        raise ValueError(
            f"no usable 16x16 textures found in {path} (searched *.png recursively, and "
            f"assets/*/textures/item(s)|block(s)/ for resource packs; {report.summary()}). "
            "Add 16x16 or pixel-doubled 32x32 PNGs, or build the default set with "
            "`python -m pixelcore build-luanti`.")
    logger.info("dataset %s: %s", path, report.summary())
    return records, report


def _recolor(rec: TextureRecord, new_color: str) -> str:
    return captions.replace_color_words(rec.caption, new_color) or f"{new_color} {rec.name}"


# Achromatic recolourings: (colour word, target lightness scale). Hue shifts never make white or black
# items, so without these "a white feather" or "a black gem" have almost no examples.
_TONES = (("white", 1.6), ("gray", 1.0), ("black", 0.45))


def tone_augment(records: Sequence[TextureRecord]) -> list[TextureRecord]:
    """White, gray and black copies of chromatic records (desaturated, lightness scaled), recaptioned.

    Returns:
        Only the new copies; a copy whose recomputed colour is not the intended word is dropped.
    """
    out = []
    for rec in records:
        if rec.color is None or rec.color in colors.ACHROMATIC:
            continue
        rgb = rec.pixels[..., :3].astype(np.float32)
        gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        for word, scale in _TONES:
            pixels = rec.pixels.copy()
            pixels[..., :3] = np.clip(gray * scale, 0, 255).round().astype(np.uint8)[..., None]
            if colors.dominant_color(pixels) != word:
                continue
            out.append(replace(rec, pixels=pixels, color=word, caption=_recolor(rec, word), recolored=True,
                               source=f"{rec.source}#{word}"))
    return out


def _hue_copy(rec: TextureRecord, degrees: float) -> TextureRecord | None:
    """``rec`` hue-rotated by ``degrees``, with its colour recomputed and recaptioned; None if it has none."""
    pixels = colors.hue_shift(rec.pixels, degrees)
    new_color = colors.dominant_color(pixels)
    if new_color is None:
        return None
    return replace(rec, pixels=pixels, color=new_color, caption=_recolor(rec, new_color), recolored=True,
                   source=f"{rec.source}#hue{int(degrees)}")


def hue_shift_augment(records: Sequence[TextureRecord],
                      shifts: Sequence[float] = (60, 120, 180, 240, 300),
                      rng: random.Random | None = None) -> list[TextureRecord]:
    """Add hue-rotated copies of chromatic records, recoloured and recaptioned.

    Args:
        records: Originals; achromatic ones (white/gray/black/None) get no copies.
        shifts: Hue rotations in degrees.
        rng: If given, each record uses one random shift instead of all of them.

    Returns:
        The originals followed by the copies; a copy whose recomputed colour equals
        the original's is dropped.
    """
    out = list(records)
    for rec in records:
        if rec.color is None or rec.color in colors.ACHROMATIC:
            continue
        chosen = [rng.choice(list(shifts))] if rng is not None else list(shifts)
        for degrees in chosen:
            copy = _hue_copy(rec, degrees)
            if copy is not None and copy.color != rec.color:
                out.append(copy)
    return out


def hue_target_augment(records: Sequence[TextureRecord],
                       centres: dict[str, float] | None = None) -> list[TextureRecord]:
    """Add colour-balanced copies: each chromatic record rotated onto every colour word's hue.

    Fixed rotations give each colour word a share of copies proportional to its width on the hue wheel
    (green spans 95 degrees, orange 25), so "an orange apple" has almost no examples. Rotating each
    texture's mean hue onto the centre of every word's range gives each word about one copy per texture.

    Args:
        records: Originals; achromatic ones (white/gray/black/None) get no copies.
        centres: Colour word -> target hue in degrees (default :data:`colors.HUE_CENTRES`).

    Returns:
        The originals followed by the copies. A copy is dropped when its recomputed colour is the original's
        or one this record already has a copy of (gold landing on yellow, say).
    """
    out = list(records)
    for rec in records:
        if rec.color is None or rec.color in colors.ACHROMATIC:
            continue
        hue = colors.mean_hue(rec.pixels)
        if hue is None:
            continue
        have = {rec.color}
        for target in (centres or colors.HUE_CENTRES).values():
            copy = _hue_copy(rec, round((target - hue) % 360.0))
            if copy is not None and copy.color not in have:
                have.add(copy.color)
                out.append(copy)
    return out

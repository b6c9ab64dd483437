"""Textures into games: a Minecraft Java resource pack or a Luanti texture pack, as a folder or a ``.zip``.

Minecraft (``format="minecraft"``), for namespace ``ns`` and a texture ``name``:

* ``pack.mcmeta`` with ``pack_format`` :data:`PACK_FORMAT` and a ``pack.png`` contact sheet (both only when the
  pack is new: a pack's own are never replaced);
* ``assets/ns/textures/item/name.png`` or ``assets/ns/textures/block/name.png`` by the texture's kind;
* for an item, ``assets/ns/models/item/name.json`` (``minecraft:item/generated`` over the texture); for a block,
  ``assets/ns/models/block/name.json`` (``minecraft:block/cube_all``: the texture on all six faces) and an item
  model whose parent is that block model (how the block looks held or in the inventory);
* ``assets/ns/items/name.json``, the item model definition Java 1.21.4 and later read, pointing at the item
  model. With it ``/give @s stick[item_model="ns:name"]`` shows the texture in game.

A resource pack cannot add blocks or items to the game, so no blockstate is written: a blockstate only applies
to a block the game (or a mod) registers, and such a mod ships its own. In the namespace ``minecraft`` only the
textures are written: they replace the vanilla textures of the same name (``diamond_sword``, ``stone``),
whose models already point at them.

Luanti (``format="luanti"``): the PNGs at the top of the folder, a ``texture_pack.conf`` and a ``screenshot.png``
contact sheet. Luanti replaces a texture by its file name, so ``mapping`` renames textures to the files they
replace (``{"red_sword": "default_tool_steelsword"}``); unmapped textures keep their own names.

Names are reduced to lower-case ``[a-z0-9_]`` with no path parts. An existing pack is added to and never
overwritten: a name already taken by other pixels gets the next free ``_2``, ``_3``... suffix, and a texture
already in the pack with the same pixels is skipped.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, PngImagePlugin

from .colors import texture_kind
from .files import atomic_new_folder, atomic_write
from .images import make_grid
from .metadata import KINDS, PREFIX

log = logging.getLogger(__name__)

FORMATS = ("minecraft", "luanti")
# Java Edition 1.21 and 1.21.1. Other versions still load the pack (the pack list marks it as made for an
# older or newer version); the layout written here is the same from 1.13 on.
PACK_FORMAT = 34
DEFAULT_NAMESPACE = "pixelcore"
MAX_NAME = 64  # keeps every path in the pack short
_NOT_NAME = re.compile(r"[^a-z0-9_]+")
_ARTICLE = re.compile(r"^(a|an|the)\s+", re.IGNORECASE)
_SHEET_SIDE = 128  # a contact sheet of about this many pixels a side (Minecraft shows pack.png at 64-128)


@dataclass
class PackTexture:
    """One texture to export."""

    name: str  # any text: reduced by sanitize_name
    pixels: np.ndarray  # (H, W, 4) uint8 RGBA
    kind: str  # "item" or "block"
    text: dict[str, str] = field(default_factory=dict)  # PNG text chunks to keep (the pixelcore_* metadata)


@dataclass
class ExportReport:
    """What ``export_pack`` did: the pack, and each texture's file in it (or why it was not written)."""

    pack: Path
    written: dict[str, str] = field(default_factory=dict)  # texture name -> path inside the pack
    renamed: dict[str, str] = field(default_factory=dict)  # texture name -> the versioned name it got
    skipped: list[str] = field(default_factory=list)  # already in the pack with the same pixels

    def summary(self) -> str:
        parts = [f"{len(self.written)} textures written to {self.pack}"]
        if self.renamed:
            parts.append("names taken, versioned: " + ", ".join(f"{a} -> {b}" for a, b in self.renamed.items()))
        if self.skipped:
            parts.append(f"already in the pack: {', '.join(self.skipped)}")
        return "; ".join(parts)


def _reduce(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    return _NOT_NAME.sub("_", ascii_name.lower()).strip("_")[:MAX_NAME].rstrip("_")


def sanitize_name(name: str, what: str = "texture name") -> str:
    """``name`` as a file and resource name: lower-case ``[a-z0-9_]``, accents dropped, anything else a ``_``.

    Path parts are not kept apart: ``../../x`` becomes ``x``, so no name can leave the pack's folder.

    Raises:
        ValueError: when nothing usable is left.
    """
    clean = _reduce(name)
    if not clean:
        raise ValueError(f"the {what} {name!r} has no letters or digits: give it a name such as 'red_sword'")
    return clean


def parse_mapping(text: str) -> dict[str, str]:
    """``name = luanti_texture`` pairs, one per line or comma-separated, both sides sanitised.

    Raises:
        ValueError: on a pair without ``=``.
    """
    mapping = {}
    for pair in re.split(r"[\n,]", text or ""):
        if not pair.strip():
            continue
        if "=" not in pair:
            raise ValueError(f"mapping entry {pair.strip()!r} has no '=': write it as "
                             f"'red_sword = default_tool_steelsword'")
        name, target = pair.split("=", 1)
        mapping[sanitize_name(name)] = sanitize_name(target.removesuffix(".png").strip(), "mapped texture name")
    return mapping


def texture_names(count: int, names: str = "", prompts: Sequence[str] = ()) -> list[str]:
    """Names for a batch of ``count`` textures: the given ones (comma or line separated; one per texture, or
    one for all), else each texture's prompt without a leading article, else "texture". Repeats are fine:
    ``export_pack`` versions them.

    Raises:
        ValueError: when the number of names given fits neither.
    """
    given = [name.strip() for name in re.split(r"[\n,]", names or "") if name.strip()]
    if given and len(given) not in (1, count):
        raise ValueError(f"{len(given)} names for {count} textures: give one name per texture, one for all, or "
                         f"none (names then come from the prompts)")
    if given:
        return given * count if len(given) == 1 else given
    if len(prompts) != count:
        return ["texture"] * count
    return [_ARTICLE.sub("", prompt.strip()) if _reduce(prompt) else "texture" for prompt in prompts]


def read_texture(path: str | Path, kind: str | None = None) -> PackTexture:
    """A PNG as a ``PackTexture``: its name from the file stem, its kind from ``kind``, else from the PNG's
    ``pixelcore_kind`` text, else read from its transparency (``colors.texture_kind``).

    Raises:
        ValueError: when the file is not a readable image.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            text = {k: v for k, v in (getattr(image, "text", {}) or {}).items()
                    if isinstance(v, str) and k.startswith(PREFIX)}
            pixels = np.asarray(image.convert("RGBA"), dtype=np.uint8).copy()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"{path}: not a readable image ({err}); give PNG files") from err
    kind = kind or (text.get(PREFIX + "kind") if text.get(PREFIX + "kind") in KINDS else None)
    return PackTexture(path.stem, pixels, kind or texture_kind(pixels), text)


def check_output(out: str | Path, fmt: str) -> None:
    """Refuses an output that cannot take a pack of ``fmt``, before anything is read or written.

    Raises:
        ValueError: saying what to choose instead.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown pack format {fmt!r}: use one of {', '.join(FORMATS)}")
    out = Path(out)
    marker = _MARKERS[fmt]
    if out.suffix.lower() == ".zip":
        if out.exists() and (not zipfile.is_zipfile(out) or marker not in _zip_names(out)):
            raise ValueError(f"{out} exists and is not a {fmt} pack (no {marker} at its top): choose a new .zip")
    elif out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / marker).is_file())):
        raise ValueError(f"{out} exists and is not a {fmt} pack (no {marker}): choose a new or empty folder, "
                         f"or a .zip")


def export_pack(textures: Sequence[PackTexture], out: str | Path, fmt: str = "minecraft",
                namespace: str = DEFAULT_NAMESPACE, mapping: dict[str, str] | None = None,
                title: str = "PixelCore textures") -> ExportReport:
    """Writes ``textures`` into a new pack at ``out`` (a folder, or a ``.zip`` when it ends so), or adds them
    to the pack already there. See the module docstring for the layout.

    Raises:
        ValueError: on an unusable output, format, namespace, name or kind.
    """
    check_output(out, fmt)
    if not textures:
        raise ValueError("no textures to export: give at least one PNG")
    for texture in textures:
        if texture.kind not in KINDS:
            raise ValueError(f"texture {texture.name!r} has kind {texture.kind!r}: use item or block")
    out = Path(out)
    namespace = sanitize_name(namespace, "namespace")
    title = " ".join(str(title).split()) or "PixelCore textures"  # one line: it goes into a config file
    existing = _read_pack(out)
    layout = _minecraft_files if fmt == "minecraft" else _luanti_files
    files, report = layout(textures, existing, namespace, {**(mapping or {})}, title)
    report.pack = out
    _write_pack(out, existing, files)
    log.info("%s", report.summary())
    return report


# --- layouts -----------------------------------------------------------------------------------------------

_MARKERS = {"minecraft": "pack.mcmeta", "luanti": "texture_pack.conf"}


def _minecraft_files(textures, existing, namespace, mapping, title):
    files: dict[str, bytes] = {}
    report = ExportReport(Path())
    root = f"assets/{namespace}"
    for texture in textures:
        def paths(name, kind=texture.kind):
            own = [f"{root}/textures/{kind}/{name}.png"]
            if namespace == "minecraft":  # vanilla models already point at vanilla texture names
                return own
            return own + [f"{root}/models/{kind}/{name}.json", f"{root}/models/item/{name}.json",
                          f"{root}/items/{name}.json"]

        name = _place(texture, paths, existing, files, report)
        if name is None or namespace == "minecraft":
            continue
        kind = texture.kind
        model = {"parent": "minecraft:item/generated", "textures": {"layer0": f"{namespace}:item/{name}"}}
        if kind == "block":
            files[f"{root}/models/block/{name}.json"] = _json({"parent": "minecraft:block/cube_all",
                                                              "textures": {"all": f"{namespace}:block/{name}"}})
            model = {"parent": f"{namespace}:block/{name}"}
        files[f"{root}/models/item/{name}.json"] = _json(model)
        files[f"{root}/items/{name}.json"] = _json({"model": {"type": "minecraft:model",
                                                              "model": f"{namespace}:item/{name}"}})
    if "pack.mcmeta" not in existing:
        files["pack.mcmeta"] = _json({"pack": {"pack_format": PACK_FORMAT,
                                               "description": f"{title}, made with PixelCore"}})
    if "pack.png" not in existing:
        files["pack.png"] = _contact_sheet(textures)
    return files, report


def _luanti_files(textures, existing, namespace, mapping, title):
    files: dict[str, bytes] = {}
    report = ExportReport(Path())
    for texture in textures:
        base = mapping.get(sanitize_name(texture.name), texture.name)
        _place(PackTexture(base, texture.pixels, texture.kind, texture.text), lambda name: [f"{name}.png"],
               existing, files, report)
    if "texture_pack.conf" not in existing:
        files["texture_pack.conf"] = (f"name = {namespace}\ntitle = {title}\n"
                                      f"description = 16x16 textures made with PixelCore\n").encode("utf-8")
    if "screenshot.png" not in existing:
        files["screenshot.png"] = _contact_sheet(textures)
    return files, report


def _place(texture: PackTexture, paths, existing: dict, files: dict, report: ExportReport) -> str | None:
    """Puts the texture's PNG under the first free version of its name; None when the pack already has it."""
    base = sanitize_name(texture.name)
    png = _png(texture)
    for version in range(1, 10_000):
        name = base if version == 1 else f"{base}_{version}"
        taken = [p for p in paths(name) if p in existing or p in files]
        if not taken:
            files[paths(name)[0]] = png
            report.written[name] = paths(name)[0]
            if name != base:
                report.renamed[base] = name
            return name
        if paths(name)[0] in existing and _same_pixels(existing[paths(name)[0]], texture.pixels):
            report.skipped.append(name)
            return None
    raise ValueError(f"the pack already holds 9999 versions of {base!r}: choose another name")


def _png(texture: PackTexture) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in {**texture.text, PREFIX + "kind": texture.kind}.items():
        info.add_itxt(key, value)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(texture.pixels), "RGBA").save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _same_pixels(data: bytes, pixels: np.ndarray) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.array_equal(np.asarray(image.convert("RGBA")), pixels)
    except (OSError, ValueError):
        return False


def _json(value: dict) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode("utf-8")


def _contact_sheet(textures: Sequence[PackTexture]) -> bytes:
    """All textures side by side at 16x16 (nearest-neighbour), enlarged to about 128 pixels a side."""
    small = np.stack([np.asarray(Image.fromarray(t.pixels, "RGBA").resize((16, 16), Image.NEAREST))
                      for t in textures])
    cols = math.ceil(math.sqrt(len(small)))
    grid = make_grid(small, cols, scale=max(1, _SHEET_SIDE // (16 * cols)))
    buffer = io.BytesIO()
    Image.fromarray(grid, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


# --- reading and writing packs -----------------------------------------------------------------------------

def _zip_names(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as archive:
        return set(archive.namelist())


def _read_pack(out: Path) -> dict[str, bytes]:
    """The files of the pack at ``out`` (empty for a new one), by POSIX path inside the pack."""
    if not out.exists():
        return {}
    if out.is_dir():
        return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    with zipfile.ZipFile(out) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}


def _write_pack(out: Path, existing: dict[str, bytes], files: dict[str, bytes]) -> None:
    """Adds ``files`` to the pack. A zip is rewritten whole, atomically; a new folder appears whole (written
    beside it, then renamed); files added to an existing folder are each written atomically."""
    for rel in files:  # every path is made here from sanitised names; this guards the invariant
        if PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts:
            raise ValueError(f"refusing to write {rel!r} outside the pack")
    if out.suffix.lower() == ".zip":
        def write_zip(tmp: str) -> None:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
                for rel, data in sorted({**existing, **files}.items()):
                    archive.writestr(rel, data)
        atomic_write(out, write_zip)
        return
    if not existing:
        atomic_new_folder(out, files)
        return
    for rel, data in files.items():
        atomic_write(out / rel, lambda tmp, data=data: Path(tmp).write_bytes(data))

"""Item sprites of Cataclysm: Dark Days Ahead's tilesets, named from the game's item data.

Debian's ``cataclysm-dda-data`` ships the game's item definitions (``json/items/**.json``: id, English name, type,
weapon skill, ``copy-from`` inheritance) and several tilesets (``gfx/<tileset>/tile_config.json`` plus sprite
sheets). A tile whose id is an item id is that item's sprite. Only 16x16 sprites (or exact pixel-doubled 32x32)
are read: ChestHole16 and Hoder's tileset.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from .data import decode_png, to_16x16

logger = logging.getLogger(__name__)

GAME_DIR = "usr/share/games/cataclysm-dda/"
_ITEMS_RE = re.compile(r"(?:^|/)usr/share/games/cataclysm-dda/json/items/.+\.json$")
_GFX_RE = re.compile(r"(?:^|/)usr/share/games/cataclysm-dda/gfx/([^/]+)/([^/]+)$")


@dataclass
class ItemSprite:
    """One item's sprite from one tileset."""

    item_id: str
    name: str  # the game's English name, e.g. "glass bottle"
    item_type: str  # GENERIC, TOOL, GUN, ARMOR, COMESTIBLE, ...
    skill: str | None  # a gun's or bow's skill: pistol, rifle, shotgun, smg, archery, ...
    tileset: str  # folder name under gfx/
    pixels: np.ndarray  # (16, 16, 4) uint8


def wanted_member(path: str) -> bool:
    """True for the archive members :func:`item_sprites` reads (item JSON, tile configs, sheets, credits)."""
    return bool(_ITEMS_RE.search(path) or _GFX_RE.search(path))


def _name_text(name) -> str | None:
    if isinstance(name, dict):
        return name.get("str") or name.get("str_sp")
    return name if isinstance(name, str) else None


def read_items(files: Mapping[str, bytes]) -> dict[str, dict]:
    """Item id -> {"name", "type", "skill"}, ``copy-from`` resolved, from the item JSON files among ``files``."""
    raw: dict[str, dict] = {}
    for path, payload in files.items():
        if not _ITEMS_RE.search(path):
            continue
        try:
            entries = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            logger.warning("%s skipped: %s", path, err)
            continue
        for entry in entries if isinstance(entries, list) else [entries]:
            if not isinstance(entry, dict) or entry.get("type") == "MIGRATION":
                continue
            ids = entry.get("id", entry.get("abstract"))
            for item_id in ids if isinstance(ids, list) else [ids]:
                if isinstance(item_id, str):
                    raw[item_id] = entry

    def inherited(item_id: str, key: str, depth: int = 0):
        entry = raw.get(item_id, {})
        if key in entry or depth > 20 or "copy-from" not in entry:
            return entry.get(key)
        return inherited(entry["copy-from"], key, depth + 1)

    return {item_id: {"name": _name_text(inherited(item_id, "name")), "type": entry.get("type"),
                      "skill": inherited(item_id, "skill")}
            for item_id, entry in raw.items() if "id" in entry}


def _sprite_numbers(fg) -> list[int]:
    """Every sprite number of a tile's ``fg``: an int, a list of ints, or weighted variants."""
    if isinstance(fg, int):
        return [fg]
    if isinstance(fg, dict):
        return _sprite_numbers(fg.get("sprite"))
    if isinstance(fg, list):
        return [n for part in fg for n in _sprite_numbers(part)]
    return []


def tileset_sprites(config: dict, sheets: Mapping[str, np.ndarray]) -> Iterator[tuple[str, np.ndarray]]:
    """(tile id, 16x16 sprite) for each foreground sprite of a tileset that is 16x16 or pixel-doubled.

    Sprites are numbered across the sheets of ``tiles-new`` in order, each sheet row by row, as the game does.
    """
    info = (config.get("tile_info") or [{}])[0]
    offset = 0
    for sheet_info in config.get("tiles-new", []):
        sheet = sheets.get(sheet_info.get("file", ""))
        width = sheet_info.get("sprite_width", info.get("width", 16))
        height = sheet_info.get("sprite_height", info.get("height", 16))
        if sheet is None:
            logger.warning("tileset sheet %s missing: the numbering of later sheets is unknown",
                           sheet_info.get("file"))
            return
        cols, count = sheet.shape[1] // width, (sheet.shape[1] // width) * (sheet.shape[0] // height)
        for tile in sheet_info.get("tiles", []):
            ids = tile.get("id")
            for number in _sprite_numbers(tile.get("fg")):
                if not offset <= number < offset + count:
                    continue
                row, col = divmod(number - offset, cols)
                pixels, _ = to_16x16(sheet[row * height:(row + 1) * height, col * width:(col + 1) * width])
                if pixels is None:
                    continue
                for tile_id in ids if isinstance(ids, list) else [ids]:
                    yield tile_id, np.ascontiguousarray(pixels)
        offset += count


def item_sprites(files: Mapping[str, bytes]) -> Iterator[ItemSprite]:
    """Every item sprite of every tileset among ``files`` (archive path -> bytes)."""
    items = read_items(files)
    folders: dict[str, dict[str, bytes]] = {}
    for path, payload in files.items():
        match = _GFX_RE.search(path)
        if match:
            folders.setdefault(match.group(1), {})[match.group(2)] = payload
    for tileset, folder in sorted(folders.items()):
        if "tile_config.json" not in folder:
            continue
        config = json.loads(folder["tile_config.json"].decode("utf-8"))
        sheets = {}
        for sheet_info in config.get("tiles-new", []):
            name = sheet_info.get("file", "")
            if name in folder:
                sheets[name] = decode_png(folder[name])
        for tile_id, pixels in tileset_sprites(config, sheets):
            item = items.get(tile_id)
            if item and item["name"]:
                yield ItemSprite(tile_id, item["name"], item["type"], item["skill"], tileset, pixels)


def tileset_credits(files: Mapping[str, bytes], tilesets: set[str]) -> dict[str, list[str]]:
    """The comment lines of each tileset's ``tileset.txt`` (authors, origins), for the attribution."""
    credits = {}
    for path, payload in files.items():
        match = _GFX_RE.search(path)
        if match and match.group(2) == "tileset.txt" and match.group(1) in tilesets:
            lines = payload.decode("utf-8", "replace").splitlines()
            credits[match.group(1)] = [line.lstrip("#").strip() for line in lines
                                       if line.startswith("#") and not re.match(r"#\s*(Name|Viewing|JSON|Tileset "
                                                                                  r"Path|Generated)", line)]
    return credits


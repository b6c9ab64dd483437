import json

import numpy as np
import pytest
from PIL import Image

from pixelcore import data, sources, tilesets
from test_luanti import make_deb, png_bytes

GAME = "./usr/share/games/cataclysm-dda"
SILK = "./usr/share/icons/silk/16x16"


def sprite(rows, cols, rgb=(90, 90, 100)):
    """A 16x16 sprite opaque over ``rows`` x ``cols`` (slices)."""
    out = np.zeros((16, 16, 4), np.uint8)
    out[rows, cols] = (*rgb, 255)
    return out


def sheet(*sprites):
    return png_bytes(np.concatenate(sprites, axis=1))


def copyright_file(licence):
    return (f"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
            f"Files: *\nCopyright: artist\nLicense: {licence}\n\n"
            f"Files: debian/*\nCopyright: packager\nLicense: GPL-2+\n").encode()


GUN = sprite(slice(0, 5), slice(0, 12))  # wide and stuck in the top-left corner
BOTTLE = sprite(slice(3, 15), slice(5, 11), (60, 200, 220))
RING = sprite(slice(4, 14), slice(4, 14), (200, 150, 60))
GLYPH = sprite(slice(2, 14), slice(6, 9), (220, 220, 40))
TINY = sprite(slice(7, 10), slice(7, 10))

ITEMS = [
    {"abstract": "pistol_base", "type": "GUN", "skill": "pistol"},
    {"id": "glock_19", "type": "GUN", "copy-from": "pistol_base", "name": {"str": "Glock 19"}},
    {"id": "bottle_glass", "type": "GENERIC", "name": {"str": "glass bottle"}},
    {"id": "onion_rings", "type": "COMESTIBLE", "name": {"str": "onion ring"}},
    {"id": "armor_a", "type": "ARMOR", "name": "steel helmet"},
    {"id": "armor_b", "type": "ARMOR", "name": {"str": "pair of boots"}},
    {"id": "small_knife", "type": "TOOL", "name": "knife"},
]
CONFIG = {"tile_info": [{"width": 16, "height": 16}], "tiles-new": [
    {"file": "a.png", "tiles": [{"id": "glock_19", "fg": 0}, {"id": "bottle_glass", "fg": [{"weight": 1, "sprite": 1}]},
                                {"id": "onion_rings", "fg": 2}]},
    {"file": "b.png", "tiles": [{"id": ["armor_a", "armor_b"], "fg": 4}, {"id": "small_knife", "fg": 5}]},
]}


def fake_debs(folder):
    folder.mkdir()
    gfx = f"{GAME}/gfx/TestTiles"
    make_deb(folder / "cataclysm-dda-data_1.0-1_all.deb", "cataclysm-dda-data", {
        f"{GAME}/json/items/things.json": json.dumps(ITEMS).encode(),
        f"{gfx}/tile_config.json": json.dumps(CONFIG).encode(),
        f"{gfx}/a.png": sheet(GUN, BOTTLE, RING, RING),
        f"{gfx}/b.png": sheet(GLYPH, TINY),
        f"{gfx}/tileset.txt": b"#By Some Artist\n#Name of the tileset\nNAME: test\n",
        "./usr/share/doc/cataclysm-dda-data/copyright": copyright_file("CC-BY-SA-3.0"),
    })
    make_deb(folder / "famfamfam-silk_1.0-1_all.deb", "famfamfam-silk", {
        f"{SILK}/ruby.png": png_bytes(sprite(slice(3, 13), slice(3, 13), (220, 30, 60))),
        f"{SILK}/ruby_add.png": png_bytes(sprite(slice(3, 13), slice(2, 13), (220, 30, 60))),
        f"{SILK}/building_key.png": png_bytes(sprite(slice(3, 13), slice(4, 13))),
        f"{SILK}/medal_bronze_1.png": png_bytes(sprite(slice(2, 14), slice(4, 12), (180, 100, 40))),
        f"{SILK}/page.png": png_bytes(sprite(slice(1, 15), slice(3, 13), (250, 250, 250))),
        "./usr/share/doc/famfamfam-silk/copyright": copyright_file("CC-BY-3.0"),
    })
    make_deb(folder / "minetest-data_1.0-1_all.deb", "minetest-data", {})  # not an extra source: ignored


def test_build_extra_from_fake_debs(tmp_path):
    fake_debs(tmp_path / "debs")
    out = tmp_path / "extra"
    report = sources.build_extra_dataset(tmp_path / "debs", out)
    assert report.per_package == {"cataclysm-dda-data": 2, "famfamfam-silk": 2}
    assert report.too_small == 1  # the knife; the shared glyph and the onion ring never get that far
    rows = {r["name"]: r for r in map(json.loads, (out / "metadata.jsonl").read_text().splitlines())}
    assert set(rows) == {"pistol", "glass bottle", "ruby", "bronze medal"}
    assert [rows[n]["shape"] for n in ("pistol", "glass bottle", "ruby", "bronze medal")] == [
        "gun", "potion", "gem", "medal"]
    bottle = rows["glass bottle"]
    assert bottle["text"] == "a cyan glass bottle, cataclysm tile style"
    assert bottle["text_zh"] == "一瓶青色的玻璃瓶，大灾变图块风格"
    assert (bottle["style"], bottle["source"], bottle["kind"]) == ("cataclysm", "cataclysm-dda-data", "item")
    assert rows["ruby"]["text"].endswith(", silk icon style") and rows["ruby"]["style"] == "silk"
    gun = np.array(Image.open(out / rows["pistol"]["file_name"]))
    ys, xs = np.nonzero(gun[..., 3])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (5, 9, 2, 13)  # moved to the middle, nothing cut
    assert not report.glossary_gaps  # every word of these names has a Chinese rendering
    attribution = (out / "ATTRIBUTION.md").read_text()
    assert "cataclysm-dda-data 1.0-1" in attribution and "CC-BY-SA-3.0" in attribution
    assert "famfamfam-silk 1.0-1" in attribution and "CC-BY-3.0" in attribution
    assert "By Some Artist" in attribution and "GPL-2+" not in attribution
    records, _ = data.load_textures(out)
    assert {r.style for r in records} == {"cataclysm", "silk"}


def test_build_extra_refuses_a_folder_without_its_packages(tmp_path):
    (tmp_path / "debs").mkdir()
    with pytest.raises(ValueError, match="famfamfam-silk"):
        sources.build_extra_dataset(tmp_path / "debs", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_with_style_appends_the_style_in_each_language():
    assert sources.with_style(["a red gem", "红色的宝石"], "silk") == ["a red gem, silk icon style",
                                                                  "红色的宝石，Silk图标风格"]
    assert sources.with_style(["a red gem"], None) == ["a red gem"]


def test_tileset_sprites_are_numbered_across_sheets_and_doubled_sheets_are_reduced():
    big = np.kron(BOTTLE, np.ones((2, 2, 1), np.uint8))  # a pixel-doubled 32x32 sprite
    config = {"tile_info": [{"width": 16, "height": 16}], "tiles-new": [
        {"file": "a.png", "tiles": [{"id": "gun", "fg": 1}]},
        {"file": "b.png", "sprite_width": 32, "sprite_height": 32, "tiles": [{"id": "bottle", "fg": [2]}]}]}
    sheets = {"a.png": np.concatenate([RING, GUN], axis=1), "b.png": np.concatenate([big, big * 0], axis=1)}
    found = dict(tilesets.tileset_sprites(config, sheets))
    assert np.array_equal(found["gun"], GUN) and np.array_equal(found["bottle"], BOTTLE)

import json
import random
import zipfile

import numpy as np
import pytest
from PIL import Image

from pixelcore import data


def sprite(rgb=(200, 30, 30), size=16):
    img = np.zeros((size, size, 4), dtype=np.uint8)
    img[4:12, 4:12, :3] = rgb
    img[4:12, 4:12, 3] = 255
    return img


def save(path, arr, mode="RGBA"):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(arr, "RGBA")
    (img.convert(mode) if mode != "RGBA" else img).save(path)


def test_plain_folder_captions_sizes_and_bad_files(tmp_path):
    save(tmp_path / "default_tool_diamondsword.png", sprite((30, 200, 210)))
    save(tmp_path / "sub" / "wool_red.png", np.full((16, 16, 4), (210, 20, 20, 255), np.uint8),
         mode="P")
    save(tmp_path / "big.png", sprite(size=24))
    save(tmp_path / "doubled.png", sprite((40, 60, 220)).repeat(2, 0).repeat(2, 1))
    save(tmp_path / "gray.png", np.full((16, 16, 4), 128, np.uint8), mode="L")
    (tmp_path / "gray.txt").write_text("a grey stone\n")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    records, report = data.load_textures(tmp_path)
    by_file = {r.source.rsplit("/", 1)[-1]: r for r in records}
    assert (report.loaded, report.skipped_size, report.skipped_unreadable, report.reduced) == (
        4, 1, 1, 1)
    sword = by_file["default_tool_diamondsword.png"]
    assert (sword.name, sword.color, sword.kind) == ("diamond sword", "cyan", "item")
    wool = by_file["wool_red.png"]
    assert (wool.name, wool.color, wool.kind, wool.caption) == ("wool", "red", "block", "red wool")
    assert by_file["gray.png"].caption == "a grey stone" and by_file["gray.png"].name == "stone"
    assert by_file["doubled.png"].pixels.shape == (16, 16, 4)
    assert report.warnings and "broken.png" in report.warnings[0]
    assert "loaded 4" in report.summary()


def test_metadata_jsonl_overrides_file_name(tmp_path):
    save(tmp_path / "imgs" / "a.png", sprite())
    rows = [{"file_name": "imgs/a.png", "text": "a crimson ruby", "kind": "block", "name": "ruby"}]
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (record,), _ = data.load_textures(tmp_path)
    assert (record.caption, record.name, record.kind, record.color) == (
        "a crimson ruby", "ruby", "block", "red")
    assert record.style is None


def test_metadata_style_is_kept_on_the_record(tmp_path):
    save(tmp_path / "a.png", sprite())
    (tmp_path / "metadata.jsonl").write_text(json.dumps(
        {"file_name": "a.png", "text": "a red ruby, silk icon style", "name": "ruby", "style": "silk"}) + "\n")
    (record,), _ = data.load_textures(tmp_path)
    assert (record.name, record.style) == ("ruby", "silk")


def test_resource_pack_zip_kind_from_folder(tmp_path):
    pack = tmp_path / "pack.zip"
    src = tmp_path / "src"
    save(src / "a.png", np.full((16, 16, 4), 255, np.uint8))
    save(src / "b.png", sprite())
    with zipfile.ZipFile(pack, "w") as zf:
        zf.write(src / "a.png", "MyPack/assets/minecraft/textures/block/snow.png")
        zf.write(src / "b.png", "MyPack/assets/minecraft/textures/item/ruby.png")
        zf.write(src / "b.png", "MyPack/assets/minecraft/textures/gui/widgets.png")
        zf.writestr("MyPack/pack.mcmeta", "{}")
    records, report = data.load_textures(pack)
    kinds = sorted((r.name, r.kind) for r in records)
    assert kinds == [("ruby", "item"), ("snow", "block")]
    assert report.loaded == 2


def test_missing_or_empty_dataset_raises_clear_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        data.load_textures(tmp_path / "nope")
    save(tmp_path / "huge.png", sprite(size=64))
    with pytest.raises(ValueError, match="no usable 16x16"):
        data.load_textures(tmp_path)


def test_hue_shift_augment_recolours_and_recaptions():
    red = data.TextureRecord(sprite(), "wool", "red", "block", "dark red wool", "x.png")
    gray = data.TextureRecord(sprite((128, 128, 128)), "stone", "gray", "block", "stone", "y")
    gold = data.TextureRecord(sprite((240, 190, 30)), "gold ingot", "gold", "item", "gold ingot",
                              "z")
    out = data.hue_shift_augment([red, gray, gold], shifts=(120, 240))
    copies = out[3:]
    assert out[:3] == [red, gray, gold]
    assert {c.color for c in copies if c.source.startswith("x.png")} == {"green", "blue"}
    assert any(c.caption == "green wool" for c in copies)
    assert all(c.name in ("wool", "gold ingot") for c in copies)
    assert any(c.caption.endswith("gold ingot") and c.caption != "gold ingot" for c in copies)
    one_each = data.hue_shift_augment([red], shifts=(120, 240), rng=random.Random(0))
    assert len(one_each) == 2


def test_hue_target_augment_gives_each_colour_word_one_copy():
    # A bright red sprite lands on every chromatic word except red itself; a dull one cannot reach pink or gold.
    red = data.TextureRecord(sprite((230, 60, 60)), "apple", "red", "item", "red apple", "x.png")
    gray = data.TextureRecord(sprite((128, 128, 128)), "stone", "gray", "block", "stone", "y")
    out = data.hue_target_augment([red, gray])
    assert out[:2] == [red, gray]
    copies = out[2:]
    found = [c.color for c in copies]
    assert len(found) == len(set(found)), "one copy per colour word"
    assert set(found) == {"orange", "gold", "yellow", "green", "cyan", "blue", "purple", "pink"}
    assert all(c.source.startswith("x.png#hue") and c.name == "apple" for c in copies)
    assert {c.caption for c in copies} >= {"orange apple", "cyan apple"}
    dull = data.TextureRecord(sprite((110, 20, 20)), "apple", "red", "item", "red apple", "d")
    assert "pink" not in {c.color for c in data.hue_target_augment([dull])[1:]}

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


def _png(arr):
    import io

    buf = io.BytesIO()
    Image.fromarray(arr, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def _zip_with(path, members):
    """A zip of (name, bytes) members, stored uncompressed so that each one's bytes can be patched."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, payload in members:
            zf.writestr(name, payload)
    return path


def _patch_member(path, name, local=None, central=None):
    """Patches header fields of one member: ``local``/``central`` map a byte offset in that header to bytes."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    for offset, value in (local or {}).items():
        raw[info.header_offset + offset:info.header_offset + offset + len(value)] = value
    start = raw.index(b"PK\x01\x02" + bytes(raw[raw.index(b"PK\x01\x02") + 4:][:0]))
    while True:  # walk the central directory to this member's entry
        name_len = int.from_bytes(raw[start + 28:start + 30], "little")
        if raw[start + 46:start + 46 + name_len] == name.encode():
            break
        extra = int.from_bytes(raw[start + 30:start + 32], "little")
        comment = int.from_bytes(raw[start + 32:start + 34], "little")
        start += 46 + name_len + extra + comment
    for offset, value in (central or {}).items():
        raw[start + offset:start + offset + len(value)] = value
    path.write_bytes(bytes(raw))
    return path


def _damage(kind, path, name):
    """One member made unreadable in the way zip archives go wrong."""
    if kind == "bad_crc":
        raw = bytearray(path.read_bytes())
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(name)
        raw[info.header_offset + 30 + len(name) + 40] ^= 0xFF  # a byte of the stored data
        path.write_bytes(bytes(raw))
    elif kind == "encrypted":
        _patch_member(path, name, local={6: b"\x01\x00"}, central={8: b"\x01\x00"})
    elif kind == "deflate64":
        _patch_member(path, name, local={8: b"\x09\x00"}, central={10: b"\x09\x00"})
    elif kind == "header_name":
        _patch_member(path, name, local={30: b"X"})
    elif kind == "bzip2_garbage":
        _patch_member(path, name, local={8: b"\x0c\x00"}, central={10: b"\x0c\x00"})
    elif kind == "lzma_garbage":
        _patch_member(path, name, local={8: b"\x0e\x00"}, central={10: b"\x0e\x00"})


@pytest.mark.parametrize("kind", ["bad_crc", "encrypted", "deflate64", "header_name", "bzip2_garbage",
                                  "lzma_garbage"])
@pytest.mark.parametrize("target", ["bad.png", "good.txt", "metadata.jsonl"])
def test_every_zip_error_is_a_skip_with_a_warning(tmp_path, kind, target):
    members = [("good.png", _png(sprite())), ("good.txt", b"a red ruby " * 10),
               ("metadata.jsonl", (json.dumps({"file_name": "good.png", "text": "a red gem " * 10}) + "\n").encode()),
               ("bad.png", _png(sprite((30, 30, 200))))]
    path = _zip_with(tmp_path / f"{kind}.zip", members)
    _damage(kind, path, target)
    records, report = data.load_textures(path)
    assert any(r.source.endswith("good.png") for r in records)
    assert any(target[:-4] in w or target in w for w in report.warnings), report.warnings
    if target == "bad.png":
        assert report.skipped_unreadable == 1 and len(records) == 1


def _bomb(path, names, size=64 * 2**20):
    """A zip whose members each inflate to ``size`` bytes of zeros (a few kilobytes compressed)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("good.png", _png(sprite()))
        for name in names:
            with zf.open(name, "w", force_zip64=True) as member:
                chunk = b"\0" * 2**20
                for _ in range(size // len(chunk)):
                    member.write(chunk)
    return path


def _load_traced(path):
    """load_textures(path) and the peak of the memory Python allocated while it ran."""
    import tracemalloc

    tracemalloc.start()
    try:
        records, report = data.load_textures(path)
        return records, report, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_huge_members_are_refused_without_being_read(tmp_path):
    path = _bomb(tmp_path / "bomb.zip", ["huge.png", "good.txt", "metadata.jsonl"])
    assert path.stat().st_size < 2**20
    records, report, peak = _load_traced(path)
    assert peak < 8 * 2**20
    assert [r.source.rsplit("/", 1)[-1] for r in records] == ["good.png"]
    assert records[0].caption == "good"  # the 64 MiB sidecar caption was not used
    text = "\n".join(report.warnings)
    assert "huge.png" in text and "good.txt" in text and "metadata.jsonl" in text
    assert report.skipped_unreadable == 1


def test_lying_size_fields_do_not_bypass_the_caps(tmp_path):
    """A member whose headers claim 100 bytes but whose deflate stream inflates to 64 MiB."""
    path = _bomb(tmp_path / "liar.zip", ["liar.png"])
    small = (100).to_bytes(4, "little")
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("liar.png")
    # zip64 sizes sit in the extra fields; point both records at a small size instead of 0xFFFFFFFF
    _patch_member(path, "liar.png", local={22: small}, central={24: small})
    assert path.read_bytes() != raw and info.file_size == 64 * 2**20
    records, report, peak = _load_traced(path)
    assert peak < 8 * 2**20 and len(records) == 1 and report.skipped_unreadable == 1


@pytest.mark.parametrize("row", [
    {"file_name": "a.png", "text": 5}, {"file_name": "a.png", "kind": ["item"]}, {"file_name": 7},
    {"file_name": "a.png", "name": {"x": 1}}, {"file_name": "a.png", "color": True}, [1, 2], "a.png", None,
    {"file_name": "a.png", "style": 3},
    {"file_name": "a.png", "text": "x" * 5000}, {"file_name": ""},
])
def test_metadata_rows_of_the_wrong_types_are_skipped_with_a_warning(tmp_path, row):
    save(tmp_path / "a.png", sprite())
    deep = '{"file_name": "a.png", "text": ' + "[" * 30000 + "]" * 30000 + "}"
    lines = [json.dumps(row), deep, "x" * 200_000, json.dumps({"file_name": "a.png", "name": "ruby"})]
    (tmp_path / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    (record,), report = data.load_textures(tmp_path)
    assert record.name == "ruby"  # the good last row still applies
    assert len([w for w in report.warnings if "metadata.jsonl" in w]) == 3


def test_a_long_sidecar_caption_is_ignored(tmp_path):
    save(tmp_path / "ruby.png", sprite())
    (tmp_path / "ruby.txt").write_text("a red ruby " * 1000)
    (record,), report = data.load_textures(tmp_path)
    assert record.caption == "ruby" and "ruby.txt" in report.warnings[0]


def _png16(mode, values):
    """A 16-bit PNG written by hand: greyscale (colour type 0) or RGBA (6), big-endian samples."""
    import struct
    import zlib

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    height, width = values.shape[:2]
    colour_type = {"grey": 0, "rgba": 6}[mode]
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in values.reshape(height, -1))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_16_bit_pngs_are_scaled_not_clipped():
    ramp = (np.arange(256, dtype=np.uint32).reshape(16, 16) * 257).astype(np.uint16)  # 0..65535
    grey = data.decode_png(_png16("grey", ramp))
    assert grey.dtype == np.uint8 and grey.shape == (16, 16, 4)
    assert np.array_equal(grey[..., 0], np.arange(256, dtype=np.uint8).reshape(16, 16))
    assert (grey[..., 3] == 255).all() and np.array_equal(grey[..., 0], grey[..., 2])
    rgba16 = np.stack([ramp, 65535 - ramp, ramp, np.full_like(ramp, 65535)], axis=-1)
    rgba = data.decode_png(_png16("rgba", rgba16))
    assert np.array_equal(rgba[..., 0], np.arange(256, dtype=np.uint8).reshape(16, 16))
    assert np.array_equal(rgba[..., 1], 255 - np.arange(256, dtype=np.uint8).reshape(16, 16))


def test_images_too_large_or_of_32_bit_modes_are_refused():
    import io

    buf = io.BytesIO()
    Image.new("L", (4096, 4096)).save(buf, format="PNG")  # 16M pixels in a few kilobytes
    with pytest.raises(ValueError, match="4096x4096"):
        data.decode_png(buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16), 70000, np.int32), "I").save(buf, format="TIFF")
    with pytest.raises(ValueError, match="32-bit"):
        data.decode_png(buf.getvalue())

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from pixelcore import luanti

ROOT = "./usr/share/games/minetest"


def png_bytes(arr):
    buf = io.BytesIO()
    Image.fromarray(arr, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def sword():
    img = np.zeros((16, 16, 4), dtype=np.uint8)
    img[2:14, 7:9] = (30, 200, 210, 255)
    return img


def tar_xz(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for name, payload in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def ar_archive(members):
    out = bytearray(b"!<arch>\n")
    for name, payload in members:
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(payload):<10}`\n"
        out += header.encode("ascii") + payload + (b"\n" if len(payload) % 2 else b"")
    return bytes(out)


def make_deb(path, package, files):
    control = tar_xz({"./control": f"Package: {package}\nVersion: 1.0-1\n".encode()})
    path.write_bytes(ar_archive([("debian-binary", b"2.0\n"), ("control.tar.xz", control),
                                 ("data.tar.xz", tar_xz(files))]))


COPYRIGHT = (b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
             b"Files: *\nCopyright: someone\nLicense: LGPL-2.1+\n\n"
             b"Files: */textures/*\nCopyright: artist\nLicense: CC-BY-SA-3.0\n\n"
             b"Files: debian/*\nCopyright: packager\nLicense: GPL-2+\n")


def test_build_from_fake_debs(tmp_path):
    debs = tmp_path / "debs"
    debs.mkdir()
    mods = f"{ROOT}/games/minetest_game/mods"
    make_deb(debs / "minetest-data_1.0-1_all.deb", "minetest-data", {
        f"{mods}/default/textures/default_tool_diamondsword.png": png_bytes(sword()),
        f"{mods}/default/textures/default_copy.png": png_bytes(sword()),  # duplicate pixels
        f"{mods}/wool/textures/wool_red.png": png_bytes(
            np.full((32, 32, 4), (210, 20, 20, 255), np.uint8)),
        f"{mods}/default/textures/default_big.png": png_bytes(np.zeros((24, 24, 4), np.uint8)),
        f"{ROOT}/games/devtest/mods/basetools/textures/basetools_x.png": png_bytes(sword()[::-1]),
        f"{ROOT}/textures/base/pack/menu.png": png_bytes(sword()[:, ::-1]),
        "./usr/share/doc/minetest-data/copyright": COPYRIGHT,
    })
    out = tmp_path / "out"
    report = luanti.build_luanti_dataset(debs, out)
    assert report.per_package == {"minetest-data": 2}
    assert (report.duplicates, report.reduced, report.skipped_size) == (1, 1, 1)
    rows = {r["name"]: r for r in map(json.loads, (out / "metadata.jsonl").read_text().splitlines())}
    assert set(rows) == {"diamond sword", "wool"}
    assert rows["diamond sword"]["text"] == "a cyan diamond sword"
    assert rows["diamond sword"]["text_zh"] == "一把青色的钻石剑"
    assert (rows["wool"]["color"], rows["wool"]["kind"], rows["wool"]["mod"]) == ("red", "block", "wool")
    assert Image.open(out / rows["wool"]["file_name"]).size == (16, 16)
    attribution = (out / "ATTRIBUTION.md").read_text()
    assert "minetest-data 1.0-1" in attribution and "CC-BY-SA-3.0" in attribution
    assert "GPL-2+" not in attribution
    assert not list(tmp_path.glob(".out.*"))


def test_ore_overlays_and_leaves_are_also_rendered_as_blocks(tmp_path):
    debs = tmp_path / "debs"
    debs.mkdir()
    tex = f"{ROOT}/games/minetest_game/mods/default/textures"
    stone = np.full((16, 16, 4), (110, 110, 110, 255), np.uint8)
    ore = np.zeros((16, 16, 4), np.uint8)
    ore[4:8, 4:8] = (40, 60, 230, 255)
    leaves = np.zeros((16, 16, 4), np.uint8)
    leaves[::2] = (30, 160, 40, 255)  # every other row is a hole, black underneath
    make_deb(debs / "minetest-data_1.0-1_all.deb", "minetest-data", {
        f"{tex}/default_stone.png": png_bytes(stone),
        f"{tex}/default_mineral_sapphire.png": png_bytes(ore),
        f"{tex}/default_leaves.png": png_bytes(leaves),
    })
    out = tmp_path / "out"
    report = luanti.build_luanti_dataset(debs, out)
    assert (report.rendered, report.total) == (2, 5)
    rows = {r["name"]: r for r in map(json.loads, (out / "metadata.jsonl").read_text().splitlines())}
    ore_block = rows["stone with sapphire ore"]
    assert (ore_block["kind"], ore_block["text"]) == ("block", "gray stone with sapphire ore block")
    pixels = np.array(Image.open(out / ore_block["file_name"]))
    assert (pixels[..., 3] == 255).all()
    assert tuple(pixels[5, 5]) == (40, 60, 230, 255) and tuple(pixels[0, 0]) == (110, 110, 110, 255)
    leaf_rows = [r for r in rows.values() if r["file_name"].endswith("_opaque.png")]
    assert [(r["name"], r["kind"]) for r in leaf_rows] == [("leaves", "block")]
    opaque = np.array(Image.open(out / leaf_rows[0]["file_name"]))
    assert (opaque[..., 3] == 255).all() and tuple(opaque[1, 0]) == (0, 0, 0, 255)
    assert "composites" in (out / "ATTRIBUTION.md").read_text()


def test_failed_build_keeps_previous_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    debs = tmp_path / "debs"
    debs.mkdir()
    (debs / "broken.deb").write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="not an ar archive"):
        luanti.build_luanti_dataset(debs, out)
    assert (out / "keep.txt").read_text() == "old"
    assert not list(tmp_path.glob(".out.*"))
    with pytest.raises(ValueError, match="no .deb"):
        luanti.build_luanti_dataset(tmp_path / "empty", out)


def test_unsupported_compression_is_named():
    with pytest.raises(ValueError, match="zst"):
        luanti.open_member_tar("data.tar.zst", b"", "x.deb")


def test_download_debs_without_apt(monkeypatch, tmp_path):
    monkeypatch.setattr(luanti.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get not found"):
        luanti.download_debs(tmp_path)
    assert "minetest-data" in luanti.LUANTI_PACKAGES


@pytest.mark.parametrize("package", ["../../escaped", "/tmp/abs", "a/../../b", "..", "UPPER", "x" * 300, ""])
def test_a_package_name_can_never_write_outside_the_output(tmp_path, package):
    work = tmp_path / "work"
    debs = work / "debs"
    debs.mkdir(parents=True)
    make_deb(debs / "evil_1.0_all.deb", package,
             {f"{ROOT}/games/minetest_game/mods/default/textures/default_tool_steelsword.png": png_bytes(sword())})
    before = {p for p in tmp_path.rglob("*")}
    with pytest.raises(ValueError, match="evil_1.0_all.deb.*Package"):
        luanti.build_luanti_dataset(debs, work / "deep" / "out")
    assert {p for p in tmp_path.rglob("*")} - before <= {work / "deep"}  # nothing written but the out parent


def test_oversized_and_corrupt_package_members_are_refused(tmp_path):
    debs = tmp_path / "debs"
    debs.mkdir()
    textures = f"{ROOT}/games/minetest_game/mods/default/textures"
    big = png_bytes(sword()) + b"\0" * (2 * 2**20)  # a PNG with two megabytes after its end
    make_deb(debs / "minetest-data_1.0-1_all.deb", "minetest-data",
             {f"{textures}/default_tool_steelsword.png": png_bytes(sword()),
              f"{textures}/default_huge.png": big,
              f"{textures}/weird name$%\u00e9.png": png_bytes(np.roll(sword(), 3, axis=1))})
    report = luanti.build_luanti_dataset(debs, tmp_path / "out")
    assert report.total == 2 and report.unreadable == 1
    names = sorted(p.name for p in (tmp_path / "out" / "minetest-data").iterdir())
    assert names == ["default_tool_steelsword.png", "weird_name___.png"]
    negative = ar_archive([("debian-binary", b"2.0\n")]).replace(b"4         `", b"-60       `")
    (debs / "negative_1_all.deb").write_bytes(negative)
    with pytest.raises(ValueError, match="corrupt ar member size"):
        luanti.build_luanti_dataset(debs, tmp_path / "out2")

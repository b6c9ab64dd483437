"""Game packs: the layout written, the round trip through the pack importer, adding to a pack, hostile names."""

import json
import logging
import zipfile

import numpy as np
import pytest
from PIL import Image

from pixelcore.cli import main
from pixelcore.data import load_textures
from pixelcore.export import (PACK_FORMAT, PackTexture, export_pack, parse_mapping, read_texture, sanitize_name,
                              texture_names)

from conftest import make_texture


def textures():
    return [PackTexture("red_sword", make_texture((200, 30, 30), "item", 1), "item"),
            PackTexture("Blue Wool", make_texture((30, 30, 200), "block", 2), "block"),
            PackTexture("golden_pickaxe", make_texture((230, 210, 40), "item", 3), "item")]


def imported(pack):
    records, _ = load_textures(pack)
    return {r.source.rsplit("/", 1)[-1][:-4]: r for r in records}


def files_under(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_minecraft_pack_layout(tmp_path):
    pack = tmp_path / "pack"
    report = export_pack(textures(), pack, namespace="mytex")
    assert files_under(pack) == [
        "assets/mytex/items/blue_wool.json", "assets/mytex/items/golden_pickaxe.json",
        "assets/mytex/items/red_sword.json",
        "assets/mytex/models/block/blue_wool.json", "assets/mytex/models/item/blue_wool.json",
        "assets/mytex/models/item/golden_pickaxe.json", "assets/mytex/models/item/red_sword.json",
        "assets/mytex/textures/block/blue_wool.png", "assets/mytex/textures/item/golden_pickaxe.png",
        "assets/mytex/textures/item/red_sword.png", "pack.mcmeta", "pack.png"]
    assert report.written["blue_wool"] == "assets/mytex/textures/block/blue_wool.png"
    assert json.loads((pack / "pack.mcmeta").read_text())["pack"]["pack_format"] == PACK_FORMAT
    models = pack / "assets/mytex/models"
    assert json.loads((models / "item/red_sword.json").read_text()) == {
        "parent": "minecraft:item/generated", "textures": {"layer0": "mytex:item/red_sword"}}
    assert json.loads((models / "block/blue_wool.json").read_text()) == {
        "parent": "minecraft:block/cube_all", "textures": {"all": "mytex:block/blue_wool"}}
    assert json.loads((models / "item/blue_wool.json").read_text()) == {"parent": "mytex:block/blue_wool"}
    assert json.loads((pack / "assets/mytex/items/red_sword.json").read_text()) == {
        "model": {"type": "minecraft:model", "model": "mytex:item/red_sword"}}
    with Image.open(pack / "pack.png") as sheet:
        assert sheet.width == sheet.height >= 64


@pytest.mark.parametrize("out", ["pack", "pack.zip"])
def test_minecraft_pack_round_trips_through_the_importer(tmp_path, out):
    export_pack(textures(), tmp_path / out)
    back = imported(tmp_path / out)
    assert sorted(back) == ["blue_wool", "golden_pickaxe", "red_sword"]
    for texture in textures():
        record = back[sanitize_name(texture.name)]
        assert np.array_equal(record.pixels, texture.pixels) and record.kind == texture.kind
    if out.endswith(".zip"):
        with zipfile.ZipFile(tmp_path / out) as archive:
            assert "pack.mcmeta" in archive.namelist()


def test_luanti_pack_renames_mapped_textures_and_keeps_kinds(tmp_path):
    items = textures()
    items[0].kind = "block"  # a kind the transparency would not give: only the PNG text can carry it back
    pack = tmp_path / "luanti"
    export_pack(items, pack, fmt="luanti", namespace="mytex",
                mapping=parse_mapping("red_sword = default_tool_steelsword.png, blue_wool=wool_blue"))
    assert files_under(pack) == ["default_tool_steelsword.png", "golden_pickaxe.png", "screenshot.png",
                                 "texture_pack.conf", "wool_blue.png"]
    assert "name = mytex" in (pack / "texture_pack.conf").read_text().splitlines()
    back = imported(pack)
    assert back["default_tool_steelsword"].kind == "block" and back["golden_pickaxe"].kind == "item"
    assert np.array_equal(back["wool_blue"].pixels, items[1].pixels)


@pytest.mark.parametrize("out", ["pack", "pack.zip"])
def test_an_existing_pack_is_added_to_never_overwritten(tmp_path, out):
    pack = tmp_path / out
    export_pack(textures()[:1], pack)
    if out == "pack":
        (pack / "pack.png").write_bytes(b"the pack's own icon")
    first = textures()[0]
    redrawn = PackTexture(first.name, np.ascontiguousarray(first.pixels[::-1]), "item")
    report = export_pack([first, redrawn, textures()[1]], pack)
    assert report.skipped == ["red_sword"] and report.renamed == {"red_sword": "red_sword_2"}
    back = imported(pack)
    assert np.array_equal(back["red_sword"].pixels, first.pixels)
    assert np.array_equal(back["red_sword_2"].pixels, redrawn.pixels) and "blue_wool" in back
    if out == "pack":
        assert (pack / "pack.png").read_bytes() == b"the pack's own icon"


@pytest.mark.parametrize("name, expected", [
    ("../../escaped", "escaped"), ("/etc/passwd", "etc_passwd"), ("..\\..\\win", "win"),
    ("a/b/../c", "a_b_c"), ("Épée Dorée", "epee_doree"), ("x" * 300, "x" * 64), ("sword.png", "sword_png")])
def test_hostile_names_stay_inside_the_pack(tmp_path, name, expected):
    pack = tmp_path / "inside" / "pack"
    export_pack([PackTexture(name, make_texture((30, 30, 200), "item"), "item")], pack,
                namespace="../../ns")
    assert sanitize_name(name) == expected
    assert {p.relative_to(tmp_path).parts[:2] for p in tmp_path.rglob("*") if p.is_file()} == {("inside", "pack")}
    assert (pack / "assets" / "ns" / "textures" / "item" / f"{expected}.png").is_file()


def test_names_and_outputs_that_cannot_work_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no letters or digits"):
        export_pack([PackTexture("../..", make_texture((1, 2, 3), "item"), "item")], tmp_path / "p")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="not a minecraft pack"):
        export_pack(textures(), tmp_path / "photos")
    export_pack(textures(), tmp_path / "lu", fmt="luanti")
    with pytest.raises(ValueError, match="not a minecraft pack"):
        export_pack(textures(), tmp_path / "lu")
    with pytest.raises(ValueError, match="has no '='"):
        parse_mapping("red_sword default_tool_steelsword")
    assert not (tmp_path / "p").exists()


def test_cli_takes_kinds_from_the_png_text_unless_told(tmp_path, saved_tiny_model, caplog):
    png = tmp_path / "a_blue_sword.png"
    assert main(["generate", "a blue sword", "-o", str(png), "--model", str(saved_tiny_model), "--steps", "2",
                 "--device", "cpu"]) == 0
    kind = read_texture(png).text["pixelcore_kind"]
    other = "block" if kind == "item" else "item"
    assert main(["export-pack", "-o", str(tmp_path / "mc.zip"), str(png)]) == 0
    assert main(["export-pack", "-o", str(tmp_path / "mc2"), "--kind", other, "--namespace", "Mine Tex",
                 str(png)]) == 0
    assert [r.kind for r in load_textures(tmp_path / "mc.zip")[0]] == [kind]
    (record,) = load_textures(tmp_path / "mc2")[0]
    assert record.kind == other and f"mine_tex/textures/{other}/a_blue_sword.png" in record.source
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert main(["export-pack", "-o", str(tmp_path / "x"), "--map", "a=b", str(png)]) == 2
        assert main(["export-pack", "-o", str(tmp_path / "x"), "--namespace", "...", str(png)]) == 2
        assert main(["export-pack", "-o", str(tmp_path / "x"), str(tmp_path / "missing.png")]) == 2
    assert "add --format luanti" in caplog.text and "no letters or digits" in caplog.text
    assert "not a readable image" in caplog.text and not (tmp_path / "x").exists()


def test_the_minecraft_namespace_replaces_vanilla_textures_only(tmp_path):
    export_pack(textures()[:2], tmp_path / "vanilla", namespace="minecraft")
    assert files_under(tmp_path / "vanilla") == ["assets/minecraft/textures/block/blue_wool.png",
                                                 "assets/minecraft/textures/item/red_sword.png", "pack.mcmeta",
                                                 "pack.png"]


def test_batch_names_come_from_the_given_names_or_the_prompts():
    assert texture_names(2, "ruby, emerald") == ["ruby", "emerald"]
    assert texture_names(3, "gem") == ["gem"] * 3
    assert texture_names(2, "", ["a red sword", "一把蓝色的钻石剑"]) == ["red sword", "texture"]
    assert texture_names(2, "", ["one prompt for another batch"]) == ["texture", "texture"]
    with pytest.raises(ValueError, match="one name per texture"):
        texture_names(3, "a, b")

"""The templates in example_workflows/ as the template browser and the canvas show them, from the UI JSON alone:
human titles (ComfyUI 0.3.75's browser shows a custom-node template's file name as its title and, with - and _
as spaces, as its description), a thumbnail beside each, nodes that do not overlap as LiteGraph draws them (the
title bar above ``pos``), and a saved view that frames the whole graph in a 1600-pixel-wide window at a zoom
where the canvas still draws text, with no node under the minimap. test_browser.py checks the same graphs in
the real frontend.
"""

import itertools
import json
import re
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / "example_workflows").glob("*.json"))
TITLE_H = 30  # LiteGraph.NODE_TITLE_HEIGHT
MIN_GAP = 20
CANVAS = (1600, 860)  # the canvas of a 1600 x 1000 browser window
# Free of the side bar (left), the tab bar and floating menus (top); the zoom buttons sit below.
FRAME = (58, 90, 1600, 800)
MINIMAP = (1330, 590, 1600, 860)  # shown at the bottom right by default: no node under it
# Below this zoom the canvas draws nodes without text (LiteGraph.Canvas.MinFontSizeForLOD 8 / text size 14).
MIN_READABLE_SCALE = 8 / 14


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def rect(node):
    x, y = node["pos"]
    w, h = node["size"]
    return x, y - TITLE_H, x + w, y + h


def test_there_are_templates_and_no_old_folder():
    assert len(WORKFLOWS) >= 8 and not (ROOT / "workflows").exists()


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_title_is_human_and_thumbnail_is_beside_it(path):
    title = path.stem
    assert re.fullmatch(r"[A-Z][A-Za-z0-9 ,.()]+", title) and " " in title, title  # safe on every file system
    with Image.open(path.with_suffix(".jpg")) as thumb:
        assert thumb.format == "JPEG" and thumb.width == thumb.height >= 256


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_nodes_do_not_overlap_as_drawn(path):
    nodes = load(path)["nodes"]
    for a, b in itertools.combinations(nodes, 2):
        (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = rect(a), rect(b)
        apart = (ax1 + MIN_GAP <= bx0 or bx1 + MIN_GAP <= ax0 or ay1 + MIN_GAP <= by0 or by1 + MIN_GAP <= ay0)
        assert apart, f"{a['type']} #{a['id']} and {b['type']} #{b['id']} overlap in {path.name}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_saved_view_frames_the_graph_readably(path):
    workflow = load(path)
    ds = workflow["extra"]["ds"]
    scale, (dx, dy) = ds["scale"], ds["offset"]
    assert MIN_READABLE_SCALE <= scale <= 1.0
    rects = [rect(node) for node in workflow["nodes"]]
    left, top = min(r[0] for r in rects), min(r[1] for r in rects)
    right, bottom = max(r[2] for r in rects), max(r[3] for r in rects)
    screen = ((left + dx) * scale, (top + dy) * scale, (right + dx) * scale, (bottom + dy) * scale)
    assert FRAME[0] <= screen[0] and FRAME[1] <= screen[1], (screen, FRAME)
    assert screen[2] <= FRAME[2] and screen[3] <= FRAME[3], (screen, FRAME)
    for node, (x0, y0, x1, y1) in zip(workflow["nodes"], rects):
        x0, y0, x1, y1 = (x0 + dx) * scale, (y0 + dy) * scale, (x1 + dx) * scale, (y1 + dy) * scale
        under = x0 < MINIMAP[2] and MINIMAP[0] < x1 and y0 < MINIMAP[3] and MINIMAP[1] < y1
        assert not under, f"{node['type']} #{node['id']} is under the minimap"

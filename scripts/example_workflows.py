"""Finishes the templates in example_workflows/ with the real ComfyUI frontend (headless Chromium).

    PYTHONPATH=.:tests python scripts/example_workflows.py [--layout] [--lora-dir DIR] [--screenshots docs/images]
        [NAME.json ...]

For every workflow it starts a ComfyUI server with this pack (tests/comfyui_harness.py), brings each node's
output list up to date with the node as the server defines it (an output a node gained is added, unlinked),
loads the workflow in the real frontend, queues it with the shipped default model, and writes ``<name>.jpg``
beside it from the textures the run saved (the template browser's thumbnail). With ``--layout`` it first
measures the size each node needs as the frontend draws it (after a run, so nodes that show pictures have them),
places the nodes in columns by their distance from the graph's inputs, each at least that large and none
overlapping, and stores a view (``extra.ds``) that frames the graph in a 1600-pixel-wide window. A workflow whose
LoRA adapter is not in ``--lora-dir`` is not run: its outputs are brought up to date, its layout and thumbnail
are kept. ``--screenshots`` also takes the pictures of README.md and docs/COMFYUI_USAGE.md: a template after its
run, a node's preview and the template browser.

Needs Debian's chromium and chromium-driver (apt-get) and selenium (pip), like tests/test_browser.py.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from browser_harness import Page, history_ids, wait_new_history
from comfyui_harness import ComfyServer
from pixelcore.images import preview

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "example_workflows"
TITLE_H = 30  # LiteGraph draws a node's title bar above its pos
GAP_X, GAP_Y = 70, 40
# Where a graph is framed in a 1600 x 860 canvas: clear of the side bar, the tab bar and the zoom buttons, and
# no node under the minimap the frontend shows at the bottom right.
VIEW = (70, 100, 1580, 780)
MINIMAP = (1330, 590, 1600, 860)
MAX_SCALE = 1.0
MIN_SCALE = 0.6  # below about 0.57 the canvas draws nodes without their text
THUMB = 512
LORA = "PixelCore_LoadLoRA"
# Nodes whose picture the frontend draws inside them: room for it, so a run does not grow them over others.
# Room for a widget value people read (the model's name, the prompt).
READABLE = {"PixelCore_LoadPixelModel": (340, 0), "PixelCore_EncodePrompt": (320, 170)}
TITLE_ROOM = 60  # the title's start and its collapse dot
PICTURE_NODES = {"PreviewImage": (320, 380), "PixelCore_SaveTextureRGBA": (320, 400),
                 "PixelCore_PaletteDecode": (260, 320), "PixelCore_SaveResourcePack": (320, 520),
                 "PixelCore_TilePreview": (300, 360)}


# --- layout ------------------------------------------------------------------------------------------------

def columns(workflow: dict) -> dict[int, int]:
    """Each node's column: its longest distance from a node without inputs; a node without inputs (a loader,
    a mask maker) sits just left of the first node it feeds."""
    inputs, outputs = defaultdict(set), defaultdict(set)
    for _, src, _, dst, _, _ in workflow["links"]:
        inputs[dst].add(src)
        outputs[src].add(dst)
    column: dict[int, int] = {}

    def depth(node_id: int) -> int:
        if node_id not in column:
            column[node_id] = 1 + max((depth(src) for src in inputs[node_id]), default=-1)
        return column[node_id]

    for node in workflow["nodes"]:
        depth(node["id"])
    for node in workflow["nodes"]:
        if not inputs[node["id"]] and outputs[node["id"]]:
            column[node["id"]] = max(0, min(column[dst] for dst in outputs[node["id"]]) - 1)
    return column


def layout(workflow: dict, needs: dict[int, tuple[float, float]]) -> dict:
    """Sizes (at least what each node needs) and positions in columns, top-aligned, ordered by the mean row of
    the nodes feeding them; then a view that frames the graph."""
    column = columns(workflow)
    nodes = {node["id"]: node for node in workflow["nodes"]}
    feeders = defaultdict(list)
    for _, src, _, dst, _, _ in workflow["links"]:
        feeders[dst].append(src)
    x, row = 0.0, {}
    for col in sorted(set(column.values())):
        ids = [i for i in nodes if column[i] == col]
        ids.sort(key=lambda i: (sum(row.get(s, 0) for s in feeders[i]) / max(1, len(feeders[i])), i))
        y, width = float(TITLE_H), 0.0
        for rank, node_id in enumerate(ids):
            node = nodes[node_id]
            want = PICTURE_NODES.get(node["type"]) or READABLE.get(node["type"], (0, 0))
            w, h = (math.ceil(max(a, b)) for a, b in zip(needs[node_id], want))
            node["pos"], node["size"] = [round(x), round(y)], [w, h]
            row[node_id] = y
            y += h + TITLE_H + GAP_Y
            width = max(width, w)
        x += width + GAP_X
    workflow.setdefault("extra", {})["ds"] = view(workflow["nodes"])
    return workflow


def bounds(nodes: list[dict]) -> tuple[float, float, float, float]:
    """The rectangle the nodes cover as drawn, title bars included."""
    rects = [_rect(node) for node in nodes]
    return (min(r[0] for r in rects), min(r[1] for r in rects), max(r[2] for r in rects), max(r[3] for r in rects))


def view(nodes: list[dict], area=VIEW, minimap=MINIMAP) -> dict:
    """``extra.ds`` (screen = (graph + offset) * scale): the largest zoom at which the graph fits in ``area``
    with no node under ``minimap``: the graph centred where it can be, else left- or top-aligned.

    Raises:
        ValueError: when no zoom from 1 down to ``MIN_SCALE`` fits (lay the graph out more compactly).
    """
    left, top, right, bottom = bounds(nodes)
    fit = min(MAX_SCALE, (area[2] - area[0]) / (right - left), (area[3] - area[1]) / (bottom - top))
    for scale in np.arange(math.floor(fit * 100), MIN_SCALE * 100 - 1, -1) / 100:
        centred = ((area[0] + area[2]) / 2 / scale - (left + right) / 2,
                   (area[1] + area[3]) / 2 / scale - (top + bottom) / 2)
        for dx, dy in itertools.product((centred[0], area[0] / scale - left), (centred[1], area[1] / scale - top)):
            screen = [((x0 + dx) * scale, (y0 + dy) * scale, (x1 + dx) * scale, (y1 + dy) * scale)
                      for x0, y0, x1, y1 in map(_rect, nodes)]
            if not any(_overlap(r, minimap) for r in screen):
                return {"scale": float(scale), "offset": [round(float(dx), 1), round(float(dy), 1)]}
    raise ValueError("the graph does not fit a 1600-pixel window at a readable zoom: lay it out more compactly")


def _rect(node: dict) -> tuple[float, float, float, float]:
    x, y = node["pos"]
    return x, y - TITLE_H, x + node["size"][0], y + node["size"][1]


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


# --- outputs ------------------------------------------------------------------------------------------------

def sync_outputs(workflow: dict, object_info: dict) -> bool:
    """Gives each node the outputs its type has now (``/object_info``), in order, keeping the links of the ones it
    had; True when something changed.

    Raises:
        ValueError: when a linked output is gone or has moved (its links name a slot: edit the workflow by hand).
    """
    changed = False
    for node in workflow["nodes"]:
        info = object_info[node["type"]]
        had = {output["name"]: (slot, output) for slot, output in enumerate(node.get("outputs", []))}
        outputs = []
        for slot, (name, kind) in enumerate(zip(info["output_name"], info["output"])):
            old_slot, output = had.pop(name, (slot, {"name": name, "type": kind, "links": None}))
            if old_slot != slot and output.get("links"):
                raise ValueError(f"{node['type']} #{node['id']}: the linked output '{name}' moved to slot {slot}")
            outputs.append(output)
        if any(output.get("links") for _, output in had.values()):
            raise ValueError(f"{node['type']} #{node['id']}: linked outputs {sorted(had)} are gone")
        if outputs != node.get("outputs", []):
            node["outputs"], changed = outputs, True
    return changed


def missing_adapters(workflow: dict, object_info: dict) -> list[str]:
    """The adapters a workflow's Load LoRA nodes name that the server does not list."""
    listed = object_info[LORA]["input"]["required"]["lora_name"][0]
    names = [node["widgets_values"][0] for node in workflow["nodes"] if node["type"] == LORA]
    return [name for name in names if name not in listed]


# --- thumbnails --------------------------------------------------------------------------------------------

def thumbnail(textures: list[np.ndarray]) -> Image.Image:
    """The textures a run saved (at most 9), each enlarged nearest-neighbour on a checkerboard, in a grid
    centred on a dark square."""
    small = [t for t in textures if t.shape[:2] == (16, 16)][:9]
    cols = math.ceil(math.sqrt(len(small)))
    rows = math.ceil(len(small) / cols)
    gap = 24
    scale = (THUMB - gap * (cols + 1)) // (16 * cols)
    side = 16 * scale
    canvas = Image.new("RGB", (THUMB, THUMB), (32, 33, 38))
    top = (THUMB - rows * side - (rows - 1) * gap) // 2
    for index, texture in enumerate(small):
        row, col = divmod(index, cols)
        in_row = min(cols, len(small) - row * cols)
        left = (THUMB - in_row * side - (in_row - 1) * gap) // 2
        shown = preview(texture, side)
        canvas.paste(Image.fromarray(shown), (left + col * (side + gap), top + row * (side + gap)))
    return canvas


def saved_textures(server: ComfyServer, entry: dict) -> list[np.ndarray]:
    """Every texture the run's save nodes wrote, in node order."""
    found = []
    for node_id in sorted(entry["outputs"], key=int):
        for image in entry["outputs"][node_id].get("textures", []):
            found.append(np.array(server.image(image).convert("RGBA")))
    return found


# --- driving the frontend ----------------------------------------------------------------------------------

def run_in_frontend(page: Page, workflow: dict) -> dict:
    page.load_workflow(workflow)
    before = history_ids(page.server)
    page.queue()
    entry = wait_new_history(page.server, before, timeout=300)
    if entry["status"]["status_str"] != "success":
        raise RuntimeError(f"the workflow failed: {json.dumps(entry['status'])[:2000]}")
    page.wait_for_pictures([node_id for node_id, out in entry["outputs"].items() if out.get("images")])
    return entry


def measured_needs(page: Page) -> dict[int, tuple[float, float]]:
    """The size each node needs as drawn: its widgets, slots and pictures, and its whole title."""
    return {n["id"]: (max(n["needs"][0], n["title_width"] + TITLE_ROOM), n["needs"][1]) for n in page.nodes()}


def finish(page: Page, path: Path, workflow: dict, relayout: bool) -> None:
    entry = run_in_frontend(page, workflow)
    if relayout:
        workflow = layout(workflow, measured_needs(page))
        save_workflow(path, workflow)
    thumbnail(saved_textures(page.server, entry)).save(path.with_suffix(".jpg"), quality=90)
    print(f"{path.name}: {len(workflow['nodes'])} nodes, view {workflow['extra']['ds']}")


def save_workflow(path: Path, workflow: dict) -> None:
    path.write_text(json.dumps(workflow, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def screenshots(page: Page, out: Path) -> None:
    """The docs' pictures: a template after its run in its saved view, Save Texture's preview in the node, and
    the template browser's PixelCore cards."""
    run_in_frontend(page, json.loads((FOLDER / "Texture from a prompt.json").read_text(encoding="utf-8")))
    page.screenshot(out / "workflow_texture.png")
    page.js("""const node = app.graph.nodes.find(n => n.type === 'PixelCore_SaveTextureRGBA');
               const ds = app.canvas.ds; ds.scale = 1.6;
               ds.offset = [app.canvas.canvas.width / 2 / ds.scale - node.pos[0] - node.size[0] / 2,
                            app.canvas.canvas.height / 2 / ds.scale - node.pos[1] - node.size[1] / 2 + 15];
               app.canvas.setDirty(true, true);""")
    page.wait_for("true", 1)
    _crop(page, out / "node_preview.png", 0.5, 0.5, 760, 760)
    page.js("app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    page.wait_for("Array.from(document.querySelectorAll('.p-dialog *')).some(e => e.innerText === 'PixelCore')", 30)
    page.js("""Array.from(document.querySelectorAll('.p-dialog *'))
               .filter(e => e.children.length === 0 && e.innerText === 'PixelCore').forEach(e => e.click());""")
    page.wait_for("document.querySelectorAll('.p-dialog img').length >= 8 && "
                  "Array.from(document.querySelectorAll('.p-dialog img')).every(i => i.complete)", 30)
    page.screenshot(out / "template_browser.png")


def _crop(page: Page, path: Path, cx: float, cy: float, width: int, height: int) -> None:
    shot = Image.open(io.BytesIO(page.driver.get_screenshot_as_png()))
    left, top = int(shot.width * cx - width / 2), int(shot.height * cy - height / 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    shot.crop((left, top, left + width, top + height)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workflows", nargs="*", type=Path, help="default: every example_workflows/*.json")
    parser.add_argument("--layout", action="store_true", help="re-lay out the nodes and the view first")
    parser.add_argument("--lora-dir", type=Path, metavar="DIR",
                        help="the adapters the LoRA template names (folder.safetensors); without it that template "
                             "keeps its thumbnail")
    parser.add_argument("--screenshots", type=Path, metavar="DIR", help="also take the README's pictures here")
    args = parser.parse_args()
    paths = args.workflows or sorted(FOLDER.glob("*.json"))
    with tempfile.TemporaryDirectory(prefix="pixelcore-templates-") as work:
        server = ComfyServer(Path(work), Path(work) / "models", lora_dir=args.lora_dir).start()
        try:
            object_info = server.get_json("/object_info")
            if args.screenshots:  # first: a node that is not an output shows its picture only on a fresh run
                page = Page(server).open()
                try:
                    screenshots(page, args.screenshots)
                finally:
                    page.close()
            for path in paths:
                workflow = json.loads(path.read_text(encoding="utf-8"))
                if sync_outputs(workflow, object_info):
                    save_workflow(path, workflow)
                    print(f"{path.name}: outputs brought up to date")
                if missing := missing_adapters(workflow, object_info):
                    print(f"{path.name}: not run, no adapter {missing} (--lora-dir): thumbnail and layout kept")
                    continue
                page = Page(server).open()  # a fresh page each time: one workflow tab, as a user opens it
                try:
                    finish(page, path, workflow, args.layout)
                finally:
                    page.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()

"""The editing workflows and nodes inside a real ComfyUI server (headless, CPU), driven over its HTTP API.

Shares the session's ``server`` fixture (tests/conftest.py) with test_comfyui_integration.py.
"""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from comfyui_harness import ROOT, TINY, comfyui_installed, execution_error
from pixelcore.checkpoint import load_model
from pixelcore.editing import seam_score

pytestmark = [
    pytest.mark.comfyui,
    pytest.mark.skipif(not comfyui_installed() and not os.environ.get("PIXELCORE_REQUIRE_COMFYUI"),
                       reason="ComfyUI not installed: run scripts/install_comfyui.sh"),
]

EDIT_NODES = ["PixelCore_ImageToTokens", "PixelCore_RegionMask", "PixelCore_Inpaint", "PixelCore_Variations",
              "PixelCore_PaletteLock", "PixelCore_MaskGITSampleAdvanced", "PixelCore_Recolor",
              "PixelCore_TilePreview"]
# Node ids in the editing workflows: 5 saves the source texture, 12 the edited one (see example_workflows/).
SOURCE_SAVE, EDIT, EDIT_SAVE = "5", "10", "12"


@pytest.fixture(scope="module")
def comfy(server):
    return server


@pytest.fixture(scope="module")
def palette(comfy):
    return load_model(comfy.model_dir / TINY).palette


def workflow(name, **changes):
    graph = json.loads((ROOT / "tests" / "workflows_api" / f"{name}.json").read_text(encoding="utf-8"))
    graph["1"]["inputs"]["model_name"] = TINY
    for node_id, inputs in changes.items():
        graph[node_id]["inputs"].update(inputs)
    return graph


def run_ok(comfy, graph):
    entry = comfy.run(graph)
    problem = execution_error(entry) or entry["status"]
    assert entry["status"]["status_str"] == "success", json.dumps(problem)[:3000]
    return entry


def pngs(comfy, entry, node_id):
    outputs = entry["outputs"][node_id]  # Save Texture lists its files under "textures" and shows previews
    return [comfy.image(image) for image in outputs.get("textures", outputs.get("images"))]


def pixels(comfy, entry, node_id):
    return [np.array(png) for png in pngs(comfy, entry, node_id)]


def test_edit_nodes_are_served(comfy):
    for node_id in EDIT_NODES:
        info = comfy.get_json(f"/object_info/{node_id}")[node_id]
        assert info["category"] == "PixelCore/edit", node_id


def test_inpaint_workflow_keeps_pixels_outside_the_region(comfy):
    entry = run_ok(comfy, workflow("Repaint part of a texture"))
    (before,), (after,) = pixels(comfy, entry, SOURCE_SAVE), pixels(comfy, entry, EDIT_SAVE)
    region = np.zeros((16, 16), bool)
    region[4:12, 4:12] = True
    assert after.shape == (16, 16, 4) and np.array_equal(after[~region], before[~region])
    assert pngs(comfy, entry, EDIT_SAVE)[0].text["pixelcore_seed"] == "11"


def test_variations_workflow_changes_at_most_the_strength_share(comfy):
    graph = workflow("Variations of a texture")
    entry = run_ok(comfy, graph)
    (before,), after = pixels(comfy, entry, SOURCE_SAVE), pixels(comfy, entry, EDIT_SAVE)
    assert len(after) == graph[EDIT]["inputs"]["batch_size"] == len(entry["outputs"][EDIT_SAVE]["images"])
    for image in after:
        changed = (image != before).any(-1).sum()
        assert changed <= round(0.4 * 256)
    entry = run_ok(comfy, workflow("Variations of a texture", **{EDIT: {"strength": 0.0}}))
    assert all(np.array_equal(image, before) for image in pixels(comfy, entry, EDIT_SAVE))


def test_palette_lock_workflow_uses_only_the_source_main_colours(comfy):
    entry = run_ok(comfy, workflow("Resample in the same colours", **{"9": {"max_colors": 2}}))
    (before,), after = pixels(comfy, entry, SOURCE_SAVE), pixels(comfy, entry, EDIT_SAVE)
    opaque = before[before[..., 3] == 255, :3]
    colours, counts = np.unique(opaque, axis=0, return_counts=True)
    top = {tuple(c) for c in colours[np.argsort(-counts, kind="stable")[:2]]}
    for image in after:
        used = {tuple(c) for c in image[image[..., 3] == 255, :3]}
        assert used <= top, (used, top)


def test_seamless_workflow_scores_finite_and_previews_a_3x3_tiling(comfy):
    entry = run_ok(comfy, workflow("Seamless block tile"))
    blocks = pixels(comfy, entry, SOURCE_SAVE)
    assert len(blocks) == 2 and all(np.isfinite(seam_score(block)) for block in blocks)
    assert all((block[..., 3] == 255).all() for block in blocks)  # the workflow turns "opaque" on
    tiled = [comfy.image(image) for image in entry["outputs"]["9"]["images"]]  # Tile Preview shows the 3x3
    assert [image.size for image in tiled] == [(16 * 3 * 5, 16 * 3 * 5)] * 2  # enlarged 5x: 240 <= 256


def test_recolor_workflow_makes_the_family_with_the_same_silhouette(comfy):
    entry = run_ok(comfy, workflow("Recolour into materials"))
    (before,), after = pixels(comfy, entry, SOURCE_SAVE), pngs(comfy, entry, EDIT_SAVE)
    assert [png.text["pixelcore_prompt"] for png in after] == ["red sword", "blue sword", "gold sword",
                                                               "green sword"]
    for png in after:
        assert np.array_equal(np.array(png)[..., 3] == 0, before[..., 3] == 0)


def load_image_graph(name, repaint_transparent=False):
    graph = {
        "1": {"class_type": "PixelCore_LoadPixelModel", "inputs": {"model_name": TINY}},
        "2": {"class_type": "LoadImage", "inputs": {"image": name}},
        "3": {"class_type": "PixelCore_ImageToTokens", "inputs": {"model": ["1", 0], "image": ["2", 0],
                                                                  "mask": ["2", 1]}},
        "4": {"class_type": "PixelCore_PaletteDecode", "inputs": {"tokens": ["3", 0]}},
        "5": {"class_type": "PixelCore_SaveTextureRGBA", "inputs": {"images": ["4", 0], "mask": ["4", 1],
                                                                    "filename_prefix": "pixelcore/loaded"}},
    }
    if repaint_transparent:  # Load Image's MASK is 1 - alpha: as repaint mask it fills the transparent cells
        graph.update({
            "6": {"class_type": "PixelCore_EncodePrompt", "inputs": {"model": ["1", 0], "prompt": "a gem"}},
            "7": {"class_type": "PixelCore_Inpaint", "inputs": {
                "model": ["1", 0], "conditioning": ["6", 0], "tokens": ["3", 0], "mask": ["2", 1], "seed": 1,
                "steps": 4, "cfg": 3.0, "temperature": 1.0}},
            "8": {"class_type": "PixelCore_PaletteDecode", "inputs": {"tokens": ["7", 0]}},
            "9": {"class_type": "PixelCore_SaveTextureRGBA", "inputs": {
                "images": ["8", 0], "mask": ["8", 1], "filename_prefix": "pixelcore/filled"}},
        })
    return graph


def test_load_image_to_tokens_round_trips_and_refuses_other_sizes(comfy, palette):
    tokens = torch.randint(0, len(palette), (16, 16), generator=torch.Generator().manual_seed(0))
    tokens[:, :3] = 0  # a transparent band
    rgba = palette.dequantize(tokens).numpy()
    inputs = comfy.workdir / "input"
    Image.fromarray(rgba, "RGBA").save(inputs / "edit_test_16.png")
    Image.fromarray(rgba.repeat(4, 0).repeat(4, 1), "RGBA").save(inputs / "edit_test_64.png")
    Image.fromarray(np.zeros((20, 20, 4), np.uint8), "RGBA").save(inputs / "edit_test_20.png")
    for name in ("edit_test_16.png", "edit_test_64.png"):
        entry = run_ok(comfy, load_image_graph(name, repaint_transparent=True))
        (loaded,), (filled,) = pixels(comfy, entry, "5"), pixels(comfy, entry, "9")
        assert np.array_equal(loaded, rgba), name
        opaque = rgba[..., 3] == 255
        assert np.array_equal(filled[opaque], rgba[opaque]), name
    entry = comfy.run(load_image_graph("edit_test_20.png"))
    error = execution_error(entry)
    assert error is not None and error["node_id"] == "3"
    assert "20x20" in error["exception_message"] and "nearest-neighbour" in error["exception_message"]


def test_a_png_written_by_the_cli_loads_in_comfyui(comfy):
    """The CLI's metadata never uses ComfyUI's own ``prompt``/``workflow`` keys, which ComfyUI would read as a
    graph: its PNG goes through core Load Image and back to the same pixels."""
    from pixelcore.cli import main
    from pixelcore.metadata import COMFYUI_KEYS, read_texture_info

    out = comfy.workdir / "input" / "cli_texture.png"
    assert main(["generate", "a red sword", "-o", str(out), "--model", str(comfy.model_dir / TINY), "--steps", "2",
                 "--temperature", "0.5", "--device", "cpu"]) == 0
    with Image.open(out) as png:
        written, text = np.array(png), dict(png.text)
    assert not COMFYUI_KEYS & set(text) and read_texture_info(out).prompt == "a red sword"
    entry = run_ok(comfy, load_image_graph("cli_texture.png"))
    (loaded,) = pixels(comfy, entry, "5")
    assert np.array_equal(loaded, written)

"""The pack inside a real ComfyUI 0.3.75 server (headless, CPU), driven over its HTTP API.

Needs ComfyUI in .comfy/ComfyUI: ``bash scripts/install_comfyui.sh``. Skipped otherwise, unless
PIXELCORE_REQUIRE_COMFYUI=1 (set it in CI) makes a missing install an error. One server (the ``server``
fixture of conftest.py) serves the whole session; it is killed at the end, also when a test fails.
"""

import copy
import json
import os

import numpy as np
import pytest

from comfyui_harness import CORRUPT, ROOT, TINY, TINY_LORA, comfyui_installed, execution_error
from pixelcore.checkpoint import default_model_path

pytestmark = [
    pytest.mark.comfyui,
    pytest.mark.skipif(not comfyui_installed() and not os.environ.get("PIXELCORE_REQUIRE_COMFYUI"),
                       reason="ComfyUI not installed: run scripts/install_comfyui.sh"),
]

NODE_IDS = ["PixelCore_LoadPixelModel", "PixelCore_EncodePrompt", "PixelCore_MaskGITSample",
            "PixelCore_PaletteDecode", "PixelCore_Upscale", "PixelCore_SaveTextureRGBA"]
WORKFLOWS = sorted(p.stem for p in (ROOT / "example_workflows").glob("*.json"))
BUILTIN = "pixelcore_default.safetensors (built-in)"
# Node ids inside the workflow graphs (the same in every workflow and its API twin).
LOAD, ENCODE, SAMPLE, SAVE, UPSCALE, PREVIEW = "1", "2", "3", "5", "6", "8"


def workflow(name, model=TINY, **changes):
    """The API twin of example_workflows/<name>.json with the model swapped; changes are {node_id: {input: value}}."""
    graph = json.loads((ROOT / "tests" / "workflows_api" / f"{name}.json").read_text(encoding="utf-8"))
    graph[LOAD]["inputs"]["model_name"] = model
    for node in graph.values():  # an adapter made for the test's tiny model
        if node["class_type"] == "PixelCore_LoadLoRA":
            node["inputs"]["lora_name"] = TINY_LORA
    for node_id, inputs in changes.items():
        graph[node_id]["inputs"].update(inputs)
    return graph


def good_graph(**changes):
    return workflow("Texture from a prompt", **changes)


def assert_success(entry):
    problem = execution_error(entry) or entry["status"]
    assert entry["status"]["status_str"] == "success", json.dumps(problem)[:3000]


def saved_images(server, entry, node_id=SAVE):
    outputs = entry["outputs"][node_id]  # Save Texture lists its files under "textures" and shows previews
    return [server.image(image) for image in outputs.get("textures", outputs.get("images"))]


def test_pack_loads_and_lists_its_models_and_workflows(server):
    for node_id in NODE_IDS:
        assert node_id in server.get_json(f"/object_info/{node_id}"), node_id
    log_lines = server.log_text().splitlines()
    failed = [line for line in log_lines if "IMPORT FAILED" in line and "PixelCore" in line]
    assert not failed, "\n".join(failed)
    names = server.get_json("/object_info/PixelCore_LoadPixelModel")["PixelCore_LoadPixelModel"]["input"]
    assert names["required"]["model_name"][0] == [BUILTIN, CORRUPT, TINY]
    templates = server.get_json("/workflow_templates")
    assert sorted(templates.get("PixelCore", [])) == WORKFLOWS


@pytest.mark.parametrize("name", WORKFLOWS)
def test_workflow_runs_saves_native_rgba_and_shows_it_enlarged(server, name):
    graph = workflow(name)
    entry = server.run(graph)
    assert_success(entry)
    native = saved_images(server, entry)
    previews = [server.image(image) for image in entry["outputs"][SAVE]["images"]]
    assert len(native) == len(previews) == graph[SAMPLE]["inputs"]["batch_size"]
    for png, preview in zip(native, previews):
        assert png.mode == "RGBA" and png.size == (16, 16)
        assert png.text["pixelcore_prompt"] == graph[ENCODE]["inputs"]["prompt"]
        assert png.text["pixelcore_seed"] == str(graph[SAMPLE]["inputs"]["seed"])
        pixels, shown = np.array(png), np.array(preview)
        assert preview.size == (256, 256)
        opaque = pixels[..., 3] == 255
        assert np.array_equal(shown[::16, ::16][opaque], pixels[..., :3][opaque])
    if graph.get(UPSCALE, {}).get("class_type") == "PixelCore_Upscale":  # the one template that shows Upscale
        factor = graph[UPSCALE]["inputs"]["factor"]
        for png, big in zip(native, saved_images(server, entry, PREVIEW)):
            pixels = np.array(png)
            assert big.mode == "RGBA" and np.array_equal(np.array(big), pixels.repeat(factor, 0).repeat(factor, 1))


def test_same_seed_gives_the_same_image(server):
    def native(seed):
        entry = server.run(good_graph(**{SAMPLE: {"seed": seed}}))
        assert_success(entry)
        return np.array(saved_images(server, entry)[0])

    first, other, again = native(1234), native(1235), native(1234)  # the middle run defeats ComfyUI's cache
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_a_workflow_saved_before_the_guidance_schedule_runs_with_the_default(server):
    def native(graph):
        entry = server.run(graph)
        assert_success(entry)
        return np.array(saved_images(server, entry)[0])

    old = good_graph(**{SAMPLE: {"seed": 77}})
    del old[SAMPLE]["inputs"]["guidance_schedule"]
    assert np.array_equal(native(old), native(good_graph(**{SAMPLE: {"seed": 77, "guidance_schedule": "early"}})))


@pytest.mark.parametrize("node_id, inputs, expected", [
    (LOAD, {"model_name": "missing.safetensors"}, "not in"),
    (LOAD, {"model_name": "../" + TINY}, "not in"),
    (SAMPLE, {"steps": 0}, "smaller than min"),
    (SAMPLE, {"steps": 1000}, "bigger than max"),
    (SAMPLE, {"batch_size": 0}, "smaller than min"),
    (SAMPLE, {"batch_size": 100000}, "bigger than max"),
    (SAMPLE, {"cfg": -1.0}, "smaller than min"),
    (ENCODE, {"prompt": "   "}, "type what the texture shows"),
    (SAMPLE, {"guidance_schedule": "sometimes"}, "not in"),
], ids=["missing-model", "dotdot-model", "steps-0", "steps-1000", "batch-0", "batch-huge", "cfg-neg",
        "empty-prompt", "unknown-schedule"])
def test_bad_input_is_refused_before_running(server, node_id, inputs, expected):
    status, body = server.queue(good_graph(**{node_id: inputs}))
    assert status == 400
    errors = body["node_errors"][node_id]["errors"]
    text = " ".join(f"{e['message']} {e['details']}" for e in errors)
    assert expected in text and next(iter(inputs)) in text, text
    assert_success(server.run(good_graph()))


def test_corrupt_model_fails_with_a_useful_message_and_server_goes_on(server):
    entry = server.run(good_graph(**{LOAD: {"model_name": CORRUPT}}))
    error = execution_error(entry)
    assert entry["status"]["status_str"] == "error" and error is not None
    assert error["node_id"] == LOAD and CORRUPT in error["exception_message"]
    assert "Pick another model" in error["exception_message"]
    assert_success(server.run(good_graph()))


def test_very_long_prompt_is_truncated_not_refused(server):
    prompt = ("a blue diamond sword with a golden hilt " * 250)[:10_000]
    entry = server.run(good_graph(**{ENCODE: {"prompt": prompt}}))
    assert_success(entry)
    assert saved_images(server, entry)[0].size == (16, 16)


def test_shipped_default_model_runs(server):
    if not default_model_path().is_file():
        pytest.skip(f"no shipped model at {default_model_path()} yet")
    entry = server.run(copy.deepcopy(workflow("Texture from a prompt", model=BUILTIN)), timeout=110)
    assert_success(entry)
    png = saved_images(server, entry)[0]
    assert png.mode == "RGBA" and png.size == (16, 16)


def test_nodes_show_enlarged_previews_and_the_pack_node_writes_a_pack(server):
    from pixelcore.data import load_textures

    graph = good_graph(**{SAMPLE: {"seed": 9}})
    graph["20"] = {"class_type": "PixelCore_SaveResourcePack", "inputs": {
        "images": ["4", 0], "mask": ["4", 1], "tokens": [SAMPLE, 0], "pack_name": "integration_pack",
        "format": "minecraft", "as_zip": True, "namespace": "pixelcore", "kind": "auto", "names": ""}}
    entry = server.run(graph)
    assert_success(entry)
    for node_id in (SAVE, "4", "20"):
        shown = [server.image(image) for image in entry["outputs"][node_id]["images"]]
        assert [(image.size, image.mode) for image in shown] == [((256, 256), "RGB")], node_id
    assert saved_images(server, entry)[0].size == (16, 16)
    (record,) = load_textures(server.output_dir / "integration_pack.zip")[0]
    assert record.source.endswith("/blue_diamond_sword.png")
    assert np.array_equal(record.pixels, np.array(saved_images(server, entry)[0]))

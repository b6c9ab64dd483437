"""The LoRA workflow inside a real ComfyUI 0.3.75 server (see test_comfyui_integration.py for the set-up)."""

import os

import numpy as np
import pytest

from comfyui_harness import EXAMPLE_LORA, FOREIGN_LORA, TINY_LORA, comfyui_installed, execution_error
from test_comfyui_integration import ENCODE, SAMPLE, assert_success, saved_images, workflow

pytestmark = [
    pytest.mark.comfyui,
    pytest.mark.skipif(not comfyui_installed() and not os.environ.get("PIXELCORE_REQUIRE_COMFYUI"),
                       reason="ComfyUI not installed: run scripts/install_comfyui.sh"),
]

WF = "A new word from a LoRA adapter"  # example_workflows/<WF>.json and its API twin
LORA = "9"  # its Load LoRA node


def _native(server, graph):
    entry = server.run(graph)
    assert_success(entry)
    return np.array(saved_images(server, entry)[0])


def test_lora_node_lists_the_adapter_folder(server):
    info = server.get_json("/object_info/PixelCore_LoadLoRA")["PixelCore_LoadLoRA"]
    assert set(info["input"]["required"]["lora_name"][0]) - {EXAMPLE_LORA} == {FOREIGN_LORA, TINY_LORA}


def test_lora_workflow_changes_the_texture_and_strength_zero_gives_the_base_model(server):
    seeds = {SAMPLE: {"seed": 5}, ENCODE: {"prompt": "a red disc"}}
    with_lora = _native(server, workflow(WF, **seeds))
    off = _native(server, workflow(WF, **seeds, **{LORA: {"strength": 0.0}}))
    base = _native(server, workflow("Texture from a prompt", **seeds))
    assert np.array_equal(off, base)
    assert not np.array_equal(with_lora, base)
    again = _native(server, workflow(WF, **seeds))  # the cached base model was not patched
    assert np.array_equal(again, with_lora)
    assert np.array_equal(_native(server, workflow("Texture from a prompt", **seeds)), base)


def test_foreign_adapter_fails_naming_the_file_and_server_goes_on(server):
    graph = workflow(WF)
    graph[LORA]["inputs"]["lora_name"] = FOREIGN_LORA  # workflow() picks the tiny model's own adapter
    entry = server.run(graph)
    error = execution_error(entry)
    assert entry["status"]["status_str"] == "error" and error is not None
    assert error["node_id"] == LORA and FOREIGN_LORA in error["exception_message"]
    assert "another base model" in error["exception_message"]
    assert_success(server.run(workflow(WF)))


def test_adapter_name_cannot_escape_its_folder(server):
    graph = workflow(WF)
    graph[LORA]["inputs"]["lora_name"] = "../models_pixelcore_lora/" + TINY_LORA
    status, body = server.queue(graph)
    assert status == 400 and "lora_name" in str(body["node_errors"][LORA])

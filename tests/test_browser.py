"""The pack as a person meets it: ComfyUI's real frontend in headless Chromium, against the session's real server.

Every template in example_workflows/ is fetched as the template browser fetches it, loaded through the UI
(``app.loadGraphData``), checked for missing nodes and dialogs, queued (``app.queuePrompt``) and run to success
with the shipped model; its saved texture is fetched back. A PNG written by the CLI is dropped on the page
(``app.handleFile``) and the page goes on working. Needs Debian's chromium and chromium-driver and selenium;
skipped without them unless PIXELCORE_REQUIRE_BROWSER=1 (set in CI).
"""

import os
import time

import numpy as np
import pytest

from browser_harness import Page, browser_available, history_ids, template, wait_new_history
from comfyui_harness import PACK_LINK_NAME, ROOT, TINY, comfyui_installed

pytestmark = [
    pytest.mark.browser,
    pytest.mark.comfyui,
    pytest.mark.skipif(not (comfyui_installed() and browser_available())
                       and not os.environ.get("PIXELCORE_REQUIRE_BROWSER"),
                       reason="needs ComfyUI (scripts/install_comfyui.sh), chromium, chromium-driver and selenium"),
]

WORKFLOWS = sorted(p.stem for p in (ROOT / "example_workflows").glob("*.json"))
SAVE = "5"  # Save Texture in every template


@pytest.fixture(scope="module")
def page(server):
    if not browser_available():
        pytest.fail("PIXELCORE_REQUIRE_BROWSER is set but chromium, chromium-driver or selenium is missing")
    page = Page(server)
    try:
        yield page.open()
    finally:
        page.close()


def drawn_sizes(page):
    return {node["id"]: [round(v) for v in node["size"]] for node in page.nodes()}


def test_the_template_browser_lists_every_template_with_a_thumbnail(page):
    assert sorted(page.server.get_json("/workflow_templates")[PACK_LINK_NAME]) == WORKFLOWS
    for name in WORKFLOWS:
        thumb = page.server.get_bytes(f"/api/workflow_templates/{PACK_LINK_NAME}/{name.replace(' ', '%20')}.jpg")
        assert thumb[:3] == b"\xff\xd8\xff", name


@pytest.mark.parametrize("name", WORKFLOWS)
def test_template_loads_runs_and_saves_in_the_real_frontend(page, name):
    workflow = template(page.server, PACK_LINK_NAME, name)
    page.load_workflow(workflow)
    nodes = page.nodes()
    assert [n["type"] for n in nodes if not n["registered"]] == []
    assert page.dialogs() == []  # no missing-node (or any other) dialog
    saved = {node["id"]: [round(v) for v in node["size"]] for node in workflow["nodes"]}
    assert drawn_sizes(page) == saved  # every node drawn at its saved size: none needed more room
    before = history_ids(page.server)
    page.queue()
    entry = wait_new_history(page.server, before, timeout=120)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert page.pack_errors() == [] and page.dialogs() == []
    texture = page.server.image(entry["outputs"][SAVE]["textures"][0])
    assert texture.mode == "RGBA" and texture.size == (16, 16)
    assert np.array(texture)[..., 3].any()  # something was drawn
    page.wait_for_pictures([node_id for node_id, out in entry["outputs"].items() if out.get("images")])
    assert drawn_sizes(page) == saved  # the previews fit: no node grew over its neighbours
    assert not [line for line in page.console_errors() if "PixelCore" in line and "api.comfy.org" not in line]


def test_dropping_a_png_written_by_the_cli_leaves_the_page_working(page, tmp_path):
    from pixelcore.cli import main

    png = tmp_path / "cli_texture.png"
    assert main(["generate", "a red sword", "-o", str(png), "--model", str(page.server.model_dir / TINY),
                 "--steps", "2", "--device", "cpu"]) == 0
    page.load_workflow(template(page.server, PACK_LINK_NAME, "Texture from a prompt"))
    shown = drawn_sizes(page)
    page.drop_file(png.read_bytes(), png.name)
    time.sleep(1.0)
    assert page.dialogs() == [] and page.pack_errors() == []
    assert drawn_sizes(page) == shown  # the graph is untouched: the PNG carries no ComfyUI workflow
    assert page.js("return app.graph.nodes.length") == len(shown)

"""Fast tests of the ComfyUI nodes against small stand-ins for ComfyUI's ``comfy`` and ``folder_paths``.

The pack is loaded the way ComfyUI loads it (its root ``__init__.py`` as a package under an odd name), so a
broken relative import fails here too. The real server is exercised in test_comfyui_integration.py.
"""

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from pixelcore.checkpoint import save_model
from pixelcore.model import PixelConfig, PixelModel
from pixelcore.palette import Palette

from conftest import sensitize

ROOT = Path(__file__).resolve().parent.parent
PACK_NAME = "pixelcore_pack_under_test"
TINY = "tiny.safetensors"
# Core nodes used by the workflows; none of them has a widget.
CORE_NODES_WITHOUT_WIDGETS = {"JoinImageWithAlpha", "PreviewImage"}


class Interrupted(Exception):
    pass


def _fake_folder_paths(base: Path) -> ModuleType:
    """Just the parts of folder_paths the pack uses, with the same name normalisation as ComfyUI's."""
    fp = ModuleType("folder_paths")
    fp.models_dir = str(base / "models")
    fp.folder_names_and_paths = {}
    output, temp = base / "output", base / "temp"

    def add_model_folder_path(name, path, is_default=False):
        paths, _ = fp.folder_names_and_paths.setdefault(name, ([], set()))
        if path not in paths:
            paths.insert(0, path) if is_default else paths.append(path)

    def get_filename_list(name):
        paths, extensions = fp.folder_names_and_paths[name]
        found = set()
        for folder in paths:
            for dirpath, _, files in os.walk(folder):
                for file in files:
                    if not extensions or os.path.splitext(file)[1].lower() in extensions:
                        found.add(os.path.relpath(os.path.join(dirpath, file), folder))
        return sorted(found)

    def get_full_path_or_raise(name, filename):
        filename = os.path.relpath(os.path.join("/", filename), "/")
        for folder in fp.folder_names_and_paths[name][0]:
            if os.path.isfile(os.path.join(folder, filename)):
                return os.path.join(folder, filename)
        raise FileNotFoundError(f"Model in folder '{name}' with filename '{filename}' not found.")

    def get_save_image_path(prefix, output_dir, width=0, height=0):
        subfolder, name = os.path.split(os.path.normpath(prefix))
        folder = os.path.join(output_dir, subfolder)
        os.makedirs(folder, exist_ok=True)
        return folder, name, len(os.listdir(folder)) + 1, subfolder, prefix

    fp.add_model_folder_path = add_model_folder_path
    fp.get_folder_paths = lambda name: list(fp.folder_names_and_paths[name][0])
    fp.get_filename_list = get_filename_list
    fp.get_full_path_or_raise = get_full_path_or_raise
    fp.get_output_directory = lambda: str(output)
    fp.get_temp_directory = lambda: str(temp)
    fp.get_save_image_path = get_save_image_path
    return fp


def _fake_comfy() -> dict[str, ModuleType]:
    comfy, utils, mm, cli_args = (ModuleType(n) for n in
                                  ("comfy", "comfy.utils", "comfy.model_management", "comfy.cli_args"))
    comfy.utils, comfy.model_management, comfy.cli_args = utils, mm, cli_args
    comfy.__path__ = []
    mm.interrupt_after_checks = None  # raise on the n-th check, like a user pressing Cancel mid-run
    mm.checks = 0

    def throw_exception_if_processing_interrupted():
        mm.checks += 1
        if mm.interrupt_after_checks is not None and mm.checks >= mm.interrupt_after_checks:
            raise Interrupted("Processing interrupted")

    mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
    mm.get_torch_device = lambda: torch.device("cpu")
    mm.unet_offload_device = lambda: torch.device("cpu")
    mm.intermediate_device = lambda: torch.device("cpu")
    mm.soft_empty_cache = lambda force=False: None

    class ProgressBar:
        updates = []

        def __init__(self, total, node_id=None):
            self.total = total

        def update_absolute(self, value, total=None, preview=None):
            ProgressBar.updates.append((value, total))

    utils.ProgressBar = ProgressBar
    cli_args.args = SimpleNamespace(disable_metadata=False)
    return {"comfy": comfy, "comfy.utils": utils, "comfy.model_management": mm, "comfy.cli_args": cli_args}


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfy")
    fakes = {**_fake_comfy(), "folder_paths": _fake_folder_paths(base)}
    with pytest.MonkeyPatch.context() as mp:
        for name, module in fakes.items():
            mp.setitem(sys.modules, name, module)
        spec = importlib.util.spec_from_file_location(PACK_NAME, ROOT / "__init__.py",
                                                      submodule_search_locations=[str(ROOT)])
        module = importlib.util.module_from_spec(spec)
        mp.setitem(sys.modules, PACK_NAME, module)
        spec.loader.exec_module(module)
        models = base / "models" / "pixelcore"
        made_at_start_up = models.is_dir()
        models.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        palette = Palette.from_colors(np.array([[200, 30, 30], [30, 30, 200], [30, 200, 30]], np.uint8))
        save_model(PixelModel(PixelConfig.tiny(), palette), models / TINY)
        yield SimpleNamespace(nodes=module.NODE_CLASS_MAPPINGS, base=base, models=models,
                              made_at_start_up=made_at_start_up,
                              mm=fakes["comfy.model_management"], progress=fakes["comfy.utils"].ProgressBar)
        for name in [n for n in sys.modules if n.startswith(PACK_NAME + ".")]:
            del sys.modules[name]


def run(pack, node_id, *args, **kwargs):
    """A node's outputs, as ComfyUI takes them (a node that also shows something returns {"ui", "result"})."""
    cls = pack.nodes[node_id]
    out = getattr(cls(), cls.FUNCTION)(*args, **kwargs)
    return out["result"] if isinstance(out, dict) and "result" in out else out


def shown(pack, ui):
    """The pictures a node's ui.images show, as arrays."""
    assert all(entry["type"] == "temp" for entry in ui["ui"]["images"])
    return [np.array(Image.open(pack.base / "temp" / e["subfolder"] / e["filename"])) for e in ui["ui"]["images"]]


def generate(pack, prompt="a blue diamond sword", seed=1, steps=4, batch_size=1):
    (model,) = run(pack, "PixelCore_LoadPixelModel", TINY)
    cond, _ = run(pack, "PixelCore_EncodePrompt", model, prompt)
    (tokens,) = run(pack, "PixelCore_MaskGITSample", model, cond, seed, steps, 3.0, 1.0, batch_size)
    return tokens


def test_loading_the_pack_creates_the_model_folder_and_writes_nothing_else(pack):
    assert pack.made_at_start_up
    made = {p.relative_to(pack.base).as_posix() for p in pack.base.rglob("*")
            if not p.is_relative_to(pack.models) and not p.name.startswith(("output", "temp"))}
    assert made <= {"models", "output", "temp"} | {p for p in made if p.startswith(("output/", "temp/"))}


def test_every_node_is_registered_with_prefix_tooltips_and_description(pack):
    core = {"LoadPixelModel", "EncodePrompt", "MaskGITSample", "PaletteDecode", "Upscale", "SaveTextureRGBA"}
    assert {f"PixelCore_{name}" for name in core} <= set(pack.nodes)
    for node_id, cls in pack.nodes.items():
        assert node_id.startswith("PixelCore_") and cls.CATEGORY.startswith("PixelCore/")
        assert cls.DESCRIPTION.strip()
        inputs = cls.INPUT_TYPES()
        for name, spec in {**inputs["required"], **inputs.get("optional", {})}.items():
            assert spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"


def test_sampling_nodes_default_to_the_core_sampler_settings(pack):
    from pixelcore.sampling import SamplerConfig

    defaults = SamplerConfig()
    expected = {"steps": defaults.steps, "cfg": defaults.cfg_scale, "temperature": defaults.temperature}
    checked = 0
    for node_id, cls in pack.nodes.items():
        inputs = cls.INPUT_TYPES()["required"]
        for name, value in expected.items():
            if name in inputs:
                assert inputs[name][1]["default"] == value, f"{node_id}.{name}: not the CLI's default {value}"
                checked += 1
    assert checked >= 6  # MaskGIT Sample and the editing nodes
    from pixelcore.sampling import GUIDANCE_SCHEDULES

    for node_id, cls in pack.nodes.items():
        inputs = cls.INPUT_TYPES()
        if "steps" in inputs["required"]:  # every sampling node offers the schedule, optional for old workflows
            choices, options = inputs["optional"]["guidance_schedule"]
            assert choices == list(GUIDANCE_SCHEDULES) and options["default"] == defaults.guidance_schedule, \
                node_id


def test_guidance_schedule_reaches_the_sampler(pack):
    from pixelcore.sampling import GUIDANCE_SCHEDULES, SamplerConfig, sample

    (model,) = run(pack, "PixelCore_LoadPixelModel", TINY)
    sensitize(model)  # an untrained tiny model ignores its prompt, and so guidance
    cond, _ = run(pack, "PixelCore_EncodePrompt", model, "a blue diamond sword")
    drawn = {}
    for schedule in GUIDANCE_SCHEDULES:
        (tokens,) = run(pack, "PixelCore_MaskGITSample", model, cond, 3, 10, 3.0, 0.7, 2,
                        guidance_schedule=schedule)
        config = SamplerConfig(steps=10, cfg_scale=3.0, temperature=0.7, guidance_schedule=schedule)
        core = sample(model, cond, config, batch_size=2, generator=torch.Generator().manual_seed(3))
        assert torch.equal(tokens.tokens, core)
        drawn[schedule] = tokens.tokens
    # Were the schedule ignored, every node output would be the same, and so every core output above.
    assert len({t.numpy().tobytes() for t in drawn.values()}) > 1
    (default,) = run(pack, "PixelCore_MaskGITSample", model, cond, 3, 10, 3.0, 0.7, 2)
    assert torch.equal(default.tokens, drawn[SamplerConfig.guidance_schedule])  # a workflow saved without it


def test_model_dropdown_lists_builtin_and_only_safetensors(pack):
    (pack.models / "notes.txt").write_text("not a model")
    (pack.models / "old.ckpt").write_bytes(b"x")
    names = pack.nodes["PixelCore_LoadPixelModel"].INPUT_TYPES()["required"]["model_name"][0]
    assert names == ["pixelcore_default.safetensors (built-in)", TINY]


def test_model_name_cannot_escape_the_model_folder(pack):
    (pack.base / "models" / "outside.safetensors").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="models/pixelcore"):
        run(pack, "PixelCore_LoadPixelModel", "../outside.safetensors")


def test_corrupt_model_is_refused_naming_the_file(pack):
    (pack.models / "broken.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="broken.safetensors.*Pick another model"):
        run(pack, "PixelCore_LoadPixelModel", "broken.safetensors")


def test_empty_prompt_is_refused_before_running_and_long_prompt_is_accepted(pack):
    encode = pack.nodes["PixelCore_EncodePrompt"]
    assert "type what the texture shows" in encode.VALIDATE_INPUTS("  \n")
    assert encode.VALIDATE_INPUTS(None) is True  # linked: checked when it runs
    (model,) = run(pack, "PixelCore_LoadPixelModel", TINY)
    with pytest.raises(ValueError, match="empty"):
        run(pack, "PixelCore_EncodePrompt", model, " ")
    cond, _ = run(pack, "PixelCore_EncodePrompt", model, "sword " * 2000)  # 12,000 characters: truncated
    assert len(cond) == 1


def test_same_seed_same_tokens_and_batch_shape(pack):
    a, b = generate(pack, seed=5, batch_size=3), generate(pack, seed=5, batch_size=3)
    assert a.tokens.shape == (3, 16, 16) and torch.equal(a.tokens, b.tokens)
    assert not torch.equal(a.tokens, generate(pack, seed=6, batch_size=3).tokens)
    assert a.seed == 5 and a.batch_index == [0, 1, 2] and a.prompts == ["a blue diamond sword"] * 3


def test_progress_per_step_and_cancel_stops_sampling(pack):
    pack.progress.updates.clear()
    generate(pack, steps=5)
    assert pack.progress.updates == [(i, 5) for i in range(1, 6)]
    pack.mm.checks, pack.mm.interrupt_after_checks = 0, 2
    try:
        with pytest.raises(Interrupted):
            generate(pack, steps=5)
    finally:
        pack.mm.interrupt_after_checks = None
    assert pack.mm.checks == 2


def test_decode_gives_image_and_mask_as_load_image_does(pack):
    tokens = generate(pack, batch_size=2)
    image, mask = run(pack, "PixelCore_PaletteDecode", tokens)
    assert image.shape == (2, 16, 16, 3) and mask.shape == (2, 16, 16)
    assert image.dtype == mask.dtype == torch.float32
    rgba = tokens.palette.dequantize(tokens.tokens)
    assert torch.equal((image * 255).round().byte(), rgba[..., :3])
    assert torch.equal(((1 - mask) * 255).round().byte(), rgba[..., 3])


def test_upscale_is_exact_nearest_neighbour(pack):
    image, mask = torch.rand(2, 16, 16, 3), (torch.rand(2, 16, 16) > 0.5).float()
    big, big_mask = run(pack, "PixelCore_Upscale", image, 4, mask)
    assert big.shape == (2, 64, 64, 3) and big_mask.shape == (2, 64, 64)
    assert torch.equal(big[:, ::4, ::4], image) and torch.equal(big[:, 3::4, 3::4], image)
    assert torch.equal(big_mask[:, 1::4, 2::4], mask)
    (_, opaque) = run(pack, "PixelCore_Upscale", image, 2)
    assert opaque.shape == (2, 32, 32) and not opaque.any()
    with pytest.raises(ValueError, match="smaller factor"):
        run(pack, "PixelCore_Upscale", torch.rand(1, 512, 512, 3), 64)


def test_save_writes_native_rgba_png_with_prompt_and_seed(pack):
    tokens = generate(pack, prompt="一把蓝色的钻石剑", seed=77, batch_size=2)
    image, mask = run(pack, "PixelCore_PaletteDecode", tokens)
    ui = run(pack, "PixelCore_SaveTextureRGBA", image, "pixelcore/test", mask=mask, tokens=tokens,
             prompt={"1": {}}, extra_pnginfo={"workflow": {"nodes": []}})
    saved = ui["ui"]["textures"]
    assert len(saved) == 2 and saved[0]["subfolder"] == "pixelcore"
    for index, entry in enumerate(saved):
        with Image.open(pack.base / "output" / entry["subfolder"] / entry["filename"]) as png:
            assert png.mode == "RGBA" and png.size == (16, 16)
            expected = tokens.palette.dequantize(tokens.tokens[index])
            assert torch.equal(torch.from_numpy(np.array(png)), expected)
            assert png.text["pixelcore_prompt"] == "一把蓝色的钻石剑" and png.text["pixelcore_seed"] == "77"
            assert json.loads(png.text["workflow"]) == {"nodes": []}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sampling_on_gpu_matches_cpu_and_offloads_the_model(pack, monkeypatch):
    on_cpu = generate(pack, seed=3, batch_size=2)
    monkeypatch.setattr(pack.mm, "get_torch_device", lambda: torch.device("cuda"))
    moves = []
    (model,) = run(pack, "PixelCore_LoadPixelModel", TINY)
    monkeypatch.setattr(model, "to", lambda device, _to=model.to: moves.append(str(device)) or _to(device))
    cond, _ = run(pack, "PixelCore_EncodePrompt", model, "a blue diamond sword")
    (on_gpu,) = run(pack, "PixelCore_MaskGITSample", model, cond, 3, 4, 3.0, 1.0, 2)
    assert moves == ["cuda", "cpu"] and next(model.parameters()).device.type == "cpu"
    assert on_gpu.tokens.device.type == "cpu"
    assert torch.equal(on_gpu.tokens, on_cpu.tokens)


def _widget_names(node_type, nodes):
    inputs = nodes[node_type].INPUT_TYPES()
    names = []
    for name, spec in {**inputs["required"], **inputs.get("optional", {})}.items():
        if isinstance(spec[0], list) or spec[0] in ("INT", "FLOAT", "STRING", "BOOLEAN"):
            names.append(name)
            if spec[1].get("control_after_generate"):
                names.append(None)  # the UI stores "fixed"/"randomize"/... after the seed
    return names


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "example_workflows").glob("*.json")))
def test_ui_workflow_and_api_twin_agree(pack, name):
    ui = json.loads((ROOT / "example_workflows" / name).read_text(encoding="utf-8"))
    api = json.loads((ROOT / "tests" / "workflows_api" / name).read_text(encoding="utf-8"))
    assert sorted(str(n["id"]) for n in ui["nodes"]) == sorted(api)
    links = {link[0]: link for link in ui["links"]}
    for node in ui["nodes"]:
        twin = api[str(node["id"])]
        assert twin["class_type"] == node["type"]
        linked = {i["name"]: [str(links[i["link"]][1]), links[i["link"]][2]] for i in node["inputs"]}
        assert linked == {k: v for k, v in twin["inputs"].items() if isinstance(v, list)}
        if node["type"] in CORE_NODES_WITHOUT_WIDGETS:
            assert node["widgets_values"] == [] and linked == twin["inputs"]
            continue
        cls = pack.nodes[node["type"]]  # every output the node has, as the frontend draws it
        assert [(o["name"], o["type"]) for o in node.get("outputs", [])] == list(zip(
            getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES), cls.RETURN_TYPES)), (node["type"], node["id"])
        names = _widget_names(node["type"], pack.nodes)
        assert len(names) == len(node["widgets_values"])
        widgets = {n: v for n, v in zip(names, node["widgets_values"]) if n is not None}
        assert widgets == {k: v for k, v in twin["inputs"].items() if not isinstance(v, list)}


def test_save_and_decode_show_an_enlarged_preview_and_save_16x16(pack):
    tokens = generate(pack, seed=5, batch_size=2)
    decoded = pack.nodes["PixelCore_PaletteDecode"]().decode(tokens)
    image, mask = decoded["result"]
    rgba = tokens.palette.dequantize(tokens.tokens).numpy()
    ui = run(pack, "PixelCore_SaveTextureRGBA", image, "pixelcore/preview", mask=mask, tokens=tokens)
    for previews in (shown(pack, decoded), shown(pack, ui)):
        assert len(previews) == 2
        for picture, texture in zip(previews, rgba):
            assert picture.shape == (256, 256, 3)  # 16x, nearest-neighbour
            opaque = texture[..., 3] == 255
            assert np.array_equal(picture[::16, ::16][opaque], texture[..., :3][opaque])
            assert np.array_equal(picture[15::16, 15::16][opaque], texture[..., :3][opaque])
            if (~opaque).any():  # transparent pixels show the checkerboard's two greys
                assert set(np.unique(picture[::16, ::16][~opaque])) <= {153, 204}
    for entry in ui["ui"]["textures"]:
        with Image.open(pack.base / "output" / entry["subfolder"] / entry["filename"]) as png:
            assert png.size == (16, 16) and png.mode == "RGBA"


def test_save_resource_pack_names_textures_from_prompts_and_adds_to_the_pack(pack):
    from pixelcore.data import load_textures

    tokens = generate(pack, prompt="a blue diamond sword", seed=5, batch_size=2)
    image, mask = run(pack, "PixelCore_PaletteDecode", tokens)
    args = dict(pack_name="../../My Pack", format="minecraft", as_zip=False, namespace="pixelcore", kind="block",
                names="")
    ui = run(pack, "PixelCore_SaveResourcePack", image, mask=mask, tokens=tokens, **args)
    assert [p.shape for p in shown(pack, ui)] == [(256, 256, 3)] * 2
    folder = pack.base / "output" / "my_pack"
    records, _ = load_textures(folder)
    names = sorted(r.source.rsplit("/", 1)[-1] for r in records)
    assert names == ["blue_diamond_sword.png", "blue_diamond_sword_2.png"] or names == ["blue_diamond_sword.png"]
    assert {r.kind for r in records} == {"block"}
    assert all(r.source.startswith(str(folder)) for r in records)
    run(pack, "PixelCore_SaveResourcePack", image, mask=mask, **{**args, "names": "ruby, emerald"})
    records, _ = load_textures(folder)
    assert {"ruby.png", "emerald.png"} <= {r.source.rsplit("/", 1)[-1] for r in records}
    with pytest.raises(ValueError, match="one name per texture"):
        run(pack, "PixelCore_SaveResourcePack", image, mask=mask, **{**args, "names": "a, b, c"})


def test_encode_prompt_says_which_words_the_model_never_learned(pack):
    (model,) = run(pack, "PixelCore_LoadPixelModel", TINY)
    _, notes = run(pack, "PixelCore_EncodePrompt", model, "a sci-fi sword with a scope", "blurry")
    assert "unknown words" in notes and "scope" in notes and "sword" not in notes
    assert "blurry" in notes  # the negative prompt is read too
    _, notes = run(pack, "PixelCore_EncodePrompt", model, "一把蓝色的钻石剑")
    assert notes == "every word is known to the model"

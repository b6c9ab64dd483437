import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelcore.checkpoint import default_model_path, load_model, save_model
from pixelcore.cli import main
from pixelcore.metadata import COMFYUI_KEYS, read_texture_info
from pixelcore.sampling import GUIDANCE_SCHEDULES, SamplerConfig

from conftest import sensitize

REPO = Path(__file__).resolve().parents[1]
PROMPT = "a blue diamond sword"

needs_default_model = pytest.mark.skipif(
    not default_model_path().is_file(),
    reason=f"the shipped default model {default_model_path().name} is not in pixelcore/weights/ yet",
)


def _read_png(path: Path) -> tuple[np.ndarray, dict]:
    with Image.open(path) as img:
        assert img.format == "PNG" and img.mode == "RGBA"
        return np.asarray(img).copy(), dict(img.text)


def _meta(path: Path):
    info = read_texture_info(path)
    assert info is not None, f"{path} carries no PixelCore metadata"
    return info


def _check_generated(out: Path, scale: int) -> np.ndarray:
    pixels, text = _read_png(out)
    assert pixels.shape == (16, 16, 4) and pixels.dtype == np.uint8
    assert not COMFYUI_KEYS & set(text)  # ComfyUI would read these as a workflow when the PNG is dropped on it
    assert _meta(out).prompt == PROMPT and _meta(out).seed == 3
    big_path = out.with_name(f"{out.stem}_x{scale}.png")
    big, _ = _read_png(big_path)
    assert big.shape == (16 * scale, 16 * scale, 4)
    np.testing.assert_array_equal(big, pixels.repeat(scale, 0).repeat(scale, 1))  # exact nearest neighbour
    assert _meta(big_path).prompt == PROMPT
    return pixels


@needs_default_model
def test_generate_end_to_end_on_the_default_model(tmp_path):
    """One real ``python -m pixelcore`` run on the shipped model, then the same seed again in-process."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pixelcore", "generate", PROMPT, "-o", "x.png", "--scale", "4",
           "--seed", "3", "--device", "cpu"]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    first = _check_generated(tmp_path / "x.png", 4)
    assert (first[..., 3] >= 128).any()  # not an empty texture

    again = tmp_path / "again" / "y.png"
    assert main(["generate", PROMPT, "-o", str(again), "--scale", "4", "--seed", "3", "--device", "cpu"]) == 0
    assert _check_generated(again, 4).tobytes() == first.tobytes()
    other = tmp_path / "other.png"
    assert main(["generate", PROMPT, "-o", str(other), "--seed", "4", "--device", "cpu"]) == 0
    assert _read_png(other)[0].tobytes() != first.tobytes()


def test_generate_in_process_with_a_given_model(tmp_path, saved_tiny_model):
    def run(name: str, *extra: str) -> int:
        return main(["generate", PROMPT, "-o", str(tmp_path / name), "--model", str(saved_tiny_model),
                     "--scale", "4", "--seed", "3", "--steps", "3", "--device", "cpu", *extra])

    assert run("a.png") == 0 and run("b.png") == 0
    a, b = _check_generated(tmp_path / "a.png", 4), _check_generated(tmp_path / "b.png", 4)
    assert a.tobytes() == b.tobytes()
    assert _meta(tmp_path / "a.png").model == saved_tiny_model.name
    assert run("calm.png", "--randomness", "0", "--temperature", "0.5") == 0  # every setting is recorded
    calm = _meta(tmp_path / "calm.png").sampler
    assert (calm["randomness"], calm["temperature"], calm["steps"]) == (0.0, 0.5, 3)
    assert calm["guidance_schedule"] == SamplerConfig.guidance_schedule
    assert run("ramp.png", "--cfg", "8", "--guidance-schedule", "linear") == 0
    assert _meta(tmp_path / "ramp.png").sampler["guidance_schedule"] == "linear"
    assert run("many.png", "--n", "2", "--negative", "blurry") == 0
    for i in range(2):
        assert _meta(tmp_path / f"many_{i}.png").negative == "blurry"
        assert _meta(tmp_path / f"many_{i}.png").index == i
        assert (tmp_path / f"many_{i}_x4.png").is_file()
    assert not (tmp_path / "many.png").exists()
    assert run("hot.png", "--temperature", "3") == 0 and run("solid.png", "--opaque", "--temperature", "3") == 0
    assert (_read_png(tmp_path / "hot.png")[0][..., 3] == 0).any()
    solid = _read_png(tmp_path / "solid.png")[0]
    assert (solid[..., 3] == 255).all() and _meta(tmp_path / "solid.png").sampler["opaque"] is True
    assert _meta(tmp_path / "solid.png").kind == "block"
    assert _meta(tmp_path / "a.png").sampler["transparency_delay"] == 0.0
    # A research setting is reachable through --sampler-overrides and reaches the keep order.
    assert run("late.png", "--temperature", "3", "--sampler-overrides", '{"transparency_delay": 5}') == 0
    late = _read_png(tmp_path / "late.png")[0]
    assert _meta(tmp_path / "late.png").sampler["transparency_delay"] == 5
    assert late.tobytes() != _read_png(tmp_path / "hot.png")[0].tobytes()


def test_generate_guidance_schedule_reaches_the_sampler(tmp_path, saved_tiny_model):
    """An untrained tiny model ignores its prompt; larger weights make guidance, and so its schedule, matter."""
    model_path = tmp_path / "sensitive.safetensors"
    save_model(sensitize(load_model(saved_tiny_model)), model_path)

    def texture(name: str, *extra: str) -> np.ndarray:
        assert main(["generate", PROMPT, "-o", str(tmp_path / name), "--model", str(model_path), "--seed", "3",
                     "--steps", "4", "--cfg", "8", "--device", "cpu", *extra]) == 0
        return _read_png(tmp_path / name)[0]

    textures = {schedule: texture(f"{schedule}.png", "--guidance-schedule", schedule).tobytes()
                for schedule in GUIDANCE_SCHEDULES}
    assert textures["linear"] != textures["constant"]  # the flag reaches the sampler
    assert texture("default.png").tobytes() == textures[SamplerConfig.guidance_schedule]
    assert _meta(tmp_path / "linear.png").sampler["guidance_schedule"] == "linear"


@pytest.mark.parametrize("args, fragment", [
    (["generate", "", "-o", "out.png"], "prompt is empty"),
    (["generate", "   ", "-o", "out.png"], "prompt is empty"),
    (["generate", PROMPT, "-o", "out.png", "--steps", "0"], "steps"),
    (["generate", PROMPT, "-o", "out.png", "--cfg", "99"], "cfg_scale"),
    (["generate", PROMPT, "-o", "out.png", "--randomness", "-1"], "randomness must be a number in 0..20"),
    (["generate", PROMPT, "-o", "out.png", "--sampler-overrides", '{"transparency_delay": -1}'],
     "transparency_delay must be a number in 0..10"),
    (["generate", PROMPT, "-o", "out.png", "--sampler-overrides", '{"nope": 1}'], "unknown sampler settings"),
    (["generate", PROMPT, "-o", "out.png", "--temperature", "1e-300"], "temperature"),
    (["generate", PROMPT, "-o", "out.png", "--n", "0"], "batch_size"),
    (["generate", PROMPT, "-o", "out.png", "--n", "1000"], "batch_size"),
    (["generate", PROMPT, "-o", "out.png", "--seed", str(2**64)], "--seed"),
    (["generate", PROMPT, "-o", "out.png", "--seed", "-1"], "--seed"),
    (["generate", "a \ud800 sword", "-o", "out.png"], "lone surrogate"),
    (["generate", PROMPT, "-o", "x" * 300 + ".png"], "too long"),
    (["generate", PROMPT, "-o", "."], ".png"),
    (["generate", PROMPT, "-o", "out.png", "--scale", "0"], "scale"),
    (["generate", PROMPT, "-o", "out.png", "--scale", "100"], "scale"),
    (["generate", PROMPT, "-o", "out.jpg"], ".png"),
    (["generate", PROMPT, "-o", "out.png", "--model", "missing.safetensors"], "missing.safetensors"),
])
def test_bad_generate_input_exits_2_with_a_message_and_writes_nothing(tmp_path, monkeypatch, caplog,
                                                                      saved_tiny_model, args, fragment):
    monkeypatch.chdir(tmp_path)
    if "--model" not in args:
        args = [*args, "--model", str(saved_tiny_model)]
    with caplog.at_level(logging.ERROR, logger="pixelcore"):
        assert main([*args, "--device", "cpu"]) == 2
    assert fragment in caplog.text
    assert "Traceback" not in caplog.text
    assert os.listdir(tmp_path) == []


def test_bad_input_in_a_real_process_exits_2_without_a_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "pixelcore", "generate", PROMPT, "-o", "x.png",
           "--model", "nope.safetensors"]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "nope.safetensors" in result.stderr and "no such model file" in result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == []


def test_eval_writes_metrics_and_a_grid(tmp_path, saved_tiny_model, texture_dir, capsys):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "a red sword", "color": "red", "kind": "item"}\n'
                       '{"prompt": "green leaves block", "color": "green", "kind": "block"}\n',
                       encoding="utf-8")
    out = tmp_path / "eval"
    code = main(["eval", "--prompts", str(prompts), "--model", str(saved_tiny_model), "--out", str(out),
                 "--seeds", "3", "--steps", "2", "--device", "cpu", "--train-data", str(texture_dir)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"color_adherence", "kind_adherence", "unique_colors", "isolated_pixels",
                            "diversity", "item_transparency", "copy_rate"}
    assert all(0.0 <= metrics[k] <= 1.0 for k in metrics if k != "unique_colors")
    with Image.open(out / "samples.png") as grid:
        # A row per prompt, a column per seed, each cell 8x enlarged with 2 pixels of padding.
        assert grid.size == (3 * (16 * 8 + 2) + 2, 2 * (16 * 8 + 2) + 2)
    printed = capsys.readouterr().out
    assert "color_adherence" in printed and "a red sword" in printed  # the per-prompt lines come first
    rows = json.loads((out / "per_prompt.json").read_text(encoding="utf-8"))
    assert [r["prompt"] for r in rows] == ["a red sword", "green leaves block"]
    assert all(len(r["found_colors"]) == len(r["found_kinds"]) == 3 for r in rows)


def test_eval_refuses_a_bad_prompt_file(tmp_path, saved_tiny_model, caplog):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "ok"}\n{"text": "no prompt"}\n', encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="pixelcore"):
        assert main(["eval", "--prompts", str(prompts), "--model", str(saved_tiny_model),
                     "--out", str(tmp_path / "eval"), "--device", "cpu"]) == 2
    assert "prompts.jsonl:2" in caplog.text
    assert not (tmp_path / "eval").exists()


def test_export_writes_a_half_precision_copy(tmp_path, saved_tiny_model):
    dst = tmp_path / "half.safetensors"
    assert main(["export", str(saved_tiny_model), str(dst)]) == 0
    half, full = load_model(dst), load_model(saved_tiny_model)
    assert dst.stat().st_size < saved_tiny_model.stat().st_size
    for key, value in full.state_dict().items():
        torch.testing.assert_close(half.state_dict()[key], value, atol=1e-3, rtol=1e-2)
    assert main(["export", str(tmp_path / "none.safetensors"), str(tmp_path / "out.safetensors")]) == 2
    assert not (tmp_path / "out.safetensors").exists()


def test_average_of_one_file_is_refused_with_a_message(tmp_path, saved_tiny_model, caplog):
    with caplog.at_level(logging.ERROR, logger="pixelcore"):
        assert main(["average", str(saved_tiny_model), "-o", str(tmp_path / "avg.safetensors")]) == 2
    assert "at least two" in caplog.text
    assert main(["average", str(saved_tiny_model), str(saved_tiny_model), "-o", str(tmp_path / "avg.safetensors"),
                 "--dtype", "fp32"]) == 0
    for key, value in load_model(saved_tiny_model).state_dict().items():
        torch.testing.assert_close(load_model(tmp_path / "avg.safetensors").state_dict()[key], value)
    with caplog.at_level(logging.ERROR, logger="pixelcore"):
        assert main(["average", str(saved_tiny_model), str(saved_tiny_model), "--weights", "1",
                     "-o", str(tmp_path / "weighted.safetensors")]) == 2
    assert "1 weights for 2 checkpoints" in caplog.text
    assert not (tmp_path / "weighted.safetensors").exists()


def test_bench_counts_less_work_for_guidance_in_the_first_rounds_only(saved_tiny_model, capsys):
    from pixelcore.bench import run_benchmarks

    def work(schedule: str) -> dict:
        results = run_benchmarks(str(saved_tiny_model), torch.device("cpu"),
                                 SamplerConfig(guidance_schedule=schedule), repeats=1, train_step=False)
        return {name: row["mflop_per_image"] for name, row in results["settings"].items()}

    constant, early = work("constant"), work("early")
    # Ten rounds: "constant" runs 20 image passes per texture, "early" 6 guided rounds and 4 unguided (16).
    assert 0.75 < early["default"] / constant["default"] < 0.85
    assert "MFLOP/texture" in capsys.readouterr().out


def test_bench_prints_the_previous_release_and_the_default_side_by_side(saved_tiny_model, capsys):
    """bench times the sampler its flags describe beside the previous release's (10 rounds, fp32), interleaved,
    and prints the settings and the machine's load beside the numbers."""
    assert main(["bench", "--model", str(saved_tiny_model), "--steps", "3", "--guidance-schedule", "constant",
                 "--precision", "int8", "--repeats", "2", "--batches", "1", "4", "--no-train",
                 "--compare", str(saved_tiny_model)]) == 0
    printed = capsys.readouterr().out
    assert "default: model tiny.safetensors, steps 3, cfg 1.5, guidance_schedule constant" in printed
    assert "before: model tiny.safetensors, steps 10" in printed and "precision fp32 (fp32)" in printed
    assert "batch 1" in printed and "batch 4" in printed and "load average" in printed and "threads" in printed
    assert "tiny: model tiny.safetensors, steps 3" in printed  # --compare: another model, the same settings


def test_every_sampling_command_defaults_to_the_sampler_config():
    """A sampling default lives in SamplerConfig only: generate, eval and bench read it from there."""
    from dataclasses import fields

    from pixelcore.cli import build_parser

    parser, defaults = build_parser(), SamplerConfig()
    for command in ("generate", "eval", "bench"):
        args = parser.parse_args([command, PROMPT] if command == "generate" else
                                 [command, "--prompts", "p.jsonl"] if command == "eval" else [command])
        for f in fields(SamplerConfig):
            if hasattr(args, f.name):
                assert getattr(args, f.name) == getattr(defaults, f.name), (command, f.name)
        assert not {"schedule", "transparency_delay"} & set(vars(args))  # research knobs are not user flags


def test_outputs_that_cannot_be_written_are_refused_before_the_model_loads(tmp_path, caplog, monkeypatch):
    import pixelcore.checkpoint

    monkeypatch.setattr(pixelcore.checkpoint, "load_model", lambda *a, **k: pytest.fail("loaded a model"))
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "file").write_text("not a folder")
    for out, fragment in ((tmp_path / "folder.png", "is a folder"), (tmp_path / "file" / "x.png", "is a file")):
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="pixelcore"):
            assert main(["generate", PROMPT, "-o", str(out), "--device", "cpu"]) == 2
        assert fragment in caplog.text and "Traceback" not in caplog.text
    assert sorted(os.listdir(tmp_path)) == ["file", "folder.png"]


@pytest.mark.parametrize("device, fragment", [("bogus", "unknown device"), ("meta", "cannot run PixelCore"),
                                              ("cuda:99", "cuda")])
def test_unusable_devices_are_refused_with_a_message(tmp_path, caplog, device, fragment):
    with caplog.at_level(logging.ERROR, logger="pixelcore"):
        assert main(["generate", PROMPT, "-o", str(tmp_path / "x.png"), "--device", device]) == 2
    assert fragment in caplog.text
    assert os.listdir(tmp_path) == []


def test_an_interrupted_set_leaves_no_file_behind(tmp_path, saved_tiny_model, monkeypatch, caplog):
    """Ctrl-C (or a kill, which the CLI turns into the same) while a set is written: nothing appears, not even
    a hidden temporary file, and the command ends with 130 and one line, no traceback."""
    import pixelcore.images

    written, real = [], pixelcore.images.save_png

    def save_then_interrupt(rgba, path, text=None):
        if len(written) == 3:
            raise KeyboardInterrupt
        written.append(path)
        return real(rgba, path, text)

    monkeypatch.setattr(pixelcore.images, "save_png", save_then_interrupt)
    with caplog.at_level(logging.ERROR, logger="pixelcore"):
        code = main(["generate", PROMPT, "-o", str(tmp_path / "set.png"), "--n", "4", "--steps", "2",
                     "--model", str(saved_tiny_model), "--device", "cpu"])
    assert code == 130 and "interrupted" in caplog.text
    assert len(written) == 3 and os.listdir(tmp_path) == []


def test_sigterm_during_a_set_cleans_up(tmp_path, saved_tiny_model):
    """A real process killed with SIGTERM while it samples a large set exits without leaving files."""
    import signal

    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pixelcore", "generate", PROMPT, "-o", "set.png", "--n", "256", "--steps", "64",
           "--model", str(saved_tiny_model), "--device", "cpu"]
    process = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    seen = []
    for line in process.stderr:  # the model is loaded: 64 rounds over 256 textures are still ahead
        seen.append(line)
        if "loaded" in line:
            process.send_signal(signal.SIGTERM)
            break
    stderr = "".join(seen) + process.communicate(timeout=120)[1]
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert os.listdir(tmp_path) == []


def test_generate_names_the_words_the_model_never_learned(tmp_path, saved_tiny_model, caplog):
    with caplog.at_level(logging.WARNING, logger="pixelcore"):
        assert main(["generate", "a sci-fi sword with a scope", "-o", str(tmp_path / "x.png"), "--steps", "2",
                     "--model", str(saved_tiny_model), "--device", "cpu"]) == 0
    assert "unknown words, not learned by the model: sci-fi, scope" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pixelcore"):
        assert main(["generate", "一把蓝色的钻石剑", "-o", str(tmp_path / "y.png"), "--steps", "2",
                     "--model", str(saved_tiny_model), "--device", "cpu"]) == 0
    assert "unknown words" not in caplog.text


def test_vocab_lists_both_languages(capsys):
    assert main(["vocab", "--group", "colours"]) == 0
    printed = capsys.readouterr().out
    assert "red" in printed and "红色" in printed and "sword" not in printed

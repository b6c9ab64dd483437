import json
import re
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelcore.checkpoint import CheckpointError, average_models, load_model, read_metadata
from pixelcore.train import TrainConfig, expected_last_step, train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _single_process(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


def _config(texture_dir, out, **overrides) -> TrainConfig:
    values = dict(data=str(texture_dir), out=str(out), preset="tiny", steps=6, batch_size=4, sample_every=3,
                  save_every=3, device="cpu", warmup=2, lr=3e-3)
    return TrainConfig(**{**values, **overrides})


def _optimizer_steps(resume_file: Path) -> set[int]:
    state = torch.load(resume_file, map_location="cpu", weights_only=True)
    return {int(s["step"]) for s in state["optimizer"]["state"].values()}


def test_train_writes_a_run_and_resumes(tmp_path, texture_dir, caplog):
    out = tmp_path / "run"
    path = train(_config(texture_dir, out))
    assert path == out / "model.safetensors"
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "resume.pt", "progress.json",
                                               "train_config.json", "samples"}
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_000003.png", "step_000006.png"]
    with Image.open(out / "samples" / "step_000006.png") as grid:
        assert grid.mode == "RGBA" and grid.width > 16 * 8
    assert json.loads((out / "progress.json").read_text())["step"] == 6
    assert json.loads(read_metadata(path)["training"])["step"] == 6
    assert _optimizer_steps(out / "resume.pt") == {6}
    model = load_model(path)
    assert model.config.n_embd == 16  # the tiny preset
    resume_state = torch.load(out / "resume.pt", map_location="cpu", weights_only=True)
    assert "palette" in resume_state and "optimizer" in resume_state
    before = {k: v.clone() for k, v in model.state_dict().items()}

    # Two resumed copies of the run continue from step 6 and agree with each other.
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with caplog.at_level(logging.INFO, logger="pixelcore"):
        train(_config(texture_dir, out, steps=8, resume=True))
    assert "at step 6" in caplog.text
    assert json.loads((out / "progress.json").read_text())["step"] == 8
    assert _optimizer_steps(out / "resume.pt") == {8}  # optimizer state carried over, not restarted
    assert (out / "samples" / "step_000008.png").is_file()
    assert not (out / "samples" / "step_000007.png").exists()
    resumed = load_model(out / "model.safetensors")
    assert torch.equal(resumed.palette.colors, model.palette.colors)
    moved = [k for k, v in resumed.state_dict().items() if not torch.equal(v, before[k])]
    assert moved  # the two extra steps trained the loaded weights
    train(_config(texture_dir, copy, steps=8, resume=True))
    again = load_model(copy / "model.safetensors")
    for key, value in resumed.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value)


def test_resume_without_a_resume_file_starts_fresh(tmp_path, texture_dir):
    out = tmp_path / "fresh"
    train(_config(texture_dir, out, steps=2, sample_every=0, hue_shifts=(), resume=True))
    assert json.loads((out / "progress.json").read_text())["step"] == 2
    assert not (out / "samples").exists()


def test_progress_records_the_loss_of_the_saved_step(tmp_path, texture_dir):
    out = tmp_path / "progress"
    train(_config(texture_dir, out, steps=2, save_every=2, sample_every=0, hue_shifts=()))
    loss = json.loads((out / "progress.json").read_text())["loss"]
    assert np.isfinite(loss["loss"]) and loss["loss"] > 0


def test_train_refuses_an_unknown_preset_and_a_missing_folder(tmp_path, texture_dir):
    with pytest.raises(ValueError, match="preset"):
        train(_config(texture_dir, tmp_path / "x", preset="huge", hue_shifts=()))
    with pytest.raises(ValueError, match="does not exist"):
        train(_config(tmp_path / "no_such_folder", tmp_path / "y"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_ddp_gloo_run_on_cpu(tmp_path, texture_dir):
    """torchrun with 2 CPU processes (gloo): the run finishes and rank 0 writes a loadable model."""
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "-m", "pixelcore", "train", "--data", str(texture_dir),
           "--out", str(out), "--preset", "tiny", "--steps", "4", "--batch-size", "4", "--save-every", "2",
           "--sample-every", "0", "--hue-shifts", "", "--device", "cpu"]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "world size 2" in result.stderr
    assert json.loads((out / "progress.json").read_text())["step"] == 4
    model = load_model(out / "model.safetensors")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert _optimizer_steps(out / "resume.pt") == {4}
    tokens = model.palette.quantize(np.zeros((16, 16, 4), np.uint8))
    assert tokens.shape == (16, 16)


def test_init_from_fine_tunes_a_release_model_with_its_palette_and_config(tmp_path, texture_dir):
    base = train(_config(texture_dir, tmp_path / "base", steps=2, sample_every=0, hue_shifts=()))
    start = load_model(base)
    # A different preset and palette size are ignored: the checkpoint fixes both.
    tuned_path = train(_config(texture_dir, tmp_path / "tuned", steps=3, sample_every=0, hue_shifts=(),
                               preset="quick", palette_size=4, init_from=str(base)))
    tuned = load_model(tuned_path)
    assert tuned.config == start.config
    assert torch.equal(tuned.palette.colors, start.palette.colors)
    moved = [k for k, v in tuned.state_dict().items() if not torch.equal(v, start.state_dict()[k])]
    assert moved
    progress = json.loads((tmp_path / "tuned" / "progress.json").read_text())
    assert progress["init_from"] == str(base) and progress["step"] == 3

    with pytest.raises(ValueError, match="--model-overrides cannot change"):
        train(_config(texture_dir, tmp_path / "bad", init_from=str(base), model_overrides={"n_layer": 2}))
    assert not (tmp_path / "bad").exists()


def test_kept_checkpoints_average_into_one_release_file(tmp_path, texture_dir):
    out = tmp_path / "run"
    train(_config(texture_dir, out, steps=4, save_every=2, sample_every=0, hue_shifts=(), keep_checkpoints=True))
    kept = sorted((out / "checkpoints").iterdir())
    assert [p.name for p in kept] == ["step_000002.safetensors", "step_000004.safetensors"]
    averaged = average_models(kept, tmp_path / "avg.safetensors", dtype=torch.float32)
    a, b, mean = load_model(kept[0]), load_model(kept[1]), load_model(averaged)
    key = "head.weight"
    assert not torch.equal(a.state_dict()[key], b.state_dict()[key])
    torch.testing.assert_close(mean.state_dict()[key], (a.state_dict()[key] + b.state_dict()[key]) / 2)
    assert json.loads(read_metadata(averaged)["averaged_from"]) == [p.name for p in kept]
    assert json.loads(read_metadata(averaged)["training"])["step"] == 4
    assert "averaged_weights" not in read_metadata(averaged)

    weighted = average_models(kept, tmp_path / "weighted.safetensors", dtype=torch.float32, weights=[1.0, 3.0])
    torch.testing.assert_close(load_model(weighted).state_dict()[key],
                               0.25 * a.state_dict()[key] + 0.75 * b.state_dict()[key])
    assert json.loads(read_metadata(weighted)["averaged_weights"]) == [0.25, 0.75]
    for bad, message in (([1.0], "2 checkpoints"), ([1.0, -1.0], "non-negative"), ([0.0, 0.0], "not all zero"),
                         ([1.0, float("nan")], "finite")):
        with pytest.raises(CheckpointError, match=message):
            average_models(kept, tmp_path / "bad.safetensors", weights=bad)

    other = train(_config(texture_dir, tmp_path / "other", steps=1, sample_every=0, hue_shifts=(),
                          model_overrides={"n_layer": 2}))
    with pytest.raises(CheckpointError, match="differs"):
        average_models([kept[0], other], tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="at least two"):
        average_models(kept[:1], tmp_path / "bad.safetensors")
    assert not (tmp_path / "bad.safetensors").exists()


def test_caption_bank_adds_generic_captions_only_when_asked():
    from pixelcore.data import TextureRecord
    from pixelcore.dataset import CaptionBank

    rec = TextureRecord(np.zeros((16, 16, 4), np.uint8), "diamond sword", "red", "item", "red diamond sword", "x")
    def tokenize(texts):
        return torch.arange(len(texts)).unsqueeze(1)
    plain, generic = CaptionBank([rec], tokenize), CaptionBank([rec], tokenize, generic=True)
    assert generic.n_english.item() == plain.n_english.item() + 2  # "a red sword", "red sword"
    assert generic.n_chinese.item() == plain.n_chinese.item() + 2  # 一把红色的剑, 红色的剑


def test_caption_bank_marks_the_kind_of_names_found_as_item_and_block():
    from pixelcore.data import TextureRecord
    from pixelcore.dataset import CaptionBank

    def rec(name, kind):
        return TextureRecord(np.zeros((16, 16, 4), np.uint8), name, "green", kind, f"green {name}", "x")
    records = [rec("leaves", "item"), rec("leaves", "block"), rec("stone", "block")]
    seen = []
    def tokenize(texts):
        seen.extend(texts)
        return torch.arange(len(texts)).unsqueeze(1)
    plain = CaptionBank(records, tokenize)
    marked_start = len(seen)
    marked = CaptionBank(records, tokenize, kind_marked=True)
    width = marked.ids.shape[1]
    rows = [seen[marked_start + i * width:marked_start + (i + 1) * width] for i in range(3)]
    leaves_block = rows[1][:marked.n_english[1] + marked.n_chinese[1]]
    assert leaves_block and all("block" in c or "方块" in c for c in leaves_block)
    assert marked.n_english[0] == plain.n_english[0]  # the item keeps every caption
    assert marked.n_english[2] == plain.n_english[2]  # a block no item shares its name with keeps "green stone"
    assert marked.n_english[1] < plain.n_english[1]
    # every draw for the leaves block says block
    gen = torch.Generator().manual_seed(0)
    drawn = marked.draw(torch.ones(200, dtype=torch.long), 0.5, gen).flatten().tolist()
    assert all("block" in seen[marked_start + i] or "方块" in seen[marked_start + i] for i in drawn)


def test_record_weights_boost_names_found_as_item_and_block():
    from pixelcore.data import TextureRecord
    from pixelcore.dataset import record_weights

    def rec(name, kind):
        return TextureRecord(np.zeros((16, 16, 4), np.uint8), name, None, kind, name, "x")
    records = [rec("leaves", "item"), rec("leaves", "block"), rec("stone", "block"), rec("sword", "item")]
    assert record_weights(records, 1.0) is None  # uniform draws, as without the option
    assert record_weights(records[2:], 3.0) is None  # no shared name
    assert record_weights(records, 3.0).tolist() == [3.0, 3.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="positive"):
        record_weights(records, 0.0)
    extra = torch.tensor([False, False, False, True])
    assert record_weights(records, 3.0, extra, 0.5).tolist() == [3.0, 3.0, 1.0, 0.5]
    assert record_weights(records[2:], 1.0, extra[2:], 1.0) is None


def test_extra_data_is_trained_on_with_its_style_and_never_held_out(tmp_path, texture_dir):
    from pixelcore.dataset import CaptionBank, prepare_data
    from pixelcore.train_config import TrainConfig

    extra = tmp_path / "extra"
    extra.mkdir()
    Image.fromarray(np.array(Image.open(texture_dir / "apple.png"))).save(extra / "gem.png")
    (extra / "metadata.jsonl").write_text(json.dumps({"file_name": "gem.png", "text": "a red gem", "name": "gem",
                                                      "kind": "item", "style": "silk"}) + "\n")
    config = TrainConfig(data=str(texture_dir), extra_data=(str(extra),), holdout=0.5, hue_shifts=())
    data = prepare_data(config)
    assert data.extra is not None and int(data.extra.sum()) == 1 and data.records[-1].style == "silk"
    assert all(r.source != data.records[-1].source for r in data.held_out)
    seen = []
    CaptionBank(data.records[-1:], lambda captions: seen.extend(captions) or torch.zeros(len(captions), 4))
    assert seen and all("silk icon style" in c or "Silk图标风格" in c for c in seen)


def test_train_with_kind_captions_and_pair_boost(tmp_path, texture_dir, caplog):
    data = tmp_path / "data"
    shutil.copytree(texture_dir, data)
    rows = [json.loads(line) for line in (data / "metadata.jsonl").read_text().splitlines()]
    cut = np.array(Image.open(data / "leaves.png"))
    cut[::3, ::3, 3] = 0  # leaves with holes: the item twin of the opaque leaves block
    Image.fromarray(cut, "RGBA").save(data / "leaves_cut.png")
    rows += [{"file_name": "leaves_cut.png", "text": "green leaves", "name": "leaves", "color": "green",
              "kind": "item"}]
    rows = [{**r, "name": "leaves", "color": "green", "kind": "block"} if r["file_name"] == "leaves.png" else r
            for r in rows]
    (data / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.INFO, logger="pixelcore"):
        path = train(_config(data, tmp_path / "run", steps=2, sample_every=0, kind_captions=True,
                             kind_pair_boost=2.0, hue_shifts=()))
    assert path.exists()
    assert any("drawing 2 records of 1 item-and-block names 2.0x" in r.getMessage() for r in caplog.records)
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert saved["kind_captions"] is True and saved["kind_pair_boost"] == 2.0
    with pytest.raises(ValueError, match="kind_pair_boost must be positive"):
        train(_config(tmp_path / "missing", tmp_path / "refused", kind_pair_boost=0.0))  # before the data is read
    assert not (tmp_path / "refused").exists()


def test_train_with_colour_balanced_augmentation(tmp_path, texture_dir, caplog):
    with caplog.at_level(logging.INFO, logger="pixelcore"):
        train(_config(texture_dir, tmp_path / "run", steps=1, sample_every=0, hue_targets=True,
                      generic_captions=True))
    line = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("training set:"))
    total, originals = (int(x) for x in re.match(r"training set: (\d+) textures \((\d+)", line).groups())
    assert total > 2 * originals  # several colour words per chromatic texture


def test_a_run_folder_that_is_a_file_is_refused_before_the_data_is_read(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    for out in (taken, taken / "run"):
        with pytest.raises(ValueError, match="is a file, not a folder"):
            train(_config(tmp_path / "missing", out))
    assert taken.read_text() == "not a folder"


def test_progress_total_follows_whichever_limit_ends_the_run():
    steps_only = TrainConfig(data="", steps=1000)
    assert expected_last_step(10, 0, 5.0, steps_only) == 1000
    timed = TrainConfig(data="", steps=20000, max_minutes=1.0)
    assert expected_last_step(0, 0, 0.0, timed) == 20000  # nothing measured yet
    assert expected_last_step(10, 0, 30.0, timed) == 20  # 1 step in 3 s, 30 s left: 10 more
    assert expected_last_step(60, 50, 5.0, timed) == 60 + 2 * 55  # a resumed run measures from its first step
    assert expected_last_step(10, 0, 90.0, timed) == 10  # past the budget: ends here
    assert expected_last_step(900, 0, 1.0, TrainConfig(data="", steps=1000, max_minutes=1.0)) == 1000


def test_a_timed_out_run_ends_a_full_bar_then_logs_once(tmp_path, texture_dir, caplog, capsys):
    with caplog.at_level(logging.INFO, logger="pixelcore"):
        train(_config(texture_dir, tmp_path / "run", steps=20000, sample_every=0, max_minutes=1e-9))
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("dataset ") for m in messages) == 1  # load_textures logs it, nothing else
    assert any(m.startswith("stopping at step 1:") for m in messages)
    bar = capsys.readouterr().err.rsplit("\r", 1)[-1]
    assert "1/1 " in bar and "20000" not in bar  # the bar ended full at the step the time limit ended it


def test_only_original_textures_get_captions_without_a_colour(texture_dir):
    from pixelcore.data import hue_shift_augment, load_textures
    from pixelcore.dataset import CaptionBank

    records, _ = load_textures(texture_dir)
    sword = next(r for r in records if r.name == "diamond sword")
    copies = [r for r in hue_shift_augment([sword], (120.0,)) if r.recolored]
    assert copies and copies[0].color != sword.color
    for record, expect in ((sword, True), (copies[0], False)):
        seen = []
        CaptionBank([record], lambda captions: seen.extend(captions) or torch.zeros(len(captions), 4),
                    colorless=True)
        assert ("a diamond sword" in seen) == expect, (record.color, seen)

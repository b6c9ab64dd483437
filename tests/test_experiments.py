"""Design-study code: metrics on known inputs, the AR and retrieval baselines, an end-to-end run."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from pixelcore.data import TextureRecord
from research import features as feat
from research.ar import ARModel, load_ar, sample_ar, save_ar
from research.diffusion import Denoiser, load_diffusion, sample_diffusion, to_rgba, to_signal, train_diffusion
from research.retrieval import RetrievalModel
from research.__main__ import main as experiments_main
from pixelcore.sampling import SamplerConfig
from research.config import ExperimentConfig
from research.runner import run, write_json
from research.steps import render_steps, steps_sweep
from research.table import render
from pixelcore.checkpoint import load_model
from pixelcore.model import PixelConfig, PixelModel
from pixelcore.palette import Palette
from pixelcore.sampling import EARLY_GUIDANCE_SHARE, encode_prompt, sample
from pixelcore.train import TrainConfig, train

COLORS = [
    (200, 30, 30),
    (30, 160, 40),
    (40, 60, 200),
    (220, 200, 40),
    (120, 120, 120),
    (140, 80, 30),
    (160, 40, 180),
    (240, 240, 240),
]


def _texture(i: int, item: bool) -> np.ndarray:
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., :3] = COLORS[i % len(COLORS)]
    rgba[..., 3] = 255
    rgba[(np.arange(16) + i) % 3 == 0] = np.r_[np.array(COLORS[(i + 3) % len(COLORS)]), 255]
    if item:
        rgba[:4, :, 3] = 0
        rgba[:, :3, 3] = 0
    return rgba


@pytest.fixture
def tiny_data(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    names = [
        "red sword",
        "green leaves",
        "blue pickaxe",
        "yellow apple",
        "gray stone",
        "brown planks",
        "purple axe",
        "white wool",
    ]
    rows = []
    for i, name in enumerate(names):
        file = f"{name.replace(' ', '_')}.png"
        Image.fromarray(_texture(i, item=i % 2 == 0), "RGBA").save(folder / file)
        rows.append({"file_name": file, "text": f"a {name}", "kind": "item" if i % 2 == 0 else "block"})
    (folder / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '{"prompt": "a red sword", "color": "red", "kind": "item"}\n'
        '{"prompt": "green leaves block", "color": "green", "kind": "block"}\n'
    )
    return folder, prompts


def _palette() -> Palette:
    return Palette.from_colors(np.array(COLORS, np.uint8))


def test_frechet_distance_zero_for_identical_sets_and_large_for_noise(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 8))
    assert feat.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert feat.kernel_distance(a, a, subsets=5, subset_size=50) < 0.05
    real = np.stack([_texture(i, i % 2 == 0) for i in range(64)])
    records = [TextureRecord(t, "thing", None, "item" if t[0, 0, 3] == 0 else "block", "", "") for t in real]
    feat.train_feature_net(records, tmp_path / "features.safetensors", steps=30, batch_size=32)
    net = feat.load_feature_net(tmp_path / "features.safetensors")  # the standardisation is saved with it
    real_f = feat.extract_features(net, real)
    subset_f = feat.extract_features(net, real[rng.permutation(len(real))[:32]])
    noise_f = feat.extract_features(net, feat.noise_textures(64))
    assert feat.frechet_distance(noise_f, real_f) > feat.frechet_distance(subset_f, real_f)
    assert feat.kernel_distance(noise_f, real_f) > feat.kernel_distance(subset_f, real_f)


def test_halves_distances_rank_the_real_held_out_textures_first():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(120, 4))
    same = feat.halves_distances(real, real, splits=10)
    assert abs(same["kid"]) < 0.02  # unbiased: the real held-out textures reach about 0
    assert same["fd"] > 0  # FD's small-set bias: the yardstick, not zero
    # copies of a few typical textures: caption-matched but with too little variety
    prototypes = real[rng.integers(0, 8, len(real))] * 0.5
    shifted = real + 1.0
    for made in (prototypes, shifted):
        other = feat.halves_distances(made, real, splits=10)
        assert other["fd"] > same["fd"] and other["kid"] > same["kid"]
    assert feat.halves_distances(real, real, splits=10) == same  # seeded
    with pytest.raises(ValueError, match="one made texture per held-out texture"):
        feat.halves_distances(real[:-1], real)
    with pytest.raises(ValueError, match="at least 4"):
        feat.halves_distances(real[:3], real[:3])


def test_table_leaves_out_columns_a_run_never_scored(tmp_path):
    runs = tmp_path / "runs"
    base = {"public_color_adherence": 0.9, "fd": 5.0, "kid": 0.2}
    for name, extra in (("maskgit", {}), ("retrieval", {})):
        (runs / name).mkdir(parents=True)
        (runs / name / "metrics.json").write_text(json.dumps({**base, **extra}))
    (runs / "references.json").write_text(json.dumps({"real_train": {"fd": 3.0, "kid": 0.01},
                                                       "noise": {"fd": 60.0, "kid": 1.3}}))
    old = render(runs, tmp_path / "old.md").read_text()
    assert "FD½ ↓" not in old  # the column header; the method text still explains the metric
    assert "real held-out textures (other half)" not in old
    for name, fd_halves in (("maskgit", 9.0), ("retrieval", 3.7)):
        path = runs / name / "metrics.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "fd_halves": fd_halves, "kid_halves": 0.04}))
    refs = json.loads((runs / "references.json").read_text())
    refs["halves"] = {"real_heldout": {"fd": 3.0, "kid": 0.0}, "noise": {"fd": 48.0, "kid": 1.0}}
    (runs / "references.json").write_text(json.dumps(refs))
    new = render(runs, tmp_path / "new.md").read_text()
    assert "| FD½ ↓ | KID½ ↓ |" in new
    assert "| reference: real held-out textures (other half) |" in new
    assert "FD½ real held-out 3.00, noise 48.00, retrieval's copies 3.70 — real ranked above the copies" in new
    refs["halves"]["real_heldout"]["fd"] = 4.0  # copies beating real held-out textures: the check must say so
    (runs / "references.json").write_text(json.dumps(refs))
    assert "METRIC FAILS" in render(runs, tmp_path / "bad.md").read_text()
    # The header and the command say how the systems were scored: a re-score's record beats the run's config.
    (runs / "experiment_config.json").write_text(json.dumps({"quick": True, "cfg_scale": 3.0}))
    assert "Sampling: guidance 3.0, temperature MaskGIT 0.7, AR 1.0." in render(runs, tmp_path / "a.md").read_text()
    path = runs / "maskgit" / "metrics.json"
    path.write_text(json.dumps({**json.loads(path.read_text()),
                                "sampling": {"cfg_scale": 1.5, "temperature": 1.0, "steps": 10}}))
    rescored = render(runs, tmp_path / "b.md").read_text()
    assert "Sampling: guidance 1.5, temperature 1.0." in rescored
    assert f"run --out {runs.as_posix()} --quick\n" in rescored  # 1.5 and 1.0 are the defaults: no flags
    # Hand-written notes go in from a file once, above the generated findings, and live in the page from then
    # on: rendering the page again keeps them, and the regenerate command needs no notes file.
    notes = tmp_path / "notes.md"
    notes.write_text("## What the grids show (hand-written)\n\n- swords are blobs\n")
    doc = render(runs, tmp_path / "d.md", notes).read_text()
    assert "- swords are blobs\n<!-- /notes -->\n\n## Findings (generated from the numbers above)" in doc
    assert f"table --runs {runs.as_posix()} --out {(tmp_path / 'd.md').as_posix()}\n" in doc
    notes.unlink()
    again = render(runs, tmp_path / "d.md").read_text()
    assert again.count("- swords are blobs") == 1 and again == doc
    with pytest.raises(ValueError, match="notes file .*missing.md not found"):
        render(runs, tmp_path / "e.md", tmp_path / "missing.md")
    assert not (tmp_path / "e.md").exists()
    (runs / "ar").mkdir()  # scored by the run itself, at its guidance 3: the table cannot say which setting
    (runs / "ar" / "metrics.json").write_text(json.dumps(base))
    with pytest.raises(ValueError, match="different sampling settings"):
        render(runs, tmp_path / "c.md")


def test_ar_sampler_shapes_seed_and_kv_cache_matches_full_forward():
    torch.manual_seed(0)
    model = ARModel(PixelConfig.tiny(), _palette()).eval()

    def gen():
        return torch.Generator().manual_seed(3)

    tokens = sample_ar(model, ["a red sword", "stone"], batch_size=2, generator=gen())
    assert tokens.shape == (4, 16, 16) and tokens.min() >= 0 and tokens.max() < len(model.palette)
    assert torch.equal(tokens, sample_ar(model, ["a red sword", "stone"], batch_size=2, generator=gen()))
    assert torch.equal(
        sample_ar(model, "a red sword", generator=gen()),
        sample_ar(model, "a red sword", generator=gen(), use_cache=False),
    )
    with torch.no_grad():
        cond, mask = model.condition(model.text_encoder.tokenize(["a red sword", "an apple of gold"]))
        target = torch.randint(0, len(model.palette), (2, 20))
        full = model(target, cond, mask)
        logits, cache, valid = model.prefill(cond, mask)
        steps = [logits]
        for t in range(19):
            logits, cache, valid = model.extend(target[:, t], t, cache, valid)
            steps.append(logits)
    assert torch.allclose(torch.stack(steps, 1), full, atol=1e-5)


def test_ar_sampler_drops_the_null_half_once_early_guidance_ends(monkeypatch):
    torch.manual_seed(0)
    model = ARModel(PixelConfig.tiny(), _palette()).eval()
    rows, extend = [], model.extend

    def counting_extend(token, position, cache, key_valid):
        rows.append(len(token))
        return extend(token, position, cache, key_valid)

    monkeypatch.setattr(model, "extend", counting_extend)

    def draw(**kwargs):
        return sample_ar(model, ["a red sword", "stone"], cfg_scale=4.0, guidance_schedule="early",
                         generator=torch.Generator().manual_seed(5), **kwargs)

    tokens = draw()
    guided = math.ceil(EARLY_GUIDANCE_SHARE * 256)  # positions 0..guided-1 start under a third decided
    assert rows == [4] * (guided - 1) + [2] * (256 - guided)  # the call after token t computes position t + 1
    assert torch.equal(tokens, draw(use_cache=False))  # the cache-free path drops it at the same position
    constant = sample_ar(model, ["a red sword", "stone"], cfg_scale=4.0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(tokens.flatten(1)[:, :guided], constant.flatten(1)[:, :guided])  # same guided start


def test_ar_checkpoint_round_trip(tmp_path):
    model = ARModel(PixelConfig.tiny(), _palette())
    loaded = load_ar(save_ar(model, tmp_path / "ar.safetensors"))

    def gen():
        return torch.Generator().manual_seed(1)

    assert torch.equal(
        sample_ar(model, "a sword", generator=gen()), sample_ar(loaded, "a sword", generator=gen())
    )


def test_diffusion_signal_round_trips_palette_textures_and_cuts_alpha_at_half():
    palette = _palette()
    rgba = torch.from_numpy(np.stack([_texture(i, item=True) for i in range(3)]))
    rgba[0, 5, 5] = torch.tensor([10, 20, 30, 100], dtype=torch.uint8)  # under half alpha: transparent
    expected = rgba.clone()
    expected[expected[..., 3] < 128] = 0
    x = to_signal(rgba)
    assert x.shape == (3, 4, 16, 16) and x.min() >= -1 and x.max() <= 1
    assert (x[:, :, expected[0, ..., 3] == 0][0] == -1).all()  # a transparent pixel is -1 in every channel
    assert torch.equal(to_rgba(x, palette), expected)


def test_diffusion_trains_a_step_and_samples_cut_out_palette_textures(tiny_data, tmp_path):
    data, _ = tiny_data
    path = train_diffusion(TrainConfig(data=str(data), out=str(tmp_path / "d"), preset="tiny", steps=2,
                                       batch_size=4, warmup=1, device="cpu"))
    model = load_diffusion(path)
    assert isinstance(model, Denoiser) and model.num_params() > 0

    def draw(seed, **kwargs):
        return sample_diffusion(model, ["a red sword", "gray stone"], batch_size=2,
                                generator=torch.Generator().manual_seed(seed), **{"steps": 3, **kwargs})

    rgba = draw(0)
    assert rgba.shape == (4, 16, 16, 4) and rgba.dtype == torch.uint8
    assert set(rgba[..., 3].unique().tolist()) <= {0, 255}  # cut out: every pixel opaque or transparent
    assert (rgba[rgba[..., 3] == 0] == 0).all()
    colours = {tuple(c) for c in model.palette.colors.tolist()}
    assert {tuple(p) for p in rgba.reshape(-1, 4).tolist()} <= colours  # snapped to the run's palette
    assert torch.equal(rgba, draw(0)) and not torch.equal(rgba, draw(1))
    assert draw(0, cfg_scale=1.0).shape == rgba.shape  # unguided: the conditional half only
    with pytest.raises(ValueError, match="steps"):
        draw(0, steps=0)


def test_retrieval_returns_exact_training_textures():
    bank = torch.from_numpy(np.stack([_texture(i, i % 2 == 0) for i in range(6)]))
    model = RetrievalModel(PixelConfig.tiny(), bank)
    got = model.retrieve(["a red sword", "gray stone"], n=2)
    assert got.shape == (2, 2, 16, 16, 4)
    known = {t.tobytes() for t in bank.numpy()}
    assert all(t.tobytes() in known for t in got.reshape(-1, 16, 16, 4))


def test_quick_run_end_to_end_writes_table(tiny_data, tmp_path):
    data, prompts = tiny_data
    config = ExperimentConfig(
        data=str(data),
        out=str(tmp_path / "runs"),
        preset="tiny",
        batch_size=4,
        max_steps=2,
        minutes_per_system=1.0,
        holdout=0.5,
        seeds_per_prompt=2,
        public_prompts=str(prompts),
        novel_prompts=str(prompts),
        feature_steps=3,
        sample_steps=2,
        speed_repeats=1,
    )
    run(config)
    metrics = json.loads((tmp_path / "runs" / "maskgit" / "metrics.json").read_text())
    assert {"public_color_adherence", "novel_copy_rate", "fd", "kid", "fd_halves", "kid_halves"} <= set(metrics)
    assert metrics["sampling"] == {"cfg_scale": 1.5, "temperature": 1.0, "guidance_schedule": "constant",
                                   "randomness": 2.0, "transparency_delay": 0.0, "steps": 2}  # what scored it
    speed = json.loads((tmp_path / "runs" / "speed.json").read_text())["systems"]
    assert speed["maskgit"]["mflop"] > 0 and speed["ar"]["mflop"] > 0 and "mflop" not in speed["retrieval"]
    refs = json.loads((tmp_path / "runs" / "references.json").read_text())
    assert set(refs["halves"]) == {"real_heldout", "real_train", "noise"}
    assert (
        json.loads((tmp_path / "runs" / "retrieval" / "metrics.json").read_text())["novel_copy_rate"] == 1.0
    )
    doc = render(tmp_path / "runs", tmp_path / "docs" / "RESULTS.md").read_text()
    assert "| `ar`" in doc and "| `no_2d`" in doc and "img/s b32 | MFLOP/img |" in doc
    assert "Work per image at batch 1: MaskGIT" in doc
    assert "| reference: real held-out textures (other half) |" in doc and "Metric sanity, held-out halves" in doc
    assert (f"python -m research run --out {(tmp_path / 'runs').as_posix()} --minutes-per-system 1.0 "
            "--max-steps 2 "
            "--holdout 0.5 --seeds-per-prompt 2 --preset tiny --batch-size 4 --feature-steps 3 --sample-steps 2 "
            "--speed-repeats 1\n") in doc
    assert (tmp_path / "docs" / "results" / "maskgit_public.png").exists()
    assert speed["diffusion"]["mflop"] > 0 and "Speed, batch 1: MaskGIT is" in doc and "diffusion baseline" in doc
    steps = json.loads(steps_sweep(config, ["no_tv", "diffusion"], [1, 2]).read_text())["systems"]
    assert [r["steps"] for r in steps["diffusion"]] == [1, 2]
    assert steps["no_tv"][0]["mflop"] < steps["no_tv"][1]["mflop"]  # one round against two
    assert "| `diffusion` | 2 |" in render_steps(tmp_path / "runs" / "steps.json")
    steps = json.loads(steps_sweep(config, ["diffusion"], [3]).read_text())["systems"]  # adds, keeps the rest
    assert [r["steps"] for r in steps["diffusion"]] == [1, 2, 3] and len(steps["no_tv"]) == 2


def test_scored_sampling_tells_transparency_delays_apart():
    from research.table import describe_sampling, sampling_settings, scored_sampling

    shared = {"cfg_scale": 1.5, "temperature": 1.0, "guidance_schedule": "constant"}
    ar = {"sampling": {**shared, "randomness": None, "transparency_delay": None, "steps": None}}
    old = {"sampling": {**shared, "randomness": 2.0, "steps": 10}}  # recorded before the delay existed

    def maskgit(delay: float) -> dict:
        return {"sampling": {**shared, "randomness": 2.0, "transparency_delay": delay, "steps": 10}}

    assert scored_sampling({"maskgit": maskgit(0.0), "no_tv": old, "ar": ar}, {}) == (1.5, 1.0, "constant", 2.0, 0.0)
    delayed = scored_sampling({"maskgit": maskgit(1.0), "ar": ar}, {})
    assert describe_sampling(delayed) == "guidance 1.5, temperature 1.0, MaskGIT transparency delay 1.0"
    assert sampling_settings(delayed)["transparency_delay"] == 1.0  # so the table's command repeats it
    with pytest.raises(ValueError, match="transparency delay 1.0"):
        scored_sampling({"maskgit": maskgit(1.0), "no_tv": old}, {})


def test_adapt_scores_a_model_on_the_held_out_part_of_a_pack(tiny_data, tmp_path, capsys):
    data, prompts = tiny_data
    model = train(TrainConfig(data=str(data), out=str(tmp_path / "ft"), preset="tiny", steps=2, batch_size=4,
                              sample_every=0, device="cpu", holdout=0.25, hue_shifts=()))
    out = tmp_path / "adapt"
    args = ["adapt", str(model), "--pack", str(data), "--out", str(out), "--feature-steps", "3", "--seeds", "1",
            "--public-prompts", str(prompts), "--holdout", "0.25"]
    assert experiments_main(args) == 0
    report = json.loads((out / "adapt.json").read_text())
    (row,) = report["models"]
    assert row["model"] == str(model) and row["fd"] >= 0 and 0 <= row["pack_kind_adherence"] <= 1
    assert report["references"]["n_heldout"] == 2  # a quarter of eight textures
    with Image.open(out / row["grid"]) as grid:  # each held-out original beside its sample
        assert grid.size[0] >= 4 * 16
    assert "reference: noise" in capsys.readouterr().out
    assert experiments_main([*args[:1], "missing.safetensors", *args[2:]]) == 2  # named in the log, no crash
    # Without held-out textures there is nothing to compare with: a clear error, not a crash.
    assert experiments_main([*args[:-1], "0", "--out", str(tmp_path / "none")]) == 2


def test_run_jobs_starts_the_costliest_system_first(tiny_data, tmp_path, monkeypatch):
    from research import runner

    data, _ = tiny_data
    started = []

    class Finished:  # a child that has already ended well
        returncode = 0

        def poll(self):
            return 0

    def popen(command, **kwargs):
        started.append(command[command.index("--only") + 1])
        return Finished()

    monkeypatch.setattr(runner.subprocess, "Popen", popen)
    monkeypatch.setattr(runner.time, "sleep", lambda seconds: None)
    config = ExperimentConfig(data=str(data), out=str(tmp_path / "runs"), preset="tiny", batch_size=4, max_steps=1,
                              minutes_per_system=1.0, holdout=0.25, feature_steps=3)
    run(config, only=["retrieval", "no_2d", "ar", "no_tv"], jobs=2, speed=False)
    assert started == ["ar", "no_tv", "no_2d", "retrieval"]  # AR's 256 positions cost most, retrieval least


def test_one_temperature_reaches_both_samplers(tiny_data, tmp_path, monkeypatch):
    from research import runner

    data, prompts = tiny_data
    config = ExperimentConfig(data=str(data), out=str(tmp_path / "runs"), preset="tiny", batch_size=4, max_steps=1,
                              minutes_per_system=1.0, holdout=0.25, feature_steps=3, sample_steps=2)
    for name in ("maskgit", "ar"):
        runner.train_system(config.resolved(), name)
    seen = []
    real_sample, real_sample_ar = runner.sample, runner.sample_ar
    cutouts = []
    monkeypatch.setattr(runner, "sample", lambda model, cond, config, **k: seen.append(config.temperature)
                        or cutouts.append(config.min_cutout) or real_sample(model, cond, config, **k))
    monkeypatch.setattr(runner, "sample_ar",
                        lambda *a, **k: seen.append(k.get("temperature")) or real_sample_ar(*a, **k))
    own = [SamplerConfig.temperature, None]  # 0 = each sampler's own default
    for temperature, expected in ((0.0, own), (1.3, [1.3, 1.3])):
        seen.clear()
        for name in ("maskgit", "ar"):
            generate, _ = runner.load_system(replace(config.resolved(), temperature=temperature), name)
            assert generate(["a red sword"], 1, 0).shape == (1, 1, 16, 16, 4)
        assert seen == expected
    assert cutouts == [0.0, 0.0]  # MaskGIT is scored on its raw samples, as AR is


def test_count_flops_counts_products_and_attention():
    from pixelcore.bench import count_flops

    linear, x = torch.nn.Linear(8, 4), torch.randn(3, 8)
    assert count_flops(lambda: linear(x)) == 2 * 3 * 8 * 4  # one multiply and one add per weight and row
    q = torch.randn(1, 2, 5, 4)  # (B, heads, T, head dim): two (T x T x d) products per head
    assert count_flops(lambda: torch.nn.functional.scaled_dot_product_attention(q, q, q)) == 2 * 2 * 2 * 5 * 5 * 4


def _replicate(root, seed: int, values: dict[str, dict], **config) -> str:
    run = root / f"seed{seed}"
    for name, metrics in values.items():
        (run / name).mkdir(parents=True)
        (run / name / "metrics.json").write_text(json.dumps(metrics))
    settings = {"quick": True, "preset": "quick", "max_steps": 3000, "batch_size": 32, "holdout": 0.1,
                "sample_steps": 10, "seed": seed, "cfg_scale": 1.5, "temperature": 1.0, **config}
    (run / "experiment_config.json").write_text(json.dumps(settings))
    (run / "references.json").write_text(json.dumps({"halves": {"real_heldout": {"fd": 3.0 + seed, "kid": 0.0}}}))
    return str(run)


def test_replicate_summary_counts_wins_and_refuses_runs_that_do_not_replicate(tmp_path):
    from research.replicates import render_replicates

    runs = [
        _replicate(tmp_path, seed, {"maskgit": {"public_color_adherence": 0.9, "fd": fd_maskgit, "fd_halves": 9.0,
                                                "novel_copy_rate": 0.0},
                                    "ar": {"public_color_adherence": colour_ar, "fd": 5.0, "fd_halves": 7.0,
                                           "novel_copy_rate": 0.0}})
        for seed, fd_maskgit, colour_ar in ((0, 1.0, 0.8), (1, 2.0, 0.95), (2, 3.0, 0.7))
    ]
    doc = render_replicates(runs, tmp_path / "REPLICATES.md").read_text()
    assert "## Guidance 1.5, temperature 1.0 (seeds 0, 1, 2)" in doc
    assert "| `maskgit` | 3 | 0.900 ± 0.000 | 0.000 ± 0.000 | 2.000 ± 1.000 | 9.000 ± 0.000 |" in doc
    assert "| reference: real held-out textures (other half) |  |  |  |  | 4.000 ± 1.000 |" in doc
    assert "| `maskgit` vs `ar` | 2/3 (+0.083) | 0/3 (+0.000) | 3/3 (-3.000) | 0/3 (+2.000) |" in doc
    # FD½ repeats FD: it is in the table but not a second vote in the verdict.
    assert ("*MaskGIT (TV on) beats AR*: **mixed**. Better in every run on FD; worse in every one on "
            "nothing; split on colour adh. (2/3); tied on copy rate (novel).") in doc  # equal is not worse
    assert "Verdicts over every setting" not in doc  # one setting: nothing to pool
    assert f"run --out {runs[2]} --quick --seed 2\n" in doc  # the study's own sampling defaults: no flags

    # Copies re-scored at another setting form their own group, and the pooled verdict needs every run.
    rescored = [_replicate(tmp_path / "cfg3", seed, {"maskgit": {"fd": 9.0, "sampling": sampling},
                                                     "ar": {"fd": 5.0, "sampling": sampling}})
                for seed, sampling in ((0, {"cfg_scale": 3.0, "temperature": 0.0}),
                                       (1, {"cfg_scale": 3.0, "temperature": 0.0}))]
    pooled = render_replicates(runs + rescored, tmp_path / "pooled.md").read_text()
    assert "## Guidance 3.0, temperature MaskGIT 0.7, AR 1.0 (each its own default) (seeds 0, 1)" in pooled
    assert "| `maskgit` vs `ar` | – | – | 0/2 (+4.000) | – |" in pooled
    over_all = pooled.split("Verdicts over every setting")[1]
    assert "split on colour adh. (2/3), FD (3/5); tied on copy rate (novel)." in over_all
    assert f"run --out {rescored[1]} --quick --seed 1 --cfg-scale 3.0 --temperature 0.0\n" in pooled

    # A tuned sampler is its own setting, named in full; AR has no randomness, so it does not split the run.
    tuned = [_replicate(tmp_path / "tuned", seed, {
        "maskgit": {"fd": 2.0, "sampling": {"cfg_scale": 3.0, "temperature": 1.0, "guidance_schedule": "linear",
                                            "randomness": 0.5}},
        "ar": {"fd": 5.0, "sampling": {"cfg_scale": 3.0, "temperature": 1.0, "guidance_schedule": "linear",
                                       "randomness": None}}}) for seed in (0, 1)]
    doc = render_replicates(tuned, tmp_path / "tuned.md").read_text()
    assert "## Guidance 3.0, temperature 1.0, linear guidance schedule, MaskGIT randomness 0.5 (seeds 0, 1)" in doc
    assert "--seed 1 --cfg-scale 3.0 --guidance-schedule linear --randomness 0.5\n" in doc
    clash = _replicate(tmp_path / "clash", 7, {"maskgit": {"fd": 1.0, "sampling": {"cfg_scale": 1.5,
                                                                                   "temperature": 1.0,
                                                                                   "randomness": 0.5}},
                                               "no_tv": {"fd": 1.0}})
    with pytest.raises(ValueError, match="MaskGIT randomness 0.5"):
        render_replicates([runs[0], clash], tmp_path / "clash.md")

    with pytest.raises(ValueError, match="one run only"):
        render_replicates(runs[:1], tmp_path / "one.md")
    with pytest.raises(ValueError, match="share a seed"):
        render_replicates([runs[0], runs[0]], tmp_path / "same.md")
    other = _replicate(tmp_path / "other", 3, {"ar": {"fd": 1.0}}, max_steps=400)
    with pytest.raises(ValueError, match="differ in max_steps"):
        render_replicates([runs[0], other], tmp_path / "budget.md")
    with pytest.raises(ValueError, match="one run only"):  # a lone re-score has no replicate to pool with
        render_replicates(runs + rescored[:1], tmp_path / "lone.md")
    mixed = _replicate(tmp_path / "mixed", 5, {"maskgit": {"fd": 1.0, "sampling": {"cfg_scale": 3.0,
                                                                                   "temperature": 0.0}},
                                               "ar": {"fd": 1.0}})
    with pytest.raises(ValueError, match="different sampling settings"):
        render_replicates([runs[0], mixed], tmp_path / "mixed.md")
    assert experiments_main(["replicates", "--runs", *runs, "--notes", str(tmp_path / "missing.md"),
                             "--out", str(tmp_path / "notes.md")]) == 2  # named in the log, no traceback
    for name in ("one", "same", "budget", "lone", "mixed", "notes", "clash"):
        assert not (tmp_path / f"{name}.md").exists()


def test_ar_linear_guidance_starts_unguided():
    torch.manual_seed(0)
    model = ARModel(PixelConfig.tiny(), _palette())
    with torch.no_grad():
        for p in model.parameters():  # larger weights, so the prompt visibly moves the logits
            p.add_(torch.randn_like(p) * 0.5)

    def draw(**kwargs):
        return sample_ar(model, "a red sword", batch_size=16, generator=torch.Generator().manual_seed(3), **kwargs)

    unguided, constant = draw(cfg_scale=1.0), draw(cfg_scale=6.0)
    linear = draw(cfg_scale=6.0, guidance_schedule="linear")
    assert torch.equal(linear[:, 0, 0], unguided[:, 0, 0])  # the first cell: nothing decided, no guidance
    assert not torch.equal(linear, constant)
    with pytest.raises(ValueError, match="constant, linear"):
        draw(cfg_scale=2.0, guidance_schedule="cosine")


def test_sampler_sweep_picks_on_the_first_run_and_checks_on_the_others(tiny_data, tmp_path):
    from research.runner import prepare_features, train_system
    from research.sweep import pick_setting, render_sweep, sweep_run

    # The pick averages ranks, not FDs (each run has its own scale); ties go to the lower mean FD.
    a, b = ("a",), ("b",)
    assert pick_setting([{a: {"fd": 1.0}, b: {"fd": 2.0}}, {a: {"fd": 1.0}, b: {"fd": 2.0}},
                         {a: {"fd": 100.0}, b: {"fd": 3.0}}]) == a  # the mean FD would take b
    assert pick_setting([{a: {"fd": 1.0}, b: {"fd": 2.0}}, {a: {"fd": 90.0}, b: {"fd": 80.0}}]) == b  # a tie

    data, prompts = tiny_data
    runs = []
    for seed in (0, 1):
        config = ExperimentConfig(data=str(data), out=str(tmp_path / f"seed{seed}"), preset="tiny", batch_size=4,
                                  max_steps=1, minutes_per_system=1.0, holdout=0.5, feature_steps=3,
                                  sample_steps=2, seeds_per_prompt=1, public_prompts=str(prompts), seed=seed
                                  ).resolved()
        prepare_features(config)
        for name in ("no_tv", "ar"):
            train_system(config, name)
        sweep_run(config, ["no_tv", "ar"], [1.5, 3.0], ["constant", "linear"], [2.0], repeats=2)
        runs.append(config.out)
    sweep = json.loads((tmp_path / "seed0" / "sweep.json").read_text())
    assert [len(sweep["systems"][n]) for n in ("no_tv", "ar")] == [4, 4]  # AR has no randomness to sweep
    row = sweep["systems"]["no_tv"][0]
    assert len(row["per_repeat"]["fd"]) == 2 and row["fd"] == pytest.approx(np.mean(row["per_repeat"]["fd"]))
    assert 0.0 <= row["color_adherence"] <= 1.0 and row["fd"] >= 0.0
    picked = min(sweep["systems"]["ar"], key=lambda r: r["fd"])
    doc = render_sweep(runs, tmp_path / "SAMPLER.md").read_text()
    assert f"| seed 1 | `ar` | guidance {picked['cfg_scale']:g} {picked['guidance_schedule']} | " in doc  # picked on 0
    assert "better in " in doc and "of 2 check runs" in doc
    assert f"python -m research sweep --out {runs[1]} --seed 1 --only no_tv ar --cfg-scales 1.5 3" in doc

    with pytest.raises(ValueError, match="at least two runs"):
        render_sweep(runs[:1], tmp_path / "one.md")
    with pytest.raises(ValueError, match="share a seed"):
        render_sweep([runs[0], runs[0]], tmp_path / "same.md")
    sweep_run(replace(config, seed=1), ["ar"], [5.0], ["constant"], [2.0], repeats=2)  # seed 1's AR: a wider grid
    assert len(json.loads((tmp_path / "seed1" / "sweep.json").read_text())["systems"]["ar"]) == 5  # added a row
    before = {r["cfg_scale"]: r for r in json.loads((tmp_path / "seed1" / "sweep.json").read_text())["systems"]["ar"]}
    assert experiments_main(["sweep", "--out", runs[1], "--preset", "tiny", "--data", str(data), "--seed", "1",
                             "--batch-size", "4", "--holdout", "0.5", "--sample-steps", "2", "--seeds-per-prompt",
                             "1", "--public-prompts", str(prompts), "--only", "ar", "--cfg-scales", "5", "8",
                             "--guidance-schedules", "constant", "--repeats", "2", "--skip-scored"]) == 0
    after = {r["cfg_scale"]: r for r in json.loads((tmp_path / "seed1" / "sweep.json").read_text())["systems"]["ar"]}
    assert sorted(after) == [1.5, 3.0, 5.0, 8.0] and after[5.0] == before[5.0]  # 8 scored, 5 kept as it was
    sweep_run(replace(config, seed=1), ["no_tv"], [1.5], ["constant"], [2.0], repeats=2, skip_scored=True,
              transparency_delays=[0.0, 1.0])  # MaskGIT's keep order: one new row, the delay-0 one kept
    rows = json.loads((tmp_path / "seed1" / "sweep.json").read_text())["systems"]["no_tv"]
    assert [(r["cfg_scale"], r["guidance_schedule"], r["transparency_delay"]) for r in rows[:2]] == [
        (1.5, "constant", 0.0), (1.5, "constant", 1.0)] and len(rows) == 5
    with pytest.raises(ValueError, match="transparency delays must be in 0..10"):
        sweep_run(replace(config, seed=1), ["no_tv"], [1.5], ["constant"], [2.0], transparency_delays=[-1.0])
    with pytest.raises(ValueError, match="guidance scales must be in 0..30"):  # refused before any work
        sweep_run(replace(config, seed=1), ["ar"], [1.5, 99.0], ["constant"], [2.0], repeats=2)
    with pytest.raises(ValueError, match="randomness values must be in"):
        sweep_run(replace(config, seed=1), ["no_tv"], [1.5], ["constant"], [-1.0], repeats=2)
    with pytest.raises(ValueError, match="other repeats"):
        sweep_run(replace(config, seed=1), ["ar"], [5.0], ["constant"], [2.0], repeats=1)
    with pytest.raises(ValueError, match="did not sweep (no_tv|ar) over the settings of"):
        render_sweep(runs, tmp_path / "grid.md")
    assert experiments_main(["sweep", "--out", str(tmp_path / "seed1"), "--preset", "tiny", "--data", str(data),
                             "--only", "retrieval"]) == 2  # no sampler: named in the log, no traceback
    assert experiments_main(["sweep-table", "--runs", *runs, "--notes", str(tmp_path / "missing.md"),
                             "--out", str(tmp_path / "notes.md")]) == 2
    assert not any((tmp_path / f"{n}.md").exists() for n in ("one", "same", "grid", "notes"))


def test_write_json_from_several_writers_at_once_leaves_one_whole_file(tmp_path):
    """``run --jobs`` children write experiment_config.json at the same moment: no writer may fail, and the
    file must be one writer's whole value, with no temporary file left beside it."""
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "experiment_config.json"
    values = [{"writer": i, "caption": "一把蓝色的钻石剑", "padding": "x" * 20_000} for i in range(8)]

    def write_many(value):
        for _ in range(40):
            write_json(path, value)

    with ThreadPoolExecutor(len(values)) as pool:
        list(pool.map(write_many, values))  # re-raises a writer's error
    assert json.loads(path.read_text(encoding="utf-8")) in values
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_training_cost_counts_work_that_follows_the_architecture():
    from research.cost import render_cost, training_cost

    config = ExperimentConfig(quick=True, batch_size=2, max_steps=3000)
    rows = {r["system"]: r for r in training_cost(config, ["no_tv", "palette64", "no_2d", "ar", "retrieval"])}
    assert "retrieval" not in rows  # not counted: it has no grid model
    work = {name: r["gflop_per_step"] for name, r in rows.items()}
    assert work["ar"] > 2 * work["no_tv"]  # 256 token positions against 64 patches
    assert work["palette64"] < work["no_tv"]  # a smaller output head
    assert work["no_2d"] < work["no_tv"]  # no convolutions
    double = training_cost(replace(config, batch_size=4), ["no_tv"])[0]["gflop_per_step"]
    assert double == pytest.approx(2 * work["no_tv"], rel=1e-6)  # products grow with the batch, nothing else

    timed = training_cost(config, ["no_tv"], timed_steps=1)
    assert timed[0]["seconds_per_step"] > 0
    page = render_cost(config, timed)
    hours = timed[0]["seconds_per_step"] * 3000 / 3600
    assert f"| `no_tv` | {timed[0]['params'] / 1e6:.2f} |" in page and f"| {hours:.2f} |" in page
    with pytest.raises(ValueError, match="unknown systems"):
        training_cost(config, ["nope"])

    from research.cost import longest_first

    order = longest_first(config, ["retrieval", "no_2d", "no_tv", "ar", "palette64"])
    assert order == ["ar", "no_tv", "palette64", "no_2d", "retrieval"]  # run --jobs starts them in this order


def test_the_study_samples_with_the_shipped_settings_except_what_its_protocol_pins():
    """A sampling default lives in SamplerConfig; the study pins only temperature, schedule, the hole fill, the
    rounds of its published tables (10) and the number format (fp32, eager, as every baseline runs)."""
    study, shipped = ExperimentConfig().sampler(), SamplerConfig()
    pinned = {"temperature", "guidance_schedule", "min_cutout", "precision", "engine", "steps"}
    assert {k: v for k, v in study.to_dict().items() if k not in pinned} == \
        {k: v for k, v in shipped.to_dict().items() if k not in pinned}


def test_a_student_with_every_block_is_the_teacher_and_fewer_blocks_keep_the_rest(tiny_model):
    from research.distill import student_from

    teacher = PixelModel(PixelConfig.tiny(n_layer=3), tiny_model.palette).eval()
    tokens = torch.randint(0, len(teacher.palette) + 1, (2, 16, 16), generator=torch.Generator().manual_seed(0))
    cond = teacher.condition(*teacher.encode_text(["a red sword", "stone"]))
    whole = student_from(teacher, (0, 1, 2)).eval()
    with torch.no_grad():
        assert torch.equal(whole(tokens, *cond), teacher(tokens, *cond))
    student = student_from(teacher, (0, 2))
    assert student.config.n_layer == 2 and torch.equal(student.blocks[1].mlp[0].weight, teacher.blocks[2].mlp[0].weight)
    assert torch.equal(student.head.weight, teacher.head.weight)
    with pytest.raises(ValueError, match="layers"):
        student_from(teacher, (0, 3))


def test_distillation_draws_teacher_samples_once_and_trains_a_student_that_samples(texture_dir, saved_tiny_model,
                                                                                   tmp_path):
    from research.distill import DistillConfig, distill, teacher_samples

    config = DistillConfig(data=str(texture_dir), out=str(tmp_path / "d"), teacher=str(saved_tiny_model),
                           n_samples=6, sample_batch=4, layers=(0,), steps=2, batch_size=3, warmup=1)
    paths = teacher_samples(config)
    stamp = [p.stat().st_mtime_ns for p in paths]
    model = load_model(distill(config))
    assert [p.stat().st_mtime_ns for p in paths] == stamp  # the samples are drawn once and reused
    assert model.config.n_layer == 1
    tokens = sample(model, encode_prompt(model, "a red sword"), SamplerConfig(steps=2), batch_size=2,
                    generator=torch.Generator().manual_seed(0))
    assert tokens.shape == (2, 16, 16) and int(tokens.max()) < len(model.palette)

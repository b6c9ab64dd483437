from dataclasses import fields

import pytest
import torch

from pixelcore.palette import TRANSPARENT
from pixelcore.sampling import (MAX_BATCH, MAX_CFG, MAX_RANDOMNESS, MAX_STEPS, MAX_TEMPERATURE, MAX_TRANSPARENCY_DELAY,
                                MIN_TEMPERATURE, SamplerConfig, encode_prompt, guidance_scale, sample, sampling_step)
from pixelcore.schedule import SCHEDULES, mask_ratio, tokens_to_keep_masked, training_mask_ratio

from conftest import sensitize

STEPS = 4  # few rounds keep the suite fast; the loop is the same for any count


SAMPLER_FIELDS = {f.name for f in fields(SamplerConfig)}


def _sample(model, prompt="a red sword", seed=0, **kwargs):
    """``sample`` with STEPS rounds; sampler settings among ``kwargs`` go into its ``SamplerConfig``."""
    settings = {"steps": STEPS, **{k: kwargs.pop(k) for k in list(kwargs) if k in SAMPLER_FIELDS}}
    generator = torch.Generator().manual_seed(seed)
    return sample(model, encode_prompt(model, prompt), SamplerConfig(**settings), generator=generator, **kwargs)


def test_output_shape_and_range(tiny_model):
    tokens = _sample(tiny_model, ["a red sword", "an apple"], batch_size=3)
    assert tokens.shape == (6, 16, 16) and tokens.dtype == torch.long
    assert 0 <= int(tokens.min()) and int(tokens.max()) < len(tiny_model.palette)  # no mask token left


def test_same_seed_same_tokens_different_seed_different(tiny_model):
    a = _sample(tiny_model, seed=7, batch_size=2)
    b = _sample(tiny_model, seed=7, batch_size=2)
    c = _sample(tiny_model, seed=8, batch_size=2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a[0], a[1])  # a batch is not one sample repeated


def test_kept_tokens_come_back_unchanged(tiny_model):
    gen = torch.Generator().manual_seed(0)
    init = torch.randint(0, len(tiny_model.palette), (1, 16, 16), generator=gen)
    keep = torch.zeros(1, 16, 16, dtype=torch.bool)
    keep[:, 4:12, 4:12] = True
    keep[:, 0, :] = True
    tokens = _sample(tiny_model, batch_size=3, init_tokens=init, keep_mask=keep)
    assert torch.equal(tokens[:, keep[0]], init[:, keep[0]].expand(3, -1))
    assert (tokens[:, ~keep[0]] < len(tiny_model.palette)).all()
    # Keeping everything returns the init unchanged; keeping nothing is plain sampling.
    all_kept = _sample(tiny_model, init_tokens=init, keep_mask=torch.ones_like(keep))
    assert torch.equal(all_kept, init)
    none_kept = _sample(tiny_model, init_tokens=init, keep_mask=torch.zeros_like(keep))
    assert torch.equal(none_kept, _sample(tiny_model))


def test_init_tokens_are_checked(tiny_model):
    keep = torch.ones(1, 16, 16, dtype=torch.bool)
    with pytest.raises(ValueError, match="init_tokens"):
        _sample(tiny_model, keep_mask=keep)
    with pytest.raises(ValueError, match="palette indices"):
        _sample(tiny_model, init_tokens=torch.full((1, 16, 16), 99), keep_mask=keep)


def test_allowed_tokens_restrict_the_output(tiny_model):
    allowed = torch.tensor([3, 5])
    tokens = _sample(tiny_model, batch_size=4, allowed_tokens=allowed, temperature=3.0)
    assert set(tokens.unique().tolist()) <= {0, 3, 5}
    # Without the lock a hot sampler uses more of the palette.
    assert len(set(_sample(tiny_model, batch_size=4, temperature=3.0).unique().tolist())) > 3


def _leaning_transparent(model):
    """A copy of ``model`` that draws the transparent token wherever it may."""
    import copy

    leaning = copy.deepcopy(model)
    with torch.no_grad():
        leaning.head.bias[0] += 50.0
    return leaning


def test_opaque_sampling_draws_no_transparent_cell_even_from_a_model_that_leans_to_it(tiny_model):
    leaning = _leaning_transparent(tiny_model)
    assert (_sample(leaning, batch_size=2, min_cutout=0.0) == 0).all()
    solid = _sample(leaning, batch_size=2, opaque=True, allowed_tokens=torch.tensor([0, 3, 5]))
    assert set(solid.unique().tolist()) <= {3, 5}  # opaque overrules a lock that lists the transparent token
    with pytest.raises(ValueError, match="allow at least one opaque colour"):
        _sample(leaning, opaque=True, allowed_tokens=torch.tensor([0]))


def test_stray_holes_are_drawn_again_opaque(tiny_model):
    model = _leaning_transparent(tiny_model)
    init = torch.full((1, 16, 16), 3)
    keep = torch.ones(1, 16, 16, dtype=torch.bool)
    keep[0, 5, 5:11] = False  # 6 cells to draw: 2% of the tile
    raw = _sample(model, batch_size=2, init_tokens=init, keep_mask=keep, min_cutout=0.0)
    assert (raw[:, ~keep[0]] == 0).all()  # the leaning model puts holes there
    cleaned = _sample(model, batch_size=2, init_tokens=init, keep_mask=keep)
    assert (cleaned != 0).all()  # a block tile: no stray hole left
    assert torch.equal(cleaned[:, keep[0]], raw[:, keep[0]])  # kept cells untouched
    # A cut-out (at least min_cutout transparent) keeps its transparency.
    keep[0, 0:4, :] = False  # 64 + 6 cells: 27%
    item = _sample(model, init_tokens=init, keep_mask=keep)
    assert int((item == 0).sum()) == 70
    # Kept transparent cells are never filled, even in a tile that is almost opaque.
    init_with_hole = init.clone()
    init_with_hole[0, 0, 0] = 0
    keep = torch.ones(1, 16, 16, dtype=torch.bool)
    kept = _sample(model, init_tokens=init_with_hole, keep_mask=keep)
    assert int(kept[0, 0, 0]) == 0


def test_stray_hole_fill_respects_the_palette_lock(tiny_model):
    model = _leaning_transparent(tiny_model)
    init = torch.full((1, 16, 16), 3)
    keep = torch.ones(1, 16, 16, dtype=torch.bool)
    keep[0, 7, 2:6] = False
    locked = _sample(model, batch_size=2, init_tokens=init, keep_mask=keep, allowed_tokens=torch.tensor([5]))
    assert set(locked[:, ~keep[0]].unique().tolist()) == {5}
    nothing_opaque = _sample(model, init_tokens=init, keep_mask=keep, allowed_tokens=torch.tensor([], dtype=torch.long))
    assert (nothing_opaque[:, ~keep[0]] == 0).all()  # no colour to fill with: the holes stay, no NaN


@pytest.mark.parametrize("kwargs, fragment", [
    ({"steps": 0}, f"1..{MAX_STEPS}"), ({"steps": MAX_STEPS + 1}, f"1..{MAX_STEPS}"),
    ({"steps": 2.5}, "steps"),
    ({"cfg_scale": -1.0}, f"0..{MAX_CFG:g}"), ({"cfg_scale": MAX_CFG + 1}, f"0..{MAX_CFG:g}"),
    ({"cfg_scale": float("nan")}, "cfg_scale"),
    ({"temperature": 0.0}, f"{MIN_TEMPERATURE:g}..{MAX_TEMPERATURE:g}"),
    ({"temperature": 6.0}, f"{MIN_TEMPERATURE:g}..{MAX_TEMPERATURE:g}"),
    ({"temperature": 1e-300}, "temperature"), ({"temperature": None}, "temperature"), ({"steps": "4"}, "steps"),
    ({"cfg_scale": "3"}, "cfg_scale"), ({"opaque": "yes"}, "opaque"), ({"steps": True}, "steps"),
    ({"batch_size": 0}, f"1..{MAX_BATCH}"), ({"batch_size": MAX_BATCH + 1}, f"1..{MAX_BATCH}"),
    ({"schedule": "exponential"}, "cosine"),
    ({"min_cutout": -0.1}, "0..1"), ({"min_cutout": 1.5}, "0..1"),
    ({"guidance_schedule": "cosine"}, "constant, linear"), ({"randomness": -1.0}, f"0..{MAX_RANDOMNESS:g}"),
    ({"transparency_delay": -1.0}, f"0..{MAX_TRANSPARENCY_DELAY:g}"),
    ({"transparency_delay": float("nan")}, "transparency_delay"),
])
def test_out_of_range_settings_are_refused_with_the_range(tiny_model, kwargs, fragment):
    cond = encode_prompt(tiny_model, "a red sword")
    batch = {k: kwargs.pop(k) for k in list(kwargs) if k == "batch_size"}
    with pytest.raises(ValueError) as info:
        sample(tiny_model, cond, SamplerConfig(**kwargs), **batch)
    assert fragment in str(info.value)


def test_a_batch_of_many_prompts_is_capped():
    """Prompts x batch, not the batch alone, is what costs memory and time."""
    from pixelcore.sampling import check_batch

    check_batch(MAX_BATCH, 1)
    with pytest.raises(ValueError, match=f"at most {MAX_BATCH}"):
        check_batch(MAX_BATCH // 2 + 1, 2)


def test_too_many_prompts_are_refused_before_encoding(tiny_model):
    with pytest.raises(ValueError, match=f"at most {MAX_BATCH}"):
        encode_prompt(tiny_model, ["a red sword"] * (MAX_BATCH + 1))


def test_sampler_overrides_are_checked():
    assert SamplerConfig().with_overrides('{"randomness": 4.5}').randomness == 4.5
    assert SamplerConfig().with_overrides(None) == SamplerConfig()
    for bad, fragment in (('{"bogus": 1}', "unknown sampler settings"), ("[1]", "JSON object"),
                          ("{", "not valid JSON"), ('{"steps": 0}', "steps")):
        with pytest.raises(ValueError, match=fragment):
            SamplerConfig().with_overrides(bad)


def test_transparency_delay_keeps_opaque_cells_first():
    """Two cells drawn transparent at near certainty and two drawn opaque a little less surely: the round keeps
    the two most confident. A delay of 1 puts the opaque ones first; less than their log-probability gap
    does not."""
    logits = torch.full((1, 4, 3), -20.0)
    logits[0, :2, TRANSPARENT] = 20.0  # log-probability 0 in float32
    logits[0, 2:, 1], logits[0, 2:, 2] = 5.0, 0.0  # log-probability about -0.0067 (the seed draws token 1)
    tokens = torch.full((1, 4), 9)  # 9: the mask token
    unknown = torch.ones(1, 4, dtype=torch.bool)

    def remasked(delay: float) -> list[bool]:
        drawn, masked = sampling_step(logits, tokens, unknown, torch.tensor([2]), 1.0, 0.0, 0.5, 9,
                                      torch.Generator().manual_seed(0), delay)
        assert drawn[~masked].tolist() == ([1, 1] if delay >= 1.0 else [TRANSPARENT, TRANSPARENT])
        return masked[0].tolist()

    assert remasked(0.0) == [False, False, True, True]  # MaskGIT's own order: the background first
    assert remasked(0.005) == [False, False, True, True]
    assert remasked(1.0) == [True, True, False, False]


@pytest.mark.parametrize("prompt", ["", "   \n", "\x00", [], ["a red sword", ""], 42, None, ["ok", 3]])
def test_bad_prompts_are_refused(tiny_model, prompt):
    with pytest.raises(ValueError, match="prompt"):
        encode_prompt(tiny_model, prompt)


def test_negative_prompts(tiny_model):
    cond = encode_prompt(tiny_model, ["a red sword", "an apple"], negative="blurry")
    assert cond.negative == ["blurry", "blurry"] and cond.negative_features.shape[0] == 2
    assert encode_prompt(tiny_model, "a red sword", negative="  ").negative_features is None
    with pytest.raises(ValueError, match="2 negative prompts for 3 prompts"):
        encode_prompt(tiny_model, ["a", "b", "c"], negative=["x", "y"])
    # A negative prompt changes the guided result.
    sensitize(tiny_model)
    plain = _sample(tiny_model, seed=1, cfg_scale=8.0)
    cond = encode_prompt(tiny_model, "a red sword", negative="green leaves block")
    steered = sample(tiny_model, cond, SamplerConfig(steps=STEPS, cfg_scale=8.0),
                     generator=torch.Generator().manual_seed(1))
    assert not torch.equal(steered, plain)


def test_callback_is_called_once_per_step_and_can_cancel(tiny_model):
    calls = []
    _sample(tiny_model, steps=5, callback=lambda i, n: calls.append((i, n)))
    assert calls == [(i, 5) for i in range(1, 6)]

    class Cancelled(Exception):
        pass

    def cancel(i, n):
        if i == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        _sample(tiny_model, steps=5, callback=cancel)


def test_sampling_draws_no_global_randomness(tiny_model):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _sample(tiny_model)
    assert torch.equal(torch.rand(3), expected)  # all randomness comes from the given generator


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedule_reveals_monotonically_and_finishes(schedule):
    assert float(mask_ratio(0.0, schedule)) == pytest.approx(1.0)
    assert float(mask_ratio(1.0, schedule)) == pytest.approx(0.0, abs=1e-6)
    ratios = mask_ratio(torch.linspace(0, 1, 11), schedule)
    assert (ratios[1:] <= ratios[:-1]).all()
    for steps in (1, 2, 5, 12, 64):
        initial = torch.tensor([256, 40, 2, 0])
        unknown = initial.clone()
        for step in range(steps):
            keep = tokens_to_keep_masked(step, steps, initial, unknown, schedule)
            assert (keep <= unknown).all()
            assert (keep < unknown)[unknown > 0].all()  # every step reveals at least one token
            unknown = keep
        assert unknown.tolist() == [0, 0, 0, 0]  # the last step reveals everything
    ratios = training_mask_ratio(1000, schedule, torch.Generator().manual_seed(0))
    assert ratios.shape == (1000,) and (ratios >= 0).all() and (ratios <= 1).all()


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="cosine"):
        mask_ratio(0.5, "exponential")


def test_guidance_schedules():
    assert [guidance_scale(3.0, "constant", d) for d in (0.0, 0.5, 1.0)] == [3.0, 3.0, 3.0]
    assert [guidance_scale(3.0, "linear", d) for d in (0.0, 0.5, 1.0, 1.5)] == [1.0, 2.0, 3.0, 3.0]
    assert guidance_scale(0.0, "linear", 0.25) == 0.75  # below 1 it falls from no guidance towards the scale
    assert [guidance_scale(3.0, "early", d) for d in (0.0, 0.3, 0.34, 1.0)] == [3.0, 3.0, 1.0, 1.0]


def _count_passes(model, monkeypatch) -> dict[str, list[int]]:
    """Records the batch size of every text-stream and image-stream pass of ``model`` (for the image stream, the
    rows that go through the transformer: a guided pass decodes each grid under two conditions)."""
    passes = {"text": [], "image": []}
    text_states, decode = model.text_states, model.decode

    def counted_text_states(cond, cond_mask):
        passes["text"].append(len(cond))
        return text_states(cond, cond_mask)

    def counted_decode(tokens, text):
        passes["image"].append(len(text))
        return decode(tokens, text)

    monkeypatch.setattr(model, "text_states", counted_text_states)
    monkeypatch.setattr(model, "decode", counted_decode)
    return passes


def test_linear_guidance_skips_the_unconditional_pass_while_nothing_is_decided(tiny_model, monkeypatch):
    passes = _count_passes(tiny_model, monkeypatch)
    cond = encode_prompt(tiny_model, "a red sword")
    for schedule in ("constant", "linear"):
        sample(tiny_model, cond, SamplerConfig(steps=3, cfg_scale=3.0, guidance_schedule=schedule, min_cutout=0.0),
               batch_size=2, generator=torch.Generator().manual_seed(0))
    assert passes["image"] == [4, 4, 4, 2, 4, 4]  # guided rounds run the prompt and the null condition together


def test_early_guidance_skips_the_unconditional_pass_once_a_third_is_decided(tiny_model, monkeypatch):
    passes = _count_passes(tiny_model, monkeypatch)
    _sample(tiny_model, steps=10, cfg_scale=3.0, batch_size=2, guidance_schedule="early", min_cutout=0.0)
    # The cosine schedule starts rounds 0..9 with 0, 1, 5, 11, 19, 29, 41, 55, 69 and 84% decided.
    assert passes["image"] == [4] * 6 + [2] * 4


def test_the_stray_hole_round_is_guided_as_the_last_round_is(tiny_model, monkeypatch):
    leaning = _leaning_transparent(tiny_model)
    passes = _count_passes(leaning, monkeypatch)
    init = torch.full((1, 16, 16), 3)
    keep = torch.ones(1, 16, 16, dtype=torch.bool)
    keep[0, 5, 5:11] = False  # 6 cells to draw, which the leaning model makes stray holes
    for schedule in ("constant", "early"):
        assert (_sample(leaning, steps=3, cfg_scale=3.0, guidance_schedule=schedule, init_tokens=init,
                        keep_mask=keep) != 0).all()
    # Rounds start with 0, 13 and 50% decided; the fill round comes after them all.
    assert passes["image"] == [2, 2, 2, 2] + [2, 2, 1, 1]


def test_the_text_stream_runs_once_per_call_not_once_per_round(tiny_model, monkeypatch):
    passes = _count_passes(tiny_model, monkeypatch)
    _sample(tiny_model, steps=5, batch_size=3, cfg_scale=2.0, guidance_schedule="constant", min_cutout=0.0)
    assert passes == {"text": [6], "image": [6] * 5}  # prompt and null condition, both for every texture


@pytest.mark.parametrize("kwargs, fragment", [
    ({"generator": "x"}, "torch.Generator"),
    ({"allowed_tokens": "1"}, "palette indices"),
    ({"init_tokens": torch.zeros(1, 8, 8, dtype=torch.long), "keep_mask": torch.ones(1, 8, 8, dtype=torch.bool)},
     "16x16"),
    ({"init_tokens": [[0]], "keep_mask": torch.ones(1, 16, 16, dtype=torch.bool)}, "init_tokens"),
])
def test_per_call_inputs_of_the_wrong_kind_are_refused_as_value_errors(tiny_model, kwargs, fragment):
    cond = encode_prompt(tiny_model, "a red sword")
    with pytest.raises(ValueError, match=fragment):
        sample(tiny_model, cond, SamplerConfig(steps=2), **kwargs)

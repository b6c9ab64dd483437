import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pixelcore.losses import LossConfig, maskgit_loss, palette_features, token_weights
from pixelcore.model import PixelConfig, PixelModel
from pixelcore.schedule import mask_batch

from conftest import TEXTURES, make_texture


def _frequencies(tokens: torch.Tensor, vocab: int) -> torch.Tensor:
    counts = torch.bincount(tokens.reshape(-1), minlength=vocab).float()
    return counts / counts.sum()


def test_token_weights_clip_normalise_and_favour_rare_saturated_colours(palette):
    red, grey, blue = (palette.quantize(np.array([c + [255]], np.uint8)).item()
                       for c in ([200, 30, 30], [128, 128, 128], [30, 30, 200]))
    tokens = torch.tensor([grey] * 60 + [red] * 30 + [blue] * 10)
    config = LossConfig(min_weight=0.01, max_weight=100.0)
    weights = token_weights(tokens, palette, config)
    assert weights.shape == (len(palette),)
    assert float((weights * _frequencies(tokens, len(palette))).sum()) == pytest.approx(1.0, abs=1e-5)
    assert weights[blue] > weights[red] > weights[grey]  # rarer and more saturated weigh more

    assert float(weights.max()) > 1.2 and float(weights.min()) < 0.9
    tight = token_weights(tokens, palette, LossConfig(min_weight=0.9, max_weight=1.2))
    assert float(tight.min()) >= 0.9 - 1e-6 and float(tight.max()) <= 1.2 + 1e-6


def test_transparent_token_is_not_down_weighted_for_being_frequent(palette):
    grey = palette.quantize(np.array([[128, 128, 128, 255]], np.uint8)).item()
    white = palette.quantize(np.array([[250, 250, 250, 255]], np.uint8)).item()
    tokens = torch.tensor([0] * 80 + [grey] * 20)  # mostly transparent, like an item sprite
    weights = token_weights(tokens, palette, LossConfig(min_weight=0.01, max_weight=100.0))
    # Transparency keeps the neutral weight 1 (before normalisation): that of an unused unsaturated colour...
    assert float(weights[0]) == pytest.approx(float(weights[white]))
    # ... instead of the sqrt(mean_freq / freq) down-weighting its 80% share would give it.
    ratio = float(weights[0] / weights[grey])
    assert ratio == pytest.approx(1 / (0.5 / 0.2) ** 0.5, rel=1e-5)
    assert ratio > 1.2 * (0.5 / 0.8) ** 0.5 / (0.5 / 0.2) ** 0.5


def test_weighting_off_gives_ones(palette):
    tokens = torch.randint(0, len(palette), (4, 16, 16))
    assert torch.equal(token_weights(tokens, palette, LossConfig(weighting=False)), torch.ones(len(palette)))


def _random_case(palette, seed=0):
    gen = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, len(palette), (2, 16, 16), generator=gen)
    logits = torch.randn(2, 16, 16, len(palette), generator=gen)
    masked = torch.rand(2, 16, 16, generator=gen) < 0.5
    return targets, logits, masked


@pytest.mark.parametrize("tv_weight", [0.0, 0.5])
def test_loss_only_counts_masked_cells(palette, tv_weight):
    targets, logits, masked = _random_case(palette)
    weights, features = torch.ones(len(palette)), palette_features(palette)
    config = LossConfig(tv_weight=tv_weight)
    loss, parts = maskgit_loss(logits, targets, masked, weights, features, config)
    changed = logits.clone()
    changed[~masked] = torch.randn(int((~masked).sum()), len(palette)) * 10
    loss2, _ = maskgit_loss(changed, targets, masked, weights, features, config)
    assert float(loss2) == pytest.approx(float(loss), rel=1e-6)
    changed[masked] += 5 * F.one_hot(targets[masked], len(palette))  # better guesses where it counts
    loss3, _ = maskgit_loss(changed, targets, masked, weights, features, config)
    assert float(loss3) < float(loss)
    # With unit weights and no TV the loss is the plain mean cross entropy over masked cells.
    if tv_weight == 0:
        ce = F.cross_entropy(logits[masked], targets[masked])
        assert float(loss) == pytest.approx(float(ce), rel=1e-5) and float(parts["tv"]) == 0.0


def test_weights_scale_the_cells_of_their_token(palette):
    targets, logits, masked = _random_case(palette, seed=1)
    features = palette_features(palette)
    config = LossConfig(tv_weight=0.0)
    heavy = torch.ones(len(palette))
    heavy[3] = 4.0
    ce = F.cross_entropy(logits.permute(0, 3, 1, 2), targets, reduction="none")
    w = heavy[targets] * masked
    loss, _ = maskgit_loss(logits, targets, masked, heavy, features, config)
    assert float(loss) == pytest.approx(float((ce * w).sum() / w.sum()), rel=1e-5)


def test_tv_term_is_zero_when_prediction_equals_target(palette):
    targets = palette.quantize(np.stack([make_texture((200, 30, 30), "block"),
                                         make_texture((30, 30, 200), "item")]))
    masked = torch.ones_like(targets, dtype=torch.bool)
    exact = F.one_hot(targets, len(palette)).float() * 50.0
    _, parts = maskgit_loss(exact, targets, masked, torch.ones(len(palette)), palette_features(palette),
                            LossConfig(tv_weight=1.0))
    assert float(parts["tv"]) == pytest.approx(0.0, abs=1e-6) and float(parts["ce"]) < 1e-6
    # Speckle beyond the target's own variation is penalised.
    speckle = targets.clone()
    speckle[:, ::2, ::2] = (speckle[:, ::2, ::2] + 3) % len(palette)
    noisy = F.one_hot(speckle, len(palette)).float() * 50.0
    _, parts = maskgit_loss(noisy, targets, masked, torch.ones(len(palette)), palette_features(palette),
                            LossConfig(tv_weight=1.0))
    assert float(parts["tv"]) > 0.1


def test_loss_falls_on_a_tiny_batch(palette):
    """A tiny model overfits four textures: the masked-token loss on fixed masks drops by a clear margin.

    The text encoder is frozen (prompts encoded once) so the test stays fast; the image model, the condition
    projection and the loss are what is exercised.
    """
    torch.manual_seed(0)
    all_on = LossConfig(weighting=True, tv_weight=0.05)  # every term of the objective, TV included
    model = PixelModel(PixelConfig.tiny(), palette).train()
    pixels = np.stack([make_texture(rgb, kind, seed=i) for i, (_, _, rgb, kind) in enumerate(TEXTURES[2:6])])
    targets = palette.quantize(pixels)
    weights, features = token_weights(targets, palette, all_on), palette_features(palette)
    with torch.no_grad():
        text = model.encode_text([text for _, text, _, _ in TEXTURES[2:6]])
    eval_inputs, eval_masked = mask_batch(targets.repeat(4, 1, 1), model.mask_token, "cosine",
                                          torch.Generator().manual_seed(99))

    def eval_loss() -> float:
        with torch.no_grad():
            cond = model.condition(text[0].repeat(4, 1, 1), text[1].repeat(4, 1))
            loss, _ = maskgit_loss(model(eval_inputs, *cond), targets.repeat(4, 1, 1), eval_masked, weights,
                                   features, all_on)
            return float(loss)

    params = [p for name, p in model.named_parameters() if not name.startswith("text_encoder.")]
    optimizer = torch.optim.AdamW(params, lr=2e-2)
    gen = torch.Generator().manual_seed(0)
    before = eval_loss()
    for _ in range(60):
        inputs, masked = mask_batch(targets, model.mask_token, "cosine", gen)
        loss, _ = maskgit_loss(model(inputs, *model.condition(*text)), targets, masked, weights, features,
                               all_on)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = eval_loss()
    assert np.isfinite(after)
    assert after < 0.6 * before, f"loss went from {before:.3f} to {after:.3f}"


def test_split_alpha_is_plain_cross_entropy_with_unit_weights_and_opaque_targets(palette):
    targets, logits, masked = _random_case(palette, seed=2)
    targets = targets.clamp_min(1)  # no transparent targets
    ones, features = torch.ones(len(palette)), palette_features(palette)
    split, _ = maskgit_loss(logits, targets, masked, ones, features, LossConfig(split_alpha=True))
    assert float(split) == pytest.approx(float(F.cross_entropy(logits[masked], targets[masked])), rel=1e-5)


def test_split_alpha_keeps_colour_weights_out_of_the_transparency_decision(palette):
    """Two masked cells the model cannot tell apart: one transparent, one a light-weight dark colour.

    Plain weighted cross entropy puts p(transparent) at 1 / (1 + 0.25) = 0.8 at its optimum; with the
    transparency decision unweighted the optimum is the data's 0.5.
    """
    weights = torch.ones(len(palette))
    weights[5] = 0.25
    targets = torch.tensor([[[0, 5]]])  # (1, 1, 2)
    masked = torch.ones_like(targets, dtype=torch.bool)
    features = palette_features(palette)
    for split, expected in ((False, 0.8), (True, 0.5)):
        shared = torch.zeros(len(palette), requires_grad=True)
        optimiser = torch.optim.Adam([shared], lr=0.1)
        for _ in range(500):
            logits = shared.expand(1, 1, 2, len(palette))
            loss, _ = maskgit_loss(logits, targets, masked, weights, features, LossConfig(split_alpha=split))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        assert float(shared.detach().softmax(-1)[0]) == pytest.approx(expected, abs=0.02), split

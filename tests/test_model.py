import pytest
import torch
import torch.nn.functional as F

from pixelcore.model import ConvBlock, PixelConfig, PixelModel

from conftest import sensitize


def _masked_grid(model: PixelModel, batch: int = 2, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, model.config.vocab_size, (batch, 16, 16), generator=gen)
    tokens[:, :5] = model.mask_token
    return tokens


@pytest.mark.parametrize("overrides", [{}, {"pos_2d": False}, {"conv": False},
                                       {"patch_size": 4, "n_layer": 2}])
def test_forward_shapes_for_configs_and_ablations(palette, overrides):
    torch.manual_seed(0)
    model = PixelModel(PixelConfig.tiny(**overrides), palette).eval()
    assert model.config.vocab_size == len(palette)
    assert model.mask_token == len(palette)
    features, mask = model.encode_text(["a red sword", "一把蓝色的钻石剑"])
    with torch.no_grad():
        logits = model(_masked_grid(model), *model.condition(features, mask))
    assert logits.shape == (2, 16, 16, len(palette))
    assert logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


def test_invalid_configs_are_refused(palette):
    with pytest.raises(ValueError, match="patch_size"):
        PixelModel(PixelConfig.tiny(patch_size=3), palette)
    with pytest.raises(ValueError, match="n_head"):
        PixelModel(PixelConfig.tiny(n_embd=15), palette)


@pytest.mark.parametrize("field, value", [
    ("n_layer", 10**9), ("text_layers", 10**6), ("n_embd", 65536), ("n_layer", 0), ("grid_size", -16),
    ("n_layer", 6.0), ("n_head", True), ("n_embd", "256"), ("patch_size", None), ("vocab_size", 1000),
    ("n_head", 3), ("text_heads", 3), ("text_context", 10**6), ("pixel_dim", [8]),
    ("dropout", float("nan")), ("dropout", float("inf")), ("dropout", 1.0), ("dropout", -0.1), ("dropout", "0.1"),
    ("dropout", None), ("conv", 1), ("pos_2d", "yes"), ("text_encoder", "bert"), ("clip_model", 5),
    ("clip_pretrained", "x" * 5000),
])
def test_validate_refuses_each_bad_field_by_name(field, value):
    config = PixelConfig.tiny(**{field: value})
    with pytest.raises(ValueError, match=field):
        config.validate()


@pytest.mark.parametrize("overrides", [
    {"n_layer": 64, "n_embd": 4096, "n_head": 64},  # every field in range, the whole far too big
    {"text_layers": 48, "text_width": 2048},
    {"grid_size": 64, "patch_size": 2, "n_head": 64, "n_embd": 64},  # 1024 patches, 64 heads of attention
])
def test_validate_refuses_networks_over_the_size_caps(overrides):
    with pytest.raises(ValueError, match="parameters|attention"):
        PixelConfig.tiny(**overrides).validate()


@pytest.mark.parametrize("overrides", [{}, {"conv": False, "pos_2d": False, "patch_size": 4, "text_context": 5},
                                       {"n_layer": 2, "n_head": 4, "n_embd": 32, "text_layers": 2, "text_width": 16}])
def test_parameter_count_is_known_before_building(palette, overrides):
    config = PixelConfig.tiny(vocab_size=len(palette), **overrides)
    assert config.num_params() == PixelModel(config, palette).num_params()


def test_config_round_trips_and_ignores_unknown_keys():
    config = PixelConfig.tiny(conv=False)
    again = PixelConfig.from_dict({**config.to_dict(), "from_the_future": 1})
    assert again == config
    assert PixelConfig.from_dict({}) == PixelConfig()


def test_padded_text_positions_do_not_change_results(tiny_model):
    model = sensitize(tiny_model)
    tokens = _masked_grid(model, batch=1)
    gen = torch.Generator().manual_seed(1)
    cond = torch.randn(1, 6, model.config.n_embd, generator=gen) * 3
    mask = torch.tensor([[True, True, True, False, False, False]])
    with torch.no_grad():
        base = model(tokens, cond, mask)
        garbage = cond.clone()
        garbage[:, 3:] = torch.randn(1, 3, model.config.n_embd, generator=gen) * 100
        padded = model(tokens, garbage, mask)
        trimmed = model(tokens, cond[:, :3], mask[:, :3])
        # The same garbage at real positions does change the result: the mask is what protects it.
        unmasked = model(tokens, garbage, torch.ones_like(mask))
    torch.testing.assert_close(padded, base, atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(trimmed, base, atol=2e-4, rtol=1e-4)
    assert (unmasked - base).abs().max() > 1e-3


def test_prompt_gives_same_logits_alone_and_in_a_padded_batch(tiny_model):
    model = tiny_model
    tokens = _masked_grid(model, batch=1)
    with torch.no_grad():
        alone_features, alone_mask = model.encode_text(["red"])
        batch_features, batch_mask = model.encode_text(["red", "a long prompt about a blue diamond sword"])
        assert batch_mask.shape[1] > alone_mask.shape[1] and not batch_mask[0, -1]
        alone = model(tokens, *model.condition(alone_features, alone_mask))
        batched = model(tokens.repeat(2, 1, 1), *model.condition(batch_features, batch_mask))
    torch.testing.assert_close(batched[:1], alone, atol=2e-4, rtol=1e-4)


def test_condition_dropout_uses_the_null_condition(tiny_model):
    model = sensitize(tiny_model)
    tokens = _masked_grid(model)
    with torch.no_grad():
        features, mask = model.encode_text(["a red sword", "a blue diamond sword block"])
        dropped = model(tokens, *model.condition(features, mask, drop=torch.tensor([True, False])))
        null = model(tokens[:1], *model.null_condition(1))
        kept = model(tokens[1:], *model.condition(features[1:], mask[1:]))
    torch.testing.assert_close(dropped[:1], null, atol=2e-4, rtol=1e-4)
    torch.testing.assert_close(dropped[1:], kept, atol=2e-4, rtol=1e-4)
    assert (kept - null[:1]).abs().max() > 1e-3  # the prompt matters when it is not dropped


def test_conv_block_wraps_around_only_when_seamless():
    torch.manual_seed(0)
    block = ConvBlock(4).eval()
    x = torch.randn(1, 4, 16, 16)
    shifted = torch.roll(x, shifts=(3, 5), dims=(2, 3))
    with torch.no_grad():
        zeros_out = block(x)
        assert (torch.roll(zeros_out, (3, 5), (2, 3)) - block(shifted)).abs().max() > 1e-3
        block.padding_mode = "circular"
        torch.testing.assert_close(torch.roll(block(x), (3, 5), (2, 3)), block(shifted))


def test_set_seamless_makes_the_model_shift_equivariant(tiny_model):
    """Without position embeddings a seamless (torus) model commutes with circular shifts by whole patches."""
    model = tiny_model
    with torch.no_grad():
        model.pos_row.zero_()
        model.pos_col.zero_()
        cond = model.condition(*model.encode_text(["green leaves block"]))
        tokens = _masked_grid(model, batch=1)
        shifted = torch.roll(tokens, shifts=(2, 4), dims=(1, 2))

        def shift_error() -> float:
            expected = torch.roll(model(tokens, *cond), shifts=(2, 4), dims=(1, 2))
            return float((model(shifted, *cond) - expected).abs().max())

        assert shift_error() > 1e-3  # zero padding: the tile's edges are edges
        model.set_seamless(True)
        assert shift_error() < 1e-4
        model.set_seamless(False)
        assert shift_error() > 1e-3


def _joint_sequence_logits(model: PixelModel, tokens: torch.Tensor, cond: torch.Tensor,
                           cond_mask: torch.Tensor) -> torch.Tensor:
    """The network written as one sequence [text ; patches] under a (T, T) mask that hides the patches from
    the text: the form the model card describes, computed from the model's weights without its text cache."""
    B, L, D = cond.shape
    P, S, G = model.config.patch_size, model.side, model.config.grid_size
    h = model.config.n_head
    skip = model.stem(model.embed(tokens).permute(0, 3, 1, 2))
    patches = model.patch_in(skip.reshape(B, -1, S, P, S, P).permute(0, 2, 4, 1, 3, 5).reshape(B, S * S, -1))
    x = torch.cat([cond, patches + (model.pos_row + model.pos_col).reshape(S * S, -1)], dim=1)
    T = x.shape[1]
    allowed = torch.cat([cond_mask, cond_mask.new_ones(B, S * S)], dim=1)[:, None, :].repeat(1, T, 1)
    allowed[:, :L, L:] = False
    for block in model.blocks:
        q, k, v = (t.view(B, T, h, D // h).transpose(1, 2) for t in block.attn.qkv(block.ln1(x)).split(D, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed[:, None])
        x = x + block.attn.proj(y.transpose(1, 2).reshape(B, T, D))
        x = x + block.mlp(block.ln2(x))
    x = model.patch_out(model.ln_f(x[:, L:]))
    x = x.reshape(B, S, S, -1, P, P).permute(0, 3, 1, 4, 2, 5).reshape(B, -1, G, G)
    return model.head(model.head_conv(x + skip).permute(0, 2, 3, 1))


@pytest.mark.parametrize("n_layer", [1, 3])  # the last block computes only the text's keys and values
def test_cached_text_stream_equals_the_joint_masked_sequence(palette, n_layer):
    torch.manual_seed(0)
    model = sensitize(PixelModel(PixelConfig.tiny(n_layer=n_layer), palette).eval())
    tokens = _masked_grid(model, batch=3)
    with torch.no_grad():
        features, mask = model.encode_text(["red", "a long prompt about a blue diamond sword", "一把剑"])
        cond, cond_mask = model.condition(features, mask)
        assert not cond_mask.all()  # padded positions are part of the check
        expected = _joint_sequence_logits(model, tokens, cond, cond_mask)
        text = model.text_states(cond, cond_mask)
        torch.testing.assert_close(model.decode(tokens, text), expected, atol=2e-4, rtol=1e-4)
        torch.testing.assert_close(model(tokens, cond, cond_mask), expected, atol=2e-4, rtol=1e-4)
        # The cached states serve any grid and any subset of the prompts.
        other = _masked_grid(model, batch=3, seed=7)
        torch.testing.assert_close(model.decode(other, text), _joint_sequence_logits(model, other, cond, cond_mask),
                                   atol=2e-4, rtol=1e-4)
        rows = torch.tensor([2, 0])
        torch.testing.assert_close(model.decode(tokens[rows], text.rows(rows)), expected[rows], atol=2e-4, rtol=1e-4)
        assert (expected[0] - expected[1]).abs().max() > 1e-3  # the prompts differ, so the rows are told apart

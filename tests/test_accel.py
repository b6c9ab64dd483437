"""The fast paths: bf16 and int8 decoding, CUDA graphs and torch.compile sample the same kind of output as fp32
eager decoding, and each falls back to it cleanly where the device or this PyTorch does not support it."""

import pytest
import torch

from pixelcore import accel
from pixelcore.accel import Decoder, quantized_int8, resolve_engine, resolve_precision
from pixelcore.model import PixelModel
from pixelcore.sampling import SamplerConfig, encode_prompt, sample

from conftest import sensitize

CPU = torch.device("cpu")


def _sample(model, seed=0, batch_size=2, **settings):
    config = SamplerConfig(steps=4, **settings)
    return sample(model, encode_prompt(model, ["a red sword", "gray stone"]), config, batch_size=batch_size,
                  generator=torch.Generator().manual_seed(seed))


def _kept(model, **settings):
    init = torch.randint(0, len(model.palette), (1, 16, 16), generator=torch.Generator().manual_seed(3))
    keep = torch.zeros(1, 16, 16, dtype=torch.bool)
    keep[:, 3:9, 2:12] = True
    config = SamplerConfig(steps=4, **settings)
    tokens = sample(model, encode_prompt(model, "a red sword"), config, batch_size=3, init_tokens=init,
                    keep_mask=keep, generator=torch.Generator().manual_seed(0))
    return tokens, init, keep


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_cheaper_arithmetic_samples_valid_tokens_repeats_seeds_and_keeps_kept_tokens(tiny_model, precision):
    if not accel.supports(precision, CPU):
        pytest.skip(f"{precision} is not supported on this CPU")
    model = sensitize(tiny_model)
    tokens = _sample(model, precision=precision)
    assert tokens.shape == (4, 16, 16) and 0 <= int(tokens.min()) and int(tokens.max()) < len(model.palette)
    assert torch.equal(tokens, _sample(model, precision=precision))
    assert not torch.equal(tokens, _sample(model, seed=1, precision=precision))
    kept, init, keep = _kept(model, precision=precision)
    assert torch.equal(kept[:, keep[0]], init[:, keep[0]].expand(3, -1))


def test_unsupported_precisions_fall_back_to_fp32(tiny_model, monkeypatch):
    model = sensitize(tiny_model)
    fp32 = _sample(model, precision="fp32")
    monkeypatch.setattr(accel, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(accel, "int8_engine", lambda: None)
    assert resolve_precision("bf16", CPU) == resolve_precision("int8", CPU) == resolve_precision("auto", CPU) == "fp32"
    for precision in ("bf16", "int8", "auto"):
        assert torch.equal(_sample(model, precision=precision), fp32)
    assert resolve_precision("bf16", torch.device("mps")) == "fp32"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp8", CPU)


def test_a_failed_int8_quantisation_falls_back_to_fp32(tiny_model, monkeypatch):
    model = sensitize(tiny_model)
    fp32 = _sample(model, precision="fp32")
    monkeypatch.setattr(accel, "int8_engine", lambda: "x86")

    def broken(*args, **kwargs):
        raise RuntimeError("no quantized engine in this build")

    monkeypatch.setattr(torch.ao.quantization, "quantize_dynamic", broken)
    decoder = Decoder(model, "int8")
    assert decoder.precision == "fp32"
    assert torch.equal(_sample(model, precision="int8"), fp32)


def test_the_int8_copy_is_kept_until_the_weights_change(tiny_model):
    if not accel.supports("int8", CPU):
        pytest.skip("no quantised CPU engine")
    model = sensitize(tiny_model)
    first = quantized_int8(model)
    assert quantized_int8(model) is first
    with torch.no_grad():
        model.head.bias.add_(1.0)
    assert quantized_int8(model) is not first


def test_a_model_loaded_under_inference_mode_samples_at_every_precision(tiny_model):
    """ComfyUI runs nodes under torch.inference_mode: a model loaded there has inference tensors, which have no
    version counter for the accelerator cache to read."""
    with torch.inference_mode():
        model = PixelModel(tiny_model.config, tiny_model.palette).eval()
        model.load_state_dict(tiny_model.state_dict())
        assert next(model.parameters()).is_inference()
        for precision in ("fp32", "bf16", "int8"):
            tokens = _sample(model, precision=precision)
            assert tokens.shape == (4, 16, 16) and torch.equal(tokens, _sample(model, precision=precision))


def test_cuda_graphs_off_cuda_decode_eagerly(tiny_model):
    model = sensitize(tiny_model)
    assert resolve_engine("graphs", CPU) == "eager" and resolve_engine("auto", CPU) == "eager"
    assert torch.equal(_sample(model, engine="graphs", precision="fp32"), _sample(model, engine="eager",
                                                                                 precision="fp32"))


def test_a_failing_compile_falls_back_to_eager(tiny_model, monkeypatch):
    model = sensitize(tiny_model)
    eager = _sample(model, engine="eager", precision="fp32")

    def failing_compile(fn, **kwargs):
        def compiled(*args):
            raise RuntimeError("inductor: no C++ compiler")
        return compiled

    monkeypatch.setattr(torch, "compile", failing_compile)
    assert torch.equal(_sample(model, engine="compile", precision="fp32"), eager)

    def unavailable(fn, **kwargs):
        raise RuntimeError("torch.compile is not supported on this Python")

    accel._CACHES.pop(model, None)
    monkeypatch.setattr(torch, "compile", unavailable)
    assert torch.equal(_sample(model, engine="compile", precision="fp32"), eager)


@pytest.mark.slow
def test_compiled_decoding_matches_eager_tokens_on_cpu(tiny_model):
    """torch.compile on the CPU (inductor, a C++ compiler): the tokens of eager decoding, cell for cell."""
    model = sensitize(tiny_model)
    eager = _sample(model, engine="eager", precision="fp32")
    assert torch.equal(_sample(model, engine="compile", precision="fp32"), eager)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graphs_match_eager_tokens_on_a_gpu(tiny_model):
    model = sensitize(tiny_model).cuda()
    for precision in ("fp32", "bf16"):
        eager = _sample(model, engine="eager", precision=precision)
        assert torch.equal(_sample(model, engine="graphs", precision=precision), eager)
        assert torch.equal(_sample(model, engine="graphs", precision=precision), eager)  # replayed, new text


class _FakeGraph:
    """Stands in for a captured CUDA graph on the CPU: it keeps the text it was last fed, as the graph's static
    buffers do, so a text not copied in when it should be gives wrong tokens."""

    captures: list[tuple] = []

    def __init__(self, decode, tokens, text):
        _FakeGraph.captures.append((tuple(tokens.shape), len(text), text.mask.shape[1]))
        self.decode, self.text, self.fed = decode, None, None

    def __call__(self, tokens, text, call):
        if (call, id(text)) != self.fed:
            self.text, self.fed = text, (call, id(text))
        return self.decode(tokens, self.text)


def test_graphs_are_captured_once_per_shape_from_the_second_call_and_fed_each_call_s_text(tiny_model, monkeypatch):
    model = sensitize(tiny_model)
    monkeypatch.setattr(accel, "resolve_engine", lambda engine, device: "graphs" if engine != "eager" else "eager")
    monkeypatch.setattr(accel, "_CudaGraph", _FakeGraph)
    _FakeGraph.captures = []

    def draw(prompt, engine="auto", seed=0):
        config = SamplerConfig(steps=4, precision="fp32", engine=engine, min_cutout=0.0)
        return sample(model, encode_prompt(model, prompt), config, batch_size=2,
                      generator=torch.Generator().manual_seed(seed))

    first = draw("a red sword")
    assert _FakeGraph.captures == []  # the first call on these weights runs eagerly
    assert torch.equal(draw("a red sword"), first)
    # Guided rounds (4 text rows) and unguided ones (2), the text padded to a multiple of 16 positions.
    assert sorted(_FakeGraph.captures) == [((2, 16, 16), 2, 16), ((2, 16, 16), 4, 16)]
    other = draw("gray stone block", seed=1)  # a new call: its own text is fed, nothing is captured again
    assert torch.equal(other, draw("gray stone block", engine="eager", seed=1)) and len(_FakeGraph.captures) == 2
    with torch.no_grad():
        model.head.bias.add_(0.5)  # new weights (or the model moved): eager once, then captured again
    draw("a red sword")
    assert len(_FakeGraph.captures) == 2
    draw("a red sword")
    assert len(_FakeGraph.captures) == 4


def test_padding_the_text_changes_no_logit(tiny_model):
    model = sensitize(tiny_model)
    cond = encode_prompt(model, ["a red sword", "stone"])
    text = model.text_states(*model.condition(cond.features, cond.mask))
    tokens = torch.randint(0, len(model.palette) + 1, (2, 16, 16), generator=torch.Generator().manual_seed(0))
    padded = accel.pad_text(text, 16)
    assert padded.mask.shape[1] % 16 == 0 and padded.mask.shape[1] > text.mask.shape[1]
    with torch.no_grad():
        torch.testing.assert_close(model.decode(tokens, padded), model.decode(tokens, text), atol=1e-5, rtol=1e-5)

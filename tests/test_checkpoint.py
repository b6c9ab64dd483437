import json
import os

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import pixelcore.checkpoint as checkpoint
from pixelcore.checkpoint import CheckpointError, export_model, load_model, read_metadata, save_model
from pixelcore.model import PixelConfig, PixelModel

from conftest import sensitize


def _logits(model: PixelModel) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, model.config.vocab_size, (2, 16, 16), generator=gen)
    tokens[:, ::3] = model.mask_token
    with torch.no_grad():
        features, mask = model.encode_text(["a red sword", "一把蓝色的钻石剑"])
        return model(tokens, *model.condition(features, mask))


def _read(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def test_round_trip_gives_the_same_model(tmp_path, palette):
    torch.manual_seed(0)
    model = sensitize(PixelModel(PixelConfig.tiny(conv=False), palette)).eval()
    model.text_encoder.transformer.token_embedding.weight.data.normal_()  # the stored text encoder counts too
    path = save_model(model, tmp_path / "sub" / "model.safetensors", extra_metadata={"training": {"step": 7},
                                                                                     "note": "hello"})
    assert path.is_file() and sorted(os.listdir(path.parent)) == ["model.safetensors"]  # no temp file left
    loaded = load_model(path)
    assert loaded.config == model.config
    assert torch.equal(loaded.palette.colors, palette.colors)
    assert not loaded.training
    torch.testing.assert_close(_logits(loaded), _logits(model), atol=0, rtol=0)
    meta = read_metadata(path)
    assert json.loads(meta["training"]) == {"step": 7} and meta["note"] == "hello"


def test_fp16_export_loads_as_float32_and_matches(tmp_path, saved_tiny_model):
    dst = export_model(saved_tiny_model, tmp_path / "half.safetensors")
    tensors, meta = _read(dst)
    assert {t.dtype for k, t in tensors.items() if k != "palette"} == {torch.float16}
    assert tensors["palette"].dtype == torch.uint8
    assert json.loads(meta["training"]) == {"step": 3}  # extra metadata survives the export
    assert dst.stat().st_size < 0.6 * saved_tiny_model.stat().st_size
    full, half = load_model(saved_tiny_model), load_model(dst)
    assert {p.dtype for p in half.parameters()} == {torch.float32}
    torch.testing.assert_close(_logits(half), _logits(full), atol=2e-3, rtol=1e-2)


def _rewrite(src, dst, tensors=None, metadata=None):
    old_tensors, old_meta = _read(src)
    save_file(tensors if tensors is not None else old_tensors, str(dst),
              metadata=old_meta if metadata is None else metadata)
    return dst


def _broken_files(src, folder):
    """(file name, writer, expected message fragment) for each way a model file can be unusable."""
    raw = src.read_bytes()
    tensors, meta = _read(src)
    some_float = next(k for k, v in tensors.items() if v.is_floating_point())
    config = json.loads(meta["config"])

    def with_tensors(change):
        new = dict(tensors)
        change(new)
        return lambda p: _rewrite(src, p, tensors=new)

    def with_meta(**changes):
        new = {k: v for k, v in {**meta, **changes}.items() if v is not None}
        return lambda p: _rewrite(src, p, metadata=new)

    def nan(new):
        new[some_float] = torch.full_like(tensors[some_float], float("nan"))

    return [
        ("empty.safetensors", lambda p: p.write_bytes(b""), "not a readable"),
        ("truncated.safetensors", lambda p: p.write_bytes(raw[: len(raw) * 2 // 3]), "not a readable"),
        ("cut_tail.safetensors", lambda p: p.write_bytes(raw[:-1]), "not a readable"),
        ("random.safetensors", lambda p: p.write_bytes(os.urandom(4096)), "not a readable"),
        ("pickle.safetensors", lambda p: torch.save(tensors, p), "not a readable"),
        ("foreign.safetensors", lambda p: save_file({"w": torch.ones(2)}, str(p)), "not a PixelCore model"),
        ("future.safetensors", with_meta(format_version="2"), "format version"),
        ("noversion.safetensors", with_meta(format_version=None), "format version"),
        ("missing_key.safetensors", with_tensors(lambda t: t.pop(some_float)), "missing"),
        ("extra_key.safetensors", with_tensors(lambda t: t.update(stowaway=torch.zeros(3))), "unexpected"),
        ("no_palette.safetensors", with_tensors(lambda t: t.pop("palette")), "palette"),
        ("bad_palette.safetensors", with_tensors(lambda t: t.update(palette=t["palette"].float())),
         "palette"),
        ("shape.safetensors", with_tensors(lambda t: t.update({some_float: torch.zeros(3, 3)})), "shape"),
        ("int_weights.safetensors", with_tensors(lambda t: t.update({some_float: t[some_float].long()})),
         "dtype"),
        ("nan.safetensors", with_tensors(nan), "NaN"),
        ("bad_json.safetensors", with_meta(config="{not json"), "config"),
        ("no_config.safetensors", with_meta(config=None), "config"),
        ("list_config.safetensors", with_meta(config="[1, 2]"), "config"),
        ("null_config.safetensors", with_meta(config="null"), "config"),
        ("bad_values.safetensors", with_meta(config=json.dumps({**config, "patch_size": 3})), "patch_size"),
        ("zero_heads.safetensors", with_meta(config=json.dumps({**config, "n_head": 0})), "config"),
    ]


def test_missing_file_is_refused_by_name(tmp_path):
    with pytest.raises(CheckpointError, match="nowhere.safetensors.*no such model file"):
        load_model(tmp_path / "nowhere.safetensors")
    with pytest.raises(CheckpointError, match="no such model file"):
        load_model(tmp_path)  # a folder is not a model file


@pytest.mark.parametrize("case", range(21))
def test_unusable_files_are_refused_naming_the_file(tmp_path, saved_tiny_model, case):
    cases = _broken_files(saved_tiny_model, tmp_path)
    assert len(cases) == 21
    name, write, fragment = cases[case]
    path = tmp_path / name
    write(path)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    message = str(info.value)
    assert name in message and fragment in message
    assert isinstance(info.value, ValueError)  # the CLI turns ValueErrors into exit code 2


def test_failed_save_leaves_no_partial_file(tmp_path, tiny_model, monkeypatch, saved_tiny_model):
    def failing_save_file(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_file", failing_save_file)
    with pytest.raises(OSError, match="disk full"):
        save_model(tiny_model, tmp_path / "model.safetensors")
    assert os.listdir(tmp_path) == []
    # An existing file is not clobbered by a failed save.
    target = tmp_path / "existing.safetensors"
    target.write_bytes(saved_tiny_model.read_bytes())
    with pytest.raises(OSError):
        save_model(tiny_model, target)
    assert os.listdir(tmp_path) == ["existing.safetensors"]
    assert target.read_bytes() == saved_tiny_model.read_bytes()


def test_saved_files_get_ordinary_permissions(tmp_path, tiny_model):
    """Atomic writes go through a private temp file; the result must still be readable like any file."""
    import os
    import stat

    from pixelcore.images import save_png

    umask = os.umask(0o022)
    try:
        model_path = save_model(tiny_model, tmp_path / "m.safetensors")
        png_path = save_png(np.zeros((16, 16, 4), np.uint8), tmp_path / "t.png")
    finally:
        os.umask(umask)
    for path in (model_path, png_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "t.png"]

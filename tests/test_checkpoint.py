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
    """``src`` with other tensors or metadata; new tensors drop the checksum, as in a file of an older writer."""
    old_tensors, old_meta = _read(src)
    if tensors is not None and metadata is None:
        metadata = {k: v for k, v in old_meta.items() if k != "checksum"}
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
        ("plus_version.safetensors", with_meta(format_version="+1"), "format version"),
        ("wide_version.safetensors", with_meta(format_version="\uff11"), "format version"),  # full-width 1
        ("spaced_version.safetensors", with_meta(format_version=" 1"), "format version"),
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
        ("text_heads.safetensors", with_meta(config=json.dumps({**config, "text_heads": 3})), "text_heads"),
        ("nan_dropout.safetensors", with_meta(config=json.dumps({**config, "dropout": float("nan")})), "dropout"),
        ("nested.safetensors", with_meta(config="[" * 100_000 + "]" * 100_000), "config"),
        ("deep.safetensors", with_meta(config='{"a":' * 5000 + "1" + "}" * 5000), "config"),
        ("bomb.safetensors", with_meta(config=json.dumps({**config, "n_layer": 10**9})), "n_layer"),
        ("huge_header.safetensors", lambda p: p.write_bytes((2**40).to_bytes(8, "little") + raw[8:]),
         "not a readable"),
    ]


def test_missing_file_is_refused_by_name(tmp_path):
    with pytest.raises(CheckpointError, match="nowhere.safetensors.*no such model file"):
        load_model(tmp_path / "nowhere.safetensors")
    with pytest.raises(CheckpointError, match="a folder, not a model file"):
        load_model(tmp_path)
    long_name = tmp_path / ("m" * 300 + ".safetensors")  # longer than a file name may be
    with pytest.raises(CheckpointError, match="m{100}"):
        load_model(long_name)
    with pytest.raises(CheckpointError, match="not a folder|no such model file"):
        load_model(tmp_path / "nowhere.safetensors" / "model.safetensors")
    for read in (read_metadata, load_model):
        with pytest.raises(CheckpointError):
            read(long_name)


N_BROKEN = 30


@pytest.mark.parametrize("case", range(N_BROKEN))
def test_unusable_files_are_refused_naming_the_file(tmp_path, saved_tiny_model, case):
    cases = _broken_files(saved_tiny_model, tmp_path)
    assert len(cases) == N_BROKEN
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


def _edit_header(src, dst, change):
    """Rewrites a .safetensors header with ``change(header dict)``, leaving every data byte where it was."""
    raw = src.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])
    change(header)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    dst.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + size:])
    return dst


def _tokens(model):
    from pixelcore.sampling import SamplerConfig, encode_prompt, sample

    return sample(model, encode_prompt(model, ["a red sword", "gray stone block"]), SamplerConfig(steps=3),
                  generator=torch.Generator().manual_seed(0))


def _same_shape_pair(header):
    """Two tensors of one dtype and shape, matrices (random, so their bytes differ, unlike zero biases)."""
    by_shape = {}
    for key, entry in header.items():
        if key != "__metadata__" and len(entry["shape"]) == 2:
            by_shape.setdefault((entry["dtype"], tuple(entry["shape"])), []).append(key)
    return next(keys for keys in by_shape.values() if len(keys) >= 2)[:2]


def _swap_offsets(header):
    a, b = _same_shape_pair(header)
    header[a]["data_offsets"], header[b]["data_offsets"] = header[b]["data_offsets"], header[a]["data_offsets"]


def _flip_bit(src, dst):
    raw = bytearray(src.read_bytes())
    raw[-100] ^= 0x10  # in the data, far from the header
    dst.write_bytes(bytes(raw))
    return dst


def _config_edit(**changes):
    def change(header):
        config = json.loads(header["__metadata__"]["config"])
        header["__metadata__"]["config"] = json.dumps({**config, **changes})
    return change


def test_saved_files_carry_a_checksum_of_config_and_tensors(saved_tiny_model):
    tensors, meta = _read(saved_tiny_model)
    assert meta["checksum"] == checkpoint.content_checksum(meta["config"], tensors)
    assert meta["checksum"].startswith("sha256:") and len(meta["checksum"]) == 7 + 64


@pytest.mark.parametrize("edit", ["bit_flip", "swap_offsets", "n_head", "text_heads", "fp16_as_bf16",
                                  "one_key_as_bf16", "bad_checksum"])
def test_edits_that_keep_every_shape_are_caught(tmp_path, palette, edit):
    """Each of these files loaded, and sampled other textures, before the checksum and dtype checks."""
    torch.manual_seed(0)
    model = sensitize(PixelModel(PixelConfig.tiny(n_embd=32, n_head=2, text_width=16, text_heads=2), palette))
    src = save_model(model, tmp_path / "src.safetensors", dtype=torch.float16)
    dst = tmp_path / f"{edit}.safetensors"

    def all_bf16(header):
        for key, entry in header.items():
            if key != "__metadata__" and entry["dtype"] == "F16":
                entry["dtype"] = "BF16"

    def one_bf16(header):
        next(e for k, e in header.items() if k != "__metadata__" and e["dtype"] == "F16")["dtype"] = "BF16"

    def bad_checksum(header):
        header["__metadata__"]["checksum"] = "sha256:" + "0" * 64

    edits = {"bit_flip": lambda: _flip_bit(src, dst),
             "swap_offsets": lambda: _edit_header(src, dst, _swap_offsets),
             "n_head": lambda: _edit_header(src, dst, _config_edit(n_head=4)),
             "text_heads": lambda: _edit_header(src, dst, _config_edit(text_heads=4)),
             "fp16_as_bf16": lambda: _edit_header(src, dst, all_bf16),
             "one_key_as_bf16": lambda: _edit_header(src, dst, one_bf16),
             "bad_checksum": lambda: _edit_header(src, dst, bad_checksum)}
    edits[edit]()
    with pytest.raises(CheckpointError, match=f"{edit}.safetensors.*(checksum|dtype|BF16)"):
        load_model(dst)


def test_files_without_a_checksum_still_load_with_a_log_line(tmp_path, saved_tiny_model, caplog):
    """Files written before the checksum existed load; an edit of one key's dtype is still caught."""
    def strip(header):
        del header["__metadata__"]["checksum"]

    old = _edit_header(saved_tiny_model, tmp_path / "old.safetensors", strip)
    with caplog.at_level("INFO", logger="pixelcore.checkpoint"):
        loaded = load_model(old)
    assert "old.safetensors has no checksum" in caplog.text
    assert torch.equal(_tokens(loaded), _tokens(load_model(saved_tiny_model)))

    def strip_and_retype(header):
        strip(header)
        next(e for k, e in header.items() if k != "__metadata__" and e["dtype"] == "F32")["dtype"] = "I32"

    with pytest.raises(CheckpointError, match="old_retyped.safetensors.*dtype I32"):
        load_model(_edit_header(saved_tiny_model, tmp_path / "old_retyped.safetensors", strip_and_retype))


def test_a_bad_config_is_refused_before_any_module_is_built(tmp_path, saved_tiny_model, monkeypatch):
    def no_build(*args, **kwargs):
        raise AssertionError("the model was built from a config that should have been refused")

    monkeypatch.setattr(checkpoint, "PixelModel", no_build)
    for name, change in [("layers", _config_edit(n_layer=10**9)), ("text", _config_edit(text_layers=10**6)),
                         ("wide", _config_edit(n_embd=65536, n_head=1)), ("heads", _config_edit(text_heads=3)),
                         ("dropout", _config_edit(dropout=float("nan")))]:
        with pytest.raises(CheckpointError, match=f"{name}.safetensors: invalid config"):
            load_model(_edit_header(saved_tiny_model, tmp_path / f"{name}.safetensors", change))



def test_the_shipped_model_is_verified():
    from pixelcore.checkpoint import default_model_path

    path = default_model_path()
    tensors, meta = _read(path)
    assert meta["checksum"] == checkpoint.content_checksum(meta["config"], tensors)
    assert load_model(path).config.n_layer >= 1

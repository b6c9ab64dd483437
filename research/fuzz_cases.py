"""The inputs of the fuzz suite (``fuzz.py``): mutated model files, crafted training sets and .deb packages,
and prompt plus sampler-setting sets, each made from a ``random.Random`` so that a case is its seed."""

from __future__ import annotations

import io
import json
import os
import random
import struct
import zipfile
import zlib
from pathlib import Path

PROMPTS = ["a red sword", "gray stone block"]


# ----------------------------------------------------------------------------------------------------------
# Model files


def _split(raw: bytes) -> tuple[dict, bytes]:
    size = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + size]), raw[8 + size:]


def _join(header: dict | str, data: bytes) -> bytes:
    text = (header if isinstance(header, str) else json.dumps(header)).encode("utf-8", "surrogatepass")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data


_ODD_VALUES = [0, -1, 1, 2, 3, 7, 10**9, 2**31, 2**63, 10**30, 0.5, 6.0, -0.0, float("nan"), float("inf"),
               "6", "", "x" * 10_000, None, True, False, [], [6], {}, {"a": 1}, "hf-hub:someone/model",
               "/etc/passwd", "ViT-B-32", "openai", "\ud800", 1e-300]
_CONFIG_FIELDS = ["grid_size", "vocab_size", "patch_size", "n_layer", "n_head", "n_embd", "pixel_dim", "conv",
                  "pos_2d", "dropout", "text_encoder", "text_context", "text_width", "text_layers",
                  "text_heads", "clip_model", "clip_pretrained"]
_DTYPES = ["F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2", "XX", ""]


def without_checksum(raw: bytes) -> bytes:
    """A model file as PixelCore wrote it before files carried a checksum."""
    header, data = _split(raw)
    header["__metadata__"].pop("checksum", None)
    return _join(header, data)


def _tensor_keys(header: dict) -> list[str]:
    return [k for k in header if k != "__metadata__"]


def _mutate_header(rng: random.Random, header: dict, data: bytes) -> tuple[bytes, str]:
    keys = _tensor_keys(header)
    key = rng.choice(keys)
    entry = header[key]
    kind = rng.randrange(9)
    if kind == 0:
        entry["dtype"] = rng.choice(_DTYPES)
        what = f"dtype of {key} -> {entry['dtype']}"
    elif kind == 1:
        shape = entry["shape"]
        choice = rng.randrange(5)
        if choice == 0 and shape:
            shape[rng.randrange(len(shape))] = rng.choice([0, 1, 2, -1, 2**40, shape[0] * 2])
        elif choice == 1:
            shape.append(rng.choice([1, 2]))
        elif choice == 2 and shape:
            shape.pop()
        elif choice == 3:
            entry["shape"] = list(reversed(shape))
        else:
            entry["shape"] = rng.choice([[], [0], "x", None, [1.5]])
        what = f"shape of {key} -> {entry['shape']}"
    elif kind in (2, 8):
        pool = keys if kind == 2 else [k for k in keys if header[k]["shape"] == entry["shape"]
                                       and header[k]["dtype"] == entry["dtype"]]
        other = rng.choice(pool)
        entry["data_offsets"], header[other]["data_offsets"] = header[other]["data_offsets"], entry["data_offsets"]
        what = f"data offsets of {key} and {other} swapped"
    elif kind == 3:
        start, end = entry["data_offsets"]
        shift = rng.choice([-8, -2, -1, 1, 2, 8, 2**40])
        entry["data_offsets"] = rng.choice([[start + shift, end + shift], [start, end + shift],
                                            [end, start], [0, 0], [-1, end]])
        what = f"data offsets of {key} -> {entry['data_offsets']}"
    elif kind == 4:
        del header[key]
        what = f"{key} removed"
    elif kind == 5:
        header[key + rng.choice(["_x", ".weight", ""]) + "_copy"] = dict(entry)
        what = f"a copy of {key} added"
    elif kind == 6:
        name = rng.choice(["stowaway", "text_encoder.clip.weight", "../x"])
        header[name] = {"dtype": "F32", "shape": [0], "data_offsets": [len(data), len(data)]}
        what = f"an empty tensor {name} added"
    else:
        other = rng.choice(keys)
        header[other], header[key] = entry, header[other]
        what = f"entries of {key} and {other} swapped"
    return _join(header, data), what


def _mutate_metadata(rng: random.Random, header: dict, data: bytes) -> tuple[bytes, str]:
    meta = header.setdefault("__metadata__", {})
    kind = rng.randrange(8)
    if kind == 0:
        meta["format"] = rng.choice(["", "pixelcore2", "PixelCore", "pixelcore\x00", "x" * 5000])
        what = f"format -> {meta['format'][:20]!r}"
    elif kind == 1:
        meta["format_version"] = rng.choice(["+1", "\uff11", " 1", "1 ", "01", "1.0", "0", "-1", "2", "",
                                             "1" * 100, "\u0661", "1e0"])
        what = f"format_version -> {meta['format_version'][:20]!r}"
    elif kind == 2:
        config = json.loads(meta["config"])
        changed = {}
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            field = rng.choice(_CONFIG_FIELDS)
            config[field] = changed[field] = rng.choice(_ODD_VALUES)
        meta["config"] = json.dumps(config, ensure_ascii=rng.random() < 0.5)
        what = "config " + ", ".join(f"{k}={ascii(v)[:24]}" for k, v in changed.items())
    elif kind == 3:
        depth = rng.choice([100, 1000, 10_000, 100_000])
        meta["config"] = rng.choice(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth,
                                     "x" * depth, "{not json", "null", "[1, 2]", "1e999999", "9" * 5000,
                                     json.dumps({"n_layer": 10**9}), '{"n_layer": 6, "n_layer": 100000000}'])
        what = f"config -> {meta['config'][:30]!r} ({len(meta['config'])} characters)"
    elif kind == 4:
        meta["checksum"] = rng.choice(["", "sha256:", "md5:abc", meta.get("checksum", "")[:-1] + "0",
                                       meta.get("checksum", "").upper(), "sha256:" + "g" * 64, None])
        if meta["checksum"] is None:
            del meta["checksum"]
        what = f"checksum -> {str(meta.get('checksum'))[:20]!r}"
    elif kind == 5:
        name = rng.choice(sorted(meta))
        del meta[name]
        what = f"metadata {name} removed"
    elif kind == 6:
        name = rng.choice(["training", "note", "x" * 100])
        meta[name] = "y" * rng.choice([10, 10_000, 1_000_000])
        what = f"metadata {name[:10]} of {len(meta[name])} characters"
    else:
        header["__metadata__"] = rng.choice([None, [], "x", {"format": 1}])
        what = f"metadata -> {header['__metadata__']!r}"
    return _join(header, data), what


def _mutate_bytes(rng: random.Random, raw: bytes) -> tuple[bytes, str]:
    size = min(max(int.from_bytes(raw[:8], "little"), 0), max(len(raw) - 8, 0))  # what the file can hold
    out = bytearray(raw)
    kind = rng.randrange(7)
    if kind == 0 and len(out) > 8 + size:
        flips = rng.choice([1, 1, 2, 8])
        for _ in range(flips):
            i = rng.randrange(8 + size, len(out))
            out[i] ^= 1 << rng.randrange(8)
        return bytes(out), f"{flips} bit flips in the data"
    if kind == 1 and size > 0:
        flips = rng.choice([1, 2, 4])
        for _ in range(flips):
            i = rng.randrange(8, 8 + size)
            out[i] ^= 1 << rng.randrange(8)
        return bytes(out), f"{flips} bit flips in the header"
    if kind == 2:
        cut = rng.randrange(len(out) + 1)
        return bytes(out[:cut]), f"truncated to {cut} bytes"
    if kind == 3:
        extra = rng.choice([1, 7, 8, 1000])
        return bytes(out) + os.urandom(extra), f"{extra} bytes appended"
    if kind == 4:
        value = rng.choice([0, 1, size - 1, size + 8, 2**31, 2**63, 2**64 - 1]) % 2**64
        return value.to_bytes(8, "little") + bytes(out[8:]), f"header size -> {value}"
    if kind == 5 and len(out) > 8 + size:
        i = rng.randrange(8 + size, len(out))
        n = rng.randrange(1, 512)
        out[i:i + n] = bytes(len(out[i:i + n]))
        return bytes(out), f"{n} data bytes zeroed"
    out[8:8 + size] = b" " * size
    return bytes(out), "header blanked"


def mutate_model(rng: random.Random, raw: bytes) -> tuple[bytes, str]:
    """A damaged or hostile variant of a model file's bytes (one or two mutations) and what was done."""
    done = []
    for _ in range(rng.choice([1, 1, 1, 2])):
        try:
            header, data = _split(raw)
            usable = isinstance(header, dict) and isinstance(header.get("__metadata__"), dict)
        except (ValueError, UnicodeDecodeError, RecursionError):
            usable = False
        family = rng.random()
        try:
            if usable and family < 0.35:
                raw, what = _mutate_header(rng, header, data)
            elif usable and family < 0.7:
                raw, what = _mutate_metadata(rng, header, data)
            else:
                raise LookupError("bytes")
        except (LookupError, TypeError, ValueError, AttributeError, RecursionError):
            # an earlier mutation left nothing of that kind to mutate (no config, an entry not an object)
            raw, what = _mutate_bytes(rng, raw)
        done.append(what)
    return raw, "; ".join(done)


# ----------------------------------------------------------------------------------------------------------
# Training sets


def _png(rng: random.Random, size: int = 16) -> bytes:
    import numpy as np
    from PIL import Image

    pixels = np.zeros((size, size, 4), np.uint8)
    colour = [rng.randrange(256) for _ in range(3)]
    a, b = sorted(rng.randrange(size) for _ in range(2))
    pixels[a:b + 1, a:b + 1, :3] = colour
    pixels[a:b + 1, a:b + 1, 3] = 255
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def _png_raw(width: int, height: int, depth: int, colour_type: int, rows: bytes, extra: bytes = b"") -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0))
            + extra + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _weird_png(rng: random.Random) -> bytes:
    kind = rng.randrange(12)
    channels = {0: 1, 2: 3, 4: 2, 6: 4}
    if kind < 4:  # 16-bit greyscale, RGB, grey+alpha, RGBA
        colour_type = [0, 2, 4, 6][kind]
        row = bytes(rng.randrange(256) for _ in range(16 * 2 * channels[colour_type]))
        return _png_raw(16, 16, 16, colour_type, b"".join(b"\0" + row for _ in range(16)))
    if kind == 4:  # a small file of 30000 x 30000 pixels
        return _png_raw(30000, 30000, 1, 0, b"\0" * 16)
    if kind == 5:
        return _png(rng)[:rng.randrange(8, 80)]
    if kind == 6:
        return os.urandom(rng.randrange(0, 200))
    if kind == 7:
        from PIL import Image

        buf = io.BytesIO()
        Image.new("I", (16, 16), 70000).save(buf, format="TIFF")
        return buf.getvalue()
    if kind == 8:
        return _png(rng, size=32)
    if kind == 9:  # 1-, 2- and 4-bit palette images
        return _png_raw(16, 16, rng.choice([1, 2, 4, 8]), 3, b"".join(b"\0" + b"\x55" * 16 for _ in range(16)),
                        extra=struct.pack(">I", 6) + b"PLTE" + b"\xff\0\0\0\xff\0" + b"\0\0\0\0")
    if kind == 10:
        return _png_raw(16, 16, 8, 6, b"\0" * 5)  # too little data
    return _png(rng, size=rng.choice([1, 15, 17, 48, 160]))


def _metadata_line(rng: random.Random, names: list[str]) -> str:
    kind = rng.randrange(10)
    name = rng.choice(names)
    if kind == 0:
        return json.dumps({"file_name": name, "text": rng.choice(_ODD_VALUES[:-3])}, default=str)
    if kind == 1:
        return json.dumps({"file_name": name, "kind": rng.choice([["item"], 5, None, "item", {"x": 1}])})
    if kind == 2:
        depth = rng.choice([100, 5000, 50_000])
        return '{"file_name": "%s", "text": %s}' % (name, "[" * depth + "]" * depth)
    if kind == 3:
        return "x" * rng.choice([10, 100_000])
    if kind == 4:
        return json.dumps(rng.choice([[1], "a", None, 1, {"text": "no file"}]))
    if kind == 5:
        return json.dumps({"file_name": rng.choice([5, None, "", "../" + name, "/" + name]), "text": "a gem"})
    if kind == 6:
        return json.dumps({"file_name": name, "text": "a " + "red dark " * rng.choice([10, 10_000]) + "sword"})
    if kind == 7:
        return '{"file_name": "%s", "text": "\\ud800 lone"}' % name
    if kind == 8:
        return json.dumps({"file_name": name, "text": "a blue gem", "color": "blue", "name": "gem"})
    return "\xff\xfe not utf-8"


def _zip_member(zf: zipfile.ZipFile, name: str, payload: bytes, method: int) -> None:
    zf.writestr(zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0)), payload, compress_type=method)


def _damage_zip(rng: random.Random, raw: bytes) -> bytes:
    out = bytearray(raw)
    kind = rng.randrange(6)
    local, central = _find_all(raw, b"PK\x03\x04"), _find_all(raw, b"PK\x01\x02")
    if not local or not central:
        return bytes(out)
    at, cd = rng.choice(local), rng.choice(central)
    if kind == 0:  # a byte of member data (bad CRC or a broken stream)
        i = min(len(out) - 1, at + 30 + int.from_bytes(out[at + 26:at + 28], "little") + rng.randrange(1, 40))
        out[i] ^= 0xFF
    elif kind == 1:  # encrypted flag
        out[at + 6] |= 1
        out[cd + 8] |= 1
    elif kind == 2:  # compression method: deflate64, implode, bzip2, lzma, unknown
        method = rng.choice([9, 6, 12, 14, 99]).to_bytes(2, "little")
        out[at + 8:at + 10] = method
        out[cd + 10:cd + 12] = method
    elif kind == 3:  # the local name differs from the central directory's
        out[at + 30] ^= 0x01
    elif kind == 4:  # sizes that lie
        value = rng.choice([0, 1, 2**32 - 1, 5 * 2**30 % 2**32]).to_bytes(4, "little")
        out[cd + rng.choice([20, 24]):cd + rng.choice([20, 24]) + 4] = value
    else:
        return bytes(out[:rng.randrange(len(out))])
    return bytes(out)


def _find_all(raw: bytes, needle: bytes) -> list[int]:
    found, at = [], raw.find(needle)
    while at >= 0:
        found.append(at)
        at = raw.find(needle, at + 1)
    return found


def _bomb_member(zf: zipfile.ZipFile, name: str, size: int) -> None:
    """A member of ``size`` zero bytes, deflated to a thousandth of that."""
    info = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as member:
        chunk = b"\0" * 2**20
        for _ in range(size // len(chunk)):
            member.write(chunk)


def make_dataset(rng: random.Random, folder: Path) -> Path:
    """A crafted training set: a zip or a folder of good and hostile PNGs, captions and metadata."""
    pack = rng.random() < 0.3
    prefix = "assets/minecraft/textures/item/" if pack else rng.choice(["", "sub/", "a/b/"])
    names = [f"{prefix}{rng.choice(['sword', 'gem', 'red_wool', 'x'])}_{i}.png" for i in range(rng.randrange(1, 6))]
    members: list[tuple[str, bytes]] = []
    for name in names:
        members.append((name, _png(rng) if rng.random() < 0.6 else _weird_png(rng)))
        if rng.random() < 0.3:
            members.append((name[:-4] + ".txt", rng.choice([b"a red ruby", b"\xff\xfe\x00", b"gold " * 3000,
                                                           "\ud800".encode("utf-8", "surrogatepass"), b""])))
    if rng.random() < 0.5:
        lines = [_metadata_line(rng, [n[len(prefix):] if not pack else n for n in names])
                 for _ in range(rng.randrange(1, 8))]
        members.append((("" if pack else prefix) + "metadata.jsonl",
                        "\n".join(lines).encode("utf-8", "surrogatepass")))
    if rng.random() < 0.2:
        members.append((rng.choice(["../escape.png", "/abs.png", "a\\b.png", "\u00e9" * 200 + ".png",
                                    "dup.png", "x" * 300 + ".png"]), _png(rng)))
    bomb = rng.choice(["", "", "", "", "bomb.png", "metadata.jsonl", names[0][:-4] + ".txt"])
    if rng.random() < 0.65 or bomb:
        path = folder / "set.zip"
        method = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
        with zipfile.ZipFile(path, "w") as zf:
            for name, payload in members:
                _zip_member(zf, name, payload, method)
            if bomb:
                _bomb_member(zf, bomb, rng.choice([2 * 2**20, 64 * 2**20]))
        if rng.random() < 0.5:
            path.write_bytes(_damage_zip(rng, path.read_bytes()))
        return path
    root = folder / "set"
    for name, payload in members:
        if name.startswith(("/", "../")) or len(Path(name).name) > 200:
            continue
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(payload)
    root.mkdir(exist_ok=True)
    return root


def make_deb(rng: random.Random, folder: Path) -> Path:
    """A crafted Debian package for build-luanti: hostile package names, member paths and sizes."""
    import tarfile

    def tar_xz(files: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:xz") as tar:
            for name, payload in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
        return buf.getvalue()

    package = rng.choice(["minetest-data", "../../escaped", "/tmp/abs", "a/b", "..", "ok-name", "x" * 300, "",
                          "UPPER", "minetest-mod-a"])
    textures = "./usr/share/games/minetest/games/minetest_game/mods/default/textures"
    files = {f"{textures}/default_tool_{i}.png": (_png(rng) if rng.random() < 0.7 else _weird_png(rng))
             for i in range(rng.randrange(1, 4))}
    if rng.random() < 0.3:
        files[f"{textures}/{rng.choice(['../../../../x', 'we ird$', 'a' * 250])}.png"] = _png(rng)
    control = tar_xz({"./control": f"Package: {package}\nVersion: 1.0\n".encode()})
    data = tar_xz(files)
    if rng.random() < 0.2:
        data = data[:rng.randrange(len(data))]
    members = [("debian-binary", b"2.0\n"), ("control.tar.xz", control), ("data.tar.xz", data)]
    out = bytearray(b"!<arch>\n")
    for name, payload in members:
        size = str(len(payload)) if rng.random() < 0.95 else rng.choice(["-60", "x", "99999999"])
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{size:<10}`\n".encode() + payload
        out += b"\n" if len(payload) % 2 else b""
    debs = folder / "debs"
    debs.mkdir()
    (debs / "pkg_1.0_all.deb").write_bytes(bytes(out))
    return debs


# ----------------------------------------------------------------------------------------------------------
# Prompts and sampler settings


def _prompt(rng: random.Random):
    return rng.choice([
        "a red sword", "", "   ", "\x00\x00", "\ud800", "a \udfff sword", "x" * 1_000_000, "一把蓝色的钻石剑",
        "\u202e\u200b" * 100, None, 5, b"bytes", ["a", None], [], {"a": 1}, ("a", "b"), ["a red sword"] * 3,
        ["a gem"] * rng.choice([257, 1000]), [["nested"]], 1.5, "\U0001f5e1" * 5000,
    ])


_SETTINGS = {
    "steps": [1, 2, 3, 64, 65, 0, -1, 1.5, "10", None, True, 2**63],
    "cfg_scale": [0, 1, 1.5, 30, 31, -1, float("nan"), float("inf"), 1e-300, "1.5", None, True],
    "temperature": [0.7, 1e-300, 1e-38, 1e-6, 0, 5, 5.1, -1, float("nan"), float("inf"), "0.7", None],
    "randomness": [0, 2, 20, 21, -1, float("nan"), "2", None],
    "transparency_delay": [0, 1, 10, 11, -1, float("nan"), None, "1"],
    "batch_size": [1, 2, 256, 257, 0, -1, True, 1.0, None, "2"],
    "schedule": ["cosine", "linear", "bogus", None, 5, ""],
    "guidance_schedule": ["early", "constant", "linear", "bogus", None],
    "opaque": [True, False, "yes", None, 2],
    "min_cutout": [0, 0.1, 1, 1.1, -0.1, float("nan"), None, "0.1"],
}


def make_sampler_case(rng: random.Random, vocab: int):
    import torch

    from pixelcore.sampling import MAX_BATCH

    prompts = _prompt(rng) if rng.random() < 0.5 else rng.choice(PROMPTS)
    negative = rng.choice([None, "", "blurry", ["a", "b"], 5, "\ud800", ["x"] * 7]) if rng.random() < 0.3 else None
    settings = {key: rng.choice(values) for key, values in _SETTINGS.items() if rng.random() < 0.3}
    settings.setdefault("steps", rng.choice([1, 2, 3]))
    # The runs are for the arguments, not for the decoding loop: a case decodes a few thousand grid rounds at
    # most, so that a slow case is a hang and not a large batch.
    n_prompts = len(prompts) if isinstance(prompts, (list, tuple)) else 1
    grids = n_prompts * (settings["batch_size"] if type(settings.get("batch_size")) is int else 1)
    if grids > MAX_BATCH and n_prompts > 1 and isinstance(settings.get("batch_size"), int):
        settings["batch_size"] = 1
        grids = n_prompts
    if isinstance(settings["steps"], int) and settings["steps"] * grids > 4000:
        settings["steps"] = 2
    settings["generator"] = rng.choice([torch.Generator().manual_seed(rng.randrange(2**32))] * 5 + [None, "x"])
    if rng.random() < 0.15:
        shape = rng.choice([(1, 16, 16), (2, 16, 16), (1, 8, 8), (3, 16, 16), (16, 16)])
        settings["init_tokens"] = rng.choice([torch.randint(0, vocab, shape), torch.full(shape, vocab + 5),
                                              torch.full(shape, -1), torch.rand(shape), None])
        settings["keep_mask"] = rng.choice([torch.rand(shape) < 0.5, torch.ones(shape, dtype=torch.bool),
                                            torch.zeros((1, 4, 4), dtype=torch.bool), None])
    if rng.random() < 0.1:
        settings["allowed_tokens"] = rng.choice([torch.tensor([], dtype=torch.long), torch.tensor([0]),
                                                 torch.tensor([vocab + 3]), torch.tensor([1.5]),
                                                 torch.arange(vocab), torch.tensor([-1]), [1, 2], "1"])
    return prompts, negative, settings

"""Draws a UI-format ComfyUI workflow as a picture (nodes, widget values, links) with its real output.

    PYTHONPATH=. python scripts/render_workflow.py workflows/pixelcore_texture.json docs/images/workflow_texture.png

The output texture is generated with the shipped default model from the workflow's own prompt, seed and
sampler settings, and drawn inside the Preview Image node, as ComfyUI would show it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from pixelcore import SamplerConfig, default_model_path, encode_prompt, load_model, sample
from pixelcore.images import checkerboard, composite, upscale_nearest

TYPE_COLOURS = {"PIXEL_MODEL": (180, 120, 255), "PIXEL_COND": (255, 190, 80), "PIXEL_TOKENS": (90, 200, 160),
                "IMAGE": (100, 170, 255), "MASK": (120, 220, 120)}
MARGIN, TITLE_H, ROW_H = 40, 26, 20


def _font(size: int) -> ImageFont.ImageFont:
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                 "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def _output_texture(workflow: dict) -> np.ndarray:
    nodes = {n["type"]: n for n in workflow["nodes"]}
    prompt, negative = nodes["PixelCore_EncodePrompt"]["widgets_values"][:2]
    seed, _, steps, cfg, temperature, batch, *optional = nodes["PixelCore_MaskGITSample"]["widgets_values"]
    schedule = {"guidance_schedule": optional[0]} if optional else {}  # saved before the widget existed: default
    model = load_model(default_model_path())
    config = SamplerConfig(steps=steps, cfg_scale=cfg, temperature=temperature, **schedule)
    tokens = sample(model, encode_prompt(model, prompt, negative or None), config, batch_size=batch,
                    generator=torch.Generator().manual_seed(seed))
    return model.palette.dequantize(tokens)[0].numpy()


def render(workflow_path: Path, out_path: Path) -> None:
    workflow = json.loads(workflow_path.read_text(encoding="utf-8"))
    nodes = workflow["nodes"]
    left = min(n["pos"][0] for n in nodes) - MARGIN
    top = min(n["pos"][1] for n in nodes) - MARGIN
    width = max(n["pos"][0] + n["size"][0] for n in nodes) - left + MARGIN
    height = max(n["pos"][1] + n["size"][1] for n in nodes) - top + MARGIN
    canvas = Image.new("RGB", (int(width), int(height)), (32, 32, 36))
    draw = ImageDraw.Draw(canvas)
    font, small = _font(14), _font(12)
    slots = {}  # (node id, "in"/"out", index) -> (x, y)
    for node in nodes:
        x, y = node["pos"][0] - left, node["pos"][1] - top
        w, h = node["size"]
        draw.rounded_rectangle([x, y, x + w, y + h], radius=8, fill=(53, 53, 58), outline=(90, 90, 96))
        draw.rounded_rectangle([x, y, x + w, y + TITLE_H], radius=8, fill=(70, 70, 78))
        draw.text((x + 10, y + 5), node["type"].replace("PixelCore_", "PixelCore "), fill=(230, 230, 230), font=font)
        for i, slot in enumerate(node.get("inputs", [])):
            sy = y + TITLE_H + 12 + i * ROW_H
            slots[(node["id"], "in", i)] = (x, sy)
            draw.ellipse([x - 5, sy - 5, x + 5, sy + 5], fill=TYPE_COLOURS.get(slot["type"], (200, 200, 200)))
            draw.text((x + 10, sy - 8), slot["name"], fill=(200, 200, 200), font=small)
        for i, slot in enumerate(node.get("outputs", [])):
            sy = y + TITLE_H + 12 + i * ROW_H
            slots[(node["id"], "out", i)] = (x + w, sy)
            draw.ellipse([x + w - 5, sy - 5, x + w + 5, sy + 5], fill=TYPE_COLOURS.get(slot["type"], (200, 200, 200)))
            label_w = draw.textlength(slot["name"], font=small)
            draw.text((x + w - 10 - label_w, sy - 8), slot["name"], fill=(200, 200, 200), font=small)
        rows = max(len(node.get("inputs", [])), len(node.get("outputs", [])))
        for j, value in enumerate(node.get("widgets_values") or []):
            wy = y + TITLE_H + 12 + (rows + j) * ROW_H
            draw.rounded_rectangle([x + 8, wy - 9, x + w - 8, wy + 9], radius=6, fill=(34, 34, 38))
            draw.text((x + 16, wy - 8), str(value)[:40], fill=(220, 220, 220), font=small)
    for _, src, src_slot, dst, dst_slot, kind in workflow["links"]:
        (x0, y0), (x1, y1) = slots[(src, "out", src_slot)], slots[(dst, "in", dst_slot)]
        ts = np.linspace(0, 1, 30)[:, None]
        c0, c1 = (x0 + 80, y0), (x1 - 80, y1)
        curve = ((1 - ts) ** 3 * (x0, y0) + 3 * (1 - ts) ** 2 * ts * c0 + 3 * (1 - ts) * ts ** 2 * c1
                 + ts ** 3 * (x1, y1))
        draw.line([tuple(p) for p in curve], fill=TYPE_COLOURS.get(kind, (200, 200, 200)), width=3)
    preview = next(n for n in nodes if n["type"] == "PreviewImage")
    size = int(min(preview["size"][0], preview["size"][1] - TITLE_H - 40) // 16 * 16)
    big = upscale_nearest(_output_texture(workflow), size // 16)
    shown = composite(big, checkerboard(size, size, cell=size // 16))
    px = int(preview["pos"][0] - left + (preview["size"][0] - size) // 2)
    py = int(preview["pos"][1] - top + TITLE_H + 30)
    canvas.paste(Image.fromarray(shown), (px, py))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workflow", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    render(args.workflow, args.out)


if __name__ == "__main__":
    main()

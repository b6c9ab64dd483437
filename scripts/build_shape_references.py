"""Build the shape metric's references from training data and print their calibration.

    PYTHONPATH=. python scripts/build_shape_references.py --data data/luanti data/extra

Reads every item texture whose name says a shape class (pixelcore.shapes.shape_class), writes their silhouettes
to pixelcore/weights/shape_references.npz (or --out) and prints how real items are read when each is left out of
the references: overall, per source, per class, the most frequent confusions, and the no-class threshold's cost.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from pixelcore import shapes
from pixelcore.data import load_textures


def item_silhouettes(folders: list[str]) -> tuple[list[np.ndarray], list[str], list[str], list[str]]:
    """Pixels, names, class labels and source ("luanti" or the style) of the cut-out items with a class."""
    pixels, names, labels, groups = [], [], [], []
    for folder in folders:
        records, _ = load_textures(folder)
        for rec in records:
            label = shapes.shape_class(rec.name)
            if rec.kind == "item" and label and shapes.is_cutout(shapes.silhouette(rec.pixels)):
                pixels.append(rec.pixels)
                names.append(rec.name)
                labels.append(label)
                groups.append(rec.style or Path(folder).name)
    return pixels, names, labels, groups


def _row(title: str, cal: shapes.Calibration) -> str:
    return f"| {title} | {len(cal.labels)} | {cal.accuracy:.3f} | {cal.class_mean:.3f} |"


def report(masks: np.ndarray, labels: list[str], groups: list[str]) -> str:
    """Markdown: leave-one-out accuracy in several settings, per source, per class, confusions, thresholds."""
    plain = shapes.leave_one_out(masks, labels)
    lines = ["| leave-one-out setting | textures | accuracy | class mean |", "|---|---|---|---|",
             _row("each texture left out (shift ±1, nearest reference)", plain),
             _row("... and every texture with the same silhouette",
                  shapes.leave_one_out(masks, labels, exclude_same_silhouette=True)),
             _row("... no shift tolerance", shapes.leave_one_out(masks, labels, max_shift=0))]
    for group in sorted(set(groups)):
        lines.append(_row(f"{group} textures (references: all others)",
                          plain.subset([i for i, g in enumerate(groups) if g == group])))
    lines += ["", "| class | read as itself | textures |", "|---|---|---|"]
    lines += [f"| {c} | {h / n:.2f} | {n} |" for c, (h, n) in sorted(plain.per_class.items())]
    lines += ["", "Most frequent confusions (true -> read as): " + ", ".join(
        f"{t} -> {f or 'no class'} ({n})" for (t, f), n in plain.confusions.most_common(12))]
    lines += ["", "| no-class IoU threshold | accuracy |", "|---|---|"]
    for threshold in (0.0, 0.3, 0.4, 0.5, 0.6):
        lines.append(f"| {threshold} | {shapes.leave_one_out(masks, labels, threshold=threshold).accuracy:.3f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["data/luanti", "data/extra"], help="imagefolder datasets")
    parser.add_argument("--out", default=str(shapes.REFERENCES_PATH))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    pixels, names, labels, groups = item_silhouettes(args.data)
    refs = shapes.ShapeReferences.from_textures(pixels, names)
    refs.save(args.out)
    print(f"{len(refs)} reference silhouettes of {len(refs.classes)} classes from {len(pixels)} textures "
          f"-> {args.out}\n")
    print(report(shapes.silhouette(np.stack(pixels)), labels, groups))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

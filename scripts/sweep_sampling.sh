#!/usr/bin/env bash
# Guidance x temperature sweep of a model on the public and novel prompt sets; prints one line per setting.
# Usage: bash scripts/sweep_sampling.sh [MODEL] [OUT] [SEEDS]   (defaults: shipped model, runs/sweep, 8)
set -euo pipefail
MODEL=${1:-pixelcore/weights/pixelcore_default.safetensors}
OUT=${2:-runs/sweep}
SEEDS=${3:-8}
PY=${PYTHON:-python}
for cfg in ${CFGS:-1.5 2.5 4}; do
  for temp in ${TEMPS:-0.5 0.7 1.0}; do
    for set in public novel; do
      dir="$OUT/cfg${cfg}_t${temp}/$set"
      [ -f "$dir/metrics.json" ] || "$PY" -m pixelcore eval --prompts "eval/prompts_$set.jsonl" --model "$MODEL" \
          --seeds "$SEEDS" --cfg "$cfg" --temperature "$temp" --out "$dir" > /dev/null
    done
    "$PY" - "$OUT/cfg${cfg}_t${temp}" "$cfg" "$temp" <<'PY'
import json, sys
out, cfg, temp = sys.argv[1:]
p, n = (json.load(open(f"{out}/{s}/metrics.json")) for s in ("public", "novel"))
print(f"| {cfg} | {temp} | {p['color_adherence']:.3f} | {p['kind_adherence']:.3f} | {p['isolated_pixels']:.3f} "
      f"| {p['diversity']:.3f} | {n['color_adherence']:.3f} | {n['kind_adherence']:.3f} |")
PY
  done
done

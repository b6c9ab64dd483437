#!/usr/bin/env bash
# Rounds x guidance x schedule x temperature x randomness sweep of a model on the public and novel prompt sets;
# prints one line per setting. Usage: bash research/scripts/sweep_sampling.sh [MODEL] [OUT] [SEEDS]   (defaults: shipped
# model, runs/sweep, 8). Values: STEPS (default "10": decoding rounds), CFGS ("1.5 2.5 4"), SCHEDS ("constant",
# the schedule of the sweeps in research/reports/DEFAULT_MODEL.md that set none; the sampler's own default is
# "early"; the guidance schedules are in sampling.py), TEMPS ("0.5 0.7 1.0"), RANDS ("2": MaskGIT's randomness).
set -euo pipefail
MODEL=${1:-pixelcore/weights/pixelcore_default.safetensors}
OUT=${2:-runs/sweep}
SEEDS=${3:-8}
PY=${PYTHON:-python}
for steps in ${STEPS:-10}; do
for cfg in ${CFGS:-1.5 2.5 4}; do
for sched in ${SCHEDS:-constant}; do
for temp in ${TEMPS:-0.5 0.7 1.0}; do
for rand in ${RANDS:-2}; do
  run="$OUT/cfg${cfg}_t${temp}_r${rand}"
  [ "$sched" = constant ] || run="${run}_$sched"  # constant and 10 rounds keep the short name cfgG_tT_rR
  [ "$steps" = 10 ] || run="${run}_s$steps"
  for set in public novel; do
    [ -f "$run/$set/metrics.json" ] || "$PY" -m pixelcore eval --prompts "eval/prompts_$set.jsonl" \
        --model "$MODEL" --seeds "$SEEDS" --steps "$steps" --cfg "$cfg" --guidance-schedule "$sched" \
        --temperature "$temp" --randomness "$rand" --out "$run/$set" > /dev/null
  done
  "$PY" - "$run" "$steps" "$cfg" "$sched" "$temp" "$rand" <<'PY'
import json, sys
out, steps, cfg, sched, temp, rand = sys.argv[1:]
p, n = (json.load(open(f"{out}/{s}/metrics.json")) for s in ("public", "novel"))
print(f"| {steps} | {cfg} | {sched} | {temp} | {rand} | {p['color_adherence']:.3f} | {p['kind_adherence']:.3f} "
      f"| {p['isolated_pixels']:.3f} | {p['diversity']:.3f} | {n['color_adherence']:.3f} | {n['kind_adherence']:.3f} |")
PY
done
done
done
done
done

#!/usr/bin/env bash
# The quality side of docs/SPEED.md: the shipped model scored at each sampling setting the speed
# table times (the previous release's 10 fp32 rounds, the default 8 rounds in auto precision, fp32 and int8 at
# 8 rounds, the distilled fast model), with research/scripts/evaluate_model.sh. One OUT/<setting>/ per setting.
#
#   DATA=data/luanti bash research/scripts/speed_quality.sh [OUT]     (default OUT: runs/speed_quality)
#
# Environment: as evaluate_model.sh; FAST (runs/distill/model.safetensors: the distilled model, skipped if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-runs/speed_quality}
SHIPPED=pixelcore/weights/pixelcore_default.safetensors
FAST=${FAST:-runs/distill/model.safetensors}
score() {  # name, model, sets, sampler flags
  echo "== $1 ($4)"
  SETS="$3" EVAL_FLAGS="$4" bash research/scripts/evaluate_model.sh "$2" "$OUT/$1"
}
score before "$SHIPPED" "public public1000 natural shapes" "--steps 10 --precision fp32 --engine eager"
score default "$SHIPPED" "public public1000 natural shapes" ""
score fp32_s8 "$SHIPPED" "public public1000" "--steps 8 --precision fp32"
score int8_s8 "$SHIPPED" "public public1000" "--steps 8 --precision int8"
[ -f "$FAST" ] && score fast "$FAST" "public public1000 natural shapes" ""

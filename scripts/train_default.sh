#!/usr/bin/env bash
# Rebuilds the shipped default model from scratch: data from Debian's Luanti packages, training, fp16 export.
# The shipped file was trained on one H100 (7.4 minutes of training). On a CPU, give it hours:
#   MAX_MINUTES=600 DEVICE=cpu BATCH=128 bash scripts/train_default.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
OUT="${OUT:-runs/default}"

"$PY" -m pixelcore build-luanti --debs "${DEBS:-debs}" --out data/luanti --download
"$PY" -m pixelcore train --data data/luanti --out "$OUT" --preset default \
    --batch-size "${BATCH:-512}" --lr 1.2e-3 --steps 200000 --max-minutes "${MAX_MINUTES:-7.4}" \
    --sample-every 5000 --save-every 5000 --device "${DEVICE:-auto}"
"$PY" -m pixelcore export "$OUT/model.safetensors" pixelcore/weights/pixelcore_default.safetensors --dtype fp16
"$PY" -m pixelcore eval --prompts eval/prompts_novel.jsonl --train-data data/luanti --out "$OUT/eval_novel"

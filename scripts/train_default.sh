#!/usr/bin/env bash
# Rebuilds the shipped default model from scratch (docs/MODEL_CARD.md): data from Debian's Luanti packages,
# stage 1 from scratch (one H100: 7.4 minutes); stage 2 a fine-tune (CPU, one thread: 75 minutes) averaged over
# its last four checkpoints; stage 3 a colour-balanced fine-tune of that average (CPU, one thread: 75 minutes)
# averaged the same way; stage 4 a longer colour-balanced fine-tune at batch 512 (one H100: 4,000 steps in
# 5 minutes) averaged the same way; 1/4 of the stage-3 average + 3/4 of stage 4's; stage 5 a CPU fine-tune of
# that mix (one thread: 65 minutes) with kind-marked captions, averaged; the shipped fp16 file is half the
# 3/4 mix and half the stage-5 average.
# All stages keep the TV term the shipped file was trained with. Stages 1 and 4 on a CPU need hours:
# MAX_MINUTES=600 DEVICE=cpu BATCH=128 FT4_DEVICE=cpu bash scripts/train_default.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
OUT="${OUT:-runs/default}"

"$PY" -m pixelcore build-luanti --debs "${DEBS:-debs}" --out data/luanti --download
"$PY" -m pixelcore train --data data/luanti --out "$OUT" --preset default \
    --batch-size "${BATCH:-512}" --lr 1.2e-3 --steps 200000 --max-minutes "${MAX_MINUTES:-7.4}" \
    --sample-every 5000 --save-every 5000 --device "${DEVICE:-auto}" --tv-weight 0.05
# The fine-tunes stop on wall time, so their thread count decides how many steps they take.
export OMP_NUM_THREADS="${FT_THREADS:-1}"
"$PY" -m pixelcore train --data data/luanti --out "${OUT}_ft" --init-from "$OUT/model.safetensors" \
    --batch-size 64 --lr 2e-4 --warmup 100 --steps 100000 --max-minutes "${FT_MINUTES:-75}" --zh-prob 0.4 \
    --tv-weight 0.05 --save-every 250 --keep-checkpoints --sample-every 1000 --device "${FT_DEVICE:-cpu}"
# shellcheck disable=SC2046 # the file names have no spaces
"$PY" -m pixelcore average $(ls "${OUT}_ft"/checkpoints/step_*.safetensors | tail -4) \
    -o "${OUT}_ft/average.safetensors" --dtype fp16
"$PY" -m pixelcore train --data data/luanti --out "${OUT}_ft3" --init-from "${OUT}_ft/average.safetensors" \
    --batch-size 64 --lr 2e-4 --warmup 100 --steps 100000 --max-minutes "${FT_MINUTES:-75}" --zh-prob 0.4 \
    --tv-weight 0.05 --hue-targets --generic-captions --save-every 250 --keep-checkpoints --sample-every 1000 \
    --device "${FT_DEVICE:-cpu}"
# shellcheck disable=SC2046
"$PY" -m pixelcore average $(ls "${OUT}_ft3"/checkpoints/step_*.safetensors | tail -4) \
    -o "${OUT}_ft3/average.safetensors" --dtype fp16
# Stage 4 stops on its step count (4,000), not on wall time.
unset OMP_NUM_THREADS
"$PY" -m pixelcore train --data data/luanti --out "${OUT}_ft4" --init-from "${OUT}_ft3/average.safetensors" \
    --batch-size 512 --lr 3e-4 --warmup 200 --steps 4000 --max-minutes 600 --zh-prob 0.4 \
    --tv-weight 0.05 --hue-targets --generic-captions --save-every 250 --keep-checkpoints --sample-every 1000 \
    --device "${FT4_DEVICE:-auto}"
# shellcheck disable=SC2046
"$PY" -m pixelcore average $(ls "${OUT}_ft4"/checkpoints/step_*.safetensors | tail -4) \
    -o "${OUT}_ft4/average.safetensors" --dtype fp16
# 1/4 of the stage-3 average and 3/4 of the stage-4 average (the 16-seed comparison of the mixes is in
# docs/MODEL_CARD.md): the release before stage 5.
"$PY" -m pixelcore average "${OUT}_ft3/average.safetensors" "${OUT}_ft4/average.safetensors" --weights 1 3 \
    -o "${OUT}_mix34.safetensors" --dtype fp16
# Stage 5: a CPU fine-tune of that mix whose blocks say "block" wherever an item shares their name (leaves),
# those records drawn 3x as often; then the average of its last four checkpoints.
export OMP_NUM_THREADS="${FT_THREADS:-1}"
"$PY" -m pixelcore train --data data/luanti --out "${OUT}_ft5" --init-from "${OUT}_mix34.safetensors" \
    --batch-size 64 --lr 1.5e-4 --warmup 100 --steps 100000 --max-minutes "${FT5_MINUTES:-65}" --zh-prob 0.4 \
    --tv-weight 0.05 --hue-targets --generic-captions --kind-captions --kind-pair-boost 3 --save-every 100 \
    --keep-checkpoints --sample-every 1000 --device "${FT_DEVICE:-cpu}"
unset OMP_NUM_THREADS
# shellcheck disable=SC2046
"$PY" -m pixelcore average $(ls "${OUT}_ft5"/checkpoints/step_*.safetensors | tail -4) \
    -o "${OUT}_ft5/average.safetensors" --dtype fp16
# The shipped file: 1/2 of the release before stage 5 and 1/2 of the stage-5 average.
"$PY" -m pixelcore average "${OUT}_mix34.safetensors" "${OUT}_ft5/average.safetensors" --weights 1 1 \
    -o pixelcore/weights/pixelcore_default.safetensors --dtype fp16
"$PY" -m pixelcore eval --prompts eval/prompts_novel.jsonl --train-data data/luanti --out "$OUT/eval_novel"

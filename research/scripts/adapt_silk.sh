#!/usr/bin/env bash
# The quick setting on a pack the shipped model has never seen (docs/TRAINING.md): fine-tune the shipped
# model on 90% of famfamfam's Silk icons (1,000 16x16 icons, CC BY 3.0, Debian package famfamfam-silk) for
# MINUTES on the CPU, mix it 1:1 with the shipped model, then score all three on the held-out 10%.
# Usage: bash research/scripts/adapt_silk.sh   (THREADS=1 as measured; MINUTES=55; needs apt-get and Debian's archive)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${PYTHON:-python}"
OUT="${OUT:-runs/silk}"
mkdir -p "$OUT/deb" data
if [ ! -d data/silk ]; then
  (cd "$OUT/deb" && apt-get download famfamfam-silk)
  dpkg-deb -x "$OUT"/deb/famfamfam-silk_*.deb "$OUT/deb/x"
  mkdir -p data/silk && cp "$OUT"/deb/x/usr/share/icons/silk/16x16/*.png data/silk/
fi
export OMP_NUM_THREADS="${THREADS:-1}"
[ -f "$OUT/ft/model.safetensors" ] || "$PY" -m pixelcore train --data data/silk --out "$OUT/ft" \
    --init-from default --holdout 0.1 --seed 0 --batch-size 64 --lr 2e-4 --warmup 100 --steps 100000 \
    --max-minutes "${MINUTES:-55}" --save-every 250 --sample-every 500 --device cpu
"$PY" -m pixelcore average pixelcore/weights/pixelcore_default.safetensors "$OUT/ft/model.safetensors" \
    --weights 1 1 -o "$OUT/mix.safetensors"
"$PY" -m research adapt --pack data/silk --out "$OUT/adapt" --holdout 0.1 --seed 0 \
    default "$OUT/ft/model.safetensors" "$OUT/mix.safetensors"

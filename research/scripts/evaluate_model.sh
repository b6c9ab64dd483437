#!/usr/bin/env bash
# Scores a model on every prompt set the model card reports: the public prompts (two 16-seed sets), the novel
# combinations, the three natural-prompt twin sets (English and Chinese, 8 seeds) and the item-shape set, then
# prints one line per set. Each set's metrics.json, per_prompt.json and grid land in OUT/<set>.
#
#   bash research/scripts/evaluate_model.sh [MODEL] [OUT]     (defaults: the shipped model, runs/model_eval)
#
# Environment: PYTHON (python), DATA (data/luanti: training textures for the copy rate; skipped if missing),
# SEEDS (16), NATURAL_SEEDS (8), SETS (all of them), EVAL_FLAGS (sampler flags for every set, e.g.
# "--steps 10 --precision fp32").
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-pixelcore/weights/pixelcore_default.safetensors}
OUT=${2:-runs/model_eval}
PY=${PYTHON:-python}
DATA=${DATA:-data/luanti}
copy=()
[ -d "$DATA" ] && copy=(--train-data "$DATA")
run() {  # name, prompt file, seeds, first seed, extra flags
  local name=$1 file=$2 seeds=$3 seed=$4; shift 4
  [[ " ${SETS:-public public1000 novel natural natural_b natural_c shapes} " == *" $name "* ]] || return 0
  "$PY" -m pixelcore eval --model "$MODEL" --prompts "$file" --seeds "$seeds" --seed "$seed" --device cpu \
      --out "$OUT/$name" "$@" ${EVAL_FLAGS:-} > "$OUT/$name.log" 2>&1
  "$PY" - "$OUT/$name/metrics.json" "$name" <<'PYEOF'
import json, sys
metrics = json.load(open(sys.argv[1]))
keys = [k for k in metrics if "adherence" in k or k == "copy_rate"]
print(f"{sys.argv[2]:>10}: " + ", ".join(f"{k} {metrics[k]:.3f}" for k in keys))
PYEOF
}
mkdir -p "$OUT"
run public eval/prompts_public.jsonl "${SEEDS:-16}" 0 "${copy[@]}"
run public1000 eval/prompts_public.jsonl "${SEEDS:-16}" 1000
run novel eval/prompts_novel.jsonl "${SEEDS:-16}" 0 "${copy[@]}"
run natural eval/prompts_natural.jsonl "${NATURAL_SEEDS:-8}" 0
run natural_b eval/prompts_natural_b.jsonl "${NATURAL_SEEDS:-8}" 0
run natural_c eval/prompts_natural_c.jsonl "${NATURAL_SEEDS:-8}" 0
run shapes eval/prompts_shapes.jsonl "${NATURAL_SEEDS:-8}" 0

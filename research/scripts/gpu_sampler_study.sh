#!/usr/bin/env bash
# The sampler study of research/reports/quick/SAMPLER.md at the GPU table's size and budget, in one command:
# does MaskGIT's out-of-sample win on FD over AR hold at the full budget? (It does not: research/reports/SAMPLER.md.)
#
# Three seeds of the default design (`no_tv`) and the AR baseline, the shipped 12M preset, an equal step
# budget (STEPS, default 2800: what MaskGIT reached in the GPU table's 4 minutes), every training side by side
# on one device; then every run swept over the sampling grid, and the sweep page rendered.
#
#   bash research/scripts/gpu_sampler_study.sh [RUNS] [PAGE]     (defaults: runs/gpu_sampler, RUNS/SAMPLER.md)
#
# Settings (environment): DEVICE (cuda), STEPS (2800), MINUTES (4: a time cap per system on top of STEPS),
# SEEDS ("0 1 2"), THREADS (2 torch threads per process), QUICK (empty; "--quick" for the quick models, as a
# CPU rehearsal), FEATURE_STEPS (0: the mode's default), RANDS ("2 4.5 8"), REPEATS (3), PYTHON (python3),
# BUNDLE (a .tgz path: everything but the checkpoints, packed at the end), PACK (a folder: the first seed's
# checkpoints and feature net, float weights at fp16, as a tar cut into 15 MiB parts right after training, so
# they can be swept further on another machine), CFGS ("1.5 3") and SCHEDS ("constant linear"): the wider grid.
#
# The sweeps go in two passes, so that a run cut short still holds what the study needs: first the study's own
# setting (guidance 1.5 constant, every value of RANDS) for every seed, then the wider grid CFGS x SCHEDS x
# RANDS, AR first, skipping what the first pass scored.
#
# A rehearsal on a CPU (2 cores: 7 minutes):
#   DEVICE=cpu QUICK=--quick STEPS=20 FEATURE_STEPS=20 SEEDS="0 1" CFGS=3 SCHEDS=early RANDS=2 REPEATS=1 \
#       PACK=/tmp/rehearsal/pack bash research/scripts/gpu_sampler_study.sh /tmp/rehearsal/runs
# On a GPU machine with the data at data/luanti and a 9-minute limit, keeping what finished:
#   BUNDLE=out/gpu_sampler.tgz PACK=out timeout 540 bash research/scripts/gpu_sampler_study.sh runs/gpu_sampler \
#       out/SAMPLER.md
# then, where the checkpoints are swept further: tar xzf gpu_sampler.tgz; cat seed0_checkpoints.tar.* | tar xf - \
#       -C runs/gpu_sampler/seed0
# Measured on one H200 (research/reports/SAMPLER.md): 8.2 minutes in all. Feature nets 37 s; training 5.0
# minutes (the 4-minute cap stopped all six first: `no_tv` at 2,474-2,522 steps, AR at 2,383-2,387; each
# run's own scoring included); the study's setting 47 s; the wider grid 96 s. 7 files, 50 MB, to keep.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-runs/gpu_sampler}
PAGE=${2:-$RUNS/SAMPLER.md}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
SEEDS=${SEEDS:-0 1 2}
mkdir -p "$RUNS"
LOG="$RUNS/study.log"
stamp() { echo "$(date +%T) $*" | tee -a "$LOG"; }
bundle() {
    if [ -n "${BUNDLE:-}" ]; then
        tar czf "$BUNDLE" --exclude='*.safetensors' --exclude='resume.pt' "$RUNS" && stamp "packed $BUNDLE"
    fi
}
trap bundle EXIT  # also when a phase fails or the command is cut short (a TERM from timeout)
trap 'exit 143' TERM

if [ -d .whl ] && ! "$PY" -c "import open_clip" 2>/dev/null; then  # beside the machine's own packages
    SITE=$(mktemp -d)
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .whl/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" -c "import torch; assert '$DEVICE' != 'cuda' or torch.cuda.is_available(), 'no CUDA device: set DEVICE=cpu'"

# shellcheck disable=SC2206 # word splitting of the settings is wanted
common=(--device "$DEVICE" --threads "${THREADS:-2}" --feature-steps "${FEATURE_STEPS:-0}" ${QUICK:-})
wait_all() {  # waits for every background job; fails if any did
    local failed=0
    for pid in "$@"; do wait "$pid" || failed=1; done
    return $failed
}

stamp "feature nets: seeds $SEEDS"
pids=()
for seed in $SEEDS; do
    "$PY" -m research features --out "$RUNS/seed$seed" --seed "$seed" "${common[@]}" \
        > "$RUNS/features_seed$seed.log" 2>&1 &
    pids+=($!)
done
wait_all "${pids[@]}"

stamp "training no_tv and ar, ${STEPS:-2800} steps each (cap ${MINUTES:-4} min), side by side"
pids=()
for seed in $SEEDS; do
    for name in no_tv ar; do
        "$PY" -m research run --out "$RUNS/seed$seed" --seed "$seed" --only "$name" --no-speed \
            --max-steps "${STEPS:-2800}" --minutes-per-system "${MINUTES:-4}" "${common[@]}" \
            > "$RUNS/train_seed${seed}_$name.log" 2>&1 &
        pids+=($!)
    done
done
wait_all "${pids[@]}"

pack() {  # seed $1's checkpoints, float weights at fp16, and its feature net: a tar cut into 15 MiB parts
    local staged
    staged=$(mktemp -d)
    "$PY" - "$RUNS/seed$1" "$staged" <<'EOF'
import shutil
import sys
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

run, staged = Path(sys.argv[1]), Path(sys.argv[2])
shutil.copy(run / "features.safetensors", staged)
for name in ("no_tv", "ar"):
    with safe_open(str(run / name / "model.safetensors"), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # the palette is uint8 and stays as it is
        metadata = f.metadata()
    (staged / name).mkdir()
    save_file({k: t.half() if t.is_floating_point() else t for k, t in tensors.items()},
              str(staged / name / "model.safetensors"), metadata=metadata)
EOF
    tar cf - -C "$staged" . | split -b 15m -d - "$PACK/seed$1_checkpoints.tar."
    rm -rf "$staged"
}
if [ -n "${PACK:-}" ]; then
    first=${SEEDS%% *}
    mkdir -p "$PACK" && pack "$first" && stamp "packed seed $first's checkpoints in $PACK"
fi

sweep_all() {  # $1 guidance scales, $2 schedules, $3 randomness values, $4 systems; one process per seed
    local pids=()
    for seed in $SEEDS; do
        # shellcheck disable=SC2086
        "$PY" -m research sweep --out "$RUNS/seed$seed" --seed "$seed" --only $4 --skip-scored \
            --cfg-scales $1 --guidance-schedules $2 --randomness-values $3 --repeats "${REPEATS:-3}" \
            "${common[@]}" >> "$RUNS/sweep_seed$seed.log" 2>&1 &
        pids+=($!)
    done
    wait_all "${pids[@]}"
}
RANDS=${RANDS:-2 4.5 8}
stamp "sweeps: the study's setting, guidance 1.5 constant, randomness $RANDS"
sweep_all 1.5 constant "$RANDS" "no_tv ar"
stamp "sweeps: the wider grid, guidance ${CFGS:-1.5 3} x ${SCHEDS:-constant linear}"
sweep_all "${CFGS:-1.5 3}" "${SCHEDS:-constant linear}" "$RANDS" "ar no_tv"

stamp "page"
runs=()
for seed in $SEEDS; do runs+=("$RUNS/seed$seed"); done
"$PY" -m research sweep-table --runs "${runs[@]}" --out "$PAGE"
stamp "done: $PAGE"

#!/usr/bin/env bash
# Every measurement that needs a CUDA GPU, in one run, most wanted first; estimated at 8-10 minutes on one H100
# (not yet run on one).
#
#   0. the random SD 2.1 models (epsilon and v-prediction, ~5 GB each), written once under $LDM_VIDEO_BENCH_WORK
#   1. plan_vs_real.py   `ldm-video plan`'s estimate against the peak CUDA memory of real training steps, for each
#                        SD 2.1 preset (the 24 GB promise rests on it)
#   2. train_step.py     seconds per training step and peak memory, ldm-video against diffusers' UNetMotionModel,
#                        16 frames at 256 and 512 px, with the presets' precision (bf16), gradient checkpointing
#                        and optimiser
#   3. generate.py speed generation seconds per frame, ldm-video against diffusers' AnimateDiffPipeline, 16 frames
#                        at 512 px, fp16, 20 DDIM steps
#   4. context_cache.py  `--extend context` against FreeNoise per new frame of a long video, 512 px, fp16
#
# Needs the project installed with its dependencies (diffusers, PyAV; bitsandbytes for the presets' 8-bit AdamW,
# torch's AdamW otherwise) and a CUDA build of torch. Random SD 2.1-shaped weights, nothing is downloaded. Each
# step has its own time limit ($LDM_VIDEO_BENCH_STEP_LIMIT s, default 300), a failed step does not stop the rest,
# and each step's log is written as it runs, so a run cut short keeps what it finished. Everything printed lands
# in OUT_DIR (default gpu-results/).
#
#   bash benchmarks/gpu.sh [OUT_DIR]          # PYTHON=... for another interpreter than python3
set -uo pipefail
out="$(realpath -m "${1:-gpu-results}")"  # relative to where it was asked for
bench="$(cd "$(dirname "$0")" && pwd)"
work="${LDM_VIDEO_BENCH_WORK:-/tmp/ldm-video-gpu}"
limit="${LDM_VIDEO_BENCH_STEP_LIMIT:-300}"  # seconds per step
mkdir -p "$out" "$work"
cd "$work"  # not the checkout, whose ldm_video/ folder would shadow the installed package for -c and -m
py="${PYTHON:-python3}"  # the interpreter that holds the CUDA torch
export PYTHONUNBUFFERED=1

if ! "$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu.sh: torch sees no CUDA GPU" >&2
    exit 2
fi
optimizer=adamw8bit
"$py" -c "import bitsandbytes" 2>/dev/null || optimizer=adamw
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
"$py" -m ldm_video info | tee -a "$out/device.txt"
echo "optimizer: $optimizer (bitsandbytes $( [ $optimizer = adamw8bit ] && echo found || echo missing))" | tee -a "$out/device.txt"

failed=()
step() {  # step NAME COMMAND...: run with the time limit, log to OUT_DIR/NAME.log, remember a failure
    local name=$1
    shift
    echo "== $name: $*"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - start)) s"
    [ "$rc" -eq 0 ] || failed+=("$name (exit $rc)")
}

step models "$py" -c "import sys; from ldm_video.testing import write_random_sd21
for p in ('epsilon', 'v_prediction'): write_random_sd21(f'{sys.argv[1]}/sd21-{p}', p)" "$work"
step plan_vs_real "$py" "$bench/plan_vs_real.py" --workdir "$work" --steps 3 --optimizer "$optimizer" \
    --out "$out/plan_vs_real.jsonl"
for px in 256 512; do
    step "train_step_$px" "$py" "$bench/train_step.py" --size sd21 --device cuda --precision bf16 --frames 16 \
        --resolution "$px" --checkpointing --steps 5 --optimizer "$optimizer" --out "$out/train_step.jsonl"
done
step generate "$py" "$bench/generate.py" speed --models sd21 --device cuda --dtype fp16 --steps 20 --repeats 3 \
    --workdir "$work"
step context_cache "$py" "$bench/context_cache.py" --size 512 --calls dropped --device cuda --dtype fp16 \
    --repeats 5

if [ ${#failed[@]} -gt 0 ]; then
    echo "gpu.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "gpu.sh: every step ran; the logs are in $out/"

#!/usr/bin/env bash
# GPU checks and benchmarks in one run (see bench/RESULTS.md). On the device machine:
#   bash bench/gpu_check.sh           (carry .whl and .gpu; results land in $OUT)
# Prepare the carried folders here first (both are git-ignored):
#   git show 342e674:vis_mae_hf/modeling_vis_mae.py > .gpu/modeling_before.py   (the "before" of bench_pretrain)
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 -d .whl transformers==5.24.0 datasets==5.2.0 dill==0.4.0 \
#     multiprocess==0.70.18 pydicom==3.0.2 nibabel==5.4.2
#   (and datasets==4.4.1 into .whl/fallback, used when the machine's pyarrow is older than 24)
# One device call may run 10 minutes: run the sections in two calls, e.g.
#   SECTIONS="tests pretrain compile-sdpa" bash bench/gpu_check.sh, then SECTIONS="compile-eager inference" ...
# (compile-baseline, SimMIM compiled, is extra). A CPU dry run without the minutes of CPU compilation:
#   SECTIONS="tests pretrain inference" SKIP_WHEELS=1 SMALL=1 OUT=/tmp/gpu_dry bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
SMALL=${SMALL:-0}
if [ "$SMALL" = 1 ]; then BATCH=4; BIG=4; REPEATS=1; ROUNDS=1; else BATCH=128; BIG=256; REPEATS=10; ROUNDS=3; fi

# Carried wheels: transformers 5.24 (the image has an older 5.x), datasets and the medical readers it lacks.
if [ -d .whl ] && [ "${SKIP_WHEELS:-0}" != 1 ]; then
  ARROW_MAJOR=$(python3 -c "import pyarrow; print(pyarrow.__version__.split('.')[0])")
  if [ "$ARROW_MAJOR" -ge 24 ]; then WHEELS=$(ls .whl/*.whl); else WHEELS="$(ls .whl/*.whl | grep -v datasets-) $(ls .whl/fallback/*.whl)"; fi
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $WHEELS || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python3 - <<'PY' | tee "$OUT/environment.txt"
import torch, transformers, accelerate, datasets
name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
print(f"device: {name}; torch {torch.__version__}; transformers {transformers.__version__}; accelerate {accelerate.__version__}; datasets {datasets.__version__}")
PY

DEVICE=$(python3 -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
DTYPE=bf16; [ "$DEVICE" = cpu ] && DTYPE=fp32
BEFORE=(); [ -f .gpu/modeling_before.py ] && BEFORE=(--before .gpu/modeling_before.py)
CHECKPOINT=(--checkpoint decoder.stages.2 vis_mae.encoder.stages.0)
# Each section is its own process with its own baseline, so a section cut short by its timeout costs only itself.
SECTIONS=${SECTIONS:-tests pretrain compile-sdpa compile-eager inference}
pretrain() {  # name, timeout, extra bench_pretrain arguments...
  local name=$1 limit=$2; shift 2
  timeout "$limit" python3 bench/bench_pretrain.py --device "$DEVICE" --batch-size "$BATCH" --dtype "$DTYPE" \
    --repeats "$REPEATS" --rounds "$ROUNDS" "${CHECKPOINT[@]}" --json "$OUT/$name.json" "$@" 2>&1 \
    | tee "$OUT/$name.txt" | grep -E "^\||Machine|Batch"
}
for section in $SECTIONS; do
  echo "== $section =="
  case $section in
    tests)
      timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_official_vectors.py \
        tests/test_modeling.py tests/test_compile.py 2>&1 | tee "$OUT/pytest.txt" | tail -4 ;;
    pretrain)  # issue 8 acceptance 1: uncompiled workloads, the attention rewrite before/after, checkpointing
      pretrain bench_pretrain 150 "${BEFORE[@]}" ;;
    compile-sdpa|compile-eager)  # ours compiled (fullgraph), with and without checkpointing, against SimMIM
      attention=${section#compile-}
      pretrain "bench_pretrain_$section" 240 --compile "$attention" \
        --only "vis-mae-compiled-$attention" "vis-mae-compiled-$attention-ckpt" ;;
    compile-baseline)  # SimMIM compiled too, for reference only
      pretrain bench_pretrain_compile_baseline 240 --compile-baseline --only simmim-sdpa-compiled ;;
    inference)
      timeout 150 python3 bench/bench_inference.py --device "$DEVICE" --large-batch "$BIG" --dtype "$DTYPE" \
        --repeats "$REPEATS" --rounds "$ROUNDS" --json "$OUT/bench_inference.json" 2>&1 \
        | tee "$OUT/bench_inference.txt" | grep -E "^\||^###" ;;
    *) echo "unknown section $section" ;;
  esac
done

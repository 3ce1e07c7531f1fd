#!/usr/bin/env bash
# Sweep overhead: a 16-trial grid sweep of short LoRA trials on a small random model, run with
# parallel = 1 and parallel = 2. Prints, for each, the sweep's wall time against the sum of the
# trials' training-loop times (summary.json train_seconds; above 1.0 is process start, model
# load, evaluation of base and adapter, registration) and against the trials' whole processes
# (summary.json wall_seconds; above 1.0 is what the sweep itself adds), and the speed-up of
# parallel = 2.
#
#   bench/sweep_overhead.sh BUILD_DIR [STEPS_PER_TRIAL]   (default 200)
set -euo pipefail
build_dir=$(realpath "$1")
steps=${2:-200}
source_dir=$(cd "$(dirname "$0")/.." && pwd)
python=$("$source_dir/scripts/find-python" torch numpy sentencepiece)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" "$source_dir/tests/tools/make_tiny_llama.py" "$work/model" --hidden 128 \
  --layers 4 --heads 4 --kv-heads 4 --intermediate 352 --vocab 512 >/dev/null
"$python" - "$work/data.jsonl" <<'PY'
import json, random, sys
r = random.Random(0)
with open(sys.argv[1], "w") as f:
    for _ in range(2000):
        a, b = r.randint(0, 99), r.randint(0, 99)
        f.write(json.dumps({"prompt": f"add {a} {b} =", "completion": str(a + b)}) + "\n")
PY
run_sweep() {
  local parallel=$1 dir=$work/p$1
  mkdir -p "$dir"
  cat > "$dir/sweep.toml" <<TOML
name = "overhead"
[model]
path = "$work/model"
[dataset]
path = "$work/data.jsonl"
eval_fraction = 0.02
[adapter]
method = "lora"
[optimizer]
lr = 1e-3
[train]
steps = $steps
batch_size = 8
seq_len = 32
checkpoint_every = 0
[[metrics]]
plugin = "exact_match"
[registry]
path = "$dir/registry"
[sweep]
method = "grid"
objective = { metric = "eval_loss", goal = "minimize" }
max_trials = 16
parallel = $parallel
[sweep.parameters]
"adapter.rank" = [1, 2, 4, 8]
"optimizer.lr" = [1e-4, 3e-4, 1e-3, 3e-3]
TOML
  local start end
  start=$(date +%s.%N)
  (cd "$dir" && "$build_dir/bin/tune" sweep sweep.toml >/dev/null)
  end=$(date +%s.%N)
  local train trials
  train=$(cat "$dir"/.tune/sweeps/overhead-1/trial-*/summary.json |
          sed -nE 's/.*"train_seconds": ([0-9.e+-]+).*/\1/p' | awk '{s += $1} END {print s}')
  trials=$(cat "$dir"/.tune/sweeps/overhead-1/trial-*/summary.json |
           sed -nE 's/.*"wall_seconds": ([0-9.e+-]+).*/\1/p' | awk '{s += $1} END {print s}')
  local wall
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')
  awk -v w="$wall" -v t="$train" -v r="$trials" -v p="$parallel" \
    'BEGIN {printf "parallel %d: wall %.1f s, sum of training loops %.1f s (wall / training %.3f), sum of trial processes %.1f s (wall x parallel / trials %.3f)\n", p, w, t, w / t, r, w * p / r}'
  echo "$wall" > "$work/wall$parallel"
}
run_sweep 1
run_sweep 2
awk -v a="$(cat "$work/wall1")" -v b="$(cat "$work/wall2")" \
  'BEGIN {printf "parallel 2 speed-up over parallel 1: %.2fx\n", a / b}'

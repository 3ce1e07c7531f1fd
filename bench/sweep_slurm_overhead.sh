#!/usr/bin/env bash
# What driving a sweep through Slurm costs over the local runner: the same 16-trial grid of short
# LoRA trials on a small random model (bench/sweep_overhead.sh's), two trials at a time, with
# [sweep.executor] kind = "local" (parallel = 2) and kind = "slurm" (array_parallelism = 2,
# cpus_per_task = 1: one thread per trial either way), in alternating rounds. Prints each round's
# wall times and the medians, and their ratio (slurm / local).
#
# The cluster is $SLURM_CONF's when set, else a one-host cluster started for the run
# (scripts/slurm-cluster.sh, as root) and stopped after it.
#
#   bench/sweep_slurm_overhead.sh BUILD_DIR [ROUNDS] [STEPS_PER_TRIAL]   (default 3, 200)
set -euo pipefail
build_dir=$(realpath "$1")
rounds=${2:-3}
steps=${3:-200}
source_dir=$(cd "$(dirname "$0")/.." && pwd)
python=$("$source_dir/scripts/find-python" torch numpy sentencepiece)
work=$(mktemp -d)
cluster=""
cleanup() {
  [ -n "$cluster" ] && "$source_dir/scripts/slurm-cluster.sh" stop "$cluster" >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
if [ -z "${SLURM_CONF:-}" ]; then
  cluster=$work/cluster
  "$source_dir/scripts/slurm-cluster.sh" start "$cluster"
  export SLURM_CONF=$cluster/slurm.conf
fi

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

# One sweep in a fresh folder; prints its wall time in seconds.
run_sweep() {
  local kind=$1 dir=$2
  mkdir -p "$dir"
  local executor="[sweep.executor]
kind = \"local\""
  if [ "$kind" = slurm ]; then
    executor="[sweep.executor]
kind = \"slurm\"
array_parallelism = 2
cpus_per_task = 1"
  fi
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
parallel = 2
$executor
[sweep.parameters]
"adapter.rank" = [1, 2, 4, 8]
"optimizer.lr" = [1e-4, 3e-4, 1e-3, 3e-3]
TOML
  local start end
  start=$(date +%s.%N)
  (cd "$dir" && "$build_dir/bin/tune" sweep sweep.toml >"$dir/out.txt" 2>&1) || {
    echo "the $kind sweep failed:" >&2
    tail -20 "$dir/out.txt" >&2
    exit 1
  }
  end=$(date +%s.%N)
  local versions
  versions=$("$build_dir/bin/tune" adapters ls overhead --json --registry "$dir/registry" |
             "$python" -c 'import json, sys; print(len(json.load(sys.stdin)))')
  [ "$versions" -eq 16 ] || { echo "the $kind sweep registered $versions versions, not 16" >&2; exit 1; }
  awk -v a="$start" -v b="$end" 'BEGIN {printf "%.2f\n", b - a}'
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

: > "$work/local.txt"
: > "$work/slurm.txt"
for round in $(seq "$rounds"); do
  # Alternate which goes first, so that neither always meets a warmer page cache.
  order="local slurm"
  [ $((round % 2)) -eq 0 ] && order="slurm local"
  for kind in $order; do
    wall=$(run_sweep "$kind" "$work/$kind-$round")
    echo "$wall" >> "$work/$kind.txt"
    echo "round $round: $kind $wall s"
  done
done
local_median=$(median < "$work/local.txt")
slurm_median=$(median < "$work/slurm.txt")
awk -v l="$local_median" -v s="$slurm_median" -v n="$rounds" \
  'BEGIN {printf "median of %d rounds: local %.2f s, slurm %.2f s, slurm / local %.3f\n", n, l, s, s / l}'

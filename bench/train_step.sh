#!/usr/bin/env bash
# Training-step tokens/s and peak memory of tune (bench_train_step: the trainer's step with the
# lora or full adapter and adamw) vs the Python eager peer (bench/train_step_peer.py), alternating
# in one command, ROUNDS rounds each, on MODEL_DIR. Prints each round and the medians; the ratio
# is tune / peer (above 1: tune is faster).
#
#   bench/train_step.sh BUILD_DIR MODEL_DIR [ROUNDS] [bench flags...]
#   e.g. bench/train_step.sh build/release examples/models/base 5 --method lora --rank 16
set -euo pipefail
build_dir=$(realpath "$1")
model_dir=$(realpath "$2")
rounds=${3:-5}
shift $(( $# >= 3 ? 3 : 2 ))
source_dir=$(cd "$(dirname "$0")/.." && pwd)
python=$("$source_dir/scripts/find-python" torch numpy sentencepiece)
field() { sed -E "s/.*\"$1\": ([0-9.e+]+).*/\1/" <<<"$2"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
tune_rates=() peer_rates=() tune_rss=() peer_rss=()
for round in $(seq "$rounds"); do
  tune_line=$("$build_dir/bin/bench_train_step" "$model_dir" "$@")
  peer_line=$("$python" "$source_dir/bench/train_step_peer.py" "$model_dir" "$@")
  echo "round $round: $tune_line"
  echo "round $round: $peer_line"
  tune_rates+=("$(field tokens_per_second "$tune_line")")
  peer_rates+=("$(field tokens_per_second "$peer_line")")
  tune_rss+=("$(field peak_rss_mib "$tune_line")")
  peer_rss+=("$(field peak_rss_mib "$peer_line")")
done
tune_median=$(median "${tune_rates[@]}")
peer_median=$(median "${peer_rates[@]}")
echo "median tokens/s: tune $tune_median, python eager $peer_median, ratio $(awk -v a="$tune_median" -v b="$peer_median" 'BEGIN {printf "%.2f", a / b}')"
echo "median peak RSS MiB: tune $(median "${tune_rss[@]}"), python eager $(median "${peer_rss[@]}")"

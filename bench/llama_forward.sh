#!/usr/bin/env bash
# Forward tokens/s of tune's llama plugin vs the Python eager peer, alternating in one command,
# ROUNDS rounds each, on a model made by tests/tools/make_tiny_llama.py with the given flags.
# Prints each round and the medians; the ratio is tune / peer (above 1: tune is faster).
#
#   bench/llama_forward.sh BUILD_DIR [ROUNDS] [-- make_tiny_llama flags] [--bench "--seq 128 ..."]
#   e.g. bench/llama_forward.sh build/release 5 -- --hidden 512 --intermediate 1376 --layers 8 \
#        --heads 8 --kv-heads 4 --vocab 2048
set -euo pipefail
build_dir=$(realpath "$1")
rounds=${2:-5}
shift $(( $# >= 2 ? 2 : 1 ))
[ "${1:-}" = "--" ] && shift
bench_flags=${BENCH_FLAGS:---seq 128 --iters 20 --threads 2}
source_dir=$(cd "$(dirname "$0")/.." && pwd)
python=$("$source_dir/scripts/find-python" torch numpy sentencepiece)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" "$source_dir/tests/tools/make_tiny_llama.py" "$work/model" "$@" >/dev/null
tune_rates=() peer_rates=()
for round in $(seq "$rounds"); do
  # shellcheck disable=SC2086
  tune_line=$("$build_dir/bin/bench_llama_forward" "$work/model" $bench_flags)
  # shellcheck disable=SC2086
  peer_line=$("$python" "$source_dir/bench/llama_forward_peer.py" "$work/model" $bench_flags)
  echo "round $round: $tune_line"
  echo "round $round: $peer_line"
  tune_rates+=("$(sed -E 's/.*"tokens_per_second": ([0-9.e+]+).*/\1/' <<<"$tune_line")")
  peer_rates+=("$(sed -E 's/.*"tokens_per_second": ([0-9.e+]+).*/\1/' <<<"$peer_line")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
tune_median=$(median "${tune_rates[@]}")
peer_median=$(median "${peer_rates[@]}")
echo "median tokens/s: tune $tune_median, python eager $peer_median, ratio $(awk -v a="$tune_median" -v b="$peer_median" 'BEGIN {printf "%.2f", a / b}')"

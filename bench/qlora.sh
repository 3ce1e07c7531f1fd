#!/usr/bin/env bash
# QLoRA against LoRA, side by side: bench_train_step alternating the two methods ROUNDS times on
# one random-init Llama (rank 16, alpha 32, all linear layers, adamw), then bench_nf4 (storage of
# the quantised weights, dequantisation against a copy). Prints each run and the medians:
# tokens/s and their ratio, memory held once the adapter is attached (resident; allocated on a
# GPU) and peak memory.
#
#   bench/qlora.sh BUILD_DIR [ROUNDS] [cpu|cuda]
#
# cpu: a 168M-parameter Llama (hidden 1024, 8 layers, intermediate 2816, vocab 32000), float32,
#      batch 4 x 128, 2 threads.
# cuda: the TinyLlama 1.1B shape (hidden 2048, 22 layers, 32 heads, 4 KV heads, intermediate
#      5632), bfloat16 base, batch 4 x 1024: the QLoRA issue's benchmark.
set -euo pipefail
build_dir=$(realpath "$1")
rounds=${2:-3}
device=${3:-cpu}
source_dir=$(cd "$(dirname "$0")/.." && pwd)
python=$("$source_dir/scripts/find-python" torch)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$device" = cuda ]; then
  shape=(--vocab 32000 --hidden 2048 --intermediate 5632 --layers 22 --heads 32 --kv-heads 4
         --max-positions 2048)
  flags=(--batch 4 --seq 1024 --iters 10 --device cuda --dtype bfloat16)
else
  shape=(--vocab 32000 --hidden 1024 --intermediate 2816 --layers 8 --heads 16 --kv-heads 16
         --max-positions 512)
  flags=(--batch 4 --seq 128 --iters 3 --threads 2)
fi
"$python" "$source_dir/tests/tools/make_tiny_llama.py" "$work/model" "${shape[@]}" --no-tokenizer \
  >/dev/null
"$python" "$source_dir/tests/tools/make_tiny_llama.py" "$work/tokenizer" >/dev/null
cp "$work/tokenizer/tokenizer.model" "$work/model/"

field() { sed -E "s/.*\"$1\": ([0-9.e+]+).*/\1/" <<<"$2"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
declare -A rate attached peak
for round in $(seq "$rounds"); do
  for method in lora qlora; do
    line=$("$build_dir/bin/bench_train_step" "$work/model" --method "$method" --rank 16 "${flags[@]}")
    echo "$method round $round: $line"
    rate[$method]+="$(field tokens_per_second "$line") "
    if [ "$device" = cuda ]; then
      attached[$method]+="$(field attached_gpu_mib "$line") "
      peak[$method]+="$(field peak_gpu_mib "$line") "
    else
      attached[$method]+="$(field attached_rss_mib "$line") "
      peak[$method]+="$(field peak_rss_mib "$line") "
    fi
  done
done
for method in lora qlora; do
  # shellcheck disable=SC2086
  printf '%s median: %.0f tokens/s, %.0f MiB attached, %.0f MiB peak\n' "$method" \
    "$(median ${rate[$method]})" "$(median ${attached[$method]})" "$(median ${peak[$method]})"
done
# shellcheck disable=SC2086
awk -v q="$(median ${rate[qlora]})" -v l="$(median ${rate[lora]})" \
  'BEGIN { printf "qlora / lora tokens/s: %.2f\n", q / l }'
"$build_dir/bin/bench_nf4" --config "$work/model/config.json"

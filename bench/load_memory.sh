#!/usr/bin/env bash
# Host memory of loading a 1.1B-parameter bfloat16 checkpoint (random weights of the TinyLlama
# shape: hidden 2048, 22 layers, 32 heads, 4 KV heads, intermediate 5632, vocab 32000, in two
# shards) with the llama plugin onto DEVICE in bfloat16 (bench_load_model). The reference is the
# parameters' own size: on a GPU the host peak above the baseline should stay far below it (the
# issue's bound: 1 GiB); on the CPU the parameters are host memory, and the peak above the
# baseline less the parameter bytes is what the loader itself costs.
#
#   bench/load_memory.sh BUILD_DIR [DEVICE]
set -euo pipefail
build_dir=$(realpath "$1")
device=${2:-cpu}
source_dir=$(cd "$(dirname "$0")/.." && pwd)
python=$("$source_dir/scripts/find-python" numpy sentencepiece)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" "$source_dir/tests/tools/make_tiny_llama.py" "$work/model" --vocab 32000 --hidden 2048 \
  --intermediate 5632 --layers 22 --heads 32 --kv-heads 4 --max-positions 2048 --shards 2 \
  --dtype bfloat16 --no-tokenizer >/dev/null
"$python" "$source_dir/tests/tools/make_tiny_llama.py" "$work/tokenizer" >/dev/null
cp "$work/tokenizer/tokenizer.model" "$work/model/"
sync
echo "checkpoint: $(du -sm "$work/model" | cut -f1) MiB on disk"

line=$("$build_dir/bin/bench_load_model" "$work/model" --device "$device" --dtype bfloat16)
echo "$line"
field() { sed -E "s/.*\"$1\": ([0-9.e+]+).*/\1/" <<<"$line"; }
awk -v d="$device" -v base="$(field baseline_rss_mib)" -v peak="$(field peak_rss_mib)" \
    -v params="$(field parameter_mib)" -v s="$(field seconds)" 'BEGIN {
  above = peak - base
  if (d == "cpu")
    printf "host peak above baseline %.0f MiB for %.0f MiB of parameters: loader overhead %.0f MiB (%.1f%%), %.1f s\n",
      above, params, above - params, 100 * (above - params) / params, s
  else
    printf "host peak above baseline %.0f MiB while loading %.0f MiB of parameters onto %s, %.1f s\n",
      above, params, d, s }'

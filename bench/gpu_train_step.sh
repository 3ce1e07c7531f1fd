#!/usr/bin/env bash
# GPU training step: tune (bench_train_step --device cuda, bfloat16 base weights, LoRA and optimizer
# state in float32) vs Hugging Face transformers + PEFT (bench/gpu_train_step_peer.py, bfloat16,
# SDPA) on one random-init Llama of the TinyLlama 1.1B shape (hidden 2048, 22 layers, 32 heads,
# 4 KV heads, intermediate 5632, vocab 32000), batch 4 x 1024 tokens, LoRA rank 16 alpha 32 on all
# linear layers, and full fine-tuning. Alternates the two ROUNDS times per method and prints each
# run, the medians, tokens/s ratios (tune / peer), MFU and peak GPU memory.
#
#   bench/gpu_train_step.sh BUILD_DIR [ROUNDS] [PEAK_TFLOPS]
#
# MFU = tokens/s x FLOPs per token / PEAK_TFLOPS (default 989: an H100/H200's dense bfloat16
# peak). FLOPs per token: 6 N + 12 L H T for full fine-tuning (forward, and backward to both
# activations and weights), 4 N + 12 L H T for LoRA (no weight gradients of the frozen base), with
# N base parameters, L layers, H hidden size and T the sequence length.
set -euo pipefail
build_dir=$(realpath "$1")
rounds=${2:-3}
peak_tflops=${3:-989}
source_dir=$(cd "$(dirname "$0")/.." && pwd)
python=$("$source_dir/scripts/find-python" torch transformers peft)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The model: random float32 weights from the test tool (the loader converts them to bfloat16 on
# the GPU), and a small tokenizer, which the step never uses.
"$python" "$source_dir/tests/tools/make_tiny_llama.py" "$work/model" --vocab 32000 --hidden 2048 \
  --intermediate 5632 --layers 22 --heads 32 --kv-heads 4 --max-positions 2048 --no-tokenizer \
  >/dev/null
"$python" "$source_dir/tests/tools/make_tiny_llama.py" "$work/tokenizer" >/dev/null
cp "$work/tokenizer/tokenizer.model" "$work/model/"

field() { sed -E "s/.*\"$1\": ([0-9.e+]+).*/\1/" <<<"$2"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
flags=(--batch 4 --seq 1024 --iters 20)
for method in lora full; do
  tune_rates=() peer_rates=() tune_mem=() peer_mem=() params=0
  for round in $(seq "$rounds"); do
    tune_line=$("$build_dir/bin/bench_train_step" "$work/model" --method "$method" --rank 16 \
                "${flags[@]}" --device cuda --dtype bfloat16)
    peer_line=$("$python" "$source_dir/bench/gpu_train_step_peer.py" "$work/model" \
                --method "$method" --rank 16 "${flags[@]}")
    echo "$method round $round: $tune_line"
    echo "$method round $round: $peer_line"
    tune_rates+=("$(field tokens_per_second "$tune_line")")
    peer_rates+=("$(field tokens_per_second "$peer_line")")
    tune_mem+=("$(field peak_gpu_mib "$tune_line")")
    peer_mem+=("$(field peak_gpu_mib "$peer_line")")
    params=$(field parameters "$tune_line")
  done
  tune_median=$(median "${tune_rates[@]}")
  peer_median=$(median "${peer_rates[@]}")
  awk -v m="$method" -v t="$tune_median" -v p="$peer_median" -v n="$params" -v peak="$peak_tflops" \
      -v tm="$(median "${tune_mem[@]}")" -v pm="$(median "${peer_mem[@]}")" 'BEGIN {
    flops = (m == "full" ? 6 : 4) * n + 12 * 22 * 2048 * 1024
    printf "%s median tokens/s: tune %.0f, transformers+peft %.0f, ratio %.2f; MFU tune %.1f%%, peer %.1f%%; peak GPU MiB tune %.0f, peer %.0f\n",
      m, t, p, t / p, 100 * t * flops / (peak * 1e12), 100 * p * flops / (peak * 1e12), tm, pm }'
done

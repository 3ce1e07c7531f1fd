#!/usr/bin/env bash
# Builds the example base model into examples/models/base: a 0.9M-parameter Llama-architecture
# model with its own sentencepiece tokenizer, pretrained by tune itself on generated text.
#
#   examples/base/build.sh [--tune PATH]
#
# Deterministic, and cached: when examples/models/base was built from the same recipe (these
# scripts, the run file and the tune binary's version), it is kept and this prints its path.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tune=$root/build/release/bin/tune
[ "${1:-}" = --tune ] && tune=$2
python=$("$root/scripts/find-python" numpy sentencepiece)
out=$root/examples/models/base
data=$root/examples/data

recipe=$(cat "$root/examples/base/build.sh" "$root/examples/base/pretrain.toml" \
              "$root/examples/tasks/generate.py" "$root/tests/tools/make_tiny_llama.py" |
         sha256sum | cut -c1-64)
if [ -f "$out/recipe.sha256" ] && [ "$(cat "$out/recipe.sha256")" = "$recipe" ]; then
  echo "$out (cached)"
  exit 0
fi

echo "generating the example data in $data" >&2
"$python" "$root/examples/tasks/generate.py" "$data"
"$python" "$root/examples/tasks/generate.py" "$data/clean" --task-examples 1000
"$python" "$root/examples/tasks/generate.py" "$data/noisy" --task-examples 10000 --noise 0.3
"$python" "$root/examples/tasks/generate.py" "$data/heldout" --task-examples 500 --task-skip 20000

echo "initialising the base model" >&2
rm -rf "$root/examples/models/base-init"
"$python" "$root/tests/tools/make_tiny_llama.py" "$root/examples/models/base-init" --seed 0 \
  --vocab 448 --hidden 128 --layers 4 --heads 4 --kv-heads 4 --intermediate 352 \
  --max-positions 128 --tokenizer-text "$data/corpus.txt"

echo "pretraining (a few minutes on 2 cores)" >&2
run=$root/examples/models/.pretrain-run
"$tune" train "$root/examples/base/pretrain.toml" -o "$run" --restart
rm -rf "$out.tmp" "$out"
cp -r "$run/adapter" "$out.tmp"
echo "$recipe" > "$out.tmp/recipe.sha256"
mv "$out.tmp" "$out"
rm -rf "$run" "$root/examples/models/base-init"
echo "$out"

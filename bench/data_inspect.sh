#!/usr/bin/env bash
# `tune data inspect` on ROWS generated rows of 40-120 words each (a vocabulary of 5,000 made-up
# words; 2% of the rows exact copies, 2% near copies with one word changed, 1% conflicting
# completions), with and without a tokenizer (the example base model's). Prints the wall time and
# peak memory of each, and the summary line, which must name the planted problems.
#
#   bench/data_inspect.sh BUILD_DIR [ROWS]
set -euo pipefail
build_dir=$(realpath "$1")
rows=${2:-100000}
source_dir=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work/data.jsonl" "$rows" <<'PY'
import json, random, sys
path, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(0)
vocab = ["".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(1, 3)))
         for _ in range(5000)]
rows = []
for i in range(n):
    kind = rng.random()
    if rows and kind < 0.02:
        rows.append(dict(rng.choice(rows)))
    elif rows and kind < 0.04:
        row = dict(rng.choice(rows)); words = row["prompt"].split()
        words[rng.randrange(len(words))] = rng.choice(vocab); row["prompt"] = " ".join(words)
        rows.append(row)
    elif rows and kind < 0.05:
        rows.append({"prompt": rng.choice(rows)["prompt"], "completion": "a different answer"})
    else:
        words = [rng.choice(vocab) for _ in range(rng.randint(40, 120))]
        cut = len(words) * 3 // 4
        rows.append({"prompt": " ".join(words[:cut]), "completion": " ".join(words[cut:])})
with open(path, "w") as f:
    for row in rows:
        f.write(json.dumps(row) + "\n")
PY
echo "$rows rows, $(du -h "$work/data.jsonl" | cut -f1)"
for model in "" "$source_dir/examples/models/base"; do
  args=("$build_dir/bin/tune" data inspect "$work/data.jsonl" --seq-len 512)
  [ -n "$model" ] && args+=(--model "$model")
  /usr/bin/time -f "%e s wall, %M KiB peak" "${args[@]}" >"$work/report.txt" 2>"$work/time.txt"
  echo "${model:+with a tokenizer: }$(tail -1 "$work/time.txt")"
  sed -n 2p "$work/report.txt"
done

#!/usr/bin/env bash
# Tokenizer encoding throughput: tune's tokenizer-json plugin against @huggingface/tokenizers (pure
# JavaScript, the peer tests/tools/js installs) on a Llama 3-style byte-level BPE tokenizer.json
# with MERGES merges, and tune's sentencepiece plugin against Python's sentencepiece on a BPE
# tokenizer.model (Llama's trainer settings). The text: make_tiny_llama.py's made-up words plus
# multilingual lines, LINES lines. Alternates tune and the peer ROUNDS times; prints each run, the
# medians and the ratio (tune / peer; above 1 is faster). Each run reports its best of 3 passes.
#
#   bench/tokenize.sh BUILD_DIR [ROUNDS] [LINES] [MERGES]
set -euo pipefail
build_dir=$(realpath "$1")
rounds=${2:-3}
lines=${3:-20000}
merges=${4:-2000}
source_dir=$(cd "$(dirname "$0")/.." && pwd)
python=$("$source_dir/scripts/find-python" numpy sentencepiece regex)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -c "
import sys; sys.path.insert(0, '$source_dir/tests/tools')
from make_tiny_llama import default_text
extra = ['Emoji 😀🎉 and CJK 你好，世界 日本語のテキスト', 'Русский текст, العربية, हिन्दी, Über café',
         'def f(x):    return x ** 2  # square', 'It\\'s 12345 o\\'clock!  Two  spaces']
lines = default_text(1, $lines)
lines = [l if i % 5 else extra[(i // 5) % len(extra)] + ' ' + l for i, l in enumerate(lines)]
open('$work/text.txt', 'w', encoding='utf-8').write('\n'.join(lines) + '\n')
"
"$python" "$source_dir/tests/tools/make_tokenizer_json.py" "$work/json" --style llama3 \
  --merges "$merges" --text "$work/text.txt"
"$python" "$source_dir/tests/tools/make_tiny_llama.py" "$work/spm" --vocab 4000 \
  --tokenizer-text "$work/text.txt" >/dev/null
echo "text: $(wc -l <"$work/text.txt") lines, $(du -k "$work/text.txt" | cut -f1) KiB"

field() { sed -E "s/.*\"$1\": ?([0-9.e+]+).*/\1/" <<<"$2"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
compare() {  # compare NAME FOLDER PEER_COMMAND...
  local name=$1 folder=$2
  shift 2
  local tune_rates=() peer_rates=()
  for round in $(seq "$rounds"); do
    local tune_line peer_line
    tune_line=$("$build_dir/bin/bench_tokenize" "$folder" "$work/text.txt")
    peer_line=$("$@" "$folder" "$work/text.txt")
    echo "$name round $round: $tune_line"
    echo "$name round $round: $peer_line"
    [ "$(field tokens "$tune_line")" = "$(field tokens "$peer_line")" ] ||
      echo "$name: token counts differ" >&2
    tune_rates+=("$(field mb_per_second "$tune_line")")
    peer_rates+=("$(field mb_per_second "$peer_line")")
  done
  awk -v n="$name" -v t="$(median "${tune_rates[@]}")" -v p="$(median "${peer_rates[@]}")" \
    'BEGIN { printf "%s median MB/s: tune %.2f, peer %.2f, ratio %.2f\n", n, t, p, t / p }'
}
compare tokenizer.json "$work/json" node "$source_dir/bench/tokenize_peer.mjs"
compare sentencepiece "$work/spm" "$python" "$source_dir/bench/tokenize_peer.py"

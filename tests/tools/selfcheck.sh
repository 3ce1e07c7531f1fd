#!/bin/bash
# Self-check of the Python reference tools, from the command line: byte-identical output across runs,
# one-line refusals for bad input, timings, then the numeric checks in selfcheck_reference.py.
# Usage: tests/tools/selfcheck.sh        (exit code 0: all passed)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
PY=$("$HERE/../../scripts/find-python" torch numpy sentencepiece) || exit 1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILED=0

ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; FAILED=1; }
now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fs", b - a }'; }


# Same arguments, different folders: every file must be byte-identical (no paths or times stored).
for args in "" "--model-type qwen2 --tie --shards 3 --seed 5" "--model-type mistral --vocab 1000 --layers 3"; do
  read -ra argv <<<"$args"
  t0=$(now)
  $PY "$HERE/make_tiny_llama.py" "$TMP/a" "${argv[@]}" || fail "make_tiny_llama.py $args"
  t1=$(now)
  $PY "$HERE/make_tiny_llama.py" "$TMP/b" "${argv[@]}"
  if diff -r "$TMP/a" "$TMP/b" >/dev/null; then
    ok "make_tiny_llama.py ${args:-(defaults)}: two runs byte-identical" \
       "($(find "$TMP/a" -type f | wc -l) files incl. tokenizer.model), $(secs "$t0" "$t1")"
  else
    fail "make_tiny_llama.py ${args:-(defaults)}: two runs differ: $(diff -rq "$TMP/a" "$TMP/b" | tr '\n' ' ')"
  fi
  rm -rf "$TMP/a" "$TMP/b"
done
$PY "$HERE/make_tiny_llama.py" "$TMP/s1" --seed 1 && $PY "$HERE/make_tiny_llama.py" "$TMP/s2" --seed 2
if cmp -s "$TMP/s1/model.safetensors" "$TMP/s2/model.safetensors"; then
  fail "seeds 1 and 2 gave the same weights"
else
  ok "seeds 1 and 2 give different weights"
fi

# The reference, twice: logits and JSON byte-identical; logits file size matches the JSON shape.
M="$TMP/m"; $PY "$HERE/make_tiny_llama.py" "$M"
for src in ids prompt; do
  if [ $src = ids ]; then input=(--ids "1,5,9,200,33,77,4,311"); else input=(--prompt "Kari tosen 123, née 猫 😀"); fi
  for run in 1 2; do
    t0=$(now)
    $PY "$HERE/llama_reference.py" "$M" "${input[@]}" --greedy 8 --logits-out "$TMP/l$run.bin" \
      --json-out "$TMP/j$run.json" || fail "llama_reference.py ${input[*]}"
    t1=$(now)
  done
  bytes=$($PY -c 'import json,sys; s=json.load(open(sys.argv[1]))["logits_shape"]; print(s[0]*s[1]*4)' "$TMP/j1.json")
  if cmp -s "$TMP/l1.bin" "$TMP/l2.bin" && cmp -s "$TMP/j1.json" "$TMP/j2.json" \
     && [ "$bytes" = "$(stat -c %s "$TMP/l1.bin")" ]; then
    ok "llama_reference.py ${input[*]} --greedy 8: two runs byte-identical, $(secs "$t0" "$t1") per run:" \
       "$(cat "$TMP/j1.json")"
  else
    fail "llama_reference.py ${input[*]}: runs differ or logits size $(stat -c %s "$TMP/l1.bin") != $bytes"
  fi
done
$PY "$HERE/llama_reference.py" "$M" --ids 1,5,9 --f64 --logits-out "$TMP/l64.bin"
$PY "$HERE/llama_reference.py" "$M" --ids 1,5,9 --logits-out "$TMP/l32.bin"
$PY -c '
import numpy as np, sys
a, b = (np.fromfile(f, "<f4") for f in sys.argv[1:3])
d = float(np.abs(a - b).max())
print(("ok  " if d < 1e-4 else "FAIL") + f" --f64 vs float32 logits: max |diff| {d:.1e}")
' "$TMP/l64.bin" "$TMP/l32.bin" | tee "$TMP/f64"
grep -q '^ok' "$TMP/f64" || FAILED=1

# Refusals: exit code 1 and exactly one 'error:' line.
refuse() {  # refuse DESCRIPTION COMMAND...
  local what=$1; shift
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  if [ $rc -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q '^error: ' "$TMP/err"; then
    ok "refuses $what: $(cat "$TMP/err")"
  else
    fail "refuses $what: exit $rc, stderr: $(head -c 300 "$TMP/err")"
  fi
}
cp -r "$M" "$TMP/scaled"
set_key() {  # set_key CONFIG KEY JSON-VALUE
  $PY -c 'import json,sys; c=json.load(open(sys.argv[1])); c[sys.argv[2]]=json.loads(sys.argv[3])
json.dump(c,open(sys.argv[1],"w"))' "$@"
}
set_key "$TMP/scaled/config.json" rope_scaling '{"type": "linear", "factor": 2.0}'
$PY "$HERE/make_tiny_llama.py" "$TMP/win" --model-type mistral --no-tokenizer
set_key "$TMP/win/config.json" sliding_window 4
refuse "rope_scaling" $PY "$HERE/llama_reference.py" "$TMP/scaled" --ids 1,2,3
refuse "a sliding window shorter than the sequence" $PY "$HERE/llama_reference.py" "$TMP/win" --ids 1,2,3,4,5
refuse "a token id past the vocab" $PY "$HERE/llama_reference.py" "$M" --ids 1,512
refuse "malformed --ids" $PY "$HERE/llama_reference.py" "$M" --ids 1,x
refuse "a folder without config.json" $PY "$HERE/llama_reference.py" "$TMP" --ids 1
refuse "too long for max_position_embeddings" $PY "$HERE/llama_reference.py" "$M" --ids 1 --greedy 300
head -c 100 "$M/model.safetensors" >"$TMP/trunc" && cp "$M/config.json" "$TMP/t.json" && mkdir "$TMP/cut" \
  && mv "$TMP/trunc" "$TMP/cut/model.safetensors" && mv "$TMP/t.json" "$TMP/cut/config.json"
refuse "a truncated safetensors file" $PY "$HERE/llama_reference.py" "$TMP/cut" --ids 1
refuse "--hidden not divisible by --heads" $PY "$HERE/make_tiny_llama.py" "$TMP/x" --hidden 63
refuse "--heads not divisible by --kv-heads" $PY "$HERE/make_tiny_llama.py" "$TMP/x" --kv-heads 3
refuse "--vocab too small for sentencepiece" $PY "$HERE/make_tiny_llama.py" "$TMP/x" --vocab 256
refuse "--shards more than tensors" $PY "$HERE/make_tiny_llama.py" "$TMP/x" --shards 100

# The numeric checks: batched forward against the loop implementation, causality, GQA, sensitivity.
$PY "$HERE/selfcheck_reference.py" || FAILED=1

if [ $FAILED -eq 0 ]; then echo "selfcheck.sh: all passed"; else echo "selfcheck.sh: FAILED"; fi
exit $FAILED

#!/usr/bin/env python3
"""Peer of bench_tokenize for tokenizer.model: Python's sentencepiece, every line of TEXT_FILE
encoded, best of ROUNDS. Prints one JSON line.

    tokenize_peer.py MODEL_DIR TEXT_FILE [ROUNDS]
"""
import json
import os
import sys
import time

import sentencepiece as spm

model_dir, text_file = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
with open(text_file, encoding="utf-8") as f:
    lines = f.read().split("\n")
if lines and lines[-1] == "":
    lines.pop()
size = sum(len(line.encode("utf-8")) for line in lines)
best, tokens = float("inf"), 0
for _ in range(rounds):
    start = time.perf_counter()
    tokens = sum(len(sp.encode(line)) for line in lines)
    best = min(best, time.perf_counter() - start)
print(json.dumps({"impl": "sentencepiece (Python)", "tokens": tokens, "bytes": size, "seconds": best,
                  "mb_per_second": size / 1e6 / best}))

"""The peer for bench_llama_forward: the same forward pass in Python eager PyTorch (the
independent reference in tests/tools/llama_reference.py), same shapes, same thread count.

    /usr/bin/python3 bench/llama_forward_peer.py MODEL_DIR [--seq T] [--iters N] [--threads K]
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "tools"))
import llama_reference  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    llama_reference.set_compute_threads(args.threads)
    cfg, weights = llama_reference.load(args.model_dir)
    w = llama_reference.to_torch(weights, torch.float32)
    parameters = sum(t.numel() for t in w.values())
    torch.manual_seed(0)
    ids = torch.randint(3, cfg["vocab_size"], (args.seq,)).tolist()
    with torch.no_grad():
        for _ in range(3):
            llama_reference.forward(cfg, w, ids)
        start = time.perf_counter()
        for _ in range(args.iters):
            llama_reference.forward(cfg, w, ids)
        seconds = time.perf_counter() - start
    print(json.dumps({"impl": "python-eager", "parameters": parameters, "seq": args.seq,
                      "threads": args.threads, "tokens_per_second": args.seq * args.iters / seconds}))


if __name__ == "__main__":
    main()

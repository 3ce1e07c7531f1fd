#!/usr/bin/python3
"""Checks llama_reference.py on its own, before it is trusted to judge the C++ plugin.

    /usr/bin/python3 tests/tools/selfcheck_reference.py

A second forward pass, written another way (numpy float64, one token and one head at a time, RoPE as a
complex rotation, causality by loop bounds, exactly rounded sums), must agree with the batched torch
forward to 1e-6 on several checkpoints. Also: the writer's and reader's tensors agree bit for bit,
sharded equals single-file, attention is causal, GQA equals MHA with each key/value head repeated,
greedy stops at eos, and typical bugs (wrong RoPE layout, wrong GQA mapping, no mask, no 1/sqrt(d))
move the logits far more than the tolerance. Prints one line per check; exit code 1 on any failure.
"""
import argparse
import cmath
import json
import math
import os
import sys
import tempfile
import time

import numpy as np
import torch

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402
import make_tiny_llama as maker  # noqa: E402

TOL = 1e-6
failures = []


def check(name, ok, detail):
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    if not ok:
        failures.append(name)


# ---------------------------------------------------------------- second implementation

def forward_loops(cfg, weights, ids, rope="half", gqa="block", causal=True, scaled=True, first_pos=0,
                  q_shift=0):
    """Logits [seq, vocab] in float64, token by token and head by head. The keyword arguments select
    deliberate mistakes, used only to show the test would notice them."""
    W = {k: v.astype(np.float64) for k, v in weights.items()}
    nh, nkv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps, theta, seq, half = cfg["rms_norm_eps"], cfg["rope_theta"], len(ids), cfg["head_dim"] // 2

    def lin(name, x):  # y[o] = sum_i W[o, i] x[i] (+ b[o]), each sum exactly rounded
        y = np.array([math.fsum(row * x) for row in W[name + ".weight"]])
        return y + W[name + ".bias"] if name + ".bias" in W else y

    def norm(x, g):
        return x / math.sqrt(math.fsum(x * x) / x.size + eps) * g

    def rotate(vec, pos):  # each pair (a, b) becomes (a + ib) * e^(i pos theta^(-2j/hd))
        out = vec.copy()
        for j in range(half):
            a, b = (j, j + half) if rope == "half" else (2 * j, 2 * j + 1)
            z = complex(vec[a], vec[b]) * cmath.exp(1j * pos * theta ** (-2.0 * j / hd))
            out[a], out[b] = z.real, z.imag
        return out

    xs = [W["model.embed_tokens.weight"][t].copy() for t in ids]
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        q, k, v = [], [], []
        for pos, x in enumerate(xs):
            h = norm(x, W[p + "input_layernorm.weight"])
            qa, ka, va = (lin(p + f"self_attn.{n}_proj", h) for n in "qkv")
            q.append([rotate(qa[j * hd:(j + 1) * hd], first_pos + pos + q_shift) for j in range(nh)])
            k.append([rotate(ka[j * hd:(j + 1) * hd], first_pos + pos) for j in range(nkv)])
            v.append([va[j * hd:(j + 1) * hd] for j in range(nkv)])
        for t in range(seq):
            heads = []
            for j in range(nh):
                kv = j // (nh // nkv) if gqa == "block" else j % nkv
                keys = range(t + 1) if causal else range(seq)
                s = [math.fsum(q[t][j] * k[u][kv]) / (math.sqrt(hd) if scaled else 1.0) for u in keys]
                e = [math.exp(x - max(s)) for x in s]
                z = math.fsum(e)
                heads.append(sum(e[i] / z * v[u][kv] for i, u in enumerate(keys)))
            xs[t] = xs[t] + lin(p + "self_attn.o_proj", np.concatenate(heads))
            h = norm(xs[t], W[p + "post_attention_layernorm.weight"])
            g, u = lin(p + "mlp.gate_proj", h), lin(p + "mlp.up_proj", h)
            xs[t] = xs[t] + lin(p + "mlp.down_proj", g / (1 + np.exp(-g)) * u)
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    finals = [norm(x, W["model.norm.weight"]) for x in xs]
    return np.array([[math.fsum(row * x) for row in head] for x in finals])


# ---------------------------------------------------------------- helpers

def make_model(out_dir, **kw):
    args = maker.parse_args([out_dir, "--no-tokenizer"] + [
        a for key, val in kw.items() for a in
        ([f"--{key.replace('_', '-')}"] if val is True else [f"--{key.replace('_', '-')}", str(val)])])
    _, generated = maker.make(args)
    cfg, weights = ref.load(out_dir)
    return cfg, weights, dict(generated)


def batched(cfg, weights, ids, dtype=torch.float64):
    with torch.no_grad():
        return ref.forward(cfg, ref.to_torch(weights, dtype), ids, dtype).numpy().astype(np.float64)


def maxdiff(a, b):
    return float(np.max(np.abs(a - b)))


# ---------------------------------------------------------------- checks

def check_against_loops(tmp, ids):
    cases = {
        "llama GQA 4q/2kv": {},
        "llama MHA 4q/4kv": {"kv_heads": 4},
        "llama MQA 4q/1kv tied": {"kv_heads": 1, "tie": True},
        "qwen2 q/k/v biases": {"model_type": "qwen2"},
        "mistral 3 layers 8q/2kv": {"model_type": "mistral", "layers": 3, "heads": 8, "kv_heads": 2,
                                    "rope_theta": 500.0, "rms_eps": 1e-3},
    }
    for n, (name, kw) in enumerate(cases.items()):
        cfg, weights, generated = make_model(os.path.join(tmp, f"case{n}"), seed=100 + n, **kw)
        same = set(weights) == set(generated) and all(np.array_equal(weights[k], generated[k]) for k in weights)
        check(f"{name}: read == written", same, f"{len(weights)} tensors bit-identical after safetensors")
        t0 = time.perf_counter()
        slow = forward_loops(cfg, weights, ids)
        t1 = time.perf_counter()
        fast64, fast32 = batched(cfg, weights, ids), batched(cfg, weights, ids, torch.float32)
        t2 = time.perf_counter()
        check(f"{name}: batched f64 == loops f64", maxdiff(fast64, slow) <= TOL,
              f"max |diff| {maxdiff(fast64, slow):.2e} (tol {TOL:g}), logits std {slow.std():.2f}; "
              f"loops {t1 - t0:.2f}s, batched f64+f32 {t2 - t1:.3f}s")
        check(f"{name}: batched f32 ~ loops f64", maxdiff(fast32, slow) <= 1e-4,
              f"max |diff| {maxdiff(fast32, slow):.2e} (tol 1e-4: float32 rounding only)")


def check_long_sequence(tmp):
    cfg, weights, _ = make_model(os.path.join(tmp, "long"), seed=7, max_positions=256)
    ids = [int(t) for t in np.random.default_rng(1).integers(0, cfg["vocab_size"], 200)]
    slow, fast = forward_loops(cfg, weights, ids), batched(cfg, weights, ids)
    check("200 positions (RoPE far out): batched == loops", maxdiff(fast, slow) <= TOL,
          f"max |diff| {maxdiff(fast, slow):.2e}")


def check_causal(cfg, weights, ids):
    for dtype in (torch.float32, torch.float64):
        for cut in (len(ids) - 1, len(ids) // 2):
            other = ids[:cut] + [(t + 17) % cfg["vocab_size"] for t in ids[cut:]]
            a, b = batched(cfg, weights, ids, dtype), batched(cfg, weights, other, dtype)
            before, after = maxdiff(a[:cut], b[:cut]), maxdiff(a[cut:], b[cut:])
            check(f"causal ({str(dtype)[6:]}, tokens {cut}.. changed)", before <= TOL and after > 1e-3,
                  f"positions <{cut} change by {before:.1e} ({'bit-identical' if before == 0 else 'not bitwise'}), "
                  f"positions >={cut} by {after:.2f}")


def check_gqa_is_repeated_mha(cfg, weights, ids):
    nh, nkv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    mha_cfg, mha = dict(cfg, num_key_value_heads=nh), dict(weights)
    for name, arr in weights.items():
        if ".k_proj." in name or ".v_proj." in name:  # each kv head's rows, repeated for its query group
            arr = arr.reshape(nkv, hd, *arr.shape[1:])
            mha[name] = np.repeat(arr, nh // nkv, axis=0).reshape(nh * hd, *arr.shape[2:])
    d = maxdiff(batched(cfg, weights, ids), batched(mha_cfg, mha, ids))
    check(f"GQA {nh}q/{nkv}kv == MHA with repeated kv heads", d <= TOL, f"max |diff| {d:.1e}")


def check_sensitivity(cfg, weights, ids):
    good = forward_loops(cfg, weights, ids)
    for bug, kw in {"interleaved (GPT-J) RoPE pairs": {"rope": "interleaved"},
                    "GQA head j -> kv j % nkv": {"gqa": "modulo"},
                    "no causal mask": {"causal": False},
                    "queries one position ahead of keys": {"q_shift": 1},
                    "no 1/sqrt(head_dim)": {"scaled": False}}.items():
        d = maxdiff(good, forward_loops(cfg, weights, ids, **kw))
        check(f"a bug is visible: {bug}", d > 1e-2, f"max |logit change| {d:.2f} (tolerance {TOL:g})")
    # RoPE encodes only relative position, so starting every position at 5 must change nothing.
    d = maxdiff(good, forward_loops(cfg, weights, ids, first_pos=5))
    check("RoPE is relative: all positions +5 leaves logits unchanged", d <= 1e-9, f"max |diff| {d:.1e}")


def check_file_layout(model_dir):
    """The safetensors bytes themselves, against the format description rather than through the reader."""
    for fname in sorted(f for f in os.listdir(model_dir) if f.endswith(".safetensors")):
        blob = open(os.path.join(model_dir, fname), "rb").read()
        n = int.from_bytes(blob[:8], "little")
        text = blob[8:8 + n].decode()
        header = json.loads(text)
        spans = sorted(t["data_offsets"] for k, t in header.items() if k != "__metadata__")
        contiguous = spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        ok = n % 8 == 0 and text.rstrip(" ").endswith("}") and contiguous and 8 + n + spans[-1][1] == len(blob)
        check(f"safetensors layout {fname}", ok, f"header {n} bytes (multiple of 8, space-padded), "
              f"{len(spans)} tensors packed back to back to the end of the {len(blob)}-byte file")


def check_shards(tmp, ids):
    single = make_model(os.path.join(tmp, "single"), seed=3)
    sharded = make_model(os.path.join(tmp, "sharded"), seed=3, shards=3)
    files = sorted(f for f in os.listdir(os.path.join(tmp, "sharded")) if f.endswith(".safetensors"))
    check_file_layout(os.path.join(tmp, "sharded"))
    index = json.load(open(os.path.join(tmp, "sharded", "model.safetensors.index.json")))
    sizes = sum(a.nbytes for a in sharded[1].values())
    check("index.json total_size and weight_map", index["metadata"]["total_size"] == sizes
          and set(index["weight_map"]) == set(sharded[1]) and set(index["weight_map"].values()) == set(files),
          f"total_size {index['metadata']['total_size']}, {len(index['weight_map'])} names over {len(files)} files")
    d = maxdiff(batched(*single[:2], ids, torch.float32), batched(*sharded[:2], ids, torch.float32))
    check("3 shards == single file", d == 0, f"{', '.join(files)}; max |diff| {d:.1e}")


def check_greedy_eos(cfg, weights, ids):
    w = ref.to_torch(weights, torch.float32)
    with torch.no_grad():
        tokens, margins = ref.greedy(cfg, w, ids, 6, torch.float32)
        stop_cfg = dict(cfg, eos_token_id=[tokens[2]])
        stopped, _ = ref.greedy(stop_cfg, w, ids, 6, torch.float32)
    expect = tokens[:tokens.index(tokens[2]) + 1]
    check("greedy stops after eos", stopped == expect,
          f"greedy {tokens}, with eos_token_id {tokens[2]}: {stopped}; smallest margin {min(margins):.3f}")


def main():
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    ids = [1, 5, 9, 200, 33, 77, 4, 311, 12, 2, 150, 64]
    with tempfile.TemporaryDirectory() as tmp:
        check_against_loops(tmp, ids)
        check_long_sequence(tmp)
        cfg, weights, _ = make_model(os.path.join(tmp, "default"), seed=0)
        check_causal(cfg, weights, ids)
        check_gqa_is_repeated_mha(cfg, weights, ids)
        check_sensitivity(cfg, weights, ids)
        check_shards(tmp, ids)
        check_greedy_eos(cfg, weights, ids)
    print(f"{'FAILED: ' + ', '.join(failures) if failures else 'all checks passed'} "
          f"({time.perf_counter() - start:.1f}s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Reference logits and greedy tokens for a Llama-family checkpoint in Hugging Face layout.

    /usr/bin/python3 tests/tools/llama_reference.py MODEL_DIR (--ids 1,5,9 | --prompt TEXT)
        [--logits-out FILE.bin] [--greedy N] [--json-out FILE.json] [--f64] [--threads N]
        [--adapter PEFT_DIR]

Written from the published equations (Llama, RMSNorm, RoPE in the "rotate_half" layout, grouped-query
attention, SwiGLU), not from Hugging Face code, to check tune's C++ llama plugin independently.
Every step recomputes the whole sequence (no KV cache). Needs torch, numpy (and sentencepiece for --prompt).

--logits-out: raw little-endian float32, row-major [len(input ids), vocab_size], no header.
--json-out: {"input_ids": [...], "logits_shape": [seq, vocab], "greedy": [...], "greedy_margins": [...],
             "dtype": "float32"|"float64"}
"""
import argparse
import ctypes
import json
import math
import os
import sys

import numpy as np
import torch

FAMILIES = ("llama", "mistral", "qwen2")
DTYPES = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "BF16": "<u2"}  # BF16 widened by hand below


class InputError(Exception):
    """Input this tool refuses: printed as one 'error:' line, exit code 1."""


# ---------------------------------------------------------------- checkpoint reading

def set_compute_threads(threads):
    """tune's thread policy (core/runtime/threads.h), for peers that are timed against it: with
    OpenBLAS the matrix products get the threads and torch's intra-op pool one, whose spinning
    OpenMP workers would otherwise take the cores from OpenBLAS's."""
    try:
        ctypes.CDLL("libblas.so.3").openblas_set_num_threads(threads)
        torch.set_num_threads(1)
    except (OSError, AttributeError):
        torch.set_num_threads(threads)


def read_safetensors(path):
    """{name: float32 numpy array} from one safetensors file, checking the header against the file."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise InputError(f"{path}: {len(blob)} bytes is too short for a safetensors file; re-export it")
    n = int.from_bytes(blob[:8], "little")
    if 8 + n > len(blob):
        raise InputError(f"{path}: header length {n} runs past the end of the {len(blob)}-byte file; re-export it")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: header is not JSON ({e}); re-export it")
    data, out = memoryview(blob)[8 + n:], {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t.get("dtype") not in DTYPES:
            raise InputError(f"{path}: tensor {name} has dtype {t.get('dtype')}; this tool reads "
                             f"{', '.join(DTYPES)}; convert the checkpoint")
        begin, end = t["data_offsets"]
        count = math.prod(t["shape"])
        width = np.dtype(DTYPES[t["dtype"]]).itemsize
        if not 0 <= begin <= end <= len(data) or end - begin != count * width:
            raise InputError(f"{path}: tensor {name} offsets {begin}..{end} do not fit shape {t['shape']} "
                             f"{t['dtype']} in {len(data)} data bytes; re-export it")
        raw = np.frombuffer(data[begin:end], dtype=DTYPES[t["dtype"]])
        if t["dtype"] == "BF16":  # bfloat16 is the top half of a float32
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        out[name] = raw.astype(np.float32).reshape(t["shape"])
    return out


def read_weights(model_dir):
    single = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.isfile(single):
        return read_safetensors(single)
    if not os.path.isfile(index):
        raise InputError(f"{model_dir}: no model.safetensors or model.safetensors.index.json; "
                         "this tool reads safetensors checkpoints only")
    with open(index, encoding="utf-8") as f:
        weight_map = json.load(f)["weight_map"]
    weights = {}
    for fname in sorted(set(weight_map.values())):
        shard = read_safetensors(os.path.join(model_dir, fname))
        for name, arr in shard.items():
            if weight_map.get(name) != fname:
                raise InputError(f"{fname}: holds {name}, which the index maps to {weight_map.get(name)}; "
                                 "fix model.safetensors.index.json")
            weights[name] = arr
    missing = sorted(set(weight_map) - set(weights))
    if missing:
        raise InputError(f"{index}: maps {missing[0]} to {weight_map[missing[0]]}, which does not hold it")
    return weights


def read_config(model_dir):
    path = os.path.join(model_dir, "config.json")
    try:
        with open(path, encoding="utf-8") as f:
            cfg = json.load(f)
    except FileNotFoundError:
        raise InputError(f"{model_dir}: no config.json; point MODEL_DIR at a Hugging Face model folder")
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON ({e})")
    if cfg.get("model_type") not in FAMILIES:
        raise InputError(f"{path}: model_type {cfg.get('model_type')!r} is not one of {', '.join(FAMILIES)}")
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"):
        if not isinstance(cfg.get(key), int) or cfg[key] < 1:
            raise InputError(f"{path}: {key} must be a positive integer, got {cfg.get(key)!r}")
    if cfg.get("rope_scaling"):
        raise InputError(f"{path}: rope_scaling {cfg['rope_scaling']} is not implemented; only plain RoPE is")
    if cfg.get("hidden_act", "silu") != "silu":
        raise InputError(f"{path}: hidden_act {cfg['hidden_act']!r} is not implemented; only silu is")
    if cfg.get("partial_rotary_factor", 1.0) != 1.0:
        raise InputError(f"{path}: partial_rotary_factor {cfg['partial_rotary_factor']} is not implemented")
    cfg.setdefault("num_key_value_heads", cfg["num_attention_heads"])
    if cfg.get("head_dim") is None:  # newer configs state it; older ones imply hidden/heads
        cfg["head_dim"] = cfg["hidden_size"] // cfg["num_attention_heads"]
    if cfg["num_attention_heads"] % cfg["num_key_value_heads"] or cfg["head_dim"] % 2:
        raise InputError(f"{path}: num_attention_heads must be a multiple of num_key_value_heads and "
                         "head_dim even")
    cfg.setdefault("rms_norm_eps", 1e-6)
    cfg.setdefault("rope_theta", 10000.0)
    return cfg


def attention_window(cfg):
    """The sliding window in effect, or None. Qwen2 has one only when use_sliding_window is true."""
    if cfg["model_type"] == "qwen2" and not cfg.get("use_sliding_window", False):
        return None
    return cfg.get("sliding_window")


def expected_shapes(cfg):
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    q_out, kv_out = cfg["num_attention_heads"] * cfg["head_dim"], cfg["num_key_value_heads"] * cfg["head_dim"]
    shapes = {"model.embed_tokens.weight": [V, H], "model.norm.weight": [H]}
    if not cfg.get("tie_word_embeddings", False):
        shapes["lm_head.weight"] = [V, H]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes.update({p + "input_layernorm.weight": [H], p + "post_attention_layernorm.weight": [H],
                       p + "self_attn.q_proj.weight": [q_out, H], p + "self_attn.k_proj.weight": [kv_out, H],
                       p + "self_attn.v_proj.weight": [kv_out, H], p + "self_attn.o_proj.weight": [H, q_out],
                       p + "mlp.gate_proj.weight": [I, H], p + "mlp.up_proj.weight": [I, H],
                       p + "mlp.down_proj.weight": [H, I]})
        # Optional biases: Qwen2 always has q/k/v biases; Llama's attention_bias adds o too, mlp_bias the MLP.
        for proj, n in (("q", q_out), ("k", kv_out), ("v", kv_out), ("o", H)):
            shapes[p + f"self_attn.{proj}_proj.bias"] = [n]
        for proj, n in (("gate", I), ("up", I), ("down", H)):
            shapes[p + f"mlp.{proj}_proj.bias"] = [n]
    return shapes


def load(model_dir):
    """(config dict, {name: float32 numpy array}), refusing checkpoints this tool would get wrong."""
    cfg = read_config(model_dir)
    weights = read_weights(model_dir)
    shapes = expected_shapes(cfg)
    for name, arr in weights.items():
        if name.endswith("rotary_emb.inv_freq"):  # a buffer some old exports saved; recomputed here
            continue
        if name not in shapes:
            raise InputError(f"{model_dir}: unexpected tensor {name}; this is not a {cfg['model_type']} "
                             "checkpoint this tool can serve")
        if list(arr.shape) != shapes[name]:
            raise InputError(f"{model_dir}: {name} has shape {list(arr.shape)}, config.json implies {shapes[name]}")
    for name in shapes:
        if name not in weights and not name.endswith(".bias"):
            raise InputError(f"{model_dir}: tensor {name} is missing; re-export the checkpoint")
    if cfg["model_type"] == "qwen2" and "model.layers.0.self_attn.q_proj.bias" not in weights:
        raise InputError(f"{model_dir}: qwen2 checkpoint without q/k/v biases; re-export the checkpoint")
    return cfg, {k: v for k, v in weights.items() if k in shapes}


# ---------------------------------------------------------------- the model

def rms_norm(x, weight, eps):
    # Zhang & Sennrich 2019: x / sqrt(mean(x^2) + eps) * g, no mean subtraction, no bias.
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rope_cos_sin(seq, head_dim, theta, dtype):
    # Su et al. 2021 with the half-split layout: dimension i pairs with i + head_dim/2, both at
    # frequency theta^(-2i/head_dim). Angles in float64 (exact for any position), then cast.
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.arange(seq, dtype=torch.float64)[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)  # [seq, head_dim]
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x, cos, sin):
    """x: [heads, seq, head_dim]. rotate_half(x) = (-x2, x1) for halves x1, x2."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def linear(x, w, name):
    y = x @ w[name + ".weight"].T
    return y + w[name + ".bias"] if name + ".bias" in w else y


def forward(cfg, w, ids, dtype=torch.float32):
    """Logits [len(ids), vocab] for every position; w maps names to tensors of `dtype`."""
    nh, nkv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps, seq = cfg["rms_norm_eps"], len(ids)
    cos, sin = rope_cos_sin(seq, hd, cfg["rope_theta"], dtype)
    causal = torch.ones(seq, seq, dtype=torch.bool).triu(1)  # True where key position > query position
    x = w["model.embed_tokens.weight"][torch.tensor(ids, dtype=torch.long)]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = linear(h, w, p + "self_attn.q_proj").view(seq, nh, hd).transpose(0, 1)
        k = linear(h, w, p + "self_attn.k_proj").view(seq, nkv, hd).transpose(0, 1)
        v = linear(h, w, p + "self_attn.v_proj").view(seq, nkv, hd).transpose(0, 1)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        # GQA (Ainslie et al. 2023): query head j reads key/value head j // (nh/nkv).
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        scores = (q @ k.transpose(1, 2)) / math.sqrt(hd)
        probs = scores.masked_fill(causal, float("-inf")).softmax(dim=-1)
        attn = (probs @ v).transpose(0, 1).reshape(seq, nh * hd)
        x = x + linear(attn, w, p + "self_attn.o_proj")
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        # SwiGLU (Shazeer 2020): down(silu(gate(h)) * up(h)).
        gate = linear(h, w, p + "mlp.gate_proj")
        x = x + linear(torch.nn.functional.silu(gate) * linear(h, w, p + "mlp.up_proj"), w, p + "mlp.down_proj")
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])  # tied: the embedding matrix
    return x @ head.T


def to_torch(weights, dtype):
    return {k: torch.from_numpy(v).to(dtype) for k, v in weights.items()}


def eos_ids(cfg):
    eos = cfg.get("eos_token_id")
    return set(eos if isinstance(eos, list) else [] if eos is None else [eos])


def greedy(cfg, w, ids, n, dtype):
    """n greedy tokens (argmax, ties to the lowest id), stopping after an eos token; each step recomputes
    the full sequence. Also returns each step's top-1 minus top-2 logit, so a comparison can tell a real
    mismatch from a near-tie that rounding may flip."""
    out, margins, stop = [], [], eos_ids(cfg)
    for _ in range(n):
        last = forward(cfg, w, ids + out, dtype)[-1].numpy()
        tok = int(np.argmax(last))  # numpy returns the first maximum: ties go to the lowest id
        margins.append(float(last[tok] - np.max(np.delete(last, tok))) if last.size > 1 else float("inf"))
        out.append(tok)
        if tok in stop:
            break
    return out, margins


# ---------------------------------------------------------------- command line

def encode_prompt(model_dir, tokenizer, text, cfg):
    try:
        import sentencepiece as spm
    except ImportError:
        raise InputError("--prompt needs python3-sentencepiece; apt-get install -y python3-sentencepiece")
    path = tokenizer or os.path.join(model_dir, "tokenizer.model")
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file; pass --tokenizer FILE or use --ids")
    sp = spm.SentencePieceProcessor(model_file=path)
    if sp.get_piece_size() > cfg["vocab_size"]:
        raise InputError(f"{path}: {sp.get_piece_size()} pieces but vocab_size is {cfg['vocab_size']}; "
                         "tokenizer and model do not match")
    bos = cfg.get("bos_token_id", sp.bos_id())
    return ([bos] if bos is not None and bos >= 0 else []) + sp.encode(text)


def parse_ids(text):
    try:
        ids = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InputError(f"--ids {text!r}: expected comma-separated integers such as 1,5,9")
    if not ids:
        raise InputError("--ids is empty; give at least one token id")
    return ids


def apply_lora(weights, adapter_dir):
    """Folds a PEFT LoRA adapter into the weights: W + scale * B @ A, scale = lora_alpha / r
    (lora_alpha / sqrt(r) with use_rslora), as Hu et al. 2021 and PEFT define it."""
    with open(os.path.join(adapter_dir, "adapter_config.json"), encoding="utf-8") as f:
        acfg = json.load(f)
    if acfg.get("peft_type") != "LORA":
        raise InputError(f"{adapter_dir}: peft_type {acfg.get('peft_type')!r} is not LORA")
    r, alpha = acfg["r"], acfg["lora_alpha"]
    scale = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
    tensors = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    prefix, a_suffix = "base_model.model.", ".lora_A.weight"
    for name, a in tensors.items():
        if not name.endswith(a_suffix):
            continue
        module = name[len(prefix):-len(a_suffix)]
        b = tensors[prefix + module + ".lora_B.weight"]
        target = module + ".weight"
        if target not in weights:
            raise InputError(f"{adapter_dir}: {name} adapts {target}, which the model does not have")
        weights[target] = (weights[target].astype(np.float64)
                           + scale * (b.astype(np.float64) @ a.astype(np.float64))).astype(np.float32)


def run(a):
    cfg, weights = load(a.model_dir)
    if a.adapter:
        apply_lora(weights, a.adapter)
    ids = encode_prompt(a.model_dir, a.tokenizer, a.prompt, cfg) if a.prompt is not None else parse_ids(a.ids)
    bad = [t for t in ids if not 0 <= t < cfg["vocab_size"]]
    if bad:
        raise InputError(f"token id {bad[0]} is outside 0..{cfg['vocab_size'] - 1} (vocab_size)")
    if a.greedy < 0:
        raise InputError(f"--greedy {a.greedy} must be 0 or more")
    total = len(ids) + a.greedy
    limit = cfg.get("max_position_embeddings")
    if limit and total > limit:
        raise InputError(f"{len(ids)} ids + {a.greedy} greedy tokens exceed max_position_embeddings {limit}; "
                         "shorten the input or --greedy")
    window = attention_window(cfg)
    if window is not None and window < total:
        raise InputError(f"sliding_window {window} is shorter than the {total}-token sequence; "
                         "sliding-window attention is not implemented, use a shorter sequence")
    torch.set_num_threads(a.threads)
    dtype = torch.float64 if a.f64 else torch.float32
    w = to_torch(weights, dtype)
    with torch.no_grad():
        logits = forward(cfg, w, ids, dtype)
        tokens, margins = greedy(cfg, w, ids, a.greedy, dtype)
    if a.logits_out:
        logits.to(torch.float32).numpy().astype("<f4").tofile(a.logits_out)
    report = {"input_ids": ids, "logits_shape": list(logits.shape), "greedy": tokens,
              "greedy_margins": margins, "dtype": "float64" if a.f64 else "float32"}
    if a.prompt is not None:
        report["prompt"] = a.prompt
    if a.json_out:
        with open(a.json_out, "w", encoding="utf-8") as f:
            json.dump(report, f)
            f.write("\n")
    if not a.logits_out and not a.json_out:
        print(json.dumps(report))


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model_dir")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ids", help="comma-separated token ids, used as given (no BOS added)")
    src.add_argument("--prompt", help="text: encoded with tokenizer.model, BOS prepended")
    p.add_argument("--tokenizer", help="sentencepiece model for --prompt (default MODEL_DIR/tokenizer.model)")
    p.add_argument("--logits-out", help="write float32 logits [seq, vocab] here")
    p.add_argument("--greedy", type=int, default=0, help="append up to N greedy tokens")
    p.add_argument("--json-out", help="write input ids, logits shape and greedy tokens here")
    p.add_argument("--f64", action="store_true", help="compute in float64 (logits are still written as float32)")
    p.add_argument("--adapter", help="PEFT LoRA directory to fold into the weights first")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: fastest for tiny models)")
    a = p.parse_args(argv)
    try:
        run(a)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.filename}: {e.strerror}; check the path", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

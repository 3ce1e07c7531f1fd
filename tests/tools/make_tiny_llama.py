#!/usr/bin/python3
"""Write a small random Llama-family checkpoint in Hugging Face layout, for tests.

    /usr/bin/python3 tests/tools/make_tiny_llama.py OUT_DIR [--seed S] [--model-type llama|mistral|qwen2] ...

OUT_DIR gets config.json, generation_config.json, model.safetensors (or model-0000i-of-0000K.safetensors
plus model.safetensors.index.json with --shards K), tokenizer.model and tokenizer_config.json.
Everything is a pure function of the arguments: two runs with the same arguments give identical bytes.
Needs only numpy and sentencepiece (Debian: python3-numpy, python3-sentencepiece).
"""
import argparse
import io
import json
import os
import struct
import sys

import numpy as np

# Per-architecture defaults, as the published checkpoints of each family use them.
FAMILIES = {
    "llama": {"arch": "LlamaForCausalLM", "rope_theta": 10000.0, "rms_eps": 1e-5},
    "mistral": {"arch": "MistralForCausalLM", "rope_theta": 10000.0, "rms_eps": 1e-5},
    "qwen2": {"arch": "Qwen2ForCausalLM", "rope_theta": 1000000.0, "rms_eps": 1e-6},
}
BOS_ID, EOS_ID, UNK_ID = 1, 2, 0


class InputError(Exception):
    """A bad argument: printed as one 'error:' line, exit code 1."""


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model-type", choices=sorted(FAMILIES), default="llama")
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--intermediate", type=int, default=160)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--tie", action="store_true", help="tie_word_embeddings: no lm_head.weight")
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                   help="stored dtype of the weights (bfloat16: rounded to nearest even)")
    p.add_argument("--rms-eps", type=float, default=None, help="default: 1e-5 (1e-6 for qwen2)")
    p.add_argument("--rope-theta", type=float, default=None, help="default: 10000 (1e6 for qwen2)")
    p.add_argument("--max-positions", type=int, default=256)
    p.add_argument("--tokenizer-text", default=None, help="train the tokenizer on this UTF-8 file")
    p.add_argument("--no-tokenizer", action="store_true",
                   help="write no tokenizer (allows --vocab below what sentencepiece needs)")
    return p.parse_args(argv)


def check_args(a):
    for name in ("vocab", "hidden", "intermediate", "layers", "heads", "kv_heads", "shards", "max_positions"):
        if getattr(a, name) < 1:
            raise InputError(f"--{name.replace('_', '-')} {getattr(a, name)} must be at least 1")
    if a.hidden % a.heads:
        raise InputError(f"--hidden {a.hidden} is not a multiple of --heads {a.heads}; pick sizes that divide")
    if (a.hidden // a.heads) % 2:
        raise InputError(f"head dim {a.hidden // a.heads} (--hidden/--heads) is odd; RoPE needs it even")
    if a.heads % a.kv_heads:
        raise InputError(f"--heads {a.heads} is not a multiple of --kv-heads {a.kv_heads}; GQA needs it")
    if a.tokenizer_text and not os.path.isfile(a.tokenizer_text):
        raise InputError(f"--tokenizer-text {a.tokenizer_text}: no such file")


def make_config(a):
    fam = FAMILIES[a.model_type]
    cfg = {
        "architectures": [fam["arch"]],
        "model_type": a.model_type,
        "vocab_size": a.vocab,
        "hidden_size": a.hidden,
        "intermediate_size": a.intermediate,
        "num_hidden_layers": a.layers,
        "num_attention_heads": a.heads,
        "num_key_value_heads": a.kv_heads,
        "rms_norm_eps": a.rms_eps if a.rms_eps is not None else fam["rms_eps"],
        "rope_theta": a.rope_theta if a.rope_theta is not None else fam["rope_theta"],
        "rope_scaling": None,
        "max_position_embeddings": a.max_positions,
        "tie_word_embeddings": bool(a.tie),
        "hidden_act": "silu",
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "torch_dtype": a.dtype,
        "initializer_range": 0.02,
        "attention_dropout": 0.0,
        "use_cache": True,
    }
    if a.model_type == "llama":
        cfg.update({"attention_bias": False, "mlp_bias": False, "pretraining_tp": 1})
    elif a.model_type == "mistral":
        cfg["sliding_window"] = None
    else:  # qwen2: q/k/v carry biases (implied by the architecture, there is no config key for it)
        cfg.update({"use_sliding_window": False, "sliding_window": a.max_positions,
                    "max_window_layers": a.layers})
    return cfg


def make_weights(cfg, seed):
    """Returns [(name, float32 array)] in model order.

    Linear weights are [out_features, in_features] with std 1/sqrt(in_features), not HF's 0.02: with
    0.02 the attention scores of a 64-wide model are ~0.03, softmax is nearly uniform, and RoPE or
    masking mistakes would hardly move the logits. Norm weights are 1 + 0.1*N(0,1) so a norm that
    ignores its weight is caught."""
    rng = np.random.default_rng(seed)
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = H // nh

    def linear(out_f, in_f):
        return (rng.standard_normal((out_f, in_f), dtype=np.float32) / np.float32(np.sqrt(in_f))).astype(np.float32)

    def norm(n):
        return (1 + 0.1 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    def bias(n):
        return (0.3 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    w = [("model.embed_tokens.weight", (0.2 * rng.standard_normal((V, H), dtype=np.float32)).astype(np.float32))]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w.append((p + "input_layernorm.weight", norm(H)))
        for proj, out_f in (("q", nh * hd), ("k", nkv * hd), ("v", nkv * hd)):
            w.append((p + f"self_attn.{proj}_proj.weight", linear(out_f, H)))
            if cfg["model_type"] == "qwen2":
                w.append((p + f"self_attn.{proj}_proj.bias", bias(out_f)))
        w.append((p + "self_attn.o_proj.weight", linear(H, nh * hd)))
        w.append((p + "post_attention_layernorm.weight", norm(H)))
        w.append((p + "mlp.gate_proj.weight", linear(I, H)))
        w.append((p + "mlp.up_proj.weight", linear(I, H)))
        w.append((p + "mlp.down_proj.weight", linear(H, I)))
    w.append(("model.norm.weight", norm(H)))
    if not cfg["tie_word_embeddings"]:
        w.append(("lm_head.weight", linear(V, H)))
    return w


def bfloat16_bytes(arr):
    """float32 to bfloat16 (the high 16 bits), rounded to nearest even; weights are finite."""
    bits = np.ascontiguousarray(arr, dtype="<f4").view("<u4")
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2").tobytes()


def safetensors_bytes(tensors, dtype):
    """The safetensors format: u64 little-endian header length N, N bytes of JSON (padded with spaces
    so the data starts 8-aligned), then the raw little-endian data; offsets are relative to the data."""
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, arr in sorted(tensors):
        if dtype == "bfloat16":
            data, tag = bfloat16_bytes(arr), "BF16"
        else:
            data, tag = np.ascontiguousarray(arr, dtype="<f4").tobytes(), "F32"
        header[name] = {"dtype": tag, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write_weights(out_dir, weights, shards, dtype):
    if shards == 1:
        with open(os.path.join(out_dir, "model.safetensors"), "wb") as f:
            f.write(safetensors_bytes(weights, dtype))
        return
    # Contiguous groups in model order: a tensor goes to shard k while its midpoint lies before
    # k+1 K-ths of the total; every shard gets at least one tensor, the last takes the rest.
    total = sum(a.nbytes for _, a in weights)
    groups, i, run = [], 0, 0
    for k in range(shards):
        group = []
        while i < len(weights) - (shards - k - 1) and (
                not group or k == shards - 1 or run + weights[i][1].nbytes / 2 <= total * (k + 1) / shards):
            group.append(weights[i])
            run += weights[i][1].nbytes
            i += 1
        groups.append(group)
    weight_map = {}
    for k, group in enumerate(groups):
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        with open(os.path.join(out_dir, fname), "wb") as f:
            f.write(safetensors_bytes(group, dtype))
        weight_map.update({name: fname for name, _ in group})
    stored_total = total // 2 if dtype == "bfloat16" else total
    index = {"metadata": {"total_size": stored_total}, "weight_map": dict(sorted(weight_map.items()))}
    write_json(os.path.join(out_dir, "model.safetensors.index.json"), index)


def default_text(seed, n_lines):
    """Made-up words (so merges are learnable) plus digits, punctuation and a few multi-byte characters."""
    rng = np.random.default_rng([seed, 7919])
    syllables = ("ka ri to mu sen lo pa qui dra ne vo sha the ing er al on tri bel gor um ex ast "
                 "fel wyn zo ba ci de fu gi ho ju ly mo nu py re su ta vi we xe yo ze").split()
    extra = ["é", "ñ", "ü", "ß", "ø", "猫", "日本", "—", "€"]
    lines = []
    for _ in range(n_lines):
        words = []
        for _ in range(int(rng.integers(3, 14))):
            r = rng.random()
            if r < 0.08:
                words.append(str(int(rng.integers(0, 100000))))
            elif r < 0.11:
                words.append(str(rng.choice(extra)))
            else:
                word = "".join(rng.choice(syllables, size=int(rng.integers(1, 5))))
                words.append(word.capitalize() if rng.random() < 0.1 else word)
        lines.append(" ".join(words) + str(rng.choice([".", ",", "!", "?", ";", ":"])))
    return lines


def train_tokenizer(out_dir, vocab, seed, text_file):
    try:
        import sentencepiece as spm
    except ImportError:
        raise InputError("python3-sentencepiece is missing; apt-get install -y python3-sentencepiece "
                         "(or pass --no-tokenizer)")
    if text_file:
        with open(text_file, encoding="utf-8") as f:
            lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    else:
        lines = default_text(seed, 2000 + vocab // 4)  # enough distinct words for the merges
    model = io.BytesIO()
    # Llama's own trainer settings (BPE, byte fallback, digits split, no normalisation). An iterator and
    # an in-memory writer keep file paths out of the stored trainer spec; one thread keeps it deterministic.
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab, model_type="bpe",
            byte_fallback=True, split_digits=True, normalization_rule_name="identity",
            add_dummy_prefix=True, remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
            character_coverage=1.0, input_sentence_size=0, shuffle_input_sentence=False,
            unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID, pad_id=-1, num_threads=1, minloglevel=2)
    except RuntimeError as e:
        reason = ". ".join(str(e).split("] ")[-1].split(". ")[:2]).rstrip(".")
        raise InputError(f"--vocab {vocab}: sentencepiece refused it ({reason}); "
                         "change --vocab, give a bigger --tokenizer-text, or pass --no-tokenizer")
    with open(os.path.join(out_dir, "tokenizer.model"), "wb") as f:
        f.write(model.getvalue())


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def make(a):
    """Writes the whole checkpoint; returns (config, [(name, float32 array)]) for in-process callers
    (the arrays before any rounding to --dtype)."""
    check_args(a)
    os.makedirs(a.out_dir, exist_ok=True)
    cfg = make_config(a)
    weights = make_weights(cfg, a.seed)
    if a.shards > len(weights):
        raise InputError(f"--shards {a.shards} is more than the {len(weights)} tensors; use at most {len(weights)}")
    if not a.no_tokenizer:  # first: it is the step most likely to refuse the arguments
        train_tokenizer(a.out_dir, a.vocab, a.seed, a.tokenizer_text)
        write_json(os.path.join(a.out_dir, "tokenizer_config.json"), {
            "tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
            "model_max_length": a.max_positions})
    write_weights(a.out_dir, weights, a.shards, a.dtype)
    write_json(os.path.join(a.out_dir, "config.json"), cfg)
    write_json(os.path.join(a.out_dir, "generation_config.json"),
               {"_from_model_config": True, "bos_token_id": BOS_ID, "eos_token_id": EOS_ID})
    return cfg, weights


def main(argv):
    try:
        make(parse_args(argv))
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.filename}: {e.strerror}; check the path and its permissions", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Writes a small tokenizer.json (and tokenizer_config.json) laid out as a published model's.

Styles follow the public files of each family, with a vocabulary trained here on a small text:
  llama3   byte-level BPE, Llama 3's split regex, ignore_merges, <|begin_of_text|> prepended by a
           TemplateProcessing post-processor, Llama 3.1's special tokens after the vocabulary
  qwen2    byte-level BPE, Qwen2's split regex (single digits), NFC normaliser, no BOS,
           <|endoftext|>, <|im_start|>, <|im_end|>
  gpt2     byte-level BPE with the ByteLevel pre-tokenizer's own regex
  mistral  sentencepiece-style BPE as Mistral v0.3 ships it: Metaspace (prepend "first"),
           byte fallback to <0xXX> pieces, fuse_unk, <unk> <s> </s>, decoder Replace/ByteFallback/
           Fuse/Strip
  llama2   the same model with Llama 2's normaliser (Prepend + Replace) instead of Metaspace

The merges come from a plain greedy trainer (most frequent pair, ties by the pair's text); it need
not match any published trainer, only produce a valid file that real tokenizers read.

    make_tokenizer_json.py OUT_DIR --style llama3 [--merges 300] [--text FILE]
"""
import argparse
import collections
import json
import os
import sys

import regex

LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"

LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                  "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>",
                  "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
                  "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
QWEN2_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

DEFAULT_TEXT = """The quick brown fox jumps over the lazy dog. It's what they'll say: we've seen it, I'm sure.
Numbers like 1234567 and 3.14159 appear; so do dates (2026-11-30) and prices ($19.99).
Tokenizers split text into pieces: words, digits, punctuation, and runs of   spaces.
   Indented lines, tabs\tand newlines\n\nmatter too. Über naïve café résumé façade.
Emoji 😀🎉 and CJK 你好，世界 and 日本語のテキスト, Русский текст, العربية, हिन्दी.
def train(model, data):\n    for step in range(100):\n        loss = model(data)\n
"""


class InputError(Exception):
    pass


def bytes_to_unicode():
    """GPT-2's printable stand-in for each byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def train_merges(words, n_merges):
    """words: {tuple of symbols: count}. Returns the merges, in order, as (left, right)."""
    words = {tuple(w): c for w, c in words.items()}
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + c
        words = merged
    return merges


def added(token_id, content, special=True):
    return {"id": token_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": special}


def bpe_model(vocab, merges, **extra):
    model = {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
             "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]}
    model.update(extra)
    return model


def byte_level_file(style, text, n_merges):
    split = {"llama3": LLAMA3_SPLIT, "qwen2": QWEN2_SPLIT, "gpt2": GPT2_SPLIT}[style]
    b2u = bytes_to_unicode()
    counts = collections.Counter(regex.findall(split, text))
    words = collections.Counter()
    for piece, c in counts.items():
        words[tuple(b2u[b] for b in piece.encode("utf-8"))] += c
    merges = train_merges(words, n_merges)
    vocab = {b2u[b]: i for i, b in enumerate(sorted(b2u))}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}
    split_step = {"type": "Split", "pattern": {"Regex": split}, "behavior": "Isolated", "invert": False}
    doc = {"version": "1.0", "truncation": None, "padding": None, "normalizer": None,
           "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}}
    config = {"clean_up_tokenization_spaces": False}
    if style == "llama3":
        specials = LLAMA3_SPECIAL
        doc["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [split_step, byte_level]}
        bos = {"id": "<|begin_of_text|>", "ids": [len(vocab)], "tokens": ["<|begin_of_text|>"]}
        doc["post_processor"] = {"type": "Sequence", "processors": [
            dict(byte_level, trim_offsets=False),
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                      {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                      {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {"<|begin_of_text|>": bos}}]}
        doc["model"] = bpe_model(vocab, merges, ignore_merges=True)
        config.update({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
                       "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"})
    elif style == "qwen2":
        specials = QWEN2_SPECIAL
        doc["normalizer"] = {"type": "NFC"}
        doc["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [split_step, byte_level]}
        doc["post_processor"] = dict(byte_level, trim_offsets=False)
        doc["model"] = bpe_model(vocab, merges)
        config.update({"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                       "model_max_length": 131072, "tokenizer_class": "Qwen2Tokenizer"})
    else:
        specials = ["<|endoftext|>"]
        doc["pre_tokenizer"] = dict(byte_level, use_regex=True)
        doc["post_processor"] = dict(byte_level, trim_offsets=False)
        doc["model"] = bpe_model(vocab, merges)
        config.update({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                       "tokenizer_class": "GPT2Tokenizer"})
    doc["added_tokens"] = [added(len(vocab) + i, s) for i, s in enumerate(specials)]
    return doc, config


def sentencepiece_style_file(style, text, n_merges):
    """Characters are the units (spaces as ▁); characters outside the vocabulary fall back to bytes."""
    meta = "\u2581"
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    words = collections.Counter()
    for line in text.split("\n"):
        # Metaspace with split = false: the whole line is one word, a space becomes ▁.
        words[tuple(meta + line.replace(" ", meta))] += 1
    chars = collections.Counter(ch for w, c in words.items() for ch in w for _ in range(c))
    # Rare characters stay out of the vocabulary so byte fallback is exercised.
    for ch, c in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0])):
        if c >= 2:
            vocab.setdefault(ch, len(vocab))
    words = {tuple(ch if ch in vocab else "\0" for ch in w): c for w, c in words.items()}
    merges = [(a, b) for a, b in train_merges(words, n_merges) if "\0" not in a + b]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    doc = {"version": "1.0", "truncation": None, "padding": None,
           "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")]}
    if style == "mistral":
        doc["normalizer"] = None
        doc["pre_tokenizer"] = {"type": "Metaspace", "replacement": meta, "prepend_scheme": "first", "split": False}
    else:
        doc["normalizer"] = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": meta},
            {"type": "Replace", "pattern": {"String": " "}, "content": meta}]}
        doc["pre_tokenizer"] = None
    doc["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}}
    doc["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": meta}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Fuse"},
        {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    doc["model"] = bpe_model(vocab, merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True)
    config = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
              "unk_token": "<unk>", "legacy": style == "llama2", "clean_up_tokenization_spaces": False,
              "tokenizer_class": "LlamaTokenizer"}
    return doc, config


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--style", choices=("llama3", "qwen2", "gpt2", "mistral", "llama2"), required=True)
    p.add_argument("--merges", type=int, default=300)
    p.add_argument("--text", help="UTF-8 training text (default: a built-in multilingual sample)")
    a = p.parse_args(argv)
    try:
        if a.merges < 0:
            raise InputError(f"--merges {a.merges} must be at least 0")
        text = DEFAULT_TEXT
        if a.text:
            with open(a.text, encoding="utf-8") as f:
                text = f.read()
        make = sentencepiece_style_file if a.style in ("mistral", "llama2") else byte_level_file
        doc, config = make(a.style, text, a.merges)
        os.makedirs(a.out_dir, exist_ok=True)
        with open(os.path.join(a.out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=2)
        with open(os.path.join(a.out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False, indent=2)
    except (InputError, OSError, UnicodeDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

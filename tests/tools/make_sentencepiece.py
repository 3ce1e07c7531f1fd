#!/usr/bin/env python3
"""Trains a small sentencepiece model with python3-sentencepiece and writes DIR/tokenizer.model.

    make_sentencepiece.py DIR --model-type bpe|unigram --normalization identity|nmt_nfkc|nfkc
                          [--byte-fallback] [--remove-extra-whitespaces] [--vocab 400]
                          [--user-defined SYMBOL ...]

The training text is make_tiny_llama.py's made-up words, plus compatibility characters
(full-width letters, ligatures, circled digits) that NFKC rewrites.
"""
import argparse
import io
import os
import sys

import sentencepiece as spm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tiny_llama import default_text  # noqa: E402

EXTRA = ["ＡＢＣ ｆｕｌｌ ｗｉｄｔｈ", "ﬁne ﬂow ligatures", "① ② ③ circled", "℃ ㎏ units", "Ⅻ roman"]


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--model-type", choices=("bpe", "unigram"), required=True)
    p.add_argument("--normalization", choices=("identity", "nmt_nfkc", "nfkc"), required=True)
    p.add_argument("--byte-fallback", action="store_true")
    p.add_argument("--remove-extra-whitespaces", action="store_true")
    p.add_argument("--vocab", type=int, default=400)
    p.add_argument("--user-defined", nargs="*", default=[])
    a = p.parse_args(argv)
    lines = default_text(3, 1500) + EXTRA * 5
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=a.vocab, model_type=a.model_type,
        byte_fallback=a.byte_fallback, normalization_rule_name=a.normalization,
        remove_extra_whitespaces=a.remove_extra_whitespaces, user_defined_symbols=a.user_defined,
        character_coverage=0.995, input_sentence_size=0, shuffle_input_sentence=False,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "tokenizer.model"), "wb") as f:
        f.write(model.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

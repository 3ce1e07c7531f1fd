#!/usr/bin/python3
"""Generate the example data: a pretraining corpus and the word-manipulation fine-tuning task.

    /usr/bin/python3 examples/tasks/generate.py OUT_DIR [--seed S] [--task-examples N] [--noise F]

OUT_DIR gets:
  corpus.txt      plain text the base model's tokenizer and pretraining read
  pretrain.jsonl  the corpus as {"prompt": "", "completion": line} rows (everything is learned)
  task.jsonl      the task: {"prompt": "reverse: wa wb wc =", "completion": "wc wb wa"}, three
                  operations (reverse, sort, rotate) over 3-4 words of a made-up vocabulary

The corpus teaches the vocabulary and the "op: words =" layout with a copy operation only, so the
base model answers every task prompt in the right shape but with the wrong words: it scores low
until it is fine-tuned. --noise F replaces a share F of task completions with random words, and
--task-skip N starts the task N examples further on, for the dataset-quality comparison (a small
clean set, a large noisy one, and a clean eval set neither contains). Everything is a pure function of the arguments.
"""
import argparse
import json
import os
import random

CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"


def vocabulary(rng, size):
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(rng.randint(1, 2))))
    return sorted(words)


def task_example(rng, words):
    items = rng.sample(words, rng.randint(3, 4))
    op = rng.choice(("reverse", "sort", "rotate"))
    if op == "reverse":
        answer = items[::-1]
    elif op == "sort":
        answer = sorted(items)
    else:
        answer = items[1:] + items[:1]
    return {"prompt": f"{op}: {' '.join(items)} =", "completion": " ".join(answer)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--corpus-lines", type=int, default=20000)
    p.add_argument("--task-examples", type=int, default=20000)
    p.add_argument("--noise", type=float, default=0.0)
    p.add_argument("--task-skip", type=int, default=0,
                   help="skip this many task examples first (a held-out set beyond the others)")
    a = p.parse_args()
    if not 0.0 <= a.noise <= 1.0:
        p.error(f"--noise {a.noise} must be in [0, 1]")
    rng = random.Random(a.seed)
    words = vocabulary(rng, 48)
    os.makedirs(a.out_dir, exist_ok=True)

    lines = []
    for _ in range(a.corpus_lines):
        items = [rng.choice(words) for _ in range(rng.randint(3, 7))]
        if rng.random() < 0.3:
            lines.append(" ".join(items) + ".")
        else:
            lines.append(f"copy: {' '.join(items)} = {' '.join(items)}")
    with open(os.path.join(a.out_dir, "corpus.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(a.out_dir, "pretrain.jsonl"), "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps({"prompt": "", "completion": line}) + "\n")

    task_rng = random.Random(a.seed + 1)  # the task does not depend on the corpus size
    noise_rng = random.Random(a.seed + 2)
    with open(os.path.join(a.out_dir, "task.jsonl"), "w", encoding="utf-8") as f:
        for _ in range(a.task_skip):
            task_example(task_rng, words)
        for _ in range(a.task_examples):
            row = task_example(task_rng, words)
            if noise_rng.random() < a.noise:
                row["completion"] = " ".join(noise_rng.choice(words) for _ in row["completion"].split())
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

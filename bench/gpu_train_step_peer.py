"""The GPU peer for bench_train_step: the same training step with Hugging Face transformers and
PEFT, the way people fine-tune with them: LlamaForCausalLM in bfloat16 with SDPA attention, LoRA
from peft.get_peft_model (or every parameter for full fine-tuning), cross-entropy over the labels,
clip_grad_norm_, torch.optim.AdamW. Same model files, shapes and masking as bench_train_step.
Prints one JSON line like bench_train_step's.

    python3 bench/gpu_train_step_peer.py MODEL_DIR [--method lora|full] [--rank R]
        [--batch B] [--seq T] [--iters N] [--checkpointing 0|1]
"""
import argparse
import json
import time

import torch
from transformers import LlamaForCausalLM


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model_dir")
    p.add_argument("--method", choices=["lora", "full"], default="lora")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--checkpointing", type=int, default=0)
    a = p.parse_args()

    torch.manual_seed(0)
    model = LlamaForCausalLM.from_pretrained(
        a.model_dir, torch_dtype=torch.bfloat16, attn_implementation="sdpa").cuda()
    if a.checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    if a.method == "lora":
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=a.rank, lora_alpha=2 * a.rank, lora_dropout=0.0,
                                                 target_modules="all-linear"))
    model.train()
    params = [q for q in model.parameters() if q.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    vocab = model.config.vocab_size
    ids = torch.randint(3, vocab, (a.batch, a.seq), device="cuda")
    labels = torch.randint(3, vocab, (a.batch, a.seq), device="cuda")
    labels[:, : a.seq // 2] = -100

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits = model(input_ids=ids).logits.float()
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1),
                                                 ignore_index=-100)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        return loss.item(), float(norm)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(a.iters):
        step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(json.dumps({
        "impl": "transformers+peft", "method": a.method, "batch": a.batch, "seq": a.seq,
        "tokens_per_second": a.batch * a.seq * a.iters / seconds,
        "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20,
        "checkpointing": a.checkpointing,
        "torch": torch.__version__}))


if __name__ == "__main__":
    main()

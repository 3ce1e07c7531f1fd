"""The peer for bench_train_step: the same training step in Python eager PyTorch, written the way
Hugging Face transformers + PEFT do it (nn.Linear layers, LoRA as lora_B(lora_A(dropout(x))) *
scaling added to the frozen layer, cross-entropy with ignore_index, clip_grad_norm_,
torch.optim.AdamW), same shapes, same thread count and policy (llama_reference.set_compute_threads).

    /usr/bin/python3 bench/train_step_peer.py MODEL_DIR [--method lora|full] [--rank R]
        [--batch B] [--seq T] [--iters N] [--threads K]
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "tools"))
import llama_reference  # noqa: E402


class LoraLinear(nn.Module):
    def __init__(self, base, rank, alpha):
        super().__init__()
        self.base = base
        self.lora_A = nn.Linear(base.in_features, rank, bias=False)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / rank

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling


class RmsNorm(nn.Module):
    def __init__(self, weight, eps):
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Layer(nn.Module):
    def __init__(self, cfg, w, i):
        super().__init__()
        p = f"model.layers.{i}."
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg.get("num_key_value_heads", self.heads)
        self.head_dim = cfg["hidden_size"] // self.heads
        eps = cfg["rms_norm_eps"]
        self.norm1 = RmsNorm(w[p + "input_layernorm.weight"], eps)
        self.norm2 = RmsNorm(w[p + "post_attention_layernorm.weight"], eps)
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            setattr(self, name, linear(w, p + "self_attn." + name))
        for name in ("gate_proj", "up_proj", "down_proj"):
            setattr(self, name, linear(w, p + "mlp." + name))

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        h = self.norm1(x)
        q = self.q_proj(h).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim) + mask
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, -1)
        x = x + self.o_proj(out)
        h = self.norm2(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


def linear(w, name):
    weight = w[name + ".weight"]
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=name + ".bias" in w)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if name + ".bias" in w:
            layer.bias.copy_(w[name + ".bias"])
    return layer


class CausalLm(nn.Module):
    def __init__(self, cfg, w):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding.from_pretrained(w["model.embed_tokens.weight"], freeze=False)
        self.layers = nn.ModuleList(Layer(cfg, w, i) for i in range(cfg["num_hidden_layers"]))
        self.norm = RmsNorm(w["model.norm.weight"], cfg["rms_norm_eps"])
        head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
        self.lm_head = nn.Linear(head.shape[1], head.shape[0], bias=False)
        with torch.no_grad():
            self.lm_head.weight.copy_(head)
        head_dim = cfg["hidden_size"] // cfg["num_attention_heads"]
        inv_freq = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, head_dim, 2).double() / head_dim))
        self.inv_freq = inv_freq

    def forward(self, ids):
        t = ids.shape[1]
        angles = torch.outer(torch.arange(t, dtype=torch.float64), self.inv_freq)
        both = torch.cat((angles, angles), dim=-1)
        cos, sin = both.cos().float(), both.sin().float()
        mask = torch.full((t, t), float("-inf")).triu(1)
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.norm(x))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model_dir")
    p.add_argument("--method", choices=("lora", "full"), default="lora")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    llama_reference.set_compute_threads(a.threads)
    cfg, weights = llama_reference.load(a.model_dir)
    model = CausalLm(cfg, llama_reference.to_torch(weights, torch.float32))
    torch.manual_seed(0)
    if a.method == "lora":
        for p_ in model.parameters():
            p_.requires_grad_(False)
        for layer in model.layers:
            for name in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
                setattr(layer, name, LoraLinear(getattr(layer, name), a.rank, 2 * a.rank))
    params = [p_ for p_ in model.parameters() if p_.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    vocab = cfg["vocab_size"]
    inputs = torch.randint(3, vocab, (a.batch, a.seq))
    targets = torch.randint(3, vocab, (a.batch, a.seq))
    targets[:, : a.seq // 2] = -100
    count = (targets != -100).sum().item()

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1), ignore_index=-100,
                               reduction="sum")
        loss.item()
        (loss / count).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(a.iters):
        step()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "python-eager", "method": a.method, "batch": a.batch, "seq": a.seq,
                      "threads": a.threads, "tokens_per_second": a.batch * a.seq * a.iters / seconds,
                      "peak_rss_mib": peak}))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch-eager reference for `mixmoe bench train`: the same model and step, written as a competent
PyTorch user would (transformers' LlamaForCausalLM with SDPA attention, fused AdamW, clipping).
Prints one JSON line per measurement with the same keys as mixmoe's benchmark.

  python3 scripts/bench_pytorch.py train --config small --threads 2
"""
import argparse, json, resource, statistics, time
import torch
import torch.nn.functional as F
from transformers import LlamaConfig, LlamaForCausalLM

CONFIGS = {
    "tiny": dict(vocab_size=4096, hidden_size=128, intermediate_size=352, num_hidden_layers=4,
                 num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True),
    "small": dict(vocab_size=8192, hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                  num_attention_heads=8, num_key_value_heads=4, tie_word_embeddings=True),
}


def matmul_params(c):
    d, hd = c["hidden_size"], c["hidden_size"] // c["num_attention_heads"]
    qd, kd = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    per_layer = d * qd * 2 + d * kd * 2 + 3 * d * c["intermediate_size"]
    return c["num_hidden_layers"] * per_layer + c["vocab_size"] * d, hd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=["train"])
    ap.add_argument("--config", default="small", choices=list(CONFIGS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c = CONFIGS[a.config]
    cfg = LlamaConfig(**c, rms_norm_eps=1e-5, max_position_embeddings=2048)
    cfg._attn_implementation = "sdpa"
    model = LlamaForCausalLM(cfg).float().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0, fused=True)
    ids = torch.randint(0, c["vocab_size"], (a.batch, a.seq))
    targets = torch.roll(ids, -1, 1)
    targets[:, -1] = -100

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(input_ids=ids).logits
        loss = F.cross_entropy(logits.view(-1, c["vocab_size"]), targets.view(-1), ignore_index=-100)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    n = a.batch * a.seq
    mp, hd = matmul_params(c)
    fpt = 6 * mp + 12 * c["num_hidden_layers"] * c["num_attention_heads"] * hd * a.seq
    print(json.dumps(dict(case="train", method="full", config=a.config, batch=a.batch, seq=a.seq, threads=a.threads,
                          reps=a.reps, median_s=med, min_s=min(times), max_s=max(times), tokens_per_s=n / med,
                          flops_per_token=fpt, gflops=fpt * n / med / 1e9,
                          peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          implementation=f"pytorch {torch.__version__} eager"), sort_keys=True), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch-eager reference for `mixmoe bench train|prefill|decode`: the same model and work, written
as a competent PyTorch user would (transformers' LlamaForCausalLM with SDPA attention, fused AdamW,
clipping; for Mix-MoE stage 2 an index-dispatch MoE module with torch.fft router features and
requires_grad=False on frozen parameters). One JSON line per measurement, mixmoe's keys.

  python3 scripts/bench/bench_pytorch.py train --config small --threads 2 [--method full|stage2|lora]
  python3 scripts/bench/bench_pytorch.py prefill --config small --threads 2
  python3 scripts/bench/bench_pytorch.py decode --config small --threads 2 --batch 1
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
    "base": dict(vocab_size=8192, hidden_size=256, intermediate_size=704, num_hidden_layers=8,
                 num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True),
    # meta-llama/Llama-3.2-1B's shape (random weights, as `mixmoe bench --config llama-3.2-1b`)
    "llama-3.2-1b": dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=64, tie_word_embeddings=True,
                         rope_theta=500000.0, max_position_embeddings=131072,
                         rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0,
                                           high_freq_factor=4.0, original_max_position_embeddings=8192)),
}


class ExpertGroup(torch.nn.Module):
    """n SwiGLU experts (slices of d_ff) with a router over [h ; Re(FFT(h))], top-1, weight n * p."""

    def __init__(self, d, ff, n):
        super().__init__()
        s = ff // n
        self.n = n
        self.router = torch.nn.Linear(2 * d, n)
        self.gate = torch.nn.Parameter(torch.randn(n, s, d) * 0.02)
        self.up = torch.nn.Parameter(torch.randn(n, s, d) * 0.02)
        self.down = torch.nn.Parameter(torch.randn(n, d, s) * 0.02)

    def forward(self, h):
        # the FFT in fp32 (PyTorch has no bf16 FFT on the CPU), the router in the model's dtype
        feats = torch.cat([h, torch.fft.fft(h.float(), dim=-1).real.to(h.dtype)], dim=-1)
        p = torch.softmax(self.router(feats), dim=-1)
        w, idx = p.max(dim=-1)
        out = torch.zeros_like(h)
        for e in range(self.n):
            sel = (idx == e).nonzero(as_tuple=True)[0]
            if sel.numel() == 0:
                continue
            xe = h.index_select(0, sel)
            ye = (F.silu(xe @ self.gate[e].T) * (xe @ self.up[e].T)) @ self.down[e].T
            out.index_add_(0, sel, ye * (self.n * w.index_select(0, sel)).unsqueeze(1))
        f = torch.bincount(idx, minlength=self.n).float() / h.shape[0]
        self.lb = self.n * (f * p.mean(0)).sum()
        return out


class MixMoEMLP(torch.nn.Module):
    def __init__(self, d, ff, n=4):
        super().__init__()
        self.lm = ExpertGroup(d, ff, n)
        self.mt = ExpertGroup(d, ff, n)

    def forward(self, x):
        h = x.reshape(-1, x.shape[-1])
        y = (self.lm(h) + self.mt(h)) / 2
        return y.view_as(x)


class LoRALinear(torch.nn.Module):
    """PEFT's LoRA: y = W x + (alpha / r) B A x, W frozen, A random, B zero (rank 8, alpha 16)."""

    def __init__(self, base, r=8, alpha=16):
        super().__init__()
        self.base = base
        self.lora_A = torch.nn.Parameter(torch.randn(r, base.in_features) / base.in_features ** 0.5)
        self.lora_B = torch.nn.Parameter(torch.zeros(base.out_features, r))
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scale


def matmul_params(c):
    d, hd = c["hidden_size"], c["hidden_size"] // c["num_attention_heads"]
    qd, kd = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    per_layer = d * qd * 2 + d * kd * 2 + 3 * d * c["intermediate_size"]
    return c["num_hidden_layers"] * per_layer + c["vocab_size"] * d, hd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=["train", "prefill", "decode"])
    ap.add_argument("--method", default="full", choices=["full", "stage2", "lora"])
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--config", default="small", choices=list(CONFIGS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"],
                    help="decode: the model in bfloat16 (PyTorch then computes in bf16 too)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c = CONFIGS[a.config]
    cfg = LlamaConfig(**{"rms_norm_eps": 1e-5, "max_position_embeddings": 2048, **c})
    cfg._attn_implementation = "sdpa"
    model = LlamaForCausalLM(cfg).float().train()
    mp, hd = matmul_params(c)
    if a.case == "prefill":
        return bench_prefill(a, c, model, mp, hd)
    if a.case == "decode":
        return bench_decode(a, c, model, mp)
    moes = []
    if a.method == "stage2":  # MoE in layers 3, 7, ...; only the MT group trains
        for i in range(3, c["num_hidden_layers"], 4):
            model.model.layers[i].mlp = MixMoEMLP(c["hidden_size"], c["intermediate_size"])
            moes.append(model.model.layers[i].mlp)
        for name, p in model.named_parameters():
            p.requires_grad = ".mlp.mt." in name
    if a.method == "lora":  # every linear layer of every block; everything else frozen
        for p in model.parameters():
            p.requires_grad = False
        for layer in model.model.layers:
            for mod, names in ((layer.self_attn, ["q_proj", "k_proj", "v_proj", "o_proj"]),
                               (layer.mlp, ["gate_proj", "up_proj", "down_proj"])):
                for n in names:
                    setattr(mod, n, LoRALinear(getattr(mod, n)))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.0, fused=True)
    ids = torch.randint(0, c["vocab_size"], (a.batch, a.seq))
    targets = torch.roll(ids, -1, 1)
    targets[:, -1] = -100

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(input_ids=ids).logits
        loss = F.cross_entropy(logits.view(-1, c["vocab_size"]), targets.view(-1), ignore_index=-100)
        if moes:
            loss = loss + 0.01 * sum(m.lm.lb + m.mt.lb for m in moes) / len(moes)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
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
    fpt = 6 * mp + 12 * c["num_hidden_layers"] * c["num_attention_heads"] * hd * a.seq
    print(json.dumps(dict(case="train", method=a.method, config=a.config, batch=a.batch, seq=a.seq, threads=a.threads,
                          reps=a.reps, median_s=med, min_s=min(times), max_s=max(times), tokens_per_s=n / med,
                          flops_per_token=fpt, gflops=fpt * n / med / 1e9,
                          peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          implementation=f"pytorch {torch.__version__} eager"), sort_keys=True), flush=True)


def timed(a, fn):
    for _ in range(a.warmup):
        fn()
    ts = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), min(ts), max(ts)


def bench_prefill(a, c, model, mp, hd):
    model.eval()
    ids = torch.randint(0, c["vocab_size"], (a.batch, a.seq))
    with torch.inference_mode():
        med, lo, hi = timed(a, lambda: model(input_ids=ids))
    n = a.batch * a.seq
    fpt = 2 * mp + 4 * c["num_hidden_layers"] * c["num_attention_heads"] * hd * a.seq
    print(json.dumps(dict(case="prefill", config=a.config, batch=a.batch, seq=a.seq, threads=a.threads, reps=a.reps,
                          median_s=med, min_s=lo, max_s=hi, tokens_per_s=n / med, flops_per_token=fpt,
                          gflops=fpt * n / med / 1e9,
                          peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          implementation=f"pytorch {torch.__version__} eager"), sort_keys=True), flush=True)


def bench_decode(a, c, model, mp):
    model.eval()
    if a.method == "stage2":  # the stage-2 Mix-MoE model: MoE in layers 3, 7, ... (both groups)
        for i in range(3, c["num_hidden_layers"], 4):
            model.model.layers[i].mlp = MixMoEMLP(c["hidden_size"], c["intermediate_size"])
    if a.dtype == "bf16":
        model = model.to(torch.bfloat16)
    ids = torch.randint(0, c["vocab_size"], (a.batch, a.prompt))
    with torch.inference_mode():
        med, lo, hi = timed(a, lambda: model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                                      max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens,
                                                      do_sample=False, use_cache=True, pad_token_id=0))
    print(json.dumps(dict(case="decode", method=a.method, config=a.config, batch=a.batch, prompt=a.prompt, new_tokens=a.new_tokens,
                          threads=a.threads, reps=a.reps, median_s=med, min_s=lo, max_s=hi,
                          dtype=a.dtype, tokens_per_s=a.batch * a.new_tokens / med,
                          weight_gb_per_s=mp * (2 if a.dtype == "bf16" else 4) * a.new_tokens / med / 1e9,
                          peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          implementation=f"pytorch {torch.__version__} eager"), sort_keys=True), flush=True)


if __name__ == "__main__":
    main()

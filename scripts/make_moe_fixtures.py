#!/usr/bin/env python3
"""Mix-MoE fixtures (committed), computed independently of mixmoe:

- spectral.safetensors: h [5, 16], numpy.fft.fft(h).real and scipy.fft.dct(h, type=2).
- layer_k{1,2}.safetensors: a two-group (LM + MT, stage 2, combine mean) Mix-MoE layer written
  directly in PyTorch from the paper's equations: router over [h ; Re(FFT(h))] via torch.fft,
  softmax, top-k, weight (n/k) * p un-renormalised, SwiGLU experts, y = (y_LM + y_MT) / 2, and the
  Switch load-balance loss n * sum_i f_i P_i over real tokens (one padding token). Stored: the
  parameters under mixmoe's names, x, R, mask, out, loss = sum(out * R) + LB_W * (LB_lm + LB_mt),
  the LB values, dx and every parameter gradient (grad.<name>).
"""
import os
import numpy as np
import scipy.fft
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "MixMoETests", "Fixtures", "moe")
D, FF, N_EXP, T = 16, 32, 4, 10
LB_W = 0.3


def group_forward(x, W, b, experts, k, mask):
    n = N_EXP
    feats = torch.cat([x, torch.fft.fft(x, dim=-1).real], dim=-1)  # [h ; Re(FFT(h))]
    p = F.softmax(feats @ W.T + b, dim=-1)
    topv, topi = torch.topk(p, k, dim=-1)
    scale = n / k
    y = torch.zeros_like(x)
    for e, (g, u, dn) in enumerate(experts):
        out_e = (F.silu(x @ g.T) * (x @ u.T)) @ dn.T
        w = (scale * topv * (topi == e)).sum(-1, keepdim=True)  # weight of e for each token (0 if not chosen)
        y = y + w * out_e
    real = mask.sum()
    f = torch.stack([((p.argmax(-1) == i).float() * mask).sum() / real for i in range(n)])  # no gradient
    P = (p * mask[:, None]).sum(0) / real
    lb = n * (f.detach() * P).sum()
    return y, lb


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(0)
    h = rng.standard_normal((5, D)).astype(np.float32)
    save_file({"h": torch.from_numpy(h), "fft_real": torch.from_numpy(np.fft.fft(h).real.astype(np.float32)),
               "dct2": torch.from_numpy(scipy.fft.dct(h, type=2).astype(np.float32))},
              os.path.join(OUT, "spectral.safetensors"))
    s = FF // N_EXP
    for k in (1, 2):
        torch.manual_seed(k)
        params = {}
        for g in ("lm", "mt"):
            for e in range(N_EXP):
                p = f"model.layers.0.mlp.{g}_experts.{e}."
                params[p + "gate_proj.weight"] = (0.3 * torch.randn(s, D)).requires_grad_()
                params[p + "up_proj.weight"] = (0.3 * torch.randn(s, D)).requires_grad_()
                params[p + "down_proj.weight"] = (0.3 * torch.randn(D, s)).requires_grad_()
            params[f"model.layers.0.mlp.{g}_router.weight"] = (0.2 * torch.randn(N_EXP, 2 * D)).requires_grad_()
            params[f"model.layers.0.mlp.{g}_router.bias"] = (0.1 * torch.randn(N_EXP)).requires_grad_()
        x = torch.randn(T, D).requires_grad_()
        R = torch.randn(T, D)
        mask = torch.ones(T)
        mask[-1] = 0  # padding: routed but excluded from the load-balance statistics
        outs, lbs = [], []
        for g in ("lm", "mt"):
            experts = [(params[f"model.layers.0.mlp.{g}_experts.{e}.gate_proj.weight"],
                        params[f"model.layers.0.mlp.{g}_experts.{e}.up_proj.weight"],
                        params[f"model.layers.0.mlp.{g}_experts.{e}.down_proj.weight"]) for e in range(N_EXP)]
            y, lb = group_forward(x, params[f"model.layers.0.mlp.{g}_router.weight"],
                                  params[f"model.layers.0.mlp.{g}_router.bias"], experts, k, mask)
            outs.append(y); lbs.append(lb)
        out = (outs[0] + outs[1]) / 2
        loss = (out * R).sum() + LB_W * (lbs[0] + lbs[1])
        loss.backward()
        tensors = {name: p.detach().clone() for name, p in params.items()}
        tensors.update({"x": x.detach().clone(), "R": R, "mask": mask, "out": out.detach().clone(),
                        "loss": loss.detach().reshape(1), "lb": torch.stack(lbs).detach(), "dx": x.grad.clone()})
        for name, p in params.items():
            tensors["grad." + name] = p.grad.clone()
        save_file(tensors, os.path.join(OUT, f"layer_k{k}.safetensors"))
        print(f"k={k}: loss {loss.item():.6f}, LB lm {lbs[0].item():.4f} mt {lbs[1].item():.4f}")


if __name__ == "__main__":
    main()

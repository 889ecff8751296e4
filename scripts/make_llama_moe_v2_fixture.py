#!/usr/bin/env python3
"""LLaMA-MoE v2 attention-MoE fixture (committed), computed independently of mixmoe:
Tests/MixMoETests/Fixtures/moe/llama_moe_v2_attention.safetensors.

The attention MoE of LLaMA-MoE v2 (Qu et al. 2024; reference code OpenSparseLLMs/LLaMA-MoE-v2,
`MixtralAttentionMoE` and its `from_vanilla_attention`), written directly in PyTorch:
- experts from a grouped-query attention with H query heads and G KV heads: E = G * split
  experts, expert e owning H / E consecutive query heads (its rows of q_proj, its columns of
  o_proj) and its own copy of KV head e // split (rows of k_proj and v_proj);
- a linear gate without bias on the attention input, softmax in fp32, top-k, the k weights
  renormalised to sum to one and multiplied by `scale_factor_attn`;
- each expert attends only among the tokens routed to it: its causal attention runs over the
  subsequence of its tokens, which keep their original positions for the rotary embedding
  (HF Llama's rotate-half convention);
- out = sum over the selected experts of weight * o_proj_e(attention_e).
Two sequences, no padding. Stored: the dense attention's weights (q/k/v/o_proj.weight, HF
layout), the gate, x, R, out, loss = sum(out * R), dx and the gradient of every expert weight
and of the gate under the reference's names (self_attn.q_proj.E.weight, ...), plus `dense_out`:
the same experts with every one selected, a uniform gate and scale E, which must equal the
dense attention (checked here too).
"""
import math
import os
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "MixMoETests", "Fixtures", "moe", "llama_moe_v2_attention.safetensors")
D, H, G, HD, B, T = 16, 4, 2, 4, 2, 7
SPLIT, TOPK, SCALE, THETA = 2, 2, 2.0, 10000.0
E = G * SPLIT
QPE = H // E  # query heads per expert


def rope(x, pos):
    # x [..., n, HD], pos [n]; HF Llama: rotate_half with the two halves of the head
    inv = 1.0 / (THETA ** (torch.arange(0, HD, 2, dtype=torch.float) / HD))
    ang = pos[:, None].float() * inv[None]
    emb = torch.cat([ang, ang], dim=-1)
    cos, sin = emb.cos(), emb.sin()
    x1, x2 = x[..., : HD // 2], x[..., HD // 2:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def dense_attention(x, Wq, Wk, Wv, Wo):
    # plain GQA causal attention, [B, T, D] -> [B, T, D]
    pos = torch.arange(T)
    q = rope((x @ Wq.T).view(B, T, H, HD).transpose(1, 2), pos)
    k = rope((x @ Wk.T).view(B, T, G, HD).transpose(1, 2), pos)
    v = (x @ Wv.T).view(B, T, G, HD).transpose(1, 2)
    k, v = k.repeat_interleave(H // G, dim=1), v.repeat_interleave(H // G, dim=1)
    s = q @ k.transpose(-1, -2) / math.sqrt(HD)
    s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    y = (F.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, H * HD)
    return y @ Wo.T


def experts_from(Wq, Wk, Wv, Wo):
    # from_vanilla_attention: expert e gets query heads e*QPE..., KV head e // SPLIT
    ex = []
    for e in range(E):
        qo = slice(e * QPE * HD, (e + 1) * QPE * HD)
        kv = slice((e // SPLIT) * HD, (e // SPLIT + 1) * HD)
        ex.append([Wq[qo].clone(), Wk[kv].clone(), Wv[kv].clone(), Wo[:, qo].clone()])
    return ex


def moe_attention(x, experts, gate, topk, scale):
    xf = x.reshape(B * T, D)
    probs = F.softmax(xf @ gate.T, dim=1, dtype=torch.float)
    w, sel = torch.topk(probs, topk, dim=-1)
    w = w / w.sum(dim=-1, keepdim=True)
    out = torch.zeros(B * T, D)
    for e, (q_w, k_w, v_w, o_w) in enumerate(experts):
        for b in range(B):
            rows = [b * T + t for t in range(T) if (sel[b * T + t] == e).any()]
            if not rows:
                continue
            idx = torch.tensor(rows)
            pos = idx - b * T  # original positions
            xs = xf[idx]
            n = len(rows)
            q = rope((xs @ q_w.T).view(n, QPE, HD).transpose(0, 1), pos)
            k = rope((xs @ k_w.T).view(n, 1, HD).transpose(0, 1), pos)
            v = (xs @ v_w.T).view(n, 1, HD).transpose(0, 1)
            s = q @ k.transpose(-1, -2) / math.sqrt(HD)
            s = s.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 1), float("-inf"))
            y = (F.softmax(s, dim=-1) @ v).transpose(0, 1).reshape(n, QPE * HD)
            we = (w[idx] * (sel[idx] == e)).sum(-1, keepdim=True) * scale
            out = out.index_add(0, idx, we * (y @ o_w.T))
    return out.view(B, T, D), sel


def main():
    torch.manual_seed(11)
    Wq, Wo = 0.4 * torch.randn(H * HD, D), 0.4 * torch.randn(D, H * HD)
    Wk, Wv = 0.4 * torch.randn(G * HD, D), 0.4 * torch.randn(G * HD, D)
    x = torch.randn(B, T, D)
    R = torch.randn(B, T, D)

    # all experts selected, uniform gate, scale E: the dense attention exactly
    dense = dense_attention(x, Wq, Wk, Wv, Wo)
    all_out, _ = moe_attention(x, experts_from(Wq, Wk, Wv, Wo), torch.zeros(E, D), E, float(E))
    assert torch.allclose(all_out, dense, atol=1e-5), (all_out - dense).abs().max()

    # top-k routing with a gate sharp enough that tokens differ in their experts
    ex = [[t.clone().requires_grad_() for t in e] for e in experts_from(Wq, Wk, Wv, Wo)]
    for e in ex:  # make the copies of a KV head differ, as after training, so every gradient is distinct
        for t in e:
            t.data += 0.05 * torch.randn_like(t)
    gate = (2.0 * torch.randn(E, D)).requires_grad_()
    xg = x.clone().requires_grad_()
    out, sel = moe_attention(xg, ex, gate, TOPK, SCALE)
    loss = (out * R).sum()
    loss.backward()

    pre = "model.layers.0.self_attn."
    t = {pre + "q_proj.weight": Wq, pre + "k_proj.weight": Wk, pre + "v_proj.weight": Wv, pre + "o_proj.weight": Wo,
         pre + "gate.weight": gate.detach().clone(), "grad." + pre + "gate.weight": gate.grad.clone(),
         "x": x, "R": R, "out": out.detach().clone(), "dense_out": dense, "loss": loss.detach().reshape(1),
         "dx": xg.grad.clone(), "selected": sel.to(torch.float32).contiguous(),
         "settings": torch.tensor([float(SPLIT), float(TOPK), SCALE, THETA])}
    for e, ws in enumerate(ex):
        for name, w in zip(("q_proj", "k_proj", "v_proj", "o_proj"), ws):
            t[f"{pre}{name}.{e}.weight"] = w.detach().clone()
            t[f"grad.{pre}{name}.{e}.weight"] = w.grad.clone()
    save_file({k: v.contiguous() for k, v in t.items()}, OUT)
    print(f"loss {loss.item():.6f}  selections {sel.tolist()}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""MoE-LPR layer fixture (committed), computed independently of mixmoe:
Tests/MixMoETests/Fixtures/moe/moe_lpr_layer.safetensors.

The MoE-LPR layer written directly in PyTorch after its reference implementation
(zjwang21/MoE-LPR: peft/tuners/moe/layer.py and the Qwen2 model's loss functions): a linear
router without bias, softmax, top-2, the two weights renormalised to sum to one, SwiGLU experts
(expert 0 stands for the original FFN, the others for its copies; here all four differ so every
gradient is exercised); Mixtral's load-balance loss n * sum_j sum_i f_ji P_i over real tokens
(f from every selected slot, one padding token); and the language-prior routing loss:
CrossEntropyLoss applied to the router *probabilities* (as the reference does) with target
expert 0, averaged over the tokens marked as original language.
Stored: parameters under mixmoe's names (one group, `lm`), x, R, mask, lpr_mask, out,
loss = sum(out * R) + LB_W * lb + LPR_W * lpr, lb, lpr, dx and every gradient (grad.<name>).
"""
import os
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "MixMoETests", "Fixtures", "moe", "moe_lpr_layer.safetensors")
D, FF, N_EXP, T, K = 16, 32, 4, 12, 2
LB_W, LPR_W = 0.3, 0.7


def main():
    torch.manual_seed(7)
    pre = "model.layers.0.mlp.lm_"
    params = {}
    for e in range(N_EXP):
        p = f"{pre}experts.{e}."
        params[p + "gate_proj.weight"] = (0.3 * torch.randn(FF, D)).requires_grad_()
        params[p + "up_proj.weight"] = (0.3 * torch.randn(FF, D)).requires_grad_()
        params[p + "down_proj.weight"] = (0.3 * torch.randn(D, FF)).requires_grad_()
    W = torch.empty(N_EXP, D)
    torch.nn.init.xavier_normal_(W)
    params[pre + "router.weight"] = (3 * W).requires_grad_()  # sharper than at init, so routing varies
    x = torch.randn(T, D).requires_grad_()
    R = torch.randn(T, D)
    mask = torch.ones(T)
    mask[-1] = 0  # padding: routed, excluded from the load balance
    lpr_mask = torch.zeros(T)
    lpr_mask[[0, 2, 3, 7, 10]] = 1  # tokens of the original language

    logits = x @ params[pre + "router.weight"].T
    probs = F.softmax(logits, dim=1, dtype=torch.float)
    w, sel = torch.topk(probs, K, dim=-1)
    w = w / w.sum(dim=-1, keepdim=True)
    out = torch.zeros_like(x)
    for e in range(N_EXP):
        g, u, dn = (params[f"{pre}experts.{e}.{n}_proj.weight"] for n in ("gate", "up", "down"))
        y = (F.silu(x @ g.T) * (x @ u.T)) @ dn.T
        we = (w * (sel == e)).sum(-1, keepdim=True)
        out = out + we * y
    # Mixtral's load_balancing_loss_func with an attention mask
    expert_mask = F.one_hot(sel, N_EXP).float()  # [T, K, E]
    m = mask[:, None, None]
    tokens_per_expert = (expert_mask * m).sum(0) / mask.sum()  # [K, E]
    prob_per_expert = (probs * mask[:, None]).sum(0) / mask.sum()  # [E]
    lb = N_EXP * (tokens_per_expert * prob_per_expert[None]).sum()
    # MoE-LPR's lpr_loss_func: CrossEntropyLoss(probs[masked], 0)
    sel_probs = probs[lpr_mask.bool()]
    lpr = F.cross_entropy(sel_probs, torch.zeros(sel_probs.shape[0], dtype=torch.long))
    loss = (out * R).sum() + LB_W * lb + LPR_W * lpr
    loss.backward()
    tensors = {n: p.detach().clone() for n, p in params.items()}
    tensors[pre + "router.bias"] = torch.zeros(N_EXP)
    tensors.update({"x": x.detach().clone(), "R": R, "mask": mask, "lpr_mask": lpr_mask, "out": out.detach().clone(),
                    "loss": loss.detach().reshape(1), "lb": lb.detach().reshape(1), "lpr": lpr.detach().reshape(1),
                    "dx": x.grad.clone(), "weights": torch.tensor([LB_W, LPR_W])})
    for n, p in params.items():
        tensors["grad." + n] = p.grad.clone()
    tensors["grad." + pre + "router.bias"] = torch.zeros(N_EXP)  # no bias in MoE-LPR: ours is frozen at 0
    save_file(tensors, OUT)
    print(f"loss {loss.item():.6f}  lb {lb.item():.5f}  lpr {lpr.item():.5f}  selections {sel.tolist()}")


if __name__ == "__main__":
    main()

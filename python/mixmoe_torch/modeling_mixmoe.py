"""PyTorch implementation of the models mixmoe writes (remote code for transformers).

The dense part is transformers' own ``LlamaForCausalLM`` / ``Qwen2ForCausalLM``, so the KV cache,
``generate`` (greedy, sampling, beam search), attention backends and ``Trainer`` work unchanged;
the layers transformers lacks replace the dense ones after construction:

- Mix-MoE FFN (docs/DESIGN.md, *Mix-MoE layer*): per group (LM; from stage 2 on also MT) ``n``
  SwiGLU experts and a router ``logits = W [h ; T h] + b`` in fp32, ``p = softmax(logits)``, top-k
  experts per token (largest p). Slice upcycling weighs a selected expert by ``gate_scale * p``
  (not renormalised); copy upcycling by ``p / (sum of the selected p)``. Stage 2 combines the
  groups as ``(y_LM + y_MT) / 2`` (``combine: mean``) or their sum. ``T``: ``fft`` Re(FFT(h))
  unnormalised, ``dct`` scipy's unnormalised DCT-II, ``random`` the stored
  ``model.router_transform`` (``f = R h``), ``none`` no transform (router input ``h``).
- Load balance (Switch Transformer, or Mixtral's count of every selected slot when
  ``load_balance: mixtral``): ``n * sum_i f_i P_i`` over the real tokens (attention mask), with
  ``f`` held constant; the model's ``aux_loss`` is the mean over MoE layers of the sum over
  groups, and ``loss = CE + lb_coef * aux_loss`` when labels are given, as mixmoe trains.
- LLaMA-MoE v2's attention experts (``attn_moe`` block; ``expert_attention``).
- LoRA (``lora`` block): ``y = W x + (alpha / r) B A x`` on the listed modules, PEFT's names
  (``...q_proj.lora_A.weight``, ``...q_proj.lora_B.weight``).

``apply_freeze_plan(model, plan)`` sets ``requires_grad`` as mixmoe's freeze plans do, and
``begin_stage2(model)`` copies the LM group into a new MT group (the stage-2 start).
"""
import math
import sys

import torch
import torch.nn.functional as F
from torch import nn
from transformers import LlamaForCausalLM, Qwen2ForCausalLM
from transformers.modeling_outputs import MoeCausalLMOutputWithPast

from .configuration_mixmoe import MixMoELlamaConfig, MixMoEQwen2Config


class MixMoEExpert(nn.Module):
    """One SwiGLU expert: ``down(silu(gate(x)) * up(x))`` of width ``s``."""

    def __init__(self, d, s):
        super().__init__()
        self.gate_proj = nn.Linear(d, s, bias=False)
        self.up_proj = nn.Linear(d, s, bias=False)
        self.down_proj = nn.Linear(s, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def router_transform_matrix(features, d):
    """The fixed ``T`` of ``fft`` and ``dct`` as a ``[d, d]`` matrix with ``f = T h`` (fp64 math)."""
    k = torch.arange(d, dtype=torch.float64)[:, None]
    j = torch.arange(d, dtype=torch.float64)[None, :]
    if features == "fft":
        # reduce j*k mod d first so the angle stays exact for large d
        return torch.cos(2 * math.pi * torch.remainder(j * k, d) / d).float()
    if features == "dct":
        return (2 * torch.cos(math.pi * k * (2 * j + 1) / (2 * d))).float()
    return None


class MixMoEMLP(nn.Module):
    """A Mix-MoE layer in place of one dense FFN (one or two expert groups)."""

    def __init__(self, config, spec, model_ref):
        super().__init__()
        d, ff = config.hidden_size, config.intermediate_size
        self.n = spec["experts_per_group"]
        self.k = spec["top_k"]
        self.scale = float(spec["gate_scale"])
        self.features = spec["router_features"]
        self.copy = spec.get("upcycle", "slice") == "copy"
        self.balance = spec.get("load_balance", "switch")
        self.combine = spec.get("combine", "mean")
        s = ff if self.copy else ff // self.n
        width = d if self.features == "none" else 2 * d
        self.groups = ["lm", "mt"] if spec.get("groups", 2) == 2 and spec.get("stage", 1) == 2 else ["lm"]
        for g in self.groups:
            setattr(self, f"{g}_experts", nn.ModuleList([MixMoEExpert(d, s) for _ in range(self.n)]))
            setattr(self, f"{g}_router", nn.Linear(width, self.n, bias=True))
        # fixed, not a parameter nor a buffer: transformers builds models on the meta device and
        # would leave a non-persistent buffer uninitialised; made on first use instead
        self._transform = None
        # the `random` transform is the model's parameter model.router_transform (shared by layers)
        self._model_ref = model_ref
        self.real_mask = None  # [B*T] 1 = real token, set by the causal LM for the load balance
        self.lb_loss = None
        self.router_logits = []

    def router_input(self, h):
        h = h.float()
        if self.features == "none":
            return h
        if self.features == "random":
            R = self._model_ref().model.router_transform.float()
            return torch.cat([h, h @ R.T], dim=-1)
        if self._transform is None or self._transform.device != h.device:
            self._transform = router_transform_matrix(self.features, h.shape[-1]).to(h.device)
        return torch.cat([h, h @ self._transform.T], dim=-1)

    def group(self, name, x):
        experts, router = getattr(self, f"{name}_experts"), getattr(self, f"{name}_router")
        logits = F.linear(self.router_input(x), router.weight.float(), router.bias.float())
        p = torch.softmax(logits, dim=-1)
        top_p, top_i = torch.topk(p, self.k, dim=-1)
        w = top_p / top_p.sum(-1, keepdim=True) if self.copy else self.scale * top_p
        y = torch.zeros_like(x)
        for e in range(self.n):
            token, slot = torch.nonzero(top_i == e, as_tuple=True)
            if token.numel() == 0:
                continue
            out = experts[e](x[token])
            y = y.index_add(0, token, (w[token, slot, None] * out.float()).to(x.dtype))
        # load balance over real tokens: f from the top-1 choice (Switch) or every slot (Mixtral)
        m = torch.ones(x.shape[0], dtype=torch.float32, device=x.device) if self.real_mask is None else self.real_mask
        real = m.sum().clamp_min(1e-9)
        if self.balance == "mixtral":
            chosen = F.one_hot(top_i, self.n).sum(1).float()
        else:
            chosen = F.one_hot(p.argmax(-1), self.n).float()
        f = (chosen * m[:, None]).sum(0).detach() / real
        P = (p * m[:, None]).sum(0) / real
        return y, self.n * (f * P).sum(), logits

    def forward(self, hidden_states):
        shape = hidden_states.shape
        x = hidden_states.reshape(-1, shape[-1])
        ys, lb, self.router_logits = [], 0.0, []
        for g in self.groups:
            y, l, logits = self.group(g, x)
            ys.append(y)
            lb = lb + l
            self.router_logits.append(logits)
        self.lb_loss = lb
        y = ys[0] if len(ys) == 1 else (ys[0] + ys[1]) * (0.5 if self.combine == "mean" else 1.0)
        return y.reshape(shape)


class LoRALinear(nn.Linear):
    """A linear layer with a LoRA adapter: ``W x (+ b) + (alpha / r) B A x``."""

    def __init__(self, base, r, alpha):
        super().__init__(base.in_features, base.out_features, bias=base.bias is not None)
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        self.lora_scale = alpha / r

    def forward(self, x):
        return super().forward(x) + self.lora_scale * self.lora_B(self.lora_A(x))


def expert_attention(base_cls):
    """LLaMA-MoE v2's attention MoE over `base_cls` (transformers' Llama or Qwen2 attention).

    Every KV head, with the query heads that share it, is one expert (config.json's
    ``num_key_value_heads`` experts). A gate without bias on the attention input gives
    ``p = softmax(x Wg^T)`` (fp32); a token keeps the ``top_k_attn`` largest, renormalised to sum
    to one and multiplied by ``scale_factor_attn``. An expert attends only among the tokens
    routed to it (their positions unchanged for the rotary embedding), and a token's output is
    the weighted sum of its experts' ``o_proj`` outputs (``o_proj`` is linear over the heads, so
    that is ``o_proj`` of the heads' outputs scaled by their expert's weight).

    The KV cache remembers each position's experts: the keys carry one more channel, 0 where the
    position is routed to that KV head's expert and -1e9 where it is not, added to the score, so
    beam reordering and cropping move the routes with the keys."""
    rotary = sys.modules[base_cls.__module__].apply_rotary_pos_emb

    class MixMoEExpertAttention(base_cls):
        def __init__(self, config, layer_idx, spec):
            super().__init__(config, layer_idx)
            self.experts = config.num_key_value_heads
            self.top_k = int(spec["top_k_attn"])
            self.scale = float(spec["scale_factor_attn"])
            self.gate = nn.Linear(config.hidden_size, self.experts, bias=False)

        def forward(self, hidden_states, position_embeddings=None, attention_mask=None, cache=None, **kwargs):
            B, T, _ = hidden_states.shape
            hd, E = self.head_dim, self.experts
            q = self.q_proj(hidden_states).view(B, T, -1, hd).transpose(1, 2)
            k = self.k_proj(hidden_states).view(B, T, -1, hd).transpose(1, 2)
            v = self.v_proj(hidden_states).view(B, T, -1, hd).transpose(1, 2)
            cos, sin = position_embeddings
            q, k = rotary(q, k, cos, sin)
            p = torch.softmax(F.linear(hidden_states.float(), self.gate.weight.float()), dim=-1)
            top_p, top_i = torch.topk(p, self.top_k, dim=-1)
            w = torch.zeros_like(p).scatter(-1, top_i, self.scale * top_p / top_p.sum(-1, keepdim=True))  # [B, T, E]
            routed = torch.zeros_like(p, dtype=torch.bool).scatter(-1, top_i, True)
            mark = torch.where(routed, 0.0, -1e9).transpose(1, 2)[..., None].to(k.dtype)  # [B, E, T, 1]
            k = torch.cat([k, mark], dim=-1)
            v = torch.cat([v, torch.zeros_like(mark)], dim=-1)
            if cache is not None:
                k, v = cache.update(k, v, self.layer_idx, kwargs=kwargs)
            S = k.shape[2]
            groups = q.shape[1] // E
            kk, vv = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
            scores = (q @ kk[..., :hd].transpose(-1, -2)) * self.scaling + kk[..., hd][:, :, None, :]
            # a large finite negative, not -inf: padding rows see no key at all and must stay finite
            low = torch.finfo(scores.dtype).min
            if attention_mask is None or attention_mask.dim() != 4:
                causal = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(S - T)
                scores = scores.masked_fill(~causal, low)
            elif attention_mask.dtype == torch.bool:
                scores = scores.masked_fill(~attention_mask[..., :S], low)
            else:
                scores = scores + attention_mask[..., :S]
            att = torch.softmax(scores.float(), dim=-1).to(q.dtype) @ vv[..., :hd]  # [B, H, T, hd]
            head_w = w.repeat_interleave(groups, dim=-1).transpose(1, 2)[..., None].to(att.dtype)  # [B, H, T, 1]
            y = (att * head_w).transpose(1, 2).reshape(B, T, -1)
            return self.o_proj(y), None

    return MixMoEExpertAttention


def _convert(model, config):
    """Replaces the dense modules of `model` (just built by transformers) by mixmoe's layers."""
    import weakref

    ref = weakref.ref(model)
    spec = config.mix_moe
    if config.attn_moe:
        for i in config.attn_moe["layers"]:
            old = model.model.layers[i].self_attn
            model.model.layers[i].self_attn = expert_attention(type(old))(config, i, config.attn_moe)
    if spec:
        if spec.get("router_features") == "random":
            d = config.hidden_size
            model.model.router_transform = nn.Parameter(torch.zeros(d, d), requires_grad=False)
        for i in spec["moe_layers"]:
            model.model.layers[i].mlp = MixMoEMLP(config, spec, ref)
    if config.lora:
        r, alpha, targets = config.lora["r"], float(config.lora["alpha"]), set(config.lora["targets"])
        for name, module in list(model.model.layers.named_modules()):
            for child, sub in list(module.named_children()):
                if child in targets and isinstance(sub, nn.Linear) and not isinstance(sub, LoRALinear):
                    setattr(module, child, LoRALinear(sub, r, alpha))


class _MixMoEMixin:
    """What the Llama and Qwen2 variants share: the layers swapped in after transformers builds
    the dense model, the MoE layers' masks and the auxiliary loss."""

    def __init__(self, config):
        super().__init__(config)
        _convert(self, config)
        self.post_init()

    def moe_layers(self):
        return [m for m in self.model.modules() if isinstance(m, MixMoEMLP)]

    def forward(self, input_ids=None, attention_mask=None, labels=None, output_router_logits=None, **kwargs):
        layers = self.moe_layers()
        # the load balance counts real tokens only (right or left padding alike)
        mask = None
        if attention_mask is not None and input_ids is not None and attention_mask.shape == input_ids.shape:
            mask = attention_mask.reshape(-1).float()
        for layer in layers:
            layer.real_mask = mask
        out = super().forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)
        aux = None
        if layers:
            aux = sum(layer.lb_loss for layer in layers) / len(layers)
            if labels is not None:
                out.loss = out.loss + self.config.mix_moe.get("lb_coef", 0.01) * aux
        want = self.config.output_router_logits if output_router_logits is None else output_router_logits
        return MoeCausalLMOutputWithPast(
            loss=out.loss,
            aux_loss=aux,
            logits=out.logits,
            cache=out.cache,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
            router_logits=tuple(lg for layer in layers for lg in layer.router_logits) if want and layers else None,
        )


class MixMoELlamaForCausalLM(_MixMoEMixin, LlamaForCausalLM):
    config_class = MixMoELlamaConfig


class MixMoEQwen2ForCausalLM(_MixMoEMixin, Qwen2ForCausalLM):
    config_class = MixMoEQwen2Config


# --- training helpers (mixmoe's freeze plans; docs/DESIGN.md, *Freeze matrix*) ---

FREEZE_PLANS = ("full", "stage1", "stage2", "lora", "llama-pro", "moe", "moe-lpr-experts", "routers", "llama-moe-v2")


def is_trainable(plan, name, config):
    """mixmoe's freeze plans (its FreezePlan): which parameters a method updates.

    - ``full``: every parameter (dense SFT, PT+SFT);
    - ``stage1`` / ``moe``: the LM experts and LM router (Mix-MoE stage 1; the one-group MoE baselines);
    - ``stage2``: the MT experts and MT router (Mix-MoE stage 2, LM side frozen);
    - ``lora``: the LoRA adapters; ``llama-pro``: the inserted blocks;
    - ``moe-lpr-experts``: MoE-LPR's new experts (1..n-1; expert 0 is the original FFN) and router
      weights; ``routers``: router weights only (MoE-LPR's second stage);
    - ``llama-moe-v2``: everything but the MLP routers' biases.
    ``model.router_transform`` (a fixed transform) is never trained.
    """
    if name.endswith("router_transform"):
        return False
    if plan == "full":
        return True
    if plan in ("stage1", "moe"):
        return ".mlp.lm_experts." in name or ".mlp.lm_router." in name
    if plan == "stage2":
        return ".mlp.mt_experts." in name or ".mlp.mt_router." in name
    if plan == "lora":
        return name.endswith(".lora_A.weight") or name.endswith(".lora_B.weight")
    if plan == "moe-lpr-experts":
        return (".mlp.lm_experts." in name and ".mlp.lm_experts.0." not in name) or name.endswith(".mlp.lm_router.weight")
    if plan == "routers":
        return name.endswith("_router.weight")
    if plan == "llama-moe-v2":
        return not name.endswith("_router.bias")
    if plan == "llama-pro":
        return any(name.startswith(f"model.layers.{i}.") for i in (getattr(config, "llama_pro_expanded_layers", None) or []))
    raise ValueError(f"unknown freeze plan {plan!r}: expected one of {', '.join(FREEZE_PLANS)}")


def apply_freeze_plan(model, plan):
    """Sets ``requires_grad`` by mixmoe's plan ``plan`` (see ``is_trainable``); returns the model."""
    for name, p in model.named_parameters():
        p.requires_grad_(is_trainable(plan, name, model.config))
    return model


@torch.no_grad()
def begin_stage2(model):
    """Stage 2's start: the MT experts and router become exact copies of the LM ones, the
    config's ``stage`` becomes 2, so the model computes what the stage-1 model computed (with
    ``combine: mean``)."""
    spec = model.config.mix_moe
    if not spec or spec.get("groups", 2) != 2 or spec.get("stage", 1) != 1:
        raise ValueError("begin_stage2 needs a two-group Mix-MoE model in stage 1 (config.json mix_moe.groups 2, stage 1)")
    spec["stage"] = 2
    for layer in model.moe_layers():
        src_e, src_r = layer.lm_experts, layer.lm_router
        layer.mt_experts = nn.ModuleList([MixMoEExpert(e.gate_proj.in_features, e.gate_proj.out_features) for e in src_e])
        layer.mt_experts.load_state_dict(src_e.state_dict())
        layer.mt_router = nn.Linear(src_r.in_features, src_r.out_features, bias=True)
        layer.mt_router.load_state_dict(src_r.state_dict())
        layer.mt_experts.to(src_r.weight.device, src_r.weight.dtype)
        layer.mt_router.to(src_r.weight.device, src_r.weight.dtype)
        layer.groups = ["lm", "mt"]
    return model

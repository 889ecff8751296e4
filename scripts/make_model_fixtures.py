#!/usr/bin/env python3
"""Generate the dense-model parity fixtures used by Tests/MixMoETests (run once; outputs are committed).

For each tiny random model (Llama untied, Llama tied + Llama-3 rope scaling, Llama with attention
bias, Qwen2 with q/k/v biases) it writes, under Tests/MixMoETests/Fixtures/models/<case>/:
  config.json, model.safetensors  -- via transformers' save_pretrained
  expected.safetensors             -- ids, targets, logits, loss, grad.<param> and the 5 AdamW losses
Truth is transformers' LlamaForCausalLM / Qwen2ForCausalLM and PyTorch autograd / torch.optim.AdamW.
"""
import os, json, sys
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "MixMoETests", "Fixtures", "models")
B, T, V = 2, 7, 97
ADAM = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)

common = dict(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, head_dim=8, rms_norm_eps=1e-5,
              rope_theta=10000.0, max_position_embeddings=64, hidden_act="silu")
CASES = {
    "llama_untied": (LlamaConfig, LlamaForCausalLM, dict(tie_word_embeddings=False)),
    "llama_tied_rope3": (LlamaConfig, LlamaForCausalLM, dict(
        tie_word_embeddings=True,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 16})),
    "llama_attn_bias": (LlamaConfig, LlamaForCausalLM, dict(tie_word_embeddings=False, attention_bias=True)),
    "qwen2_bias": (Qwen2Config, Qwen2ForCausalLM, dict(tie_word_embeddings=False)),
}


def perturb(model, gen):
    """Move weights away from init (norms != 1, biases != 0) so every code path matters."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=gen)
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * r)
            else:
                p.copy_(0.1 * r)


def main():
    for case, (cfg_cls, model_cls, extra) in CASES.items():
        torch.manual_seed(0)
        gen = torch.Generator().manual_seed(1234)
        cfg = cfg_cls(**common, **extra)
        cfg._attn_implementation = "eager"
        model = model_cls(cfg).float()
        perturb(model, gen)
        if cfg.tie_word_embeddings:
            assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
        d = os.path.join(OUT, case)
        os.makedirs(d, exist_ok=True)
        model.save_pretrained(d, safe_serialization=True)

        ids = torch.randint(0, V, (B, T), generator=gen)
        targets = torch.roll(ids, -1, dims=1)
        targets[:, -1] = -100
        targets[0, 2] = -100  # an ignored position in the middle
        out = model(input_ids=ids)
        logits = out.logits
        loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-100)
        loss.backward()
        exp = {
            "ids": ids.float().contiguous(),
            "targets": targets.float().contiguous(),
            "logits": logits.detach().reshape(B * T, V).contiguous(),
            "loss": loss.detach().reshape(1),
        }
        for name, p in model.named_parameters():
            exp["grad." + name] = p.grad.detach().contiguous().clone()

        # 5 AdamW steps with clipping at 1.0 on the same batch; loss recorded before each step.
        opt = torch.optim.AdamW(model.parameters(), **ADAM)
        losses = []
        for _ in range(5):
            opt.zero_grad()
            lg = model(input_ids=ids).logits
            l = F.cross_entropy(lg.reshape(-1, V), targets.reshape(-1), ignore_index=-100)
            losses.append(l.item())
            l.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        exp["adamw_losses"] = torch.tensor(losses, dtype=torch.float32)
        save_file(exp, os.path.join(d, "expected.safetensors"), metadata={"adam": json.dumps(ADAM)})
        print(case, "loss", loss.item(), "adamw", [round(x, 6) for x in losses])


if __name__ == "__main__":
    main()

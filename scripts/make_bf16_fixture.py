#!/usr/bin/env python3
"""A bf16, sharded copy of the llama_untied fixture, written by transformers.

  python3 scripts/make_bf16_fixture.py

Reads Tests/MixMoETests/Fixtures/models/llama_untied (made by make_model_fixtures.py), casts the
model to bfloat16 and saves it with save_pretrained(max_shard_size="40KB"): BF16 tensors in several
model-0000K-of-0000N.safetensors shards with model.safetensors.index.json, transformers' own layout.
expected.safetensors holds the fixture's ids and the logits of those bf16 weights computed in fp32
(what `--dtype bf16` must reproduce) and computed in bf16 (PyTorch's bf16 arithmetic, for scale).
"""
import os
import torch
from safetensors.torch import save_file, load_file
from transformers import LlamaForCausalLM

ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "MixMoETests", "Fixtures", "models")
SRC, DST = os.path.join(ROOT, "llama_untied"), os.path.join(ROOT, "llama_untied_bf16")


def main():
    ids = load_file(os.path.join(SRC, "expected.safetensors"))["ids"].long()
    model = LlamaForCausalLM.from_pretrained(SRC, dtype=torch.float32).eval()
    model.config._attn_implementation = "eager"
    half = model.to(torch.bfloat16)
    os.makedirs(DST, exist_ok=True)
    for f in os.listdir(DST):
        os.remove(os.path.join(DST, f))
    half.save_pretrained(DST, safe_serialization=True, max_shard_size="40KB")
    # fp32 compute on the rounded weights: a fresh fp32 model with its parameters rounded in place
    # (casting the bf16 model back would leave the rotary inverse frequencies rounded too)
    rounded = LlamaForCausalLM.from_pretrained(SRC, dtype=torch.float32).eval()
    rounded.config._attn_implementation = "eager"
    with torch.no_grad():
        for p in rounded.parameters():
            p.copy_(p.to(torch.bfloat16).float())
        bf16_compute = half(input_ids=ids).logits.float()
        fp32_compute = rounded(input_ids=ids).logits
    B, T, V = fp32_compute.shape
    save_file({"ids": ids.float().contiguous(),
               "logits": fp32_compute.reshape(B * T, V).contiguous(),
               "logits_bf16_compute": bf16_compute.reshape(B * T, V).contiguous()},
              os.path.join(DST, "expected.safetensors"))
    print(sorted(os.listdir(DST)))


if __name__ == "__main__":
    main()

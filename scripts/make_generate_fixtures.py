#!/usr/bin/env python3
"""Greedy-decoding fixtures: transformers' `generate` on the committed parity models (run once;
outputs are committed).

For each model under Tests/MixMoETests/Fixtures/models/<case>/ (written by make_model_fixtures.py)
it writes generate.json: prompts of different lengths and the 12 token ids that
`model.generate(do_sample=False, num_beams=1, max_new_tokens=12)` produces for each prompt alone,
with no end token (so all 12 are compared). Truth is transformers' greedy search with its KV cache.
"""
import json, os
import torch
from transformers import AutoModelForCausalLM

ROOT = os.path.join(os.path.dirname(__file__), "..", "Tests", "MixMoETests", "Fixtures", "models")
PROMPTS = [[5, 17, 3], [42], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [96, 0, 33, 60, 12]]
NEW = 12


def main():
    for case in sorted(os.listdir(ROOT)):
        d = os.path.join(ROOT, case)
        model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager").eval()
        model.generation_config.eos_token_id = None
        model.generation_config.pad_token_id = 0
        outs = []
        with torch.no_grad():
            for p in PROMPTS:
                ids = torch.tensor([p])
                g = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, num_beams=1,
                                   max_new_tokens=NEW, min_new_tokens=NEW)
                outs.append(g[0, len(p):].tolist())
        with open(os.path.join(d, "generate.json"), "w") as f:
            json.dump({"prompts": PROMPTS, "max_new_tokens": NEW, "outputs": outs}, f)
        print(case, outs[0])


if __name__ == "__main__":
    main()

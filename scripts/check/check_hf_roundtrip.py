#!/usr/bin/env python3
"""Check that models written by mixmoe load in transformers and give mixmoe's logits.

  python3 scripts/check/check_hf_roundtrip.py [--mixmoe .build/release/mixmoe] [--model DIR ...]
                                        [--config llama-3.2-1b --config qwen2.5-0.5b]

Without --model or --config it writes fresh small models with `mixmoe init` for a Llama (tied,
Llama-3 rope scaling) and a Qwen2 config; --config NAME writes a random model of a named
configuration instead (the real Llama-3.2-1B / Qwen2.5-0.5B shapes: 5 GB / 2 GB, a minute or two
each). For each model it runs `mixmoe forward` on fixed ids, loads the directory with transformers'
AutoModelForCausalLM, and reports the max absolute logit difference and that difference relative to
the largest reference logit; both must be below 1e-4.

--dtype bf16 runs `mixmoe forward --dtype bf16` (weight matrices held in bf16, compute in fp32) and
compares it with (1) transformers in fp32 on the same weights rounded to bf16 (the same function:
bar 1e-4 as above) and (2) transformers computing in bf16 (`dtype=torch.bfloat16`, activations
rounded too: reported with a bf16 bar of 5e-2 relative to the largest logit).
"""
import argparse, json, os, shutil, subprocess, sys, tempfile
import torch
from transformers import AutoModelForCausalLM

CONFIGS = {
    "llama_tied_rope3": dict(model_type="llama", vocab_size=300, hidden_size=64, intermediate_size=128,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True,
                             max_position_embeddings=256,
                             rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                               high_freq_factor=4.0, original_max_position_embeddings=32)),
    "qwen2": dict(model_type="qwen2", vocab_size=300, hidden_size=64, intermediate_size=128,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
                  rope_theta=1000000.0, tie_word_embeddings=False, max_position_embeddings=256),
}


def check(mixmoe, model_dir, ids, dtype):
    out = subprocess.run([mixmoe, "forward", "--model", model_dir, "--ids", ",".join(map(str, ids)),
                          "--threads", "1", "--dtype", dtype], check=True, capture_output=True, text=True).stdout
    ours = torch.tensor(json.loads(out)["logits"])

    def compare(hf, what):
        with torch.no_grad():
            ref = hf(input_ids=torch.tensor([ids])).logits[0].float()
        diff = (ours - ref).abs().max().item()
        rel = diff / ref.abs().max().item()
        print(f"{model_dir} ({what}): {type(hf).__name__}, {sum(p.numel() for p in hf.parameters())} parameters, "
              f"{len(ids)} tokens, max |logit diff| = {diff:.3g}, relative to max |logit| = {rel:.3g}", flush=True)
        return diff, rel

    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    if dtype == "f32":
        diff, rel = compare(hf, "fp32")
        del hf
        return max(diff, rel)
    with torch.no_grad():  # the matrices mixmoe holds in bf16: every 2-D weight of a dense model
        for p in hf.parameters():
            if p.dim() == 2:
                p.copy_(p.to(torch.bfloat16).float())
    diff, rel = compare(hf, "bf16 weights, fp32 compute")
    del hf
    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).eval()
    _, rel16 = compare(hf, "bf16 compute")
    del hf
    return max(diff, rel, rel16 * 1e-4 / 5e-2)  # the bf16-compute bar is 5e-2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mixmoe", default=".build/release/mixmoe")
    ap.add_argument("--model", action="append", default=[])
    ap.add_argument("--config", action="append", default=[], help="a named config of `mixmoe init`")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    a = ap.parse_args()
    ids = [1, 17, 42, 99, 5, 250, 7, 3, 64, 128, 200, 11]
    dirs = list(a.model)
    tmp = tempfile.mkdtemp(prefix="mixmoe-hf-")
    for name in a.config:
        d = os.path.join(tmp, name)
        subprocess.run([a.mixmoe, "init", "--config", name, "--out", d, "--seed", "3"], check=True)
        dirs.append(d)
    if not dirs:
        for name, cfg in CONFIGS.items():
            cfg_path = os.path.join(tmp, name + ".json")
            with open(cfg_path, "w") as f:
                json.dump(cfg, f)
            d = os.path.join(tmp, name)
            subprocess.run([a.mixmoe, "init", "--config", cfg_path, "--out", d, "--seed", "3"], check=True)
            dirs.append(d)
    worst = 0.0
    for d in dirs:
        worst = max(worst, check(a.mixmoe, d, ids, a.dtype))
        if d.startswith(tmp):
            shutil.rmtree(d)  # a 1B model is 5 GB
    print("PASS" if worst < 1e-4 else "FAIL", f"(worst {worst:.3g}, bar 1e-4)")
    sys.exit(0 if worst < 1e-4 else 1)


if __name__ == "__main__":
    main()

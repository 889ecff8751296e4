"""Train a model mixmoe wrote, in PyTorch (CPU or GPU, one process or under torchrun).

    python -m mixmoe_torch.train --model DIR --out DIR --stage 1 mono.en.txt mono.de.txt ...
    python -m mixmoe_torch.train --model DIR --out DIR --stage 2 train.de-en.tsv ...
    python -m mixmoe_torch.train --model DIR --out DIR --stage sft train.de-en.tsv ...
    torchrun --nproc-per-node 8 -m mixmoe_torch.train ... --device cuda

What mixmoe does, the same way (docs/TRAINING-ON-GPUS.md):
- data: mixmoe's corpus formats (TSV ``NAME.xx-en.tsv`` = ``English<TAB>xx``, Moses pairs
  ``a.de,b.en``, ALMA JSON lines ``{"translation": {...}}``; monolingual text as lines or JSON lines
  ``{"text": ...}``); ALMA's prompt, the target tokenised as ``" " + target`` plus EOS, loss on the
  target and EOS only; stage 1 on packed windows of ``--seq`` tokens (lines joined with EOS);
- freeze plan: stage 1 trains the LM experts and routers; stage 2 copies them into the MT group
  (if the model is still in stage 1) and trains only the MT side; ``sft`` trains everything;
- loss: the token mean of the cross-entropy over the whole step (all micro-batches, all ranks)
  plus ``lb_coef`` x the load balance (each micro-batch's weighted by its share of the step's
  target tokens), AdamW (0.9, 0.999, 1e-8, decoupled decay), gradient clipping at 1.0, cosine
  schedule with linear warm-up (``round(0.03 * steps)`` steps);
- output: a Hugging Face directory (config.json with the remote code, safetensors, tokenizer)
  that mixmoe reads back (``mixmoe evaluate --model OUT ...``).

Under torchrun the cross-entropy is the exact token mean over all ranks (counts all-reduced); the
load balance is each rank's own over its tokens (as transformers' Mixtral computes it), where
mixmoe's data parallelism all-reduces the expert counts, so the two differ there.

Batches are cut to ``--batch-tokens`` padded tokens per step (``--micro-tokens`` per forward),
from a seeded shuffle sorted by length in pools of 512, like mixmoe's; the batch order is not
mixmoe's, so the two take different batches for the same seed.
"""
import argparse
import json
import math
import os
import random
import shutil
import sys
import time

import torch
import torch.nn.functional as F

LANGUAGES = {"en": "English", "de": "German", "cs": "Czech", "ru": "Russian", "tr": "Turkish", "zh": "Chinese",
             "fi": "Finnish", "et": "Estonian", "fr": "French", "es": "Spanish", "ja": "Japanese", "is": "Icelandic"}


# --- data ---

def read_bitext(spec):
    """[(lang_a, lang_b, [(a, b), ...])] from one corpus argument, as mixmoe reads it."""
    if "," in spec:  # Moses pair a.de,b.en
        fa, fb = spec.split(",", 1)
        la, lb = fa.rsplit(".", 1)[-1], fb.rsplit(".", 1)[-1]
        with open(fa, encoding="utf-8") as a, open(fb, encoding="utf-8") as b:
            A, B = a.read().split("\n"), b.read().split("\n")
        A, B = (A[:-1] if A and A[-1] == "" else A), (B[:-1] if B and B[-1] == "" else B)
        if len(A) != len(B):
            sys.exit(f"error: {spec}: {len(A)} lines against {len(B)} (Moses pairs must align line by line)")
        return la, lb, list(zip(A, B))
    if spec.endswith(".tsv"):
        stem = os.path.basename(spec)[:-4]
        pair = stem.rsplit(".", 1)[-1]
        if "-" not in pair:
            sys.exit(f"error: {spec}: cannot tell the languages; name it NAME.xx-en.tsv (English<TAB>xx)")
        x, en = pair.split("-", 1)
        pairs = []
        with open(spec, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line:
                    continue
                cols = line.split("\t")
                if len(cols) != 2:
                    sys.exit(f"error: {spec}:{i}: expected two tab-separated fields, got {len(cols)}")
                pairs.append((cols[0], cols[1]))
        return en, x, pairs
    if spec.endswith(".jsonl") or spec.endswith(".json"):
        with open(spec, encoding="utf-8") as f:
            text = f.read()
        rows = json.loads(text) if text.lstrip().startswith("[") else [json.loads(l) for l in text.splitlines() if l.strip()]
        langs = sorted(rows[0]["translation"].keys())
        if len(langs) != 2:
            sys.exit(f"error: {spec}: element 1: expected a translation object with two languages")
        la, lb = langs
        return la, lb, [(r["translation"][la], r["translation"][lb]) for r in rows]
    sys.exit(f"error: {spec}: expected a .tsv, a .json(l) or a Moses pair a.xx,b.yy")


def prompt_text(src, s, t):
    S, T = LANGUAGES.get(s, s), LANGUAGES.get(t, t)
    return f"Translate this from {S} to {T}:\n{S}: {src}\n{T}:"


def mt_examples(files, tokenizer, eos, seq, directions=None):
    """(prompt ids, target ids + EOS) for both directions of every pair, longest dropped."""
    out, dropped = [], 0
    for spec in files:
        la, lb, pairs = read_bitext(spec)
        for s, t, flip in ((la, lb, False), (lb, la, True)):
            if directions and f"{s}-{t}" not in directions:
                continue
            for a, b in pairs:
                src, tgt = (b, a) if flip else (a, b)
                p = tokenizer.encode(prompt_text(src, s, t), add_special_tokens=True).ids
                g = tokenizer.encode(" " + tgt, add_special_tokens=False).ids + [eos]
                if len(p) + len(g) > seq:
                    dropped += 1
                    continue
                out.append((p, g))
    return out, dropped


def collate(examples, pad):
    """ids, targets (-100 on prompt and padding; target[t] = the token after t), attention mask."""
    T = max(len(p) + len(g) - 1 for p, g in examples)
    ids = torch.full((len(examples), T), pad, dtype=torch.long)
    tgt = torch.full((len(examples), T), -100, dtype=torch.long)
    mask = torch.zeros((len(examples), T), dtype=torch.long)
    for b, (p, g) in enumerate(examples):
        full = p + g
        n = len(full) - 1
        ids[b, :n] = torch.tensor(full[:n])
        mask[b, :n] = 1
        for i in range(len(p) - 1, n):
            tgt[b, i] = full[i + 1]
    return ids, tgt, mask


def mt_batches(examples, batch_tokens, seed, pool=512):
    """Endless token-budget batches: each epoch a seeded shuffle, sorted by length in pools."""
    epoch = 0
    while True:
        order = list(range(len(examples)))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        bucketed = []
        for s in range(0, len(order), pool):
            bucketed += sorted(order[s:s + pool], key=lambda i: (len(examples[i][0]) + len(examples[i][1]), i))
        chosen, longest = [], 0
        for i in bucketed:
            L = len(examples[i][0]) + len(examples[i][1]) - 1
            if chosen and max(longest, L) * (len(chosen) + 1) > batch_tokens:
                yield chosen
                chosen, longest = [], 0
            chosen.append(examples[i])
            longest = max(longest, L)
        if chosen:
            yield chosen
        epoch += 1


def mono_batches(files, tokenizer, eos, seq, batch_tokens, seed):
    """Packed windows of seq + 1 tokens (lines joined with EOS), seeded order, loss on every token."""
    stream = []
    for spec in files:
        with open(spec, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line:
                    continue
                if spec.endswith(".jsonl"):
                    line = json.loads(line)["text"]
                stream += tokenizer.encode(line, add_special_tokens=False).ids + [eos]
    windows = [stream[s:s + seq + 1] for s in range(0, len(stream) - seq, seq)]
    if not windows:
        sys.exit(f"error: {', '.join(files)}: fewer than {seq + 1} tokens of text")
    per = max(1, batch_tokens // seq)
    epoch = 0
    while True:
        order = list(range(len(windows)))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        for s in range(0, len(order) - per + 1, per):
            w = torch.tensor([windows[i] for i in order[s:s + per]])
            yield w[:, :-1], w[:, 1:], torch.ones_like(w[:, :-1])
        epoch += 1


def micro_split(ids, tgt, mask, micro_tokens):
    rows = max(1, micro_tokens // ids.shape[1])
    return [(ids[s:s + rows], tgt[s:s + rows], mask[s:s + rows]) for s in range(0, ids.shape[0], rows)]


# --- optimisation ---

def cosine_lr(step, peak, total, warmup_fraction=0.03):
    """mixmoe's CosineSchedule: linear warm-up over round(fraction * total) steps, then cosine to 0."""
    warm = int(round(total * warmup_fraction))
    if step < warm:
        return peak * (step + 1) / warm
    span = max(1, total - warm)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / span)))


def step_loss(model, micro, total_tokens, lb_coef, world=1):
    """Runs forward and backward over the micro-batches of one step; returns (CE sum, aux)."""
    ce_sum, aux_total = 0.0, 0.0
    for ids, tgt, mask in micro:
        out = model(input_ids=ids, attention_mask=mask)
        logits = out.logits.float()
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100, reduction="sum")
        share = (tgt != -100).sum().item() / total_tokens
        loss = ce / total_tokens
        if getattr(out, "aux_loss", None) is not None:
            loss = loss + lb_coef * share * out.aux_loss
            aux_total += share * out.aux_loss.item()
        (loss * world).backward()  # DDP averages gradients over ranks; the loss is a global mean
        ce_sum += ce.item()
    return ce_sum, aux_total


def load(model_dir, device):
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=True, dtype=torch.float32)
    return m.to(device)


def plan_for(model, stage):
    """(freeze plan, whether stage 2 starts here) for mixmoe's stages."""
    spec = getattr(model.config, "mix_moe", None)
    if stage == "sft":
        return "full", False
    if not spec:
        sys.exit(f"error: --stage {stage} needs a Mix-MoE model (config.json has no mix_moe block); use --stage sft for a dense model")
    if stage == "1":
        if spec.get("stage", 1) != 1:
            sys.exit("error: --stage 1: the model is already in stage 2 (mix_moe.stage 2)")
        return ("stage1" if spec.get("groups", 2) == 2 else "moe"), False
    if spec.get("groups", 2) != 2:
        return "moe", False
    return "stage2", spec.get("stage", 1) == 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stage", required=True, choices=["1", "2", "sft"])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=None, help="peak rate (default: 2e-4 stage 1, 1e-5 stage 2, 2e-5 sft; mixmoe's)")
    ap.add_argument("--batch-tokens", type=int, default=8192)
    ap.add_argument("--micro-tokens", type=int, default=None)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--warmup", type=float, default=0.03)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--lb-coef", type=float, default=None, help="default: the model's mix_moe.lb_coef")
    ap.add_argument("--directions", default=None, help="only these directions, e.g. de-en,en-de")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--full-batch", action="store_true", help="every step takes the whole data set as one batch (tests)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    if world > 1:
        torch.distributed.init_process_group("nccl" if a.device.startswith("cuda") else "gloo")
        if a.device == "cuda":
            a.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
            torch.cuda.set_device(a.device)

    from tokenizers import Tokenizer
    tok_file = os.path.join(a.model, "tokenizer.json")
    if not os.path.exists(tok_file):
        sys.exit(f"error: {tok_file}: missing (training needs the model's tokenizer)")
    tokenizer = Tokenizer.from_file(tok_file)
    model = load(a.model, a.device)
    eos = model.config.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    if eos is None:
        sys.exit(f"error: {a.model}/config.json: eos_token_id: expected an id (training needs EOS)")

    # the freeze helpers of the model's own (remote) code; this package's for a dense model
    mod = sys.modules[type(model).__module__]
    if not hasattr(mod, "apply_freeze_plan"):
        from . import modeling_mixmoe as mod
    plan, start_stage2 = plan_for(model, a.stage)
    if start_stage2:
        mod.begin_stage2(model)
    mod.apply_freeze_plan(model, plan)
    lb_coef = a.lb_coef if a.lb_coef is not None else ((getattr(model.config, "mix_moe", None) or {}).get("lb_coef", 0.0))
    lr = a.lr if a.lr is not None else {"1": 2e-4, "2": 1e-5, "sft": 2e-5}[a.stage]
    micro_tokens = a.micro_tokens or a.batch_tokens

    if a.stage == "1":
        batches = mono_batches(a.files, tokenizer, eos, a.seq, a.batch_tokens, a.seed)
        what = "monolingual windows"
    else:
        dirs = set(a.directions.split(",")) if a.directions else None
        examples, dropped = mt_examples(a.files, tokenizer, eos, a.seq, dirs)
        if not examples:
            sys.exit(f"error: {', '.join(a.files)}: no translation pair fits in --seq {a.seq}")
        if a.full_batch:
            batches = iter(lambda: examples, None)
        else:
            batches = mt_batches(examples, a.batch_tokens, a.seed)
        what = f"{len(examples)} examples ({dropped} longer than --seq {a.seq} dropped)"

    params = [p for p in model.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    ddp = model
    if world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=a.weight_decay)
    if rank == 0:
        print(f"train: stage {a.stage} ({plan}), {trainable} parameters trainable; {what}; lr {lr}; {a.device}, {world} process(es)",
              file=sys.stderr)
    model.train()
    t0, tokens = time.time(), 0
    log = []
    for step in range(a.steps):
        chunk = next(batches)
        if a.stage == "1":
            ids, tgt, mask = chunk
        else:
            ids, tgt, mask = collate(chunk, eos)
        # rank r takes a disjoint slice of the step's sequences
        if world > 1:
            ids, tgt, mask = ids[rank::world], tgt[rank::world], mask[rank::world]
        ids, tgt, mask = ids.to(a.device), tgt.to(a.device), mask.to(a.device)
        local = torch.tensor([(tgt != -100).sum().item()], dtype=torch.float64, device=a.device)
        if world > 1:
            torch.distributed.all_reduce(local)
        total = local.item()
        opt.zero_grad(set_to_none=False)
        ce_sum, aux = step_loss(ddp, micro_split(ids, tgt, mask, micro_tokens), total, lb_coef, world)
        if world > 1:  # the logged loss is the global token mean; the load balance the ranks' mean
            sums = torch.tensor([ce_sum, aux / world], dtype=torch.float64, device=a.device)
            torch.distributed.all_reduce(sums)
            ce_sum, aux = sums.tolist()
        for p in params:  # an expert no token chose still takes its AdamW step (decay), as in mixmoe
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, lr, a.steps, a.warmup)
        opt.step()
        tokens += ids.numel()  # padded tokens, as mixmoe counts them
        entry = {"step": step + 1, "loss": ce_sum / total, "aux_loss": aux, "lr": opt.param_groups[0]["lr"],
                 "grad_norm": float(norm), "tokens": tokens, "elapsed_s": time.time() - t0}
        log.append(entry)
        if rank == 0 and ((step + 1) % a.log_every == 0 or step == 0 or step + 1 == a.steps):
            el = time.time() - t0
            eta = el / (step + 1) * (a.steps - step - 1)
            print(f"step {step + 1}/{a.steps}  loss {entry['loss']:.4f}  aux {aux:.4f}  lr {entry['lr']:.2e}  |g| {float(norm):.3f}  "
                  f"{tokens / el:.0f} tok/s  ETA {eta / 60:.1f} min", file=sys.stderr)
    if rank == 0:
        save(model, a.model, a.out, log)
        print(f"wrote {a.out} ({a.steps} steps, {(time.time() - t0) / 60:.1f} min)", file=sys.stderr)
    if world > 1:
        torch.distributed.destroy_process_group()


def save(model, src, out, log):
    """A directory mixmoe reads: safetensors, config.json with the remote code, tokenizer files."""
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    here = os.path.dirname(os.path.abspath(__file__))
    for f in ("configuration_mixmoe.py", "modeling_mixmoe.py"):
        if getattr(model.config, "auto_map", None):
            shutil.copy(os.path.join(here, f), os.path.join(out, f))
    for f in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        if os.path.exists(os.path.join(src, f)):
            shutil.copy(os.path.join(src, f), os.path.join(out, f))
    with open(os.path.join(out, "train_log.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(e) + "\n" for e in log)


if __name__ == "__main__":
    main()

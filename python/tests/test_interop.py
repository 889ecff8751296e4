"""mixmoe's models in transformers and PyTorch (issue 32), checked against mixmoe itself.

Every model is written by the `mixmoe` binary (MIXMOE_BIN, default .build/debug/mixmoe), loaded
by transformers with trust_remote_code=True (the code mixmoe copied into the directory), and
compared with what mixmoe computes: logits (`mixmoe forward`), greedy and beam ids (`mixmoe
generate`), one training step's gradients (`mixmoe train --debug-dump`) and the weights after
five AdamW steps. Two independent implementations: Swift with hand-written backward passes, and
transformers' Llama/Qwen2 plus the remote code under PyTorch autograd.
"""
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
BIN = os.environ.get("MIXMOE_BIN", os.path.join(ROOT, ".build", "debug", "mixmoe"))
FIXTURES = os.path.join(ROOT, "Tests", "MixMoETests", "Fixtures", "models")
TOKENIZER = os.path.join(ROOT, "models", "base", "tokenizer.json")
DEMO = os.path.join(ROOT, "data", "demo")
IDS = [[0, 5, 9, 33, 2, 7, 60, 11, 4], [0, 17, 3, 3, 45, 8, 90, 21, 6]]

from transformers import AutoModelForCausalLM  # noqa: E402

torch.set_num_threads(1)


def mixmoe(*args, stdin=None):
    r = subprocess.run([BIN, *map(str, args)], input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError(f"mixmoe {' '.join(map(str, args))} failed:\n{r.stderr[-3000:]}")
    return r.stdout


def hf(path):
    m = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True, dtype=torch.float32)
    return m.eval()


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def assert_same_logits(path, ids=IDS, vocab=None):
    m = hf(path)
    for row in ids:
        row = [i % (vocab or m.config.vocab_size) for i in row]
        ours = torch.tensor(json.loads(mixmoe("forward", "--model", path, "--ids", ",".join(map(str, row))))["logits"])
        with torch.no_grad():
            theirs = m(torch.tensor([row])).logits[0]
        assert rel(theirs, ours) < 1e-4, f"{path}: logits differ by {rel(theirs, ours):.2e} (relative to the largest)"
    return m


def assert_same_generation(path, m, prompts, beam=1, new=8):
    """transformers' generate = `mixmoe generate`, one prompt at a time and all at once (padded left)."""
    lines = "\n".join(json.dumps(p) for p in prompts) + "\n"
    eos = m.config.eos_token_id
    for batch in (1, len(prompts)):
        out = mixmoe("generate", "--model", path, "--beam", beam, "--batch", batch, "--max-new-tokens", new, "--length-penalty", "0",
                     stdin=lines)
        ours = [json.loads(l)["ids"] for l in out.strip().split("\n")]
        theirs = []
        if batch == 1:
            for p in prompts:
                g = m.generate(torch.tensor([p]), max_new_tokens=new, do_sample=False, num_beams=beam, eos_token_id=eos,
                               pad_token_id=eos, length_penalty=0.0, early_stopping=True)
                theirs.append(g[0, len(p):].tolist())
        else:
            L = max(len(p) for p in prompts)
            ids = torch.tensor([[eos] * (L - len(p)) + p for p in prompts])
            att = torch.tensor([[0] * (L - len(p)) + [1] * len(p) for p in prompts])
            g = m.generate(ids, attention_mask=att, max_new_tokens=new, do_sample=False, num_beams=beam, eos_token_id=eos,
                           pad_token_id=eos, length_penalty=0.0, early_stopping=True)
            theirs = [row[L:].tolist() for row in g]
        # transformers pads finished rows with pad (= EOS) after the EOS mixmoe stops at
        theirs = [t[:t.index(eos) + 1] if eos in t else t for t in theirs]
        assert ours == theirs, f"{path}: beam {beam}, batch {batch}: mixmoe {ours} vs transformers {theirs}"


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("interop")


@pytest.fixture(scope="session")
def base8k(work):
    """A small Llama with the shipped 8192-token tokenizer (training needs one)."""
    cfg = work / "tiny8k.json"
    cfg.write_text(json.dumps({
        "model_type": "llama", "vocab_size": 8192, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000,
        "max_position_embeddings": 256, "tie_word_embeddings": True, "bos_token_id": 0, "eos_token_id": 1}))
    out = work / "dense8k"
    mixmoe("init", "--config", cfg, "--tokenizer", TOKENIZER, "--out", out, "--seed", 3)
    return str(out)


# --- must-show 1: no directory can be mistaken for another architecture ---

def test_dense_models_stay_plain_llama(base8k):
    c = json.load(open(os.path.join(base8k, "config.json")))
    assert c["model_type"] == "llama" and c["architectures"] == ["LlamaForCausalLM"] and "auto_map" not in c
    assert not os.path.exists(os.path.join(base8k, "modeling_mixmoe.py"))
    m = AutoModelForCausalLM.from_pretrained(base8k)  # no remote code needed
    assert type(m).__name__ == "LlamaForCausalLM"


@pytest.mark.parametrize("qwen", [False, True])
def test_moe_directory_refuses_to_load_without_remote_code(work, qwen):
    src = os.path.join(FIXTURES, "qwen2_bias" if qwen else "llama_untied")
    out = work / f"refuse-{qwen}"
    mixmoe("upcycle", "--model", src, "--out", out, "--experts", 4, "--every", 2)
    c = json.load(open(out / "config.json"))
    assert c["model_type"] == ("mixmoe_qwen2" if qwen else "mixmoe_llama")
    assert c["auto_map"]["AutoModelForCausalLM"].startswith("modeling_mixmoe.")
    with pytest.raises(ValueError, match="trust_remote_code"):
        AutoModelForCausalLM.from_pretrained(str(out), trust_remote_code=False)


def test_directories_of_the_old_identity_still_load_in_mixmoe(work):
    """A Mix-MoE directory as mixmoe wrote it before (model_type llama, LlamaForCausalLM, no
    auto_map, no code) reads back with the same logits."""
    new = work / "identity-new"
    mixmoe("upcycle", "--model", os.path.join(FIXTURES, "llama_untied"), "--out", new, "--every", 2)
    old = work / "identity-old"
    os.makedirs(old)
    c = json.load(open(new / "config.json"))
    c.update(model_type="llama", architectures=["LlamaForCausalLM"])
    del c["auto_map"]
    json.dump(c, open(old / "config.json", "w"))
    os.link(new / "model.safetensors", old / "model.safetensors")
    a = mixmoe("forward", "--model", new, "--ids", "1,5,9,33")
    assert a == mixmoe("forward", "--model", old, "--ids", "1,5,9,33")


def test_committed_model_directories_still_load_in_mixmoe():
    """Directories written before model_type changed (model_type llama with a mix_moe block)."""
    runs = [os.path.join(ROOT, "models", "mt"), os.path.join(ROOT, "models", "base")]
    for path in runs:
        out = json.loads(mixmoe("forward", "--model", path, "--ids", "0,5,9"))
        assert len(out["logits"]) == 3


# --- must-show 2: logits and generation ---

UPCYCLE_CASES = [
    (base, features, k, mode)
    for base in ("llama_untied", "qwen2_bias")
    for features in ("fft", "dct", "random", "none")
    for k in (1, 2)
    for mode in ("slice", "copy")
]


@pytest.mark.parametrize("base,features,k,mode", UPCYCLE_CASES)
def test_upcycled_logits(work, base, features, k, mode):
    out = work / f"up-{base}-{features}-{k}-{mode}"
    mixmoe("upcycle", "--model", os.path.join(FIXTURES, base), "--out", out, "--experts", 4, "--every", 2,
           "--router-features", features, "--top-k", k, "--upcycle", mode, "--seed", 5)
    assert_same_logits(str(out), vocab=97)


@pytest.fixture(scope="session")
def stage_models(work, base8k):
    """upcycle -> train --stage 1 -> train --stage 2 (mean and sum), top-2, with mixmoe."""
    tsv = work / "train.de-en.tsv"
    lines = open(os.path.join(DEMO, "parallel", "train.de-en.tsv"), encoding="utf-8").read().split("\n")[:60]
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    models = {}
    for combine in ("mean", "sum"):
        up = work / f"st-up-{combine}"
        mixmoe("upcycle", "--model", base8k, "--out", up, "--every", 2, "--top-k", 2, "--combine", combine, "--seed", 1)
        s1 = work / f"st-1-{combine}"
        mixmoe("train", "--stage", 1, "--model", up, "--out", s1, "--steps", 3, "--batch-tokens", 512, "--seq", 64, "--lr", 3e-3,
               "--threads", 1, os.path.join(DEMO, "mono", "en.txt"))
        s2 = work / f"st-2-{combine}"
        mixmoe("train", "--stage", 2, "--model", s1, "--out", s2, "--steps", 3, "--batch-tokens", 1024, "--seq", 96, "--lr", 3e-3,
               "--threads", 1, tsv)
        models[combine] = (str(s1), str(s2))
    return models


@pytest.mark.parametrize("combine", ["mean", "sum"])
@pytest.mark.parametrize("stage", [1, 2])
def test_trained_stage_logits_and_generation(stage_models, combine, stage):
    path = stage_models[combine][stage - 1]
    c = json.load(open(os.path.join(path, "config.json")))
    assert c["mix_moe"]["stage"] == stage
    m = assert_same_logits(path)
    prompts = [[0, 311, 52, 1000, 17], [0, 7, 8, 9], [0, 4000, 25, 3, 3, 99, 512]]
    assert_same_generation(path, m, prompts, beam=1)
    assert_same_generation(path, m, prompts, beam=5)
    # transformers' MoE conventions: router logits on request, and with labels the loss is
    # CE + lb_coef * the mean over MoE layers of the groups' Switch load balance (recomputed
    # here from the returned router logits)
    ids = torch.tensor(IDS)
    with torch.no_grad():
        out = m(input_ids=ids, labels=ids, output_router_logits=True)
    groups = 2 if stage == 2 else 1
    assert len(out.router_logits) == len(c["mix_moe"]["moe_layers"]) * groups
    n = c["mix_moe"]["experts_per_group"]
    lbs = []
    for logits in out.router_logits:
        p = torch.softmax(logits.double(), -1)
        f = torch.nn.functional.one_hot(p.argmax(-1), n).double().mean(0)
        lbs.append(n * (f * p.mean(0)).sum())
    aux = sum(lbs) / len(c["mix_moe"]["moe_layers"])
    ce = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, out.logits.shape[-1]).double(), ids[:, 1:].reshape(-1))
    assert abs(out.aux_loss.item() - aux.item()) < 1e-5
    assert abs(out.loss.item() - (ce.item() + c["mix_moe"]["lb_coef"] * aux.item())) < 1e-4


@pytest.mark.parametrize("method", ["moe", "moe-pt-sft", "moe-lpr", "llama-moe-v2", "lora", "llama-pro"])
def test_baseline_logits(work, base8k, method):
    out = work / f"baseline-{method}"
    mixmoe("baseline", method, "--model", base8k, "--data", DEMO, "--out", out, "--stage1-steps", 2, "--stage2-steps", 2,
           "--batch-tokens", 512, "--micro-tokens", 512, "--mono-bytes", 20000, "--threads", 1)
    c = json.load(open(out / "config.json"))
    if method == "llama-pro":  # plain blocks: transformers' own Llama reads it
        assert c["model_type"] == "llama"
    else:
        assert c["model_type"] == "mixmoe_llama"
    m = assert_same_logits(str(out))
    assert_same_generation(str(out), m, [[0, 311, 52, 1000, 17], [0, 7, 8, 9]], beam=1)
    if method == "llama-moe-v2":  # the KV cache carries each position's experts: beams reorder it
        assert c["attn_moe"]["layers"] and c["num_key_value_heads"] > 2
        assert_same_generation(str(out), m, [[0, 311, 52, 1000, 17], [0, 7, 8, 9], [0, 4000, 25, 3, 3, 99, 512]], beam=5)
    if method == "lora":  # the adapters alone, as PEFT loads them onto the unchanged base model
        from peft import PeftModel

        cfg = json.load(open(out / "adapter" / "adapter_config.json"))
        assert cfg["peft_type"] == "LORA" and cfg["r"] == 8 and cfg["lora_alpha"] == 16
        peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base8k, dtype=torch.float32), str(out / "adapter")).eval()
        for row in IDS:
            ours = torch.tensor(json.loads(mixmoe("forward", "--model", out, "--ids", ",".join(map(str, row))))["logits"])
            with torch.no_grad():
                theirs = peft_model(torch.tensor([row])).logits[0]
            assert rel(theirs, ours) < 1e-4, f"PEFT adapter: logits differ by {rel(theirs, ours):.2e}"


# --- must-show 3: gradients and AdamW steps of stage 2 ---

def test_stage2_gradients_and_five_adamw_steps(work, stage_models):
    """One backward (cross-entropy + load balance, stage-2 freeze, the MT group copied from the LM
    group) and five AdamW steps, in PyTorch through the training entry point's own functions,
    against `mixmoe train --stage 2`. Every step takes the whole data set as one batch (the token
    budget is set to exactly its padded size), so both sides train on the same batches."""
    from tokenizers import Tokenizer
    from mixmoe_torch import train as T

    s1 = stage_models["mean"][0]
    tsv = work / "six.de-en.tsv"
    lines = open(os.path.join(DEMO, "parallel", "train.de-en.tsv"), encoding="utf-8").read().split("\n")[100:106]
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tok = Tokenizer.from_file(os.path.join(s1, "tokenizer.json"))
    examples, dropped = T.mt_examples([str(tsv)], tok, 1, 96)
    assert dropped == 0 and len(examples) == 12
    budget = len(examples) * max(len(p) + len(g) - 1 for p, g in examples)
    dump, out = work / "dump", work / "mixmoe-5"
    mixmoe("train", "--stage", 2, "--model", s1, "--out", out, "--steps", 5, "--batch-tokens", budget, "--micro-tokens", budget,
           "--seq", 96, "--lr", 1e-3, "--threads", 1, "--debug-dump", dump, tsv)

    # one backward
    m = hf(s1)
    mod = sys.modules[type(m).__module__]
    mod.begin_stage2(m)
    mod.apply_freeze_plan(m, "stage2")
    m.train()
    ids, tgt, mask = T.collate(examples, 1)
    T.step_loss(m, [(ids, tgt, mask)], (tgt != -100).sum().item(), m.config.mix_moe["lb_coef"])
    ours = load_file(str(dump / "grads-rank-0.safetensors"))
    trained = {n: p for n, p in m.named_parameters() if p.requires_grad}
    assert set(ours) == set(trained), f"trainable sets differ: {sorted(set(ours) ^ set(trained))[:6]}"
    assert all(".mt_experts." in n or ".mt_router." in n for n in trained)
    for n, p in trained.items():
        # an expert no token chose has no gradient in autograd, zeros in mixmoe
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        err = ((g - ours[n]).norm() / ours[n].norm().clamp_min(1e-12)).item()
        assert err < 1e-4, f"gradient of {n}: relative difference {err:.2e}"

    # five AdamW steps with the entry point, then weights against mixmoe's
    pt = work / "torch-5"
    T.main(["--model", s1, "--out", str(pt), "--stage", "2", str(tsv), "--steps", "5", "--lr", "1e-3", "--seq", "96",
            "--batch-tokens", str(budget), "--full-batch", "--device", "cpu", "--threads", "1"])
    final = load_file(str(dump / "weights-rank-0.safetensors"))
    before = load_file(os.path.join(s1, "model.safetensors"))
    after = load_file(str(pt / "model.safetensors"))
    assert set(after) == set(final)
    for n, w in final.items():
        if n in trained:
            # relative to the tensor's norm, as the gradients (the largest single element is a few
            # 1e-4 of the largest weight: AdamW's m / sqrt(v) turns tiny gradient differences of
            # near-zero elements into differences of order lr)
            err = ((after[n] - w).norm() / w.norm()).item()
            assert err < 1e-4, f"{n} after 5 AdamW steps: {err:.2e} from mixmoe's"
            assert not torch.equal(after[n], before.get(n.replace(".mt_", ".lm_"), after[n] + 1)), f"{n} did not move"
        else:
            assert torch.equal(after[n], before[n]) and torch.equal(w, before[n]), f"frozen {n} changed"
    # and mixmoe reads the PyTorch run's directory back with the same logits transformers gives
    assert_same_logits(str(pt))


# --- must-show 4: round trip ---

def test_pytorch_stage2_then_mixmoe_translates_as_transformers_does(work):
    """The shipped base model (base-c4, 8 M parameters) upcycled by mixmoe, stage 2 trained by the
    PyTorch entry point; `mixmoe translate` on the result gives the translations transformers'
    generate gives (mixmoe_torch.translate: same prompt, stop tokens, length limit). A real model,
    so outputs end at EOS or a newline as well as at the limit."""
    from mixmoe_torch import train as T
    from mixmoe_torch.translate import translate

    up, out = work / "c4-upcycled", work / "torch-stage2"
    mixmoe("upcycle", "--model", os.path.join(ROOT, "models", "checkpoints", "base-c4"), "--out", up, "--combine", "sum")
    T.main(["--model", str(up), "--out", str(out), "--stage", "2",
            os.path.join(DEMO, "parallel", "train.de-en.tsv"), "--steps", "3", "--lr", "1e-3", "--seq", "128",
            "--batch-tokens", "2048", "--device", "cpu", "--threads", "2"])
    c = json.load(open(out / "config.json"))
    assert c["model_type"] == "mixmoe_llama" and c["mix_moe"]["stage"] == 2
    sources = [l.split("\t")[1] for l in open(os.path.join(DEMO, "parallel", "test.de-en.tsv"), encoding="utf-8").read().split("\n")[:6]]
    # greedy only: with beams that finish, transformers' beam search (its stopping rule) and
    # mixmoe's (CTranslate2's) keep different hypotheses (docs/TRAINING-ON-GPUS.md)
    for beams in (1,):
        ours = mixmoe("translate", "--model", out, "--from", "de", "--to", "en", "--beam", beams, "--batch", 3,
                      stdin="\n".join(sources) + "\n").split("\n")[:len(sources)]
        theirs = translate(str(out), sources, "de", "en", beams=beams)
        assert ours == theirs, f"beam {beams}: mixmoe {ours} vs transformers {theirs}"


def test_pytorch_dense_sft_reads_back_in_mixmoe(work, base8k):
    """Dense SFT in PyTorch: a plain Llama directory, which mixmoe reads with transformers' logits."""
    from mixmoe_torch import train as T

    out = work / "torch-sft"
    T.main(["--model", base8k, "--out", str(out), "--stage", "sft", os.path.join(DEMO, "parallel", "train.de-en.tsv"),
            "--steps", "2", "--lr", "1e-3", "--seq", "96", "--batch-tokens", "1024", "--device", "cpu", "--threads", "1"])
    assert json.load(open(out / "config.json"))["model_type"] == "llama"
    before, after = load_file(os.path.join(base8k, "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert all(not torch.equal(before[n], after[n]) for n in before if n.endswith("proj.weight")), "SFT trains every matrix"
    assert_same_logits(str(out))


NAMES = ["model.embed_tokens.weight", "model.router_transform", "model.layers.1.mlp.lm_router.weight", "model.layers.1.mlp.lm_router.bias",
         "model.layers.1.mlp.lm_experts.0.gate_proj.weight", "model.layers.1.mlp.lm_experts.1.down_proj.weight",
         "model.layers.1.mlp.mt_experts.0.up_proj.weight", "model.layers.1.mlp.mt_router.weight", "model.layers.2.self_attn.gate.weight",
         "model.layers.2.self_attn.q_proj.lora_A.weight", "model.layers.2.self_attn.q_proj.lora_B.weight", "model.layers.3.mlp.gate_proj.weight",
         "model.layers.3.self_attn.q_proj.lora_A.weight"]
ALL = set(range(len(NAMES))) - {1}  # the router transform is never trained


@pytest.mark.parametrize("plan,trained", [
    ("full", ALL), ("stage1", {2, 3, 4, 5}), ("moe", {2, 3, 4, 5}), ("stage2", {6, 7}), ("lora", {9, 10, 12}),
    ("moe-lpr-experts", {2, 5}), ("routers", {2, 7}), ("llama-moe-v2", ALL - {3}), ("llama-pro", {11, 12}),
])
def test_freeze_plans_by_name(plan, trained):
    """The PyTorch freeze plans, name by name, against a hand-written table of mixmoe's FreezePlan
    (layer 3 is LLaMA-Pro's inserted block)."""
    from mixmoe_torch.modeling_mixmoe import is_trainable

    class Config:
        llama_pro_expanded_layers = [3]

    got = {i for i, n in enumerate(NAMES) if is_trainable(plan, n, Config())}
    assert got == trained, f"{plan}: differs on {[NAMES[i] for i in sorted(got ^ trained)]}"


def test_pytorch_stage1_trains_the_lm_side_only(work, base8k):
    """Stage 1 in PyTorch on monolingual text: only the LM experts and routers move, and mixmoe
    reads the result with transformers' logits."""
    from mixmoe_torch import train as T

    up, out = work / "s1-up", work / "torch-stage1"
    mixmoe("upcycle", "--model", base8k, "--out", up, "--every", 2)
    T.main(["--model", str(up), "--out", str(out), "--stage", "1", os.path.join(DEMO, "mono", "en.txt"), "--steps", "2",
            "--lr", "1e-3", "--seq", "64", "--batch-tokens", "512", "--device", "cpu", "--threads", "1"])
    before, after = load_file(str(up / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert set(before) == set(after)
    for n in before:  # (an LM expert no token chose may stay put)
        if not (".mlp.lm_experts." in n or ".mlp.lm_router." in n):
            assert torch.equal(before[n], after[n]), f"frozen {n} changed"
    assert any(not torch.equal(before[n], after[n]) for n in before if ".lm_router." in n)
    assert_same_logits(str(out))


def test_transformers_trainer_trains_stage2_unchanged(work, stage_models):
    """transformers' Trainer on a Mix-MoE model with mixmoe's stage-2 plan: the loss it optimises
    is the model's own (CE + lb_coef x load balance); only the MT side moves."""
    from transformers import Trainer, TrainingArguments

    m = hf(stage_models["mean"][0])
    mod = sys.modules[type(m).__module__]
    mod.begin_stage2(m)
    mod.apply_freeze_plan(m, "stage2")
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    rows = [{"input_ids": r, "labels": r, "attention_mask": [1] * len(r)} for r in IDS * 4]
    args = TrainingArguments(output_dir=str(work / "trainer"), per_device_train_batch_size=2, max_steps=3, learning_rate=1e-3,
                             report_to=[], save_strategy="no", use_cpu=True, logging_steps=1, disable_tqdm=True)
    result = Trainer(model=m, args=args, train_dataset=rows).train()
    assert torch.isfinite(torch.tensor(result.training_loss))
    for n, p in m.named_parameters():
        mt = ".mlp.mt_experts." in n or ".mlp.mt_router." in n
        if not mt:
            assert torch.equal(p.detach(), before[n]), f"frozen {n} changed under Trainer"
    assert any(not torch.equal(p.detach(), before[n]) for n, p in m.named_parameters() if ".mt_router." in n)

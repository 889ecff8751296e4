#!/usr/bin/env python3
"""tokenizer_config.json and generation_config.json as transformers writes them for the shipped
base model's tokenizer (models/base): the truth `HFDirectory` is tested against.

  python3 scripts/make_hf_files_fixture.py

PreTrainedTokenizerFast over models/base/tokenizer.json with its BOS / EOS / PAD tokens and the
model's context as model_max_length, saved with save_pretrained; a GenerationConfig with the same
ids, greedy, saved likewise. Also checks that AutoTokenizer, loading the fixture directory, adds BOS
and knows EOS and PAD (what the files are for), and that it loads the same file with transformers
4's class name, PreTrainedTokenizerFast, which mixmoe writes so that both major versions read it
(transformers 5 writes "TokenizersBackend" and a "backend" field that 4 does not know).
"""
import json, os, shutil, tempfile
from transformers import AutoTokenizer, GenerationConfig, PreTrainedTokenizerFast

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "Tests", "MixMoETests", "Fixtures", "hf_files")


def main():
    cfg = json.load(open(os.path.join(ROOT, "models", "base", "config.json")))
    tmp = tempfile.mkdtemp()
    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(ROOT, "models", "base", "tokenizer.json"),
                                  bos_token="<|begin_of_text|>", eos_token="<|end_of_text|>", pad_token="<|pad|>",
                                  model_max_length=cfg["max_position_embeddings"], clean_up_tokenization_spaces=False)
    tok.save_pretrained(tmp)
    GenerationConfig(bos_token_id=cfg["bos_token_id"], eos_token_id=cfg["eos_token_id"], pad_token_id=2,
                     do_sample=False, max_length=cfg["max_position_embeddings"]).save_pretrained(tmp)
    os.makedirs(OUT, exist_ok=True)
    for f in ["tokenizer_config.json", "generation_config.json"]:
        shutil.copy(os.path.join(tmp, f), os.path.join(OUT, f))
    auto = AutoTokenizer.from_pretrained(tmp)
    ids = auto("Hallo Welt")["input_ids"]
    assert ids[0] == cfg["bos_token_id"], ids
    assert auto.eos_token_id == cfg["eos_token_id"] and auto.pad_token_id == 2
    tc = json.load(open(os.path.join(tmp, "tokenizer_config.json")))
    tc.pop("backend", None)
    tc["tokenizer_class"] = "PreTrainedTokenizerFast"
    json.dump(tc, open(os.path.join(tmp, "tokenizer_config.json"), "w"))
    again = AutoTokenizer.from_pretrained(tmp)
    assert again("Hallo Welt")["input_ids"] == ids and again.eos_token_id == auto.eos_token_id
    print("wrote", sorted(os.listdir(OUT)), "AutoTokenizer:", ids)


if __name__ == "__main__":
    main()

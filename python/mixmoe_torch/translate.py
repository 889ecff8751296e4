"""Translate with a model mixmoe wrote, in transformers, the way `mixmoe translate` does.

    from mixmoe_torch.translate import translate
    translate("runs/stage2", ["Datei öffnen"], "de", "en")

ALMA's prompt (the tokenizer's BOS added), greedy decoding (or beam search), stop at EOS or at any
token whose text contains a newline, at most ``min(cap, int(ratio * source tokens) + extra)`` new
tokens (mixmoe's defaults 2.0, 10 and 256) within the model's context; the output is the text
before the first newline, stop tokens removed, spaces trimmed.
"""
import torch

from .train import prompt_text

# Foundation's CharacterSet.whitespaces: space separators (Zs) and tab
_SPACES = "\t \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"


def stop_ids(tokenizer, eos):
    """EOS and every vocabulary token whose bytes contain a newline (byte-level 'Ċ')."""
    ids = set(eos)
    for tok, i in tokenizer.get_vocab().items():
        if "\u010a" in tok or "\n" in tok:
            ids.add(i)
    return sorted(ids)


def translate(model, sources, src, tgt, tokenizer=None, beams=1, length_penalty=1.0, ratio=2.0, extra=10, cap=256):
    """Translations of `sources` (a list of strings) from `src` to `tgt` (language codes)."""
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    if isinstance(model, str):
        tokenizer = tokenizer or Tokenizer.from_file(f"{model}/tokenizer.json")
        model = AutoModelForCausalLM.from_pretrained(model, trust_remote_code=True, dtype=torch.float32).eval()
    eos = model.config.eos_token_id
    eos = eos if isinstance(eos, list) else [eos]
    stops = stop_ids(tokenizer, eos)
    context = model.config.max_position_embeddings
    out = []
    for s in sources:
        ids = tokenizer.encode(prompt_text(s, src, tgt), add_special_tokens=True).ids
        if len(ids) >= context:
            raise ValueError(f"the translation prompt of {s[:40]!r} has {len(ids) + 1} tokens; the context holds {context}")
        limit = min(min(cap, int(ratio * len(tokenizer.encode(s, add_special_tokens=False).ids)) + extra), context - len(ids))
        with torch.no_grad():
            g = model.generate(torch.tensor([ids]), max_new_tokens=limit, do_sample=False, num_beams=beams,
                               length_penalty=length_penalty, eos_token_id=stops, pad_token_id=eos[0])
        new = [t for t in g[0, len(ids):].tolist() if t not in eos]
        text = tokenizer.decode(new, skip_special_tokens=False).split("\n", 1)[0]
        out.append(text.strip(_SPACES))
    return out

#!/usr/bin/env python3
"""CTranslate2's greedy and beam search outputs on the embedded base model, as a test fixture.

  python3 scripts/make_ct2_fixture.py [--model models/base] [--test data/demo/parallel/test.de-en.tsv]
        [--out Tests/MixMoETests/Fixtures/ct2/base_de_en.json]

Converts the model with ct2-transformers-converter (pip install ctranslate2 transformers), builds
prompts from the first 24 test segments with at least 4 English words (12 ALMA prompts, 12 English
prefixes), and decodes them with
`Generator.generate_batch` (fp32, one segment at a time, end token kept in the result) for several
beam sizes and length penalties, stopping at EOS and every token whose text holds a newline
(translate's rule), and at BOS only (never generated: every search runs to the length cap).
`Generator.beamSearch` must give the same ids (DecodingTests); a near-tie of summed log-probs may
break differently in fp32 (CTranslate2) and fp64 (mixmoe), which the test reports per prompt.
"""
import argparse, json, os, subprocess, tempfile

CASES = [(1, 1.0), (2, 0.0), (4, 1.0), (5, 1.0), (5, 0.6)]  # (beam_size, length_penalty)
# each case twice: stopping at EOS or a newline token (translate's rule), and at BOS only, which the
# model never generates, so that every search runs to the length cap


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/base")
    ap.add_argument("--test", default="data/demo/parallel/test.de-en.tsv")
    ap.add_argument("--out", default="Tests/MixMoETests/Fixtures/ct2/base_de_en.json")
    ap.add_argument("--segments", type=int, default=24)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    a = ap.parse_args()
    import ctranslate2
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    eos = cfg["eos_token_id"] if isinstance(cfg["eos_token_id"], int) else cfg["eos_token_id"][0]
    vocab = tok.get_vocab()
    alma_stops = sorted({eos} | {i for i in vocab.values() if "\n" in tok.decode([i], skip_special_tokens=False)})
    id_to_token = {i: t for t, i in vocab.items()}
    pairs = []
    with open(a.test, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 2 and len(cols[0].split()) >= 4:
                pairs.append(cols)
            if len(pairs) == a.segments:
                break
    # half translation prompts, half plain-text prefixes (the first words of an English segment),
    # which the base model continues for longer than it answers a translation prompt
    half = len(pairs) // 2
    texts = [f"Translate this from German to English:\nGerman: {de}\nEnglish:" for en, de in pairs[:half]]
    texts += [" ".join(en.split()[: max(2, len(en.split()) // 2)]) for en, de in pairs[half:]]
    prompts = [tok.encode(x) for x in texts]
    with tempfile.TemporaryDirectory() as ct2_dir:
        subprocess.run(["ct2-transformers-converter", "--model", a.model, "--output_dir", ct2_dir,
                        "--quantization", "float32", "--force"], check=True, stdout=subprocess.DEVNULL)
        gen = ctranslate2.Generator(ct2_dir, device="cpu", compute_type="float32", intra_threads=1)
        cases = []
        bos = cfg["bos_token_id"]
        for (beam, lp), stops in [(c, s) for s in (alma_stops, [bos]) for c in CASES]:
            outs = []
            for p in prompts:  # one at a time: no padding in CTranslate2's batch either
                r = gen.generate_batch([p.tokens], max_length=a.max_new_tokens, beam_size=beam, sampling_topk=1,
                                       include_prompt_in_result=False, end_token=[id_to_token[i] for i in stops],
                                       return_end_token=True, length_penalty=lp)[0]
                outs.append(r.sequences_ids[0])
            cases.append(dict(beam=beam, length_penalty=lp, stop_tokens=stops, outputs=outs))
            print(f"beam {beam} lp {lp} stops {len(stops)}: mean length {sum(map(len, outs)) / len(outs):.1f}")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(dict(source="CTranslate2 " + ctranslate2.__version__ + " on " + a.model,
                       prompts=[p.ids for p in prompts], max_new_tokens=a.max_new_tokens,
                       cases=cases), f)
        f.write("\n")


if __name__ == "__main__":
    main()

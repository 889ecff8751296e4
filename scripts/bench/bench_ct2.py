#!/usr/bin/env python3
"""`mixmoe translate` beside CTranslate2 on the same model, segments, prompts and length caps.

  python3 scripts/bench/bench_ct2.py --model DIR --test FILE.tsv --from de --to en
        [--segments 200] [--batches 1,8,32,64] [--beams 1,5] [--max-new-tokens 64] [--threads 2]
        [--mixmoe .build/release/mixmoe] [--work runs/ct2] [--reps 3]

DIR is a dense Llama-architecture model written by mixmoe (e.g. `mixmoe baseline sft`'s output);
it is converted with `ct2-transformers-converter --quantization float32` (pip install ctranslate2).
Both engines get the ALMA prompt of every segment ("Translate this from German to English:\\n
German: ...\\nEnglish:", BOS first), decode greedily or with beam search, fp32, on --threads
threads, stop at EOS or at any token whose text holds a newline, and generate at most
--max-new-tokens tokens (mixmoe: `--max-new-tokens N --max-ratio 1000`, so that cap alone applies).
Segments are sorted longest-first for both (mixmoe sorts internally). The engines alternate rep
by rep. Model loading is outside the timings (mixmoe reports its decoding time on stderr). One JSON line per engine, beam and batch:
segments/s, generated tokens/s (each engine's own count, stop token included), and how many outputs
are identical to mixmoe's at the same beam and batch size. Both engines batch beam search across
segments (batch = segments decoded together, each with its beams).
"""
import argparse, json, os, re, statistics, subprocess, sys, time

NAMES = {"en": "English", "de": "German", "cs": "Czech", "ru": "Russian", "tr": "Turkish", "zh": "Chinese",
         "fi": "Finnish", "et": "Estonian"}


def read_sources(path, src, tgt, n):
    """The first n source segments of a corpus TSV (English in column 1, the other language in 2)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 2:
                continue
            out.append(cols[1] if src != "en" else cols[0])
            if len(out) == n:
                break
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--test", required=True, help="TSV: English in column 1, the other language in column 2")
    ap.add_argument("--from", dest="src", required=True)
    ap.add_argument("--to", dest="tgt", required=True)
    ap.add_argument("--segments", type=int, default=200)
    ap.add_argument("--batches", default="1,8,32,64")
    ap.add_argument("--beams", default="1,5")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--mixmoe", default=".build/release/mixmoe")
    ap.add_argument("--work", default="runs/ct2")
    a = ap.parse_args()

    import ctranslate2
    from tokenizers import Tokenizer

    os.makedirs(a.work, exist_ok=True)
    ct2_dir = os.path.join(a.work, "ct2")
    subprocess.run(["ct2-transformers-converter", "--model", a.model, "--output_dir", ct2_dir,
                    "--quantization", "float32", "--force"], check=True, stdout=subprocess.DEVNULL)
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    eos = cfg["eos_token_id"] if isinstance(cfg["eos_token_id"], int) else cfg["eos_token_id"][0]
    vocab = tok.get_vocab()
    id_to_token = {i: t for t, i in vocab.items()}
    # mixmoe's stop set: EOS and every token whose text holds a newline
    stops = [id_to_token[eos]] + [t for t, i in vocab.items() if i != eos and "\n" in tok.decode([i], skip_special_tokens=False)]
    sources = read_sources(a.test, a.src, a.tgt, a.segments)
    s, t = NAMES[a.src], NAMES[a.tgt]
    prompts = [tok.encode(f"Translate this from {s} to {t}:\n{s}: {x}\n{t}:") for x in sources]
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i].ids), i), reverse=True)
    srcfile = os.path.join(a.work, "src.txt")
    with open(srcfile, "w", encoding="utf-8") as f:
        f.write("\n".join(sources) + "\n")

    def text(ids):  # mixmoe's Translator.text: EOS removed, cut at the first newline, trimmed
        x = tok.decode([i for i in ids if i != eos], skip_special_tokens=False)
        return x.split("\n")[0].strip(" ")

    gen = ctranslate2.Generator(ct2_dir, device="cpu", compute_type="float32", intra_threads=a.threads, inter_threads=1)

    def run_ct2(batch, beam):
        out, n_tok = [None] * len(prompts), 0
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            res = gen.generate_batch([prompts[i].tokens for i in idx], max_length=a.max_new_tokens, beam_size=beam,
                                     sampling_topk=1, include_prompt_in_result=False, end_token=stops,
                                     return_end_token=True, length_penalty=1.0)
            for i, r in zip(idx, res):
                ids = r.sequences_ids[0]
                n_tok += len(ids)
                out[i] = text(ids)
        return out, n_tok

    def run_mixmoe(batch, beam):
        p = subprocess.run([a.mixmoe, "translate", "--model", a.model, "--from", a.src, "--to", a.tgt,
                            "--batch", str(batch), "--beam", str(beam), "--max-new-tokens", str(a.max_new_tokens),
                            "--max-ratio", "1000", "--threads", str(a.threads)],
                           stdin=open(srcfile, encoding="utf-8"), capture_output=True, text=True, check=True)
        m = re.search(r"translated \d+ segments \((\d+) generated tokens\) in ([\d.]+) s", p.stderr)
        lines = p.stdout.split("\n")[:len(sources)]  # empty translations are empty lines
        return lines, float(m.group(2)), int(m.group(1))

    for beam in [int(x) for x in a.beams.split(",")]:
        for batch in [int(x) for x in a.batches.split(",")]:
            # the engines alternate, rep by rep, so that a slow spell of the machine hits both
            runs, times, ct2_out = [], [], None
            for _ in range(a.reps):
                runs.append(run_mixmoe(batch, beam))
                t0 = time.perf_counter()
                ct2_out = run_ct2(batch, beam)
                times.append(time.perf_counter() - t0)
            reference = runs[0][0]
            rows = [("mixmoe", reference, statistics.median(r[1] for r in runs), runs[0][2]),
                    (f"ctranslate2 {ctranslate2.__version__}", ct2_out[0], statistics.median(times), ct2_out[1])]
            for engine, out, secs, n_tok in rows:
                same = sum(x == y for x, y in zip(out, reference)) if reference else None
                print(json.dumps(dict(engine=engine, beam=beam, batch=batch, segments=len(out), threads=a.threads,
                                      max_new_tokens=a.max_new_tokens, median_s=secs, segments_per_s=len(out) / secs,
                                      generated_tokens=n_tok, tokens_per_s=n_tok / secs,
                                      identical_to_mixmoe=same, reps=a.reps), sort_keys=True), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Train a tokenizer with `mixmoe tokenizer train`, load it in HF `tokenizers`, and compare the ids
of both implementations on the multilingual fixture texts plus real lines of every language.

  python3 scripts/check/check_trained_tokenizer.py [--mixmoe .build/release/mixmoe] --data CORPUS_DIR
"""
import argparse, json, os, subprocess, sys, tempfile
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mixmoe", default=".build/release/mixmoe")
    ap.add_argument("--data", required=True, help="the full corpus (mono/*.txt)")
    ap.add_argument("--vocab-size", type=int, default=4096)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mixmoe-tok-")
    path = os.path.join(tmp, "tokenizer.json")
    files = [os.path.join(a.data, "mono", f"{l}.txt") for l in ["en", "de", "cs", "ru", "tr", "zh", "fi", "et"]]
    subprocess.run([a.mixmoe, "tokenizer", "train", "--vocab-size", str(a.vocab_size), "--max-bytes-per-file",
                    "1000000", "--out", path] + files, check=True, stderr=subprocess.DEVNULL)
    hf = Tokenizer.from_file(path)
    cases = json.load(open(os.path.join(HERE, "..", "..", "Tests", "MixMoETests", "Fixtures", "tokenizers", "llama3.expected.json"), encoding="utf-8"))
    texts = [c["text"] for c in cases if "\n" not in c["text"] and "\r" not in c["text"] and "\x85" not in c["text"]]
    for f in files:  # lines beyond the training prefix
        with open(f, encoding="utf-8") as fh:
            texts += fh.read().splitlines()[-200:]
    for special in [False, True]:
        args = [a.mixmoe, "tokenize", "--tokenizer", path] + (["--add-special-tokens"] if special else [])
        out = subprocess.run(args, input="\n".join(texts) + "\n", capture_output=True, text=True, check=True).stdout
        ours = [list(map(int, l.split())) for l in out.split("\n")[:-1]]
        theirs = [hf.encode(t, add_special_tokens=special).ids for t in texts]
        bad = [i for i in range(len(texts)) if ours[i] != theirs[i]]
        print(f"add_special_tokens={special}: {len(texts)} lines, {len(texts) - len(bad)} identical, {len(bad)} differ")
        for i in bad[:3]:
            print("  ", repr(texts[i]), ours[i], theirs[i])
        if bad:
            sys.exit(1)
    print("PASS: HF tokenizers loads the mixmoe-trained tokenizer and gives the same ids")


if __name__ == "__main__":
    main()

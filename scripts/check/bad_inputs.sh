#!/usr/bin/env bash
# Runs mixmoe on deliberately bad inputs and prints a Markdown table of what each one gets
# (exit code and the error message). Used to write docs/RELIABILITY.md.
#   scripts/check/bad_inputs.sh [path/to/mixmoe]
set -u
M=${1:-.build/release/mixmoe}
FIX=Tests/MixMoETests/Fixtures
T=$(mktemp -d)
good=$FIX/models/llama_untied
mk() { rm -rf "$T/$1"; mkdir -p "$T/$1"; cp "$good/config.json" "$good/model.safetensors" "$T/$1/"; echo "$T/$1"; }
py_edit() { python3 -c "import json,sys; p=sys.argv[1]; c=json.load(open(p)); $2; json.dump(c,open(p,'w'))" "$1/config.json"; }

row() {  # description, command...
  local desc=$1; shift
  local out; out=$("$@" 2>&1 >/dev/null); local rc=$?
  out=$( (echo "$out" | grep -iE "error" || echo "$out") | grep -v "^$" | head -2 | sed "s#$T/##g; s#|#\\\\|#g" | tr '\n' ' ')
  echo "| $desc | $rc | ${out} |"
}

echo "| bad input | exit | message |"
echo "|---|---|---|"
row "model directory does not exist" $M forward --model $T/nope --ids 1
d=$(mk noconfig); rm $d/config.json
row "config.json missing" $M forward --model $d --ids 1
d=$(mk cfgmissing); py_edit $d "del c['hidden_size']"
row "config.json: required key missing" $M forward --model $d --ids 1
d=$(mk cfgtype); py_edit $d "c['num_hidden_layers']='two'"
row "config.json: key of the wrong type" $M forward --model $d --ids 1
d=$(mk cfgheads); py_edit $d "c['num_key_value_heads']=3"
row "config.json: inconsistent heads" $M forward --model $d --ids 1
d=$(mk cfgjson); echo '{"model_type": "llama",' > $d/config.json
row "config.json: not valid JSON" $M forward --model $d --ids 1
d=$(mk trunc); head -c 50000 $good/model.safetensors > $d/model.safetensors
row "safetensors truncated" $M forward --model $d --ids 1
d=$(mk garbage); head -c 4096 /dev/urandom > $d/model.safetensors
row "safetensors is random bytes" $M forward --model $d --ids 1
d=$(mk shape); py_edit $d "c['intermediate_size']=48"
row "tensor with the wrong shape" $M forward --model $d --ids 1
d=$(mk unknown); py_edit $d "c['num_hidden_layers']=1"
row "unknown tensor in the file" $M forward --model $d --ids 1
d=$(mk missing); py_edit $d "c['tie_word_embeddings']=False; c['num_hidden_layers']=3"
row "tensor missing from the file" $M forward --model $d --ids 1
row "token id outside the vocabulary" $M forward --model $good --ids 5,100000
row "tokenizer.json missing" sh -c "echo hi | $M tokenize --tokenizer $T/none.json"
echo '{"model": {"type": "WordPiece", "vocab": {}}}' > $T/wp.json
row "tokenizer.json: unsupported model" sh -c "echo hi | $M tokenize --tokenizer $T/wp.json"
echo '{"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Metaspace"}}' > $T/ms.json
row "tokenizer.json: unsupported pre-tokenizer" sh -c "echo hi | $M tokenize --tokenizer $T/ms.json"
printf 'Hello\tHallo\nno tab here\n' > $T/a.de-en.tsv
row "TSV line without a tab" $M evaluate --model $good $T/a.de-en.tsv
printf 'Hello\tHallo\n\tleer\n' > $T/b.de-en.tsv
row "TSV line with an empty side" $M evaluate --model $good $T/b.de-en.tsv
printf 'ok\tgut\nf\xff\xfe\ta\n' > $T/c.de-en.tsv
row "invalid UTF-8" $M evaluate --model $good $T/c.de-en.tsv
echo '{"translation": {"xx": "a", "en": "b"}}' > $T/d.jsonl
row "unknown language code" $M evaluate --model $good $T/d.jsonl
printf 'a\nb\nc\n' > $T/t.de; printf 'x\ny\n' > $T/t.en
row "Moses pair with different line counts" $M evaluate --model $good $T/t.de,$T/t.en
printf '{"translation": {"de": "a", "en": "b"}}\n{"translation": \n' > $T/e.jsonl
row "broken JSON line" $M evaluate --model $good $T/e.jsonl
printf '[{"translation": {"de": "a"' > $T/f.json
row "broken JSON array" $M evaluate --model $good $T/f.json
printf 'a\nb\n' > $T/ref.txt; printf 'a\n' > $T/hyp.txt
row "score: hypothesis and reference line counts differ" $M score --ref $T/ref.txt $T/hyp.txt
row "translate: unknown language" sh -c "echo hi | $M translate --model $good --from xx --to en"
row "upcycle: experts do not divide d_ff" $M upcycle --model $good --out $T/up --experts 6
row "train --stage 2 on a dense model" $M train --stage 2 --model $good --out $T/s2 $T/a.de-en.tsv
row "resume with no checkpoint" $M pretrain --config tiny --tokenizer $FIX/tokenizers/llama3.json --steps 2 --out $T/nockpt --resume data/demo/mono/en.txt
echo '{"model_type": "llama", "vocab_size": 3000, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "eos_token_id": 1}' > $T/nan.json
$M init --config $T/nan.json --out $T/nanbase 2>/dev/null; cp $FIX/tokenizers/llama3.json $T/nanbase/tokenizer.json
$M upcycle --model $T/nanbase --out $T/nanup --experts 2 --every 2 2>/dev/null
python3 -c "
from safetensors.numpy import load_file, save_file; import numpy as np, sys
p=sys.argv[1]; t=load_file(p); k='model.layers.1.mlp.lm_experts.0.up_proj.weight'; t[k]=t[k].copy(); t[k][0,0]=np.nan; save_file(t,p,metadata={'format':'pt'})" $T/nanup/model.safetensors
printf 'the cat sat on the mat and then it sat again\n%.0s' {1..50} > $T/mono.txt
row "NaN in a weight during training" $M train --stage 1 --model $T/nanup --out $T/nanout --steps 4 --seq 16 --batch-tokens 64 $T/mono.txt
row "tokenizer larger than the model's vocabulary" sh -c "echo Hallo | $M translate --model $good --tokenizer $FIX/tokenizers/gpt2.json --from de --to en"
cat > $T/ctx.json <<'JSON'
{"model_type": "llama", "vocab_size": 3000, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64, "tie_word_embeddings": true, "eos_token_id": 1}
JSON
$M init --config $T/ctx.json --out $T/ctx 2>/dev/null; cp $FIX/tokenizers/llama3.json $T/ctx/tokenizer.json
row "translate: a line longer than the model's context" sh -c "python3 -c \"print('ein sehr langer Satz ' * 60)\" | $M translate --model $T/ctx --from de --to en"
row "score: paired test with a single system" $M score --ref $T/ref.txt --paired-bs $T/ref.txt
rm -rf "$T"

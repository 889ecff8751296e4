#!/usr/bin/env python3
"""METEOR fixtures from NLTK reading Debian's WordNet (run once; output is committed).

Needs `apt-get install wordnet-base` (WordNet 3.0 in /usr/share/wordnet) and `pip install nltk`.
NLTK's WordNetCorpusReader also wants a `lexnames` file, which Debian does not ship; the script
copies the database to a temporary folder and writes the standard one there (METEOR never reads it).
Writes Tests/MixMoETests/Fixtures/meteor/nltk.json:
  stems     -- PorterStemmer().stem(w) for a word list (irregular forms, every step's suffixes)
  synonyms  -- the single-word lemma names of wordnet.synsets(w) for a word list
  segments  -- meteor_score([ref, ...], hyp) for designed cases and real sentences with
               perturbed hypotheses (synonyms, stems, repeated words, empty lines, several references)
"""
import json, os, random, shutil, tempfile
from nltk.corpus.reader.wordnet import WordNetCorpusReader
from nltk.stem.porter import PorterStemmer
from nltk.translate.meteor_score import meteor_score

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "Tests", "MixMoETests", "Fixtures", "meteor")
LEXNAMES = ["adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute",
            "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group",
            "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant", "noun.possession",
            "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
            "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition", "verb.consumption",
            "verb.contact", "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession",
            "verb.social", "verb.stative", "verb.weather", "adj.ppl"]
POS_OF = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}

WORDS = ["caresses", "ponies", "ties", "caress", "cats", "feed", "agreed", "plastered", "bled", "motoring", "sing",
         "conflated", "troubled", "sized", "hopping", "tanned", "falling", "hissing", "fizzed", "failing", "filing",
         "happy", "sky", "relational", "conditional", "rational", "valenci", "hesitanci", "digitizer", "conformabli",
         "radicalli", "differentli", "vileli", "analogousli", "vietnamization", "predication", "operator", "feudalism",
         "decisiveness", "hopefulness", "callousness", "formaliti", "sensitiviti", "sensibiliti", "triplicate",
         "formative", "formalize", "electriciti", "electrical", "hopeful", "goodness", "revival", "allowance",
         "inference", "airliner", "gyroscopic", "adjustable", "defensible", "irritant", "replacement", "adjustment",
         "dependent", "adoption", "homologou", "communism", "activate", "angulariti", "homologous", "effective",
         "bowdlerize", "probate", "rate", "cease", "controll", "roll", "dying", "lying", "news", "innings", "proceed",
         "generously", "running", "ran", "better", "geese", "children", "mice", "analyses", "studies", "flies",
         "yyyy", "sayying", "by", "is", "a", "Öffnen", "naïve", "files", "opened", "opening", "errors", "windows"]
SYN_WORDS = ["big", "large", "car", "run", "running", "ran", "better", "good", "happy", "file", "open", "close",
             "error", "window", "geese", "children", "flies", "went", "quickly", "fast", "the", "zzzz", "data", "set"]

CASES = [
    (["It is a guide to action which ensures that the military always obeys the commands of the party"],
     ["It is a guide to action that ensures that the military will forever heed Party commands",
      "It is the guiding principle which guarantees the military forces always being under the command of the Party",
      "It is the practical guide for the army always to heed the directions of the party"]),
    (["the cat sat on the mat"], ["the cat sat on the mat"]),
    (["this is a cat"], ["non matching hypothesis"]),
    (["the big car runs fast"], ["the large automobile is running quickly"]),
    (["the the the the"], ["the cat the dog"]),
    ([""], ["something here"]),
    (["something here"], [""]),
    (["Open the file"], ["open the files"]),
    (["The windows were opened by the children"], ["The children opened the windows"]),
    (["error while reading the data set"], ["Error reading the dataset", "an error occurred while the data set was read"]),
]


def main():
    src = "/usr/share/wordnet"
    tmp = tempfile.mkdtemp()
    for f in os.listdir(src):
        p = os.path.join(src, f)
        if os.path.isfile(p):
            shutil.copy(p, tmp)
    with open(os.path.join(tmp, "lexnames"), "w") as f:
        for i, n in enumerate(LEXNAMES):
            f.write(f"{i:02d}\t{n}\t{POS_OF[n.split('.')[0]]}\n")
    import nltk
    nltk.data.path.append(tmp)  # NLTK only reads corpora under its data paths
    class DebianWordNet(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):  # the mapping to other WordNet versions serves only OMW
            return None
    wn = DebianWordNet(tmp, None)
    stem = PorterStemmer()

    refs = []
    for lang in ["de", "fi"]:
        refs += [l.split("\t")[0] for l in open(os.path.join(ROOT, "data", "demo", "parallel", f"test.{lang}-en.tsv"), encoding="utf-8").read().splitlines()]
    rnd = random.Random(7)
    segments = [{"hyp": h[0], "refs": r} for h, r in CASES]
    for r in refs[:300]:
        words = r.split()
        out = []
        for w in words:
            x = rnd.random()
            syn = sorted({l.name() for s in wn.synsets(w.lower()) for l in s.lemmas() if "_" not in l.name()} - {w.lower()})
            if x < 0.15 and syn:
                out.append(rnd.choice(syn))
            elif x < 0.25:
                out.append(w + "s")
            elif x < 0.32:
                continue
            else:
                out.append(w)
        if rnd.random() < 0.3 and len(out) > 3:
            i = rnd.randrange(len(out) - 2)
            out[i], out[i + 2] = out[i + 2], out[i]
        segments.append({"hyp": " ".join(out), "refs": [r]})
    for s in segments:
        s["score"] = meteor_score([r.split() for r in s["refs"]], s["hyp"].split(), wordnet=wn)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "nltk.json"), "w", encoding="utf-8") as f:
        json.dump({"stems": {w: stem.stem(w) for w in WORDS},
                   "synonyms": {w: sorted({l.name() for s in wn.synsets(w) for l in s.lemmas() if "_" not in l.name()}) for w in SYN_WORDS},
                   "segments": segments}, f, ensure_ascii=False)
    print(len(segments), "segments; mean", sum(s["score"] for s in segments) / len(segments))


if __name__ == "__main__":
    main()

import Foundation
import Testing

@testable import MixMoE

/// `mixmoe experiment` end to end on a tiny model and a few lines of the shipped data, and the
/// run cache: a reused result must equal what retraining from scratch gives.
@Suite(.serialized) struct ExperimentTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A 4-layer model (so `every 4` gives one MoE layer) pretrained for 2 steps, and a corpus
    /// folder with the first lines of each shipped file.
    func setup() throws -> (dir: URL, common: [String]) {
        let dir = tempDir("experiment")
        let cfg =
            #"{"model_type": "llama", "vocab_size": 3000, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "max_position_embeddings": 128, "tie_word_embeddings": true}"#
        try Data(cfg.utf8).write(to: dir.appendingPathComponent("config.json"))
        let demo = Self.repo.appendingPathComponent("data/demo")
        let data = dir.appendingPathComponent("data")
        for sub in ["mono", "parallel"] {
            try FileManager.default.createDirectory(at: data.appendingPathComponent(sub), withIntermediateDirectories: true)
            for f in try FileManager.default.contentsOfDirectory(atPath: demo.appendingPathComponent(sub).path) {
                let lines = try String(contentsOf: demo.appendingPathComponent("\(sub)/\(f)"), encoding: .utf8).split(separator: "\n").prefix(6)
                try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: data.appendingPathComponent("\(sub)/\(f)"))
            }
        }
        let model = dir.appendingPathComponent("model")
        let (p, _) = try runMixmoe([
            "pretrain", "--config", dir.appendingPathComponent("config.json").path,
            "--tokenizer", fixtures.appendingPathComponent("tokenizers/llama3.json").path,
            "--steps", "2", "--batch-tokens", "128", "--seq", "32", "--micro-tokens", "128", "--threads", "1",
            "--out", model.path, data.appendingPathComponent("mono/en.txt").path,
        ])
        try #require(p.terminationStatus == 0)
        let common = [
            "--model", model.path, "--data", data.path, "--stage1-steps", "2", "--stage2-steps", "2",
            "--batch-tokens", "128", "--micro-tokens", "128", "--seq", "48", "--test-segments", "2",
            "--threads", "1", "--cache", dir.appendingPathComponent("cache").path,
        ]
        return (dir, common)
    }

    func report(_ dir: URL) throws -> [[String: Any]] {
        let o = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("utilisation.json"))) as! [String: Any]
        return o["runs"] as! [[String: Any]]
    }

    @Test func cachedRunEqualsRetrainedRun() throws {
        let (dir, common) = try setup()
        let r1 = dir.appendingPathComponent("r1"), r2 = dir.appendingPathComponent("r2"), r3 = dir.appendingPathComponent("r3")
        let r4 = dir.appendingPathComponent("r4")
        for (out, extra) in [(r1, [String]()), (r2, []), (r3, ["--no-cache"]), (r4, ["--seeds", "1"])] {
            let (p, err) = try runMixmoe(["experiment", "utilisation", "--reports", out.path] + common + extra)
            let msg = err.text
            #expect(p.terminationStatus == 0, "\(msg)")
        }
        let (a, b, c, d) = (try report(r1)[0], try report(r2)[0], try report(r3)[0], try report(r4)[0])
        #expect(a["reused_from_cache"] as? Bool == false)
        #expect(b["reused_from_cache"] as? Bool == true)
        #expect(c["reused_from_cache"] as? Bool == false)
        #expect(d["reused_from_cache"] as? Bool == false, "another seed is another run")
        // The retrained run (no cache) is the truth the cached one must equal. Foundation's JSON
        // writer does not always print the shortest round-tripping double, so allow 1e-12 relative.
        func same(_ x: Double?, _ y: Double?) -> Bool {
            guard let x, let y else { return false }
            return abs(x - y) <= 1e-12 * max(abs(x), abs(y), 1e-300)
        }
        for key in ["mean_bleu", "mean_chrf"] {
            #expect(same(b[key] as? Double, c[key] as? Double), "\(key)")
        }
        let pb = b["perplexity"] as? [String: Double] ?? [:], pc = c["perplexity"] as? [String: Double] ?? [:]
        #expect(pb.keys.sorted() == pc.keys.sorted())
        for (l, v) in pb { #expect(same(v, pc[l]), "perplexity \(l)") }
        #expect((b["perplexity"] as? [String: Double])?.count == 8, "perplexity for en + 7 languages")
        let sb = try JSONSerialization.data(withJSONObject: b["expert_stats"]!, options: .sortedKeys)
        let sc = try JSONSerialization.data(withJSONObject: c["expert_stats"]!, options: .sortedKeys)
        #expect(sb == sc)
        #expect(((c["expert_stats"] as? [String: Any])?.count ?? 0) == 14, "expert use per direction")
        let md = try String(contentsOf: r2.appendingPathComponent("utilisation.md"), encoding: .utf8)
        #expect(md.contains("Reused from the run cache"))
        #expect(FileManager.default.fileExists(atPath: r1.appendingPathComponent("utilisation.svg").path))
    }

    /// `--method-lr`: a method trained at its own rate is the same run as one whose budget has
    /// that rate (exact identity: the second command finds the first's run in the cache), and the
    /// base model, which is not trained, is evaluated once however many seeds are asked for.
    @Test func methodLearningRateIsTheBudgetsRate() throws {
        let (dir, common) = try setup()
        let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b")
        let c = dir.appendingPathComponent("c"), d = dir.appendingPathComponent("d")
        for (out, extra) in [
            (a, ["--methods", "base,sft", "--seeds", "0,1", "--lr2", "1e-3", "--method-lr", "sft=3e-3"]),
            (b, ["--methods", "sft", "--seeds", "0", "--lr2", "3e-3"]),
            (c, ["--methods", "sft", "--seeds", "0", "--lr2", "3e-3", "--no-cache"]),
            (d, ["--methods", "sft", "--seeds", "0", "--lr2", "1e-3"]),
        ] {
            let (p, err) = try runMixmoe(["experiment", "main", "--reports", out.path] + common + extra)
            let msg = err.text
            #expect(p.terminationStatus == 0, "\(msg)")
        }
        func runs(_ d: URL) throws -> [[String: Any]] {
            let o = try JSONSerialization.jsonObject(with: Data(contentsOf: d.appendingPathComponent("main.json"))) as! [String: Any]
            return o["runs"] as! [[String: Any]]
        }
        let ra = try runs(a), rb = try runs(b)
        #expect(ra.map { $0["variant"] as? String } == ["base", "dense SFT", "dense SFT"])
        #expect(ra.map { $0["seed"] as? Int } == [0, 0, 1])
        #expect(rb.count == 1 && rb[0]["reused_from_cache"] as? Bool == true)
        #expect(rb[0]["mean_bleu"] as? Double == ra[1]["mean_bleu"] as? Double)
        // and the override trains at its rate: retraining at --lr2 3e-3 gives the same model (its
        // dev perplexities), the budget's own 1e-3 a different one
        let pa = ra[1]["perplexity"] as? [String: Double] ?? [:]
        let pc = try runs(c)[0]["perplexity"] as? [String: Double] ?? [:]
        let pd = try runs(d)[0]["perplexity"] as? [String: Double] ?? [:]
        #expect(pa.count == 8 && pc.count == 8 && pd.count == 8)
        for (l, v) in pa {
            #expect(abs(v - (pc[l] ?? .nan)) <= 1e-12 * v, "perplexity \(l)")
            #expect(v != pd[l], "perplexity \(l) at lr 1e-3")
        }
        let md = try String(contentsOf: a.appendingPathComponent("main.md"), encoding: .utf8)
        #expect(md.contains("lr 0.001 / 0.001 (own rates: sft 0.003)") && md.contains("--method-lr sft=0.003"))

        // Every run file records its setup, as the commands gave it: b's dense SFT run (cache files
        // are named by key, so find it by seed and rate), 2 + 2 steps, lr2 3e-3, 128-token batches, 1 thread.
        let cache = dir.appendingPathComponent("cache")
        func cacheFiles() throws -> [(url: URL, json: [String: Any])] {
            try FileManager.default.contentsOfDirectory(at: cache, includingPropertiesForKeys: nil).filter { $0.pathExtension == "json" }.map {
                ($0, try JSONSerialization.jsonObject(with: Data(contentsOf: $0)) as! [String: Any])
            }
        }
        let sft3 = try cacheFiles().filter {
            let st = $0.json["setup"] as? [String: Any], bu = st?["budget"] as? [String: Any]
            return st?["method"] as? String == "sft" && bu?["lr2"] as? Double == 3e-3 && $0.json["seed"] as? Int == 0
        }
        try #require(sft3.count == 1, "one dense SFT run at lr2 3e-3, seed 0")
        let st = sft3[0].json["setup"] as! [String: Any], bu = st["budget"] as! [String: Any]
        let shared = bu["shared"] as! [String: Any]
        #expect(bu["stage1_steps"] as? Int == 2 && bu["stage2_steps"] as? Int == 2)
        #expect(shared["batch_tokens"] as? Int == 128 && shared["seq"] as? Int == 48 && st["threads"] as? Int == 1)
        #expect(st["numerics_version"] as? String == "n1" && st["recorded"] as? String == "trained")
        // A file from before setups were recorded gets its setup when a run finds it under its key.
        var old = sft3[0].json
        old["setup"] = nil
        try JSONSerialization.data(withJSONObject: old).write(to: sft3[0].url)
        let (pb2, errb2) = try runMixmoe(
            ["experiment", "main", "--reports", dir.appendingPathComponent("b2").path] + common + [
                "--methods", "sft", "--seeds", "0", "--lr2", "3e-3", "--cached-only",
            ])
        #expect(pb2.terminationStatus == 0, "\(errb2.text)")
        let back = try JSONSerialization.jsonObject(with: Data(contentsOf: sft3[0].url)) as! [String: Any]
        let st2 = back["setup"] as? [String: Any]
        #expect(st2?["recorded"] as? String == "matched cache key" && (st2?["budget"] as? [String: Any])?["lr2"] as? Double == 3e-3)
        #expect(back["variant"] as? String == old["variant"] as? String && back["mean_bleu"] as? Double == old["mean_bleu"] as? Double)

        // --cached-only: the table from the cache alone. Seed 0 is a's run, bit for bit; seed 7 was
        // never trained, so it is listed as missing and not trained now; with nothing cached it is an error.
        let e = dir.appendingPathComponent("e"), f = dir.appendingPathComponent("f")
        let (pe, erre) = try runMixmoe(
            ["experiment", "main", "--reports", e.path] + common + ["--methods", "sft", "--seeds", "0,7", "--lr2", "3e-3", "--cached-only"])
        let msge = erre.text
        #expect(pe.terminationStatus == 0, "\(msge)")
        #expect(!msge.contains("ETA"), "nothing trained (no progress line)")
        let re = try runs(e)
        #expect(re.count == 1 && re[0]["seed"] as? Int == 0 && re[0]["mean_bleu"] as? Double == ra[1]["mean_bleu"] as? Double)
        let mde = try String(contentsOf: e.appendingPathComponent("main.md"), encoding: .utf8)
        #expect(mde.contains("so not in the tables (--cached-only trains nothing): dense SFT (seed 7).") && mde.contains("--cached-only"))
        for (extra, want) in [(["--seeds", "8"], "none of the runs is in the cache"), (["--seeds", "0", "--no-cache"], "contradict")] {
            let (p, err) = try runMixmoe(["experiment", "main", "--reports", f.path] + common + ["--methods", "sft", "--cached-only"] + extra)
            let msg = err.text
            #expect(p.terminationStatus != 0 && msg.contains(want), "\(msg)")
            #expect(!FileManager.default.fileExists(atPath: f.appendingPathComponent("main.md").path))
        }
    }

    /// `experiment transfer`, and MoE-LPR and LLaMA-MoE v2 inside `experiment main`, end to end on the tiny setup.
    /// Truths: the trained parameters in closed form (MoE-LPR: experts 1-7 of the one MoE layer,
    /// each a full SwiGLU FFN of 3 x 64 x 32, plus its 8 x 32 router weights, expert 0 and the bias
    /// frozen; LLaMA-MoE v2: below), the base model's BLEU per direction from two code paths (the transfer study and
    /// the experiment runner), and a resumed transfer study against one from scratch.
    @Test func transferAndMoELPREndToEnd() throws {
        let (dir, common) = try setup()
        let t = dir.appendingPathComponent("t"), m = dir.appendingPathComponent("m")
        for (out, args) in [(t, ["experiment", "transfer", "--pairs", "de,cs"]), (m, ["experiment", "main", "--methods", "base,moe-lpr,llama-moe-v2"])] {
            let (p, err) = try runMixmoe(args + ["--reports", out.path] + common + ["--seq", "128"])
            let msg = err.text
            #expect(p.terminationStatus == 0, "\(msg)")
        }
        let rows = try JSONSerialization.jsonObject(with: Data(contentsOf: t.appendingPathComponent("transfer.json"))) as! [[String: Any]]
        #expect(rows.map { $0["model"] as? String } == ["base", "stage 1", "de", "cs"])
        for f in ["transfer-stage1.svg", "transfer-stage2.svg"] {
            let svg = try String(contentsOf: t.appendingPathComponent(f), encoding: .utf8)
            #expect(svg.hasPrefix("<svg") && svg.contains("de-en"), "\(f)")
        }
        // Resume: a second study with one more pair reuses the four finished rows (kept beside the
        // run cache) and trains only the new one; the truth for the new row, and for stage 1, is a
        // study from scratch (--no-cache), which must give the same BLEU to the last bit.
        let t2 = dir.appendingPathComponent("t2"), t3 = dir.appendingPathComponent("t3")
        var resumedLog = ""
        for (out, extra) in [(t2, ["--pairs", "de,cs,ru"]), (t3, ["--pairs", "ru", "--no-cache"])] {
            let (p, err) = try runMixmoe(["experiment", "transfer", "--reports", out.path] + common + ["--seq", "128"] + extra)
            let msg = err.text
            #expect(p.terminationStatus == 0, "\(msg)")
            if out == t2 { resumedLog = msg }
        }
        #expect(resumedLog.components(separatedBy: "reused from").count - 1 == 4, "\(resumedLog)")
        let md2 = try String(contentsOf: t2.appendingPathComponent("transfer.md"), encoding: .utf8)
        #expect(md2.contains("the wall time above is this invocation's): base, stage 1, de, cs."), "\(md2)")
        func bleu(_ d: URL) throws -> [String: [String: Double]] {
            let rs = try JSONSerialization.jsonObject(with: Data(contentsOf: d.appendingPathComponent("transfer.json"))) as! [[String: Any]]
            return Dictionary(uniqueKeysWithValues: rs.map { ($0["model"] as! String, $0["bleu"] as! [String: Double]) })
        }
        let (b1, b2, b3) = (try bleu(t), try bleu(t2), try bleu(t3))
        #expect(b2.keys.sorted() == ["base", "cs", "de", "ru", "stage 1"])
        for k in ["base", "stage 1", "de", "cs"] { #expect(b2[k] == b1[k], "\(k)") }
        #expect(b2["ru"] != nil && b2["ru"] == b3["ru"])
        #expect(b3["stage 1"] == b1["stage 1"])
        // A language without a pair of its own (unknown, or the pivot every pair shares) is an error
        // naming it, before any training, and nothing is written.
        for bad in ["xx", "en"] {
            let out = dir.appendingPathComponent("bad-\(bad)")
            let (p, err) = try runMixmoe(["experiment", "transfer", "--pairs", "de,\(bad)", "--reports", out.path] + common)
            let msg = err.text
            #expect(p.terminationStatus != 0 && msg.contains("--pairs") && msg.contains("not '\(bad)'"), "\(msg)")
            #expect(!msg.contains("[transfer] base model"), "checked before the base model is evaluated")
            #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("transfer.json").path))
        }
        let main = try JSONSerialization.jsonObject(with: Data(contentsOf: m.appendingPathComponent("main.json"))) as! [String: Any]
        let runs = main["runs"] as! [[String: Any]]
        #expect(runs.map { $0["variant"] as? String } == ["base", "MoE-LPR", "LLaMA-MoE v2"])
        #expect(runs[1]["trained_parameters"] as? Int == 7 * 3 * 64 * 32 + 8 * 32)
        // LLaMA-MoE v2: everything but the MLP gates' biases: the tied embedding, the final norm,
        // and per layer two norms, q and o (32 x 32), k and v grown to 4 KV heads (32 x 32 each),
        // the attention gate (4 x 32), 8 MLP experts (3 x 8 x 32 each) and the MLP gate (8 x 32)
        #expect(runs[2]["trained_parameters"] as? Int == 3000 * 32 + 32 + 4 * (2 * 32 + 4 * 32 * 32 + 4 * 32 + 8 * 3 * 8 * 32 + 8 * 32))
        let baseMain = Dictionary(uniqueKeysWithValues: (runs[0]["directions"] as! [[String: Any]]).map { ($0["direction"] as! String, $0["bleu"] as! Double) })
        let baseTransfer = rows[0]["bleu"] as! [String: Double]
        #expect(baseMain.count == 14 && baseMain == baseTransfer)
    }
}

/// The main table's →en and en→ columns: the mean BLEU of the directions into and out of
/// English, under their headers (closed form: into 10 and 20 → 15; out of 1, 2, 6 → 3).
@Test func mainTableSplitsTheSidesOfEnglish() throws {
    let bleu = ["de-en": 10.0, "fi-en": 20.0, "en-de": 1.0, "en-fi": 2.0, "en-zh": 6.0]
    let dirs = bleu.keys.sorted().map {
        DirectionResult(direction: $0, segments: 1, bleu: bleu[$0]!, chrf: 0, chrfpp: 0, seconds: 0, bleuSignature: "", hypotheses: nil)
    }
    let md = ExperimentReport.markdown(
        name: .main, results: [RunResult(variant: "Mix-MoE", seed: 0, directions: dirs, trainSeconds: 60)],
        setup: ExperimentSetup(data: "d", model: "m", budget: Budget(), testSegments: 1, monoBytes: 0, test: nil, seeds: [0]), wall: 0)
    let lines = md.split(separator: "\n").map(String.init)
    func cells(_ l: String) -> [String] { l.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) } }
    let header = cells(try #require(lines.first { $0.hasPrefix("| variant | seeds") }))
    let row = cells(try #require(lines.first { $0.hasPrefix("| Mix-MoE |") }))
    #expect(row.count == header.count)
    let col = Dictionary(uniqueKeysWithValues: zip(header, row))
    #expect(col["→en"] == "15.00" && col["en→"] == "3.00", "\(col)")
    #expect(col["mean BLEU"] == "7.80" && col["train min"] == "1.0" && col["de-en"] == "10.0", "\(col)")
}

/// `--method-lr`'s syntax: `METHOD=LR2` keeps the budget's stage-1 rate, `METHOD=LR1/LR2` sets
/// both; anything else is an error naming the option.
@Test(arguments: [
    ("sft=5e-4", Method.sft, 2e-3, 5e-4), ("mix-moe=1e-3/4e-3", .mixMoE, 1e-3, 4e-3), ("moe-pt-sft=0.002", .moePtSft, 2e-3, 2e-3),
])
func methodLearningRateParses(text: String, method: Method, lr1: Double, lr2: Double) throws {
    let r = try MethodLearningRate(parsing: text)
    #expect(r.method == method)
    let b = r.applied(to: Budget(lr1: 2e-3, lr2: 7e-3))
    #expect(b.lr1 == lr1 && b.lr2 == lr2)
    #expect(try MethodLearningRate(parsing: r.description) == r, "description round-trips")
}

@Test(arguments: ["sft", "sft=", "nope=1e-3", "sft=-1e-3", "sft=1e-3/2e-3/3e-3", "sft=abc", "sft=0", "sft=inf"])
func methodLearningRateRejects(text: String) {
    do {
        _ = try MethodLearningRate(parsing: text)
        Issue.record("'\(text)' was accepted")
    } catch {
        let msg = error.localizedDescription
        #expect(msg.contains("--method-lr") && msg.contains("'\(text)'"), "\(msg)")
    }
}

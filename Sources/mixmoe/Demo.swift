import ArgumentParser
import Foundation
import MixMoE
import MixMoECommandLine

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Base model -> upcycle -> stage 1 -> stage 2 -> evaluation on the shipped data (data/demo); writes demo.{json,md}.",
        discussion: "Budget preset: \(Budget.demo.stage1Steps) + \(Budget.demo.stage2Steps) steps of \(Budget.demo.shared.batchTokens) tokens, "
            + "lr \(Budget.demo.lr1) / \(Budget.demo.lr2).")

    @Option(
        help:
            "Base model directory; when it has no weights, a tiny base model is pretrained first. Default: the longest-pretrained committed checkpoint (36.9 M tokens)."
    )
    var model: String = "models/checkpoints/base-c4"
    @Option(help: "Corpus folder (the shipped demo data by default).") var data: String = "data/demo"
    @Option(help: "Output folder for models.") var out: String = "runs/demo"
    @Option(help: "Folder for demo.json and demo.md (default: --out; the committed reports/demo.* come from --reports reports).") var reports: String?
    @Option(help: "Pretraining steps when no base model exists (8192 tokens each).") var pretrainSteps: Int = 200
    @Option(help: "Test segments per direction.") var testSegments: Int = 30
    @OptionGroup var budget: BudgetOptions
    @OptionGroup var compute: ComputeOptions

    func run() async throws {
        try await compute.run {
            let t0 = monotonicSeconds()
            var demo = DemoPipeline(
                model: URL(fileURLWithPath: model), corpus: CorpusFolder(URL(fileURLWithPath: data)),
                out: URL(fileURLWithPath: out))
            demo.budget = try budget.budget(.demo)
            demo.testSegments = testSegments
            demo.pretrainSteps = pretrainSteps
            demo.log = { printErr(String(format: "[%5.1f min] ", (monotonicSeconds() - t0) / 60) + $0) }
            let report = try demo.run()
            let dir = URL(fileURLWithPath: reports ?? out)
            try AtomicFile.writeJSON(report, to: dir.appendingPathComponent("demo.json"))
            try AtomicFile.write(report.markdown, to: dir.appendingPathComponent("demo.md"))
            print(report.markdown, terminator: "")
            printErr("wrote \(dir.appendingPathComponent("demo.md").path); Mix-MoE model in \(out)/mix-moe")
        }
    }
}

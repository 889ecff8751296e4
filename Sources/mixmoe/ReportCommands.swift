import ArgumentParser
import Foundation
import MixMoE
import MixMoECommandLine

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reports built from finished experiments.", subcommands: [BaseStrengthReport.self, DevLossReport.self])
}

struct DevLossReport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-loss",
        abstract: "Dev-loss curves side by side (e.g. one method at several learning rates), from runs with --eval-every.",
        discussion: "Each CURVE is a dev_loss.json written by `mixmoe baseline METHOD --eval-every N`. Writes OUT/dev-loss.{md,svg}.")

    @Argument(help: "dev_loss.json files.") var curves: [String]
    @Option(help: "Comma-separated display labels, one per file (default: the files' folder names).") var labels: String?
    @Option(help: "Plot only this stage's points (a label in the files, e.g. \"mix-moe stage 2\"); required for two-stage runs.")
    var stage: String?
    @Option(help: "Chart title.") var title: String = "Dev loss"
    @Option(help: "Output folder.") var out: String = "reports"

    func validate() throws {
        guard !curves.isEmpty else { throw ValidationError("give at least one dev_loss.json") }
        if let labels, labels.split(separator: ",").count != curves.count {
            throw ValidationError("--labels has \(labels.split(separator: ",").count) labels for \(curves.count) files")
        }
    }

    func run() async throws {
        try await reportingErrors {
            let names =
                labels.map { $0.split(separator: ",").map(String.init) }
                ?? curves.map { URL(fileURLWithPath: $0).deletingLastPathComponent().lastPathComponent }
            let cs = try zip(names, curves).map {
                DevLossComparison.Curve(
                    label: $0.0, points: try DevLossComparison.select(DevLossComparison.read(URL(fileURLWithPath: $0.1)), stage: stage, file: $0.1))
            }
            let dir = URL(fileURLWithPath: out)
            let md = "# \(title)\n\n" + DevLossComparison.markdown(cs) + "\n![dev loss](dev-loss.svg)\n"
            try AtomicFile.write(DevLossComparison.svg(cs, title: title), to: dir.appendingPathComponent("dev-loss.svg"))
            try AtomicFile.write(md, to: dir.appendingPathComponent("dev-loss.md"))
            print(md, terminator: "")
        }
    }
}

struct BaseStrengthReport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "base-strength",
        abstract: "The BLEU gap between methods against base-model pretraining tokens, from `main` reports at several base checkpoints.",
        discussion:
            "Each REPORT is a main.json written by `mixmoe experiment main` (same data, budget and seeds, one per base model). "
            + "Pretraining tokens come from each base model's run.json (data_end x seq). Writes OUT/base-strength.{md,json,svg}.")

    @Argument(help: "main.json reports, one per base model.") var reports: [String]
    @Option(help: "Output folder.") var out: String = "reports"
    @Option(help: "The variant whose gaps are reported.") var variant: String = "Mix-MoE"
    @Option(help: "Comma-separated variants it is compared with.") var against: String = "dense SFT,MoE PT+SFT"
    @OptionGroup var compute: ComputeOptions

    func run() async throws {
        try await compute.run {
            let inputs = try reports.map { try BaseStrength.Input(report: $0) }
            let md = try BaseStrength.write(
                inputs, variant: variant, others: against.split(separator: ",").map(String.init), to: URL(fileURLWithPath: out))
            print(md, terminator: "")
        }
    }
}

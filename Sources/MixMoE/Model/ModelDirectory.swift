import Foundation

/// The files of a model directory, named once: Hugging Face's layout (`config.json`, the
/// safetensors weights, the tokenizer files, `generation_config.json`) and what mixmoe writes
/// beside them (the training log, the run record, expert statistics, the dev-loss curve and the
/// best step's model of a run evaluated on dev).
public struct ModelDirectory: Sendable, Hashable {
    public static let configName = "config.json"
    public static let weightsName = "model.safetensors"
    public static let weightsIndexName = "model.safetensors.index.json"
    public static let tokenizerName = "tokenizer.json"
    public static let tokenizerConfigName = "tokenizer_config.json"
    public static let generationConfigName = "generation_config.json"
    public static let trainLogName = "train_log.jsonl"
    public static let runRecordName = "run.json"
    public static let expertStatsName = "expert_stats.json"
    public static let devLossName = "dev_loss.json"
    public static let bestName = "best"
    public static let evalName = "eval"

    public let url: URL
    public init(_ url: URL) { self.url = url }

    /// `config.json`: the architecture (``ModelConfig``).
    public var config: URL { url.appendingPathComponent(Self.configName) }
    /// The unsharded weights; sharded models have `model.safetensors.index.json` instead.
    public var weights: URL { url.appendingPathComponent(Self.weightsName) }
    /// The shard of each tensor in a sharded model (``SafetensorsIndex``).
    public var weightsIndex: URL { url.appendingPathComponent(Self.weightsIndexName) }
    public var tokenizer: URL { url.appendingPathComponent(Self.tokenizerName) }
    public var tokenizerConfig: URL { url.appendingPathComponent(Self.tokenizerConfigName) }
    public var generationConfig: URL { url.appendingPathComponent(Self.generationConfigName) }
    /// One JSON line per logged step (``TrainingLog``).
    public var trainLog: URL { url.appendingPathComponent(Self.trainLogName) }
    /// What produced the weights: command, inputs' hashes, settings (``RunRecord``).
    public var runRecord: URL { url.appendingPathComponent(Self.runRecordName) }
    public var expertStats: URL { url.appendingPathComponent(Self.expertStatsName) }
    /// The dev-loss curve of a run with `--eval-every` (``DevLossMonitor``).
    public var devLoss: URL { url.appendingPathComponent(Self.devLossName) }
    /// The model of the step with the lowest dev loss (``DevLossMonitor``).
    public var best: URL { url.appendingPathComponent(Self.bestName) }
    /// Test scores and hypotheses of `evaluate` and the translator's card (`eval/report.json`).
    public var eval: URL { url.appendingPathComponent(Self.evalName) }
}

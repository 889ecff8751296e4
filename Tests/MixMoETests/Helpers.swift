import Foundation
import Testing

@testable import MixMoE

/// Folder of committed fixtures (copied into the test bundle).
let fixtures: URL = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")

func modelFixture(_ name: String) -> URL { fixtures.appendingPathComponent("models/\(name)") }

/// Compares two arrays: shapes (counts) first, then max absolute difference.
func expectClose(
    _ a: [Float], _ b: [Float], atol: Float, _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(a.count == b.count, "\(what): \(a.count) values vs \(b.count)", sourceLocation: sourceLocation)
    guard a.count == b.count else { return }
    var worst: Float = 0, at = 0
    // a NaN on either side is a failure (abs(x - NaN) > worst is false, so test for it explicitly)
    for i in a.indices where abs(a[i] - b[i]) > worst || a[i].isNaN || b[i].isNaN {
        worst = a[i].isNaN || b[i].isNaN ? .infinity : abs(a[i] - b[i]); at = i
        if worst == .infinity { break }
    }
    #expect(
        worst <= atol, "\(what): max |diff| \(worst) at \(at) (\(a[at]) vs \(b[at])) > \(atol)",
        sourceLocation: sourceLocation)
}

/// Relative error ||a - b|| / ||b|| (with a floor on ||b||), after checking counts.
func relativeError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count, "count mismatch \(a.count) vs \(b.count)")
    var num = 0.0, den = 0.0
    for i in a.indices {
        num += Double(a[i] - b[i]) * Double(a[i] - b[i])
        den += Double(b[i]) * Double(b[i])
    }
    return num.squareRoot() / max(den.squareRoot(), 1e-12)
}

func tempDir(_ tag: String = "t") -> URL {
    let u = FileManager.default.temporaryDirectory.appendingPathComponent("mixmoe-\(tag)-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
}

/// Deterministic pseudo-random floats for test inputs.
func randomFloats(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var g = SplitMix64(seed: seed)
    return (0..<n).map { _ in scale * g.nextGaussian() }
}

/// Expected outputs of a transformers fixture.
struct ModelExpectation {
    let file: SafetensorsFile
    let batch = 2, seq = 7
    init(_ dir: URL) throws { file = try SafetensorsFile(url: dir.appendingPathComponent("expected.safetensors")) }
    var ids: [Int32] { file.floats("ids").map { Int32($0) } }
    var targets: [Int32] { file.floats("targets").map { $0 < 0 ? -1 : Int32($0) } }
    var logits: [Float] { file.floats("logits") }
    var loss: Float { file.floats("loss")[0] }
    var adamwLosses: [Float] { file.floats("adamw_losses") }
    func grad(_ name: String) -> [Float]? { file.tensors["grad." + name] == nil ? nil : file.floats("grad." + name) }
}

import Foundation

/// One method's own peak learning rates in a comparison, replacing the budget's: methods differ
/// in the rate they train best at (docs/RESULTS.md: dense SFT at 5e-4, Mix-MoE's stage 2 at
/// 2e-3 on the same batches), so a fair table tunes each on dev loss. Written `METHOD=LR2` (the
/// parallel stage; a one-stage method trains at LR2) or `METHOD=LR1/LR2`.
public struct MethodLearningRate: Codable, Sendable, Equatable, CustomStringConvertible {
    public var method: Method
    /// Monolingual-stage rate (nil: the budget's).
    public var lr1: Double?
    public var lr2: Double

    public init(method: Method, lr1: Double? = nil, lr2: Double) { self.method = method; self.lr1 = lr1; self.lr2 = lr2 }

    /// Parses `METHOD=LR2` or `METHOD=LR1/LR2`.
    public init(parsing text: String) throws {
        let expected =
            "METHOD=LR or METHOD=LR1/LR2 with a positive LR and METHOD one of "
            + Method.allCases.map(\.rawValue).joined(separator: ", ") + " (got '\(text)')"
        let parts = text.split(separator: "=", omittingEmptySubsequences: false)
        guard parts.count == 2, let m = Method(rawValue: String(parts[0])) else {
            throw SettingsError.invalid(option: "--method-lr", expected: expected)
        }
        let rates = parts[1].split(separator: "/", omittingEmptySubsequences: false).map { Double($0) }
        guard (1...2).contains(rates.count), rates.allSatisfy({ ($0 ?? 0) > 0 && ($0 ?? 0).isFinite }) else {
            throw SettingsError.invalid(option: "--method-lr", expected: expected)
        }
        self.init(method: m, lr1: rates.count == 2 ? rates[0] : nil, lr2: rates[rates.count - 1]!)
    }

    /// `budget` with this method's rates.
    public func applied(to budget: Budget) -> Budget {
        var b = budget
        if let lr1 { b.lr1 = lr1 }
        b.lr2 = lr2
        return b
    }

    public var description: String { "\(method.rawValue)=" + (lr1.map { "\($0)/" } ?? "") + "\(lr2)" }
}

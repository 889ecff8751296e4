import Foundation

/// Settings that cannot describe a run.
public enum SettingsError: LocalizedError, Equatable {
    case invalid(option: String, expected: String)
    public var errorDescription: String? {
        switch self {
        case .invalid(let o, let e): return "\(o): expected \(e)."
        }
    }
}

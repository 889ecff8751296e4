import Foundation

/// Generated ids to text deltas for a stream: text is decoded incrementally
/// (``IncrementalDecoder``: each id costs its own bytes, not a re-decode of everything so far),
/// end-of-sequence ids add no text, and the characters that could begin a stop string are held
/// back; when a stop string appears, the text before it is the last delta and the stream stops.
/// The concatenated deltas equal the full decode of the non-EOS ids, cut before the first stop
/// string.
public final class TextStream: @unchecked Sendable {
    public let stops: [String]
    let eos: Set<Int32>
    private var decoder: IncrementalDecoder
    /// Decoded text not yet returned: at most the longest stop string minus one character, plus
    /// the newest token's text.
    private var held = ""
    private let hold: Int
    public private(set) var stopped = false

    public init(tokenizer: BPETokenizer, eos: Set<Int32>, stops: [String]) {
        self.stops = stops.filter { !$0.isEmpty }
        self.eos = eos
        decoder = IncrementalDecoder(tokenizer)
        hold = max((self.stops.map(\.count).max() ?? 1) - 1, 0)
    }

    /// The new text after `id`, and whether a stop string has appeared. A stop string cannot
    /// begin in text already returned: every text that could begin one was held until it could
    /// be decided, so searching `held` alone finds the first.
    public func add(_ id: Int32) -> (delta: String, stopped: Bool) {
        guard !stopped else { return ("", true) }
        if !eos.contains(id) { held += decoder.add(id) }
        if let cut = stops.compactMap({ held.range(of: $0)?.lowerBound }).min() {
            stopped = true
            defer { held = "" }
            return (String(held[..<cut]), true)
        }
        let n = held.count
        guard n > hold else { return ("", false) }
        let split = held.index(held.startIndex, offsetBy: n - hold)
        defer { held = String(held[split...]) }
        return (String(held[..<split]), false)
    }

    /// The text held back, at the end of the generation (a stop string would have been found).
    public func flush() -> String {
        guard !stopped else { return "" }
        defer { held = "" }
        return held + decoder.finish()
    }
}

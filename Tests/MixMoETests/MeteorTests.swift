import Foundation
import Testing

@testable import MixMoE

/// METEOR against NLTK reading Debian's WordNet (scripts/fixtures/make_meteor_fixtures.py): the Porter
/// stemmer, WordNet synonyms, and segment scores (synonyms, stems, repeated words, empty lines,
/// several references, 300 real sentences with perturbed hypotheses).
struct MeteorTests {
    struct File: Decodable {
        struct Segment: Decodable { let hyp: String; let refs: [String]; let score: Double }
        let stems: [String: String], synonyms: [String: [String]], segments: [Segment]
    }
    static let file: File = try! JSONDecoder().decode(File.self, from: Data(contentsOf: fixtures.appendingPathComponent("meteor/nltk.json")))
    static let wordnet: WordNet = try! WordNet()

    @Test func porterStemmerMatchesNLTK() {
        let s = PorterStemmer()
        for (w, want) in Self.file.stems.sorted(by: { $0.key < $1.key }) { #expect(s.stem(w) == want, "\(w)") }
    }

    @Test func wordnetSynonymsMatchNLTK() {
        for (w, want) in Self.file.synonyms.sorted(by: { $0.key < $1.key }) {
            #expect(Self.wordnet.synonyms(w) == Set(want), "\(w): \(Self.wordnet.synonyms(w).sorted()) vs \(want)")
        }
    }

    /// Every segment to 1e-6; the corpus mean to 1e-4.
    @Test func segmentsAndCorpusMatchNLTK() {
        let m = Meteor(wordnet: Self.wordnet)
        var got = 0.0, want = 0.0
        for seg in Self.file.segments {
            let s = m.segment(hypothesis: Meteor.tokenize(seg.hyp), references: seg.refs.map(Meteor.tokenize))
            #expect(abs(s - seg.score) < 1e-6, "\(seg.hyp) | \(seg.refs): \(s) vs \(seg.score)")
            got += s; want += seg.score
        }
        #expect(abs(got - want) / Double(Self.file.segments.count) < 1e-4)
    }

    /// Closed form: a hypothesis identical to its m-word reference is one chunk of m matches, so
    /// F = 1 and the score is 1 - 0.5 (1/m)^3; no match scores 0.
    @Test(arguments: [1, 2, 5, 17])
    func identicalSentenceClosedForm(_ m: Int) {
        let words = (0..<m).map { "w\($0)" }
        let meteor = Meteor(wordnet: Self.wordnet)
        #expect(abs(meteor.segment(hypothesis: words, references: [words]) - (1 - 0.5 * pow(1 / Double(m), 3))) < 1e-12)
        #expect(meteor.segment(hypothesis: ["zzzq"], references: [words]) == 0)
    }

    @Test func missingWordNetNamesThePackage() {
        #expect(throws: DataError.self) { try WordNet(directory: tempDir("nowordnet")) }
        do { _ = try WordNet(directory: tempDir("nowordnet")) } catch { #expect(error.localizedDescription.contains("wordnet-base")) }
    }
}

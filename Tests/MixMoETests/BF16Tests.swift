import Foundation
import Testing

@testable import MixMoE

/// bf16 storage (`--dtype bf16`): rounding against IEEE closed forms, the bf16 GEMM kernels
/// against the naive fp32 loop on the widened weights, and models held in bf16 against the same
/// models with their weights rounded (an identity) and against transformers' fp32 logits.
struct BF16Tests {
    /// (fp32 bits, bf16 bits that round to nearest even gives, as `torch.tensor(x).bfloat16()`).
    static let roundings: [(UInt32, UInt16)] = [
        (0x3F80_0000, 0x3F80),  // 1
        (0x3F80_8000, 0x3F80),  // 1 + 2^-8: a tie, to the even neighbour below
        (0x3F81_8000, 0x3F82),  // 1 + 3 * 2^-8: a tie, to the even neighbour above
        (0x3F80_8001, 0x3F81),  // just above a tie
        (0x3F80_7FFF, 0x3F80),  // just below a tie
        (0xC000_0000, 0xC000),  // -2
        (0x3DCC_CCCD, 0x3DCD),  // 0.1
        (0x7F7F_FFFF, 0x7F80),  // the largest float overflows to infinity
        (0x7F80_0000, 0x7F80), (0xFF80_0000, 0xFF80),  // +-infinity
        (0x0000_0001, 0x0000),  // the smallest subnormal rounds to zero
        (0x0001_8000, 0x0002),  // a subnormal tie, to even
        (0x8000_0000, 0x8000),  // -0
    ]

    @Test(arguments: roundings)
    func roundsToNearestEven(_ bits: UInt32, _ expected: UInt16) {
        #expect(BF16.round(Float(bitPattern: bits)) == expected, "round(0x\(String(bits, radix: 16)))")
    }

    /// NaNs stay NaN, signalling ones included (truncation alone would turn 0x7F800001 into infinity).
    @Test(arguments: [UInt32(0x7FC0_0000), 0x7F80_0001, 0xFFC0_1234])
    func nanStaysNaN(_ bits: UInt32) {
        #expect(BF16.float(BF16.round(Float(bitPattern: bits))).isNaN)
    }

    /// Widening appends 16 zero bits (the vector path and the tail alike), and every non-NaN bf16
    /// value survives widening and rounding unchanged.
    @Test func widenIsExactAndRoundTrips() {
        let all = (0...0xFFFF).map { UInt16($0) }
        let out = FloatBuffer(count: all.count)
        all.withUnsafeBufferPointer { BF16.widen($0.baseAddress!, out.ptr, count: all.count - 3) }  // a tail too
        for h in all.dropLast(3) {
            #expect(out[Int(h)].bitPattern == UInt32(h) << 16)
            if !out[Int(h)].isNaN { #expect(BF16.round(out[Int(h)]) == h) }
        }
    }

    /// The bf16 GEMM against `sgemmNaive` on the widened weights: the small-M kernel (decoding),
    /// the tiled path forward (`x W^T`) and backward (`dy W`), several tiles and ragged ones,
    /// strided operands, beta 0 and 1.
    @Test(
        arguments: [
            (true, 1, nil), (true, 3, nil), (true, 8, nil), (true, 9, nil), (true, 33, 7), (false, 2, nil), (false, 17, 5),
        ] as [(Bool, Int, Int?)], [Float(0), 1])
    func bf16GemmMatchesNaive(_ case: (transB: Bool, M: Int, tile: Int?), beta: Float) {
        let (transB, M, tile) = `case`
        let N = 45, K = 77, pad = 3
        let lda = K + pad, ldb = (transB ? K : N) + pad, ldc = N + pad
        let a = FloatBuffer(randomFloats(M * lda, seed: 1))
        let wRows = transB ? N : K
        let h = randomFloats(wRows * ldb, seed: 2).map(BF16.round)
        let wide = FloatBuffer(h.map(BF16.float))
        let c0 = randomFloats(M * ldc, seed: 3)
        let c1 = FloatBuffer(c0), c2 = FloatBuffer(c0)
        h.withUnsafeBufferPointer { hb in
            if let tile {
                gemmTiledBF16(
                    transB: transB, M: M, N: N, K: K, alpha: 0.7, A: a.ptr, lda: lda, B: hb.baseAddress!, ldb: ldb, beta: beta, C: c1.ptr,
                    ldc: ldc, tileRows: tile)
            } else {
                gemm(transB: transB, M: M, N: N, K: K, alpha: 0.7, A: a.ptr, lda: lda, B: .bf16(hb.baseAddress!), ldb: ldb, beta: beta, C: c1.ptr, ldc: ldc)
            }
        }
        sgemmNaive(transA: false, transB: transB, M: M, N: N, K: K, alpha: 0.7, A: a.ptr, lda: lda, B: wide.ptr, ldb: ldb, beta: beta, C: c2.ptr, ldc: ldc)
        expectClose(c1.array, c2.array, atol: 1e-4, "bf16 gemm transB \(transB) M \(M) tile \(tile ?? 0) beta \(beta)")
    }

    /// The fixture with every weight matrix rounded to bf16 in fp32 storage: what a model held
    /// in bf16 must compute.
    func rounded(_ dir: URL) throws -> DecoderModel {
        let m = try DecoderModel.load(directory: dir)
        for (i, e) in m.store.entries.enumerated() where ParameterStore.canHoldHalf(e) {
            let w = m.store.w(i)
            for j in 0..<e.count { w[j] = BF16.float(BF16.round(w[j])) }
        }
        return m
    }

    /// Held in bf16, a model computes what its rounded fp32 twin computes (logits and greedy
    /// tokens), within bf16 error of transformers' fp32 logits, in the bytes bf16 promises.
    @Test(arguments: ["llama_untied", "llama_tied_rope3", "qwen2_bias"])
    func modelHeldInBF16IsTheRoundedModel(_ name: String) throws {
        let dir = modelFixture(name)
        let half = try DecoderModel.load(directory: dir, dtype: .bf16), twin = try rounded(dir)
        let matrices = half.store.entries.filter(ParameterStore.canHoldHalf).reduce(0) { $0 + $1.count }
        #expect(matrices > half.store.count * 9 / 10)
        #expect(half.store.heldBytes == 4 * half.store.count - 2 * matrices)
        let e = try ModelExpectation(dir)
        var logits: [[Float]] = []
        for m in [half, twin] {
            try m.setBatch(ids: e.ids, batch: e.batch, seq: e.seq)
            m.forward(batch: e.batch, seq: e.seq)
            logits.append(Array(UnsafeBufferPointer(start: m.logits.ptr, count: e.logits.count)))
        }
        expectClose(logits[0], logits[1], atol: 1e-5, "\(name): bf16-held vs rounded fp32")
        let rel = relativeError(logits[0], e.logits)
        #expect(rel > 0 && rel < 2e-2, "\(name): relative error against transformers fp32 \(rel)")
        let prompts: [[Int32]] = [[1, 5, 9, 2], [7, 3]]
        let a = try Generator(model: half, stopTokens: []).greedy(prompts, maxNew: [8, 8])
        let b = try Generator(model: twin, stopTokens: []).greedy(prompts, maxNew: [8, 8])
        #expect(a == b)
    }

    /// transformers' own bf16 checkpoint in shards (`save_pretrained(max_shard_size="40KB")`,
    /// scripts/fixtures/make_bf16_fixture.py): read through model.safetensors.index.json, widened to fp32 or
    /// held in bf16, it gives transformers' logits of those weights computed in fp32, and stays
    /// within bf16 error of transformers' bf16 arithmetic.
    @Test(arguments: DType.allCases)
    func readsTransformersBF16Shards(_ dtype: DType) throws {
        let dir = modelFixture("llama_untied_bf16")
        #expect(try WeightFiles(directory: dir).files.count == 2)
        let m = try DecoderModel.load(directory: dir, dtype: dtype)
        let e = try ModelExpectation(dir)
        try m.setBatch(ids: e.ids, batch: e.batch, seq: e.seq)
        m.forward(batch: e.batch, seq: e.seq)
        let ours = Array(UnsafeBufferPointer(start: m.logits.ptr, count: e.logits.count))
        expectClose(ours, e.logits, atol: 1e-5, "\(dtype): logits of transformers' bf16 shards")
        let rel = relativeError(ours, e.file.floats("logits_bf16_compute"))
        #expect(rel < 2e-2, "\(dtype): relative error against transformers' bf16 arithmetic \(rel)")
    }

    /// Stage 2 with the frozen matrices in bf16 trains the MT group as the rounded model does;
    /// the frozen bf16 values stay bit for bit; saved, they are BF16 tensors that load back
    /// exactly.
    @Test func stage2WithFrozenMatricesInBF16() throws {
        let dense = try DecoderModel.load(directory: modelFixture("llama_untied"))
        let m1 = try Upcycling.upcycle(dense, MixMoEConfig(expertsPerGroup: 2, moeLayers: [0, 1], hiddenSize: 32))
        let dir = tempDir("bf16-stage1"), out = tempDir("bf16-stage2")
        defer { for d in [dir, out] { try? FileManager.default.removeItem(at: d) } }
        try m1.save(directory: dir)
        let half = try Upcycling.prepare(directory: dir, stage: 2, name: "stage1", dtype: .bf16)
        let full = try Upcycling.prepare(directory: dir, stage: 2, name: "stage1")
        for (i, e) in full.store.entries.enumerated() where !e.trainable && ParameterStore.canHoldHalf(e) {
            #expect(half.store.entries[i].dtype == .bf16, "\(e.name) should be held in bf16")
            let w = full.store.w(i)
            for j in 0..<e.count { w[j] = BF16.float(BF16.round(w[j])) }
        }
        #expect(half.store.trainableCount == full.store.trainableCount)
        let frozen = half.store.entries.indices.filter { half.store.entries[$0].dtype == .bf16 }
            .map { Array(UnsafeBufferPointer(start: half.store.half($0), count: half.store.entries[$0].count)) }
        for m in [half, full] {
            let tr = Trainer(model: m, schedule: CosineSchedule(peak: 1e-2, totalSteps: 3, warmupFraction: 0))
            for s in 0..<3 { try tr.trainStep([TwoStageTests().batch(seed: 70 + UInt64(s))]) }
        }
        for e in full.store.entries where e.trainable {
            expectClose(half.store.values(e.name), full.store.values(e.name), atol: 1e-5, "trained \(e.name)")
        }
        let after = half.store.entries.indices.filter { half.store.entries[$0].dtype == .bf16 }
            .map { Array(UnsafeBufferPointer(start: half.store.half($0), count: half.store.entries[$0].count)) }
        #expect(after == frozen)
        try half.save(directory: out)
        let file = try SafetensorsFile(url: out.appendingPathComponent("model.safetensors"))
        for e in half.store.entries {
            #expect(file.tensors[e.name]?.dtype == (e.dtype == .bf16 ? "BF16" : "F32"), "\(e.name) saved as \(e.dtype)")
        }
        let back = try DecoderModel.load(directory: out)
        for e in half.store.entries { #expect(back.store.values(e.name) == half.store.values(e.name), "\(e.name) reloaded") }
    }

    /// Held in bf16, the fp32 pages of those views are handed back: the fp32 buffer's resident
    /// part is the other views only (the kernel's page table, via mincore).
    @Test func bf16ViewsLeaveTheirFP32PagesUntouched() throws {
        let c = ModelConfig.tiny
        let m = DecoderModel(config: c, seed: 3)
        m.store.setTrainable { _ in false }
        m.store.holdFrozenMatrices(as: .bf16)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let bytes = 4 * m.store.count, pages = (bytes + page - 1) / page
        var vec = [UInt8](repeating: 0, count: pages)
        #expect(mincore(UnsafeMutableRawPointer(m.store.params.ptr), bytes, &vec) == 0)
        let resident = vec.filter { $0 & 1 == 1 }.count * page
        let fp32Views = 4 * m.store.entries.filter { $0.dtype == .f32 }.reduce(0) { $0 + $1.count }
        // at most the fp32 views plus one shared page at each edge of every bf16 view
        #expect(resident <= fp32Views + 2 * page * m.store.entries.count, "resident fp32 pages: \(resident) bytes")
        #expect(resident < bytes / 4)
    }
}

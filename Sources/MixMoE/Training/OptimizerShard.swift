/// ZeRO-1 optimiser-state sharding, as llm.c does it: the trainable values, packed in view order,
/// are cut into one near-equal part per rank, and each rank keeps Adam moments for its part only.
/// A step reduce-scatters the gradients (each rank receives the global sum of its part), clips
/// with the all-reduced norm, updates its part and all-gathers the weights. When the trainable
/// values are one contiguous run (full training) both collectives work in place on the store;
/// otherwise (stage 2) through one packed staging buffer of the trainable values. Per rank this
/// holds 8/N bytes of moments per trainable value (plus 4/N for the received gradient part)
/// instead of 8.
final class OptimizerShard {
    let collective: Collective
    let view: PackedTrainable
    var runs: TrainableRuns { view.runs }
    /// Values per rank, in rank order.
    let parts: [Int]
    /// This rank's values in the packed order.
    let range: Range<Int>
    /// This rank's values in the store's layout, with their place in the part (`moment`).
    let segments: [OptimizerSegment]
    private let mine: FloatBuffer  // [range.count] this rank's reduced gradients

    init(store: ParameterStore, collective: Collective) {
        self.collective = collective
        view = PackedTrainable(store)
        let n = view.count, size = collective.size
        parts = (0..<size).map { Parallel.chunkRange(n, chunks: size, index: $0).count }
        range = Parallel.chunkRange(n, chunks: size, index: collective.rank)
        segments = view.runs.segments(in: range)
        mine = FloatBuffer(count: range.count)
    }

    /// Moments this rank holds.
    var momentCount: Int { range.count }

    /// This rank's values as store ranges (norm, clipping, non-finite checks).
    var paramRanges: [Range<Int>] { segments.map { $0.param..<($0.param + $0.count) } }

    /// Leaves the global gradient sum of this rank's part in the store's gradients (the rest of
    /// the trainable gradients are stale afterwards).
    func reduceScatter(_ store: ParameterStore) {
        collective.reduceScatter(view.packed(store.grads.ptr), into: mine.ptr, parts: parts)
        for s in segments { (store.grads.ptr + s.param).update(from: mine.ptr + s.moment, count: s.count) }
    }

    /// Every rank's updated part into every rank's weights.
    func allGather(_ store: ParameterStore) {
        let w = view.packed(store.params.ptr)
        collective.allGather(w, parts: parts)
        view.unpack(w, into: store.params.ptr)
    }

    /// `part` (this rank's `range.count` values) gathered from every rank, packed.
    private func gathered(_ part: UnsafePointer<Float>) -> FloatBuffer {
        let all = FloatBuffer(count: runs.count)
        (all.ptr + range.lowerBound).update(from: part, count: range.count)
        collective.allGather(all.ptr, parts: parts)
        return all
    }

    /// The full reduced gradient after `reduceScatter`, in the store's layout (tests compare it
    /// with one process's).
    func gatheredGradients(_ store: ParameterStore) -> FloatBuffer {
        let full = FloatBuffer(count: store.count)
        let all = gathered(mine.ptr)
        // a FloatBuffer frees its memory when the object dies, which may be right after `.ptr`
        withExtendedLifetime(all) { runs.unpack(all.ptr, into: full.ptr) }
        return full
    }

    /// Both moments of every trainable value (packed, as an unsharded optimiser holds them) on
    /// rank 0, nil elsewhere: checkpoints do not depend on the world size or on sharding.
    func gatherMoments(_ opt: AdamW) -> (m: FloatBuffer, v: FloatBuffer)? {
        let m = gathered(opt.m.ptr), v = gathered(opt.v.ptr)
        return collective.isRoot ? (m, v) : nil
    }

    /// Rank 0's moments of every trainable value (packed, e.g. from a checkpoint) into every
    /// rank's part.
    func scatterMoments(_ packed: (m: FloatBuffer, v: FloatBuffer)?, into opt: AdamW) {
        let all = FloatBuffer(count: runs.count)
        withExtendedLifetime((all, packed)) {
            for (i, buf) in [opt.m, opt.v].enumerated() {
                if let packed { all.ptr.update(from: (i == 0 ? packed.m : packed.v).ptr, count: runs.count) }
                collective.broadcast(all.ptr, count: runs.count, root: 0)
                buf.ptr.update(from: all.ptr + range.lowerBound, count: range.count)
            }
        }
    }
}

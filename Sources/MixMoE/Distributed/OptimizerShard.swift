/// ZeRO-1 optimiser-state sharding, as llm.c does it: the trainable values, packed in view order,
/// are cut into one equal block per rank (the last padded), and each rank keeps Adam moments for
/// its block only. A step reduce-scatters the packed gradients (each rank receives the global sum
/// of its block), clips with the all-reduced norm, updates its block, and all-gathers the packed
/// weights. Per rank this holds 2 x trainable / size moments instead of 2 x the store.
final class OptimizerShard {
    let collective: Collective
    let runs: TrainableRuns
    /// Packed values per rank (the last block may hold padding).
    let block: Int
    /// This rank's values in the packed order.
    let range: Range<Int>
    /// This rank's values in the store's layout, with their place in the block (`moment`).
    let segments: [OptimizerSegment]
    private let staging: FloatBuffer  // [size * block] packed values
    private let mine: FloatBuffer  // [block] this rank's reduced gradients

    init(store: ParameterStore, collective: Collective) {
        self.collective = collective
        runs = TrainableRuns(store)
        block = max(1, (runs.count + collective.size - 1) / collective.size)
        let lo = min(runs.count, collective.rank * block)
        range = lo..<min(runs.count, lo + block)
        var segs: [OptimizerSegment] = []
        var at = 0
        for r in runs.runs {
            let a = max(at, range.lowerBound), b = min(at + r.count, range.upperBound)
            if a < b { segs.append(OptimizerSegment(param: r.lowerBound + (a - at), moment: a - range.lowerBound, count: b - a)) }
            at += r.count
        }
        segments = segs
        staging = FloatBuffer(count: block * collective.size)
        mine = FloatBuffer(count: block)
    }

    /// This rank's values as store ranges (norm, clipping, non-finite checks).
    var paramRanges: [Range<Int>] { segments.map { $0.param..<($0.param + $0.count) } }

    /// Leaves the global gradient sum of this rank's block in the store's gradients (the rest of
    /// the trainable gradients are stale afterwards).
    func reduceScatter(_ store: ParameterStore) {
        runs.pack(store.grads.ptr, into: staging.ptr)
        (staging.ptr + runs.count).update(repeating: 0, count: staging.count - runs.count)
        collective.reduceScatter(staging.ptr, into: mine.ptr, block: block)
        for s in segments { (store.grads.ptr + s.param).update(from: mine.ptr + s.moment, count: s.count) }
    }

    /// Every rank's updated block into every rank's weights.
    func allGather(_ store: ParameterStore) {
        gather { base in for s in segments { (base + s.moment).update(from: store.params.ptr + s.param, count: s.count) } }
        runs.unpack(staging.ptr, into: store.params.ptr)
    }

    /// The full gradient after `reduceScatter` (tests compare it with one process's).
    func gatheredGradients(_ store: ParameterStore) -> FloatBuffer {
        gather { base in for s in segments { (base + s.moment).update(from: store.grads.ptr + s.param, count: s.count) } }
        let full = FloatBuffer(count: store.count)
        runs.unpack(staging.ptr, into: full.ptr)
        return full
    }

    /// Places this rank's block (written by `fill` at the pointer) and all-gathers `staging`.
    private func gather(_ fill: (UnsafeMutablePointer<Float>) -> Void) {
        fill(staging.ptr + collective.rank * block)
        collective.allGather(staging.ptr, block: block)
    }

    /// Both moments in the store's layout on rank 0 (nil elsewhere): checkpoints stay independent
    /// of the world size and of sharding.
    func gatherMoments(_ opt: AdamW, store: ParameterStore) -> (m: FloatBuffer, v: FloatBuffer)? {
        var out: [FloatBuffer] = []
        for buf in [opt.m, opt.v] {
            gather { base in base.update(from: buf.ptr, count: range.count) }
            if collective.isRoot {
                let full = FloatBuffer(count: store.count)
                runs.unpack(staging.ptr, into: full.ptr)
                out.append(full)
            }
        }
        return collective.isRoot ? (out[0], out[1]) : nil
    }

    /// Rank 0's moments (store layout, e.g. from a checkpoint) into every rank's block.
    func scatterMoments(_ full: (m: FloatBuffer, v: FloatBuffer)?, into opt: AdamW) {
        for (i, buf) in [opt.m, opt.v].enumerated() {
            if let full { runs.pack((i == 0 ? full.m : full.v).ptr, into: staging.ptr) }
            collective.broadcast(staging.ptr, count: runs.count, root: 0)
            buf.ptr.update(from: staging.ptr + range.lowerBound, count: range.count)
        }
    }
}

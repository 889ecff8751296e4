/// Contiguous ranges of a store's trainable views: adjacent trainable views merge, so full
/// fine-tuning is one range and stage 2 (MT experts and routers spread over the MoE layers) a few.
struct TrainableRuns {
    let runs: [Range<Int>]
    let count: Int

    init(_ store: ParameterStore) {
        var runs: [Range<Int>] = []
        for e in store.entries where e.trainable && e.count > 0 {
            if let last = runs.last, last.upperBound == e.offset {
                runs[runs.count - 1] = last.lowerBound..<(e.offset + e.count)
            } else {
                runs.append(e.offset..<(e.offset + e.count))
            }
        }
        self.runs = runs
        count = runs.reduce(0) { $0 + $1.count }
    }

    /// Copies the runs of `from` (store layout) into `to` (packed, `count` floats).
    func pack(_ from: UnsafePointer<Float>, into to: UnsafeMutablePointer<Float>) {
        var at = 0
        for r in runs {
            (to + at).update(from: from + r.lowerBound, count: r.count)
            at += r.count
        }
    }

    /// Copies packed values back into the runs of `to` (store layout).
    func unpack(_ from: UnsafePointer<Float>, into to: UnsafeMutablePointer<Float>) {
        var at = 0
        for r in runs {
            (to + r.lowerBound).update(from: from + at, count: r.count)
            at += r.count
        }
    }
}

/// Sums the trainable gradients over the ranks, in one all-reduce: a single run is reduced in
/// place; several are packed into a staging buffer first (frozen gradients are never sent).
final class GradientReducer {
    let collective: Collective
    private var staging: FloatBuffer?

    init(collective: Collective) { self.collective = collective }

    func reduce(_ store: ParameterStore) {
        guard collective.size > 1 else { return }
        let runs = TrainableRuns(store)
        if runs.runs.count == 1 {
            collective.allReduce(store.grads.ptr + runs.runs[0].lowerBound, count: runs.count, op: .sum)
            return
        }
        if staging == nil || staging!.count < runs.count { staging = FloatBuffer(count: runs.count) }
        let buf = staging!.ptr
        runs.pack(store.grads.ptr, into: buf)
        collective.allReduce(buf, count: runs.count, op: .sum)
        runs.unpack(buf, into: store.grads.ptr)
    }
}

/// Contiguous ranges of a store's trainable views: adjacent trainable views merge, so full
/// fine-tuning is one range and stage 2 (MT experts and routers spread over the MoE layers) a few.
struct TrainableRuns {
    let runs: [Range<Int>]
    let count: Int

    init(_ store: ParameterStore) {
        runs = store.runs(where: \.trainable)
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

    /// The packed values `range` as store segments, with their place in `range` (`moment`): what
    /// an optimiser owning those values updates.
    func segments(in range: Range<Int>) -> [OptimizerSegment] {
        var segs: [OptimizerSegment] = []
        var at = 0
        for r in runs {
            let a = max(at, range.lowerBound), b = min(at + r.count, range.upperBound)
            if a < b { segs.append(OptimizerSegment(param: r.lowerBound + (a - at), moment: a - range.lowerBound, count: b - a)) }
            at += r.count
        }
        return segs
    }
}

/// The trainable values of a store as one packed vector for a collective: the store itself when
/// they are one run (full training), otherwise a staging buffer (stage 2), so frozen values are
/// never sent.
final class PackedTrainable {
    let runs: TrainableRuns
    private lazy var staging = FloatBuffer(count: runs.count)

    init(_ store: ParameterStore) { runs = TrainableRuns(store) }

    var count: Int { runs.count }

    /// The packed trainable values of `buf` (store layout).
    func packed(_ buf: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        if runs.runs.count == 1 { return buf + runs.runs[0].lowerBound }
        runs.pack(buf, into: staging.ptr)
        return staging.ptr
    }

    /// Writes packed values (from `packed`) back into `buf`; nothing to do when in place.
    func unpack(_ packed: UnsafePointer<Float>, into buf: UnsafeMutablePointer<Float>) {
        if runs.runs.count > 1 { runs.unpack(packed, into: buf) }
    }
}

/// Sums the trainable gradients over the ranks, in one all-reduce of the packed trainable values.
final class GradientReducer {
    let collective: Collective
    private var packing: PackedTrainable?

    init(collective: Collective) { self.collective = collective }

    func reduce(_ store: ParameterStore) {
        guard collective.size > 1 else { return }
        // trainable flags are fixed once training starts (AdamW checks it at each update)
        let view = packing ?? PackedTrainable(store)
        packing = view
        let g = view.packed(store.grads.ptr)
        collective.allReduce(g, count: view.count, op: .sum)
        view.unpack(g, into: store.grads.ptr)
    }
}

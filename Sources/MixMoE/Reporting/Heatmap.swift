import Foundation

/// A labelled heatmap as SVG (no plotting library needed): rows x columns of values in [0, 1], or
/// (`diverging`) signed values on a red-white-blue scale symmetric around 0.
public enum Heatmap {
    public static func svg(title: String, rows: [String], columns: [String], values: [[Double]], diverging: Bool = false) -> String {
        let span = max(1e-9, values.flatMap { $0 }.filter(\.isFinite).map(abs).max() ?? 1)
        let cell = 34, left = 150, top = 60
        let w = left + cell * columns.count + 20, h = top + cell * rows.count + 30
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(left)\" y=\"18\" font-size=\"13\">\(escape(title))</text>\n"
        for (j, c) in columns.enumerated() {
            s += "<text x=\"\(left + j * cell + cell / 2)\" y=\"\(top - 8)\" text-anchor=\"middle\">\(escape(c))</text>\n"
        }
        for (i, r) in rows.enumerated() {
            s += "<text x=\"\(left - 6)\" y=\"\(top + i * cell + cell / 2 + 4)\" text-anchor=\"end\">\(escape(r))</text>\n"
            for (j, v) in values[i].enumerated() {
                let x = diverging ? (v.isFinite ? abs(v) / span : 0) : max(0, min(1, v))
                let shade = Int(255 - 200 * x)  // white -> dark blue (diverging: negative -> dark red)
                let fill = diverging && v < 0 ? "rgb(255,\(shade),\(shade))" : "rgb(\(shade),\(shade),255)"
                s += "<rect x=\"\(left + j * cell)\" y=\"\(top + i * cell)\" width=\"\(cell - 1)\" height=\"\(cell - 1)\" fill=\"\(fill)\"/>"
                s +=
                    "<text x=\"\(left + j * cell + cell / 2)\" y=\"\(top + i * cell + cell / 2 + 4)\" text-anchor=\"middle\" fill=\"\(x > 0.6 ? "white" : "black")\">\(String(format: "%.2f", v))</text>\n"
            }
        }
        return s + "</svg>\n"
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}

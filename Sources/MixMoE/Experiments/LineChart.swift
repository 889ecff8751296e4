import Foundation

/// A line chart as SVG (loss curves).
public enum LineChart {
    public static func svg(title: String, x: [Double], y: [Double], xLabel: String, yLabel: String) -> String {
        let w = 640.0, h = 360.0, l = 60.0, r = 20.0, t = 36.0, b = 44.0
        guard let x0 = x.min(), let x1 = x.max(), let y0 = y.min(), let y1 = y.max(), x1 > x0 else {
            return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>\n"
        }
        let ylo = y0, yhi = y1 > y0 ? y1 : y0 + 1
        func px(_ v: Double) -> Double { l + (v - x0) / (x1 - x0) * (w - l - r) }
        func py(_ v: Double) -> Double { t + (1 - (v - ylo) / (yhi - ylo)) * (h - t - b) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"\(l)\" y=\"20\" font-size=\"13\">\(Heatmap.escape(title))</text>\n"
        s +=
            "<line x1=\"\(l)\" y1=\"\(h - b)\" x2=\"\(w - r)\" y2=\"\(h - b)\" stroke=\"black\"/><line x1=\"\(l)\" y1=\"\(t)\" x2=\"\(l)\" y2=\"\(h - b)\" stroke=\"black\"/>\n"
        for i in 0...4 {
            let yv = ylo + (yhi - ylo) * Double(i) / 4, xv = x0 + (x1 - x0) * Double(i) / 4
            s += String(format: "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%.2f</text>\n", l - 4, py(yv) + 4, yv)
            s += String(format: "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">%.0f</text>\n", px(xv), h - b + 16, xv)
        }
        s += "<text x=\"\((l + w - r) / 2)\" y=\"\(h - 6)\" text-anchor=\"middle\">\(Heatmap.escape(xLabel))</text>\n"
        s += "<text x=\"14\" y=\"\((t + h - b) / 2)\" transform=\"rotate(-90 14 \((t + h - b) / 2))\" text-anchor=\"middle\">\(Heatmap.escape(yLabel))</text>\n"
        let pts = zip(x, y).map { String(format: "%.1f,%.1f", px($0), py($1)) }.joined(separator: " ")
        s += "<polyline fill=\"none\" stroke=\"#1f4fbf\" stroke-width=\"1.5\" points=\"\(pts)\"/>\n"
        return s + "</svg>\n"
    }
}

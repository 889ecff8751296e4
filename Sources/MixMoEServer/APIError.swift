import Foundation
import Hummingbird
import MixMoE

/// Every error the server answers with: a status and an OpenAI-style JSON body
/// `{"error": {"message", "type", "code"}}`; `Retry-After` on 503.
public struct APIError: HTTPResponseError, LocalizedError {
    public let status: HTTPResponse.Status
    public let message: String
    public var retryAfter: Int? = nil
    /// The methods a route takes (405 Method Not Allowed answers with `Allow`).
    public var allow: String? = nil

    public var errorDescription: String? { message }

    static func badRequest(_ m: String) -> APIError { APIError(status: .badRequest, message: m) }
    static func unavailable(_ m: String, retryAfter: Int) -> APIError { APIError(status: .serviceUnavailable, message: m, retryAfter: retryAfter) }

    /// The engine's refusals as HTTP: over the context 413, queue full or shutting down 503.
    static func from(_ e: EngineError) -> APIError {
        switch e {
        case .promptTooLong: APIError(status: .contentTooLarge, message: e.localizedDescription)
        case .queueFull: .unavailable(e.localizedDescription, retryAfter: 1)
        case .stopped: .unavailable(e.localizedDescription, retryAfter: 5)
        case .tooManyBeams, .invalid: .badRequest(e.localizedDescription)
        }
    }

    var type: String {
        switch status.code {
        case 400, 404, 405, 413: "invalid_request_error"
        case 503: "server_busy"
        default: "server_error"
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let r = retryAfter { headers[.retryAfter] = String(r) }
        if let a = allow { headers[.allow] = a }
        let body = JSONValue.encode(["error": ["message": message, "type": type, "code": Int(status.code)]])
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// Why `mixmoe serve` could not start.
public enum ServeError: LocalizedError {
    case cannotListen(host: String, port: Int, detail: String)

    public var errorDescription: String? {
        switch self {
        case .cannotListen(let h, let p, let d):
            "could not listen on \(h):\(p) (\(d)). Hint: another process may hold the port; choose another --port (0: any free port)."
        }
    }
}

/// A JSON value as parsed from a request (JSONDecoder keeps `true` and `1` apart, which
/// JSONSerialization's NSNumbers do not on Linux).
enum JSON: Decodable {
    case null, bool(Bool), number(Double), string(String), array([JSON]), object([String: JSON])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? c.decode(Double.self) {
            self = .number(n)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSON].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSON].self))
        }
    }

    var string: String? { if case .string(let s) = self { s } else { nil } }
}

/// A JSON request body read field by field, each error naming the field and what was expected.
struct JSONBody {
    let fields: [String: JSON]

    init(_ buffer: ByteBuffer) throws {
        guard let v = try? JSONDecoder().decode(JSON.self, from: Data(buffer.readableBytesView)) else {
            throw APIError.badRequest("the body is not valid JSON")
        }
        guard case .object(let d) = v else { throw APIError.badRequest("the body must be a JSON object") }
        fields = d
    }

    func has(_ k: String) -> Bool {
        if let v = fields[k], case .null = v { return false }
        return fields[k] != nil
    }

    func string(_ k: String) throws -> String {
        guard has(k) else { throw APIError.badRequest("missing field '\(k)': expected a string") }
        guard let s = fields[k]?.string else { throw APIError.badRequest("field '\(k)': expected a string") }
        return s
    }

    /// A string or an array of strings.
    func strings(_ k: String, required: Bool = true) throws -> (values: [String], single: Bool)? {
        guard has(k) else {
            if required { throw APIError.badRequest("missing field '\(k)': expected a string or an array of strings") }
            return nil
        }
        switch fields[k]! {
        case .string(let s): return ([s], true)
        case .array(let a) where a.allSatisfy({ $0.string != nil }): return (a.map { $0.string! }, false)
        default: throw APIError.badRequest("field '\(k)': expected a string or an array of strings")
        }
    }

    func int(_ k: String, default d: Int, min lo: Int, max hi: Int = Int.max) throws -> Int {
        guard has(k) else { return d }
        guard case .number(let x) = fields[k]!, let v = Int(exactly: x) else { throw APIError.badRequest("field '\(k)': expected an integer") }
        guard v >= lo && v <= hi else {
            throw APIError.badRequest("field '\(k)': expected an integer in \(lo)...\(hi == Int.max ? "" : String(hi)), got \(v)")
        }
        return v
    }

    func double(_ k: String, default d: Double, min lo: Double, max hi: Double) throws -> Double {
        guard has(k) else { return d }
        guard case .number(let v) = fields[k]! else { throw APIError.badRequest("field '\(k)': expected a number") }
        guard v >= lo && v <= hi else { throw APIError.badRequest("field '\(k)': expected a number in \(lo)...\(hi), got \(v)") }
        return v
    }

    func bool(_ k: String, default d: Bool) throws -> Bool {
        guard has(k) else { return d }
        guard case .bool(let b) = fields[k]! else { throw APIError.badRequest("field '\(k)': expected true or false") }
        return b
    }

    /// An array of objects (chat messages).
    func objects(_ k: String) -> [[String: JSON]]? {
        guard case .array(let a) = fields[k] else { return nil }
        var out: [[String: JSON]] = []
        for v in a {
            guard case .object(let o) = v else { return nil }
            out.append(o)
        }
        return out
    }
}

/// JSON text of plain values (dictionaries, arrays, strings, numbers, NSNull), keys sorted.
enum JSONValue {
    static func encode(_ v: Any) -> String {
        // every value built here is serialisable
        let d = try! JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: d, as: UTF8.self)
    }
}

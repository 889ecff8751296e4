import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A minimal HTTP/1.1 client over a plain socket for the server tests: requests from their own
/// threads (so many can be in flight without tying up Swift's two cooperative threads), raw
/// control of the connection (a client that goes away mid-stream), chunked bodies decoded.
struct HTTPResult: Sendable {
    var status: Int
    var headers: [String: String]  // lower-cased names
    var body: String
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
}

final class RawConnection: @unchecked Sendable {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else {
            close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
        // no read waits forever: a server that stops answering fails the test instead of hanging it
        var tv = timeval(tv_sec: 480, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(method: String, path: String, body: String? = nil) {
        var req = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if let body { req += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        req += "\r\n" + (body ?? "")
        let bytes = Array(req.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    /// Reads until `marker` has arrived (or the peer closed); returns everything read so far.
    func read(until marker: String? = nil) -> String {
        var data = [UInt8](), buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            data += buf[0..<n]
            if let m = marker, String(decoding: data, as: UTF8.self).contains(m) { break }
        }
        return String(decoding: data, as: UTF8.self)
    }

    func shut() { close(fd) }

    /// Status, headers and (de-chunked) body of a whole response.
    static func parse(_ raw: String) -> HTTPResult {
        let bytes = Array(raw.utf8)
        let sep = Array("\r\n\r\n".utf8), crlf = Array("\r\n".utf8)
        func find(_ pat: [UInt8], from: Int) -> Int? {
            guard bytes.count >= pat.count else { return nil }
            return (from...(bytes.count - pat.count)).first { Array(bytes[$0..<($0 + pat.count)]) == pat }
        }
        guard let split = find(sep, from: 0) else { return HTTPResult(status: 0, headers: [:], body: raw) }
        let lines = String(decoding: bytes[..<split], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for l in lines.dropFirst() {
            if let c = l.firstIndex(of: ":") {
                headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
            }
        }
        var body = Array(bytes[(split + 4)...])
        if headers["transfer-encoding"] == "chunked" {
            var out: [UInt8] = [], at = split + 4
            while let nl = find(crlf, from: at), let size = Int(String(decoding: bytes[at..<nl], as: UTF8.self), radix: 16), size > 0 {
                out += bytes[(nl + 2)..<min(bytes.count, nl + 2 + size)]
                at = nl + 2 + size + 2
            }
            body = out
        }
        return HTTPResult(status: status, headers: headers, body: String(decoding: body, as: UTF8.self))
    }
}

/// One request on its own thread and connection.
func http(_ port: Int, _ method: String, _ path: String, _ body: String? = nil) async throws -> HTTPResult {
    try await withCheckedThrowingContinuation { (k: CheckedContinuation<HTTPResult, any Error>) in
        Thread {
            do {
                let c = try RawConnection(port: port)
                c.send(method: method, path: path, body: body)
                let raw = c.read()
                c.shut()
                k.resume(returning: RawConnection.parse(raw))
            } catch { k.resume(throwing: error) }
        }.start()
    }
}

/// A JSON body from plain values.
func jsonText(_ v: Any) -> String { String(decoding: try! JSONSerialization.data(withJSONObject: v, options: [.sortedKeys]), as: UTF8.self) }

/// A socket listening on a free loopback port (to occupy it); returns the descriptor and port.
func occupiedPort() -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            _ = bind(fd, $0, len)
            _ = listen(fd, 1)
            _ = getsockname(fd, $0, &len)
        }
    }
    return (fd, Int(UInt16(bigEndian: addr.sin_port)))
}

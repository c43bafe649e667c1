import CZlib
import Foundation

/// gzip through the system zlib. Decompression is bounded so a hostile or corrupt stream cannot
/// exhaust memory.
public enum Gzip {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// windowBits 15 + 16 selects the gzip wrapper.
    static let gzipWindow: Int32 = 31

    public static func compress(_ data: Data) throws -> Data {
        var stream = z_stream()
        guard deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, gzipWindow, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Failure(description: "gzip: cannot initialise zlib")
        }
        defer { deflateEnd(&stream) }
        let (status, output) = pump(&stream, data, limit: Int.max) { deflate(&$0, Z_FINISH) }
        guard status == Z_STREAM_END else { throw Failure(description: "gzip: compression failed (\(status))") }
        return output
    }

    public static func decompress(_ data: Data, limit: Int = 64 << 20) throws -> Data {
        var stream = z_stream()
        guard inflateInit2_(&stream, gzipWindow, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Failure(description: "gzip: cannot initialise zlib")
        }
        defer { inflateEnd(&stream) }
        let (status, output) = pump(&stream, data, limit: limit) { inflate(&$0, Z_NO_FLUSH) }
        switch status {
        case Z_STREAM_END: return output
        case Z_MEM_ERROR: throw Failure(description: "gzip: more than \(limit) bytes once decompressed")
        case Z_OK, Z_BUF_ERROR: throw Failure(description: "gzip: the stream ends early (truncated)")
        default: throw Failure(description: "gzip: not valid gzip data (\(status))")
        }
    }

    /// Feeds `input` through `step` (deflate or inflate) in 64 KiB output chunks until zlib stops
    /// asking for room; returns zlib's last status (Z_MEM_ERROR past `limit`) and the output.
    static func pump(_ stream: inout z_stream, _ input: Data, limit: Int, _ step: (inout z_stream) -> Int32) -> (Int32, Data) {
        var bytes = [UInt8](input)
        var output = Data()
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        let status: Int32 = bytes.withUnsafeMutableBufferPointer { inBuffer in
            stream.next_in = inBuffer.baseAddress
            stream.avail_in = uInt(inBuffer.count)
            var status = Z_OK
            repeat {
                status = chunk.withUnsafeMutableBufferPointer { outBuffer in
                    stream.next_out = outBuffer.baseAddress
                    stream.avail_out = uInt(outBuffer.count)
                    return step(&stream)
                }
                output.append(contentsOf: chunk[0..<(chunk.count - Int(stream.avail_out))])
                if output.count > limit { return Z_MEM_ERROR }
            } while status == Z_OK && (stream.avail_in > 0 || stream.avail_out == 0)
            return status
        }
        return (status, output)
    }
}

/// gzip decompression a chunk at a time, for downloads too big to hold (a Talos disk image): feed
/// what arrives, write what comes out, then `finish` checks the stream ended where zlib says it
/// does, which is after gzip's own CRC-32 and length check of the whole content.
public final class GzipInflater {
    private var stream = z_stream()
    private var ended = false
    private var chunk = [UInt8](repeating: 0, count: 256 << 10)

    public init() throws {
        guard inflateInit2_(&stream, Gzip.gzipWindow, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Gzip.Failure(description: "gzip: cannot initialise zlib")
        }
    }

    deinit { inflateEnd(&stream) }

    /// Decompresses `input`, handing each piece of output to `output`.
    public func feed(_ input: UnsafeRawBufferPointer, _ output: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        guard !input.isEmpty else { return }
        guard !ended else { throw Gzip.Failure(description: "gzip: data after the end of the stream") }
        stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: UInt8.self).baseAddress)
        stream.avail_in = uInt(input.count)
        repeat {
            let status: Int32 = chunk.withUnsafeMutableBufferPointer { buffer in
                stream.next_out = buffer.baseAddress
                stream.avail_out = uInt(buffer.count)
                return inflate(&stream, Z_NO_FLUSH)
            }
            let produced = chunk.count - Int(stream.avail_out)
            if produced > 0 { try chunk.withUnsafeBufferPointer { try output(UnsafeBufferPointer(rebasing: $0[0..<produced])) } }
            switch status {
            case Z_STREAM_END:
                ended = true
                guard stream.avail_in == 0 else { throw Gzip.Failure(description: "gzip: data after the end of the stream") }
                return
            case Z_OK, Z_BUF_ERROR: break
            default: throw Gzip.Failure(description: "gzip: not valid gzip data, or its CRC does not match (\(status))")
            }
        } while stream.avail_in > 0 || stream.avail_out == 0
    }

    /// Throws unless the whole stream, trailer and check included, has been read.
    public func finish() throws {
        guard ended else { throw Gzip.Failure(description: "gzip: the stream ends early (truncated)") }
    }
}


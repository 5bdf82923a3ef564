import Foundation

/// Writes small, structurally valid PDF files: `passerelle selfcheck`'s, the demo's sample
/// documents, the tests' and the benchmarks' (the repository holds no binary PDF of unknown
/// origin). Its own target, outside the domain core: only those users link it.
public enum SamplePDF {
    /// A one-page PDF showing `text`, padded with an extra stream object to at least
    /// `minimumBytes` (for size-dependent tests and benchmarks). Offsets in the xref table are exact.
    public static func make(text: String = "Passerelle sample document", minimumBytes: Int = 0) -> Data {
        var out = Data("%PDF-1.4\n%\u{E2}\u{E3}\u{CF}\u{D3}\n".utf8)
        var offsets: [Int] = []
        func object(_ body: Data) {
            offsets.append(out.count)
            out.append(Data("\(offsets.count) 0 obj\n".utf8))
            out.append(body)
            out.append(Data("\nendobj\n".utf8))
        }
        let escaped = text.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "(", with: "\\(").replacingOccurrences(of: ")", with: "\\)")
        let content = Data("BT /F1 18 Tf 72 720 Td (\(escaped)) Tj ET".utf8)
        object(Data("<< /Type /Catalog /Pages 2 0 R >>".utf8))
        object(Data("<< /Type /Pages /Kids [3 0 R] /Count 1 >>".utf8))
        object(Data("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".utf8))
        object(Data("<< /Length \(content.count) >>\nstream\n".utf8) + content + Data("\nendstream".utf8))
        object(Data("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".utf8))
        let padding = max(0, minimumBytes - out.count)
        if padding > 0 {
            // Deterministic pseudo-random bytes, like compressed image data.
            var state: UInt32 = 0x1234_5678
            var filler = Data(count: padding)
            filler.withUnsafeMutableBytes { raw in
                for i in 0..<raw.count {
                    state = state &* 1_664_525 &+ 1_013_904_223
                    raw[i] = UInt8(truncatingIfNeeded: state >> 24)
                }
            }
            object(Data("<< /Length \(padding) >>\nstream\n".utf8) + filler + Data("\nendstream".utf8))
        }
        let xref = out.count
        var table = "xref\n0 \(offsets.count + 1)\n0000000000 65535 f \n"
        for offset in offsets { table += String(format: "%010d 00000 n \n", offset) }
        table += "trailer\n<< /Size \(offsets.count + 1) /Root 1 0 R >>\nstartxref\n\(xref)\n%%EOF\n"
        out.append(Data(table.utf8))
        return out
    }
}

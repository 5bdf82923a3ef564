import Foundation

/// Checks that bytes are a plausible, complete PDF before they are wrapped in a CDA.
public enum PDFCheck {
    /// Default upper bound on the PDF size, 20 MiB (the configuration overrides it).
    public static let defaultMaximumBytes = 20 * 1024 * 1024

    /// Refuses an empty file, one over `maximumBytes`, one that does not start with `%PDF-`
    /// or one without the `%%EOF` marker in its last 1024 bytes (a truncated transfer).
    public static func check(_ data: Data, maximumBytes: Int = defaultMaximumBytes) throws(CDAError) {
        guard !data.isEmpty else { throw .emptyPDF }
        guard data.count <= maximumBytes else { throw .pdfTooLarge(bytes: data.count, limit: maximumBytes) }
        let magic = Array("%PDF-".utf8)
        guard data.count >= magic.count + 5, data.prefix(magic.count).elementsEqual(magic) else {
            throw .notAPDF(reason: "it does not start with %PDF-")
        }
        let marker = Array("%%EOF".utf8)
        let tail = data.suffix(1024)
        var found = false
        var i = tail.endIndex - marker.count
        while i >= tail.startIndex {
            if tail[i..<(i + marker.count)].elementsEqual(marker) { found = true; break }
            i -= 1
        }
        guard found else { throw .notAPDF(reason: "no %%EOF marker at its end: the file is truncated or damaged") }
    }
}

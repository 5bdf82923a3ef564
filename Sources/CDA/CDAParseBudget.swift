import Foundation
import XMLKit

/// The parse budget of a CDA document, derived from `[cda] max_pdf_bytes`: a CDA carries at
/// most one base64 PDF (4/3 of the PDF, plus line breaks a producer may insert) around a
/// header, so anything larger is refused before libxml2 sees it. Large text nodes are allowed
/// (the PDF body is one text node); the depth limit stays ``XMLDocument/ParseOptions/defaultMaxDepth``
/// (a CDA needs about 30 levels) and a DOCTYPE is refused as everywhere.
public enum CDAParseBudget {
    /// Room for the header, a structured body and the markup around the PDF.
    public static let markupAllowance = 4 * 1024 * 1024

    /// The options for a CDA whose PDF may have up to `maxPDFBytes` bytes.
    public static func options(maxPDFBytes: Int) -> XMLDocument.ParseOptions {
        let base64 = (maxPDFBytes + 2) / 3 * 4
        let lineBreaks = base64 / 64 * 2  // CRLF every 64 characters at worst (PEM style)
        return XMLDocument.ParseOptions(maxBytes: base64 + lineBreaks + markupAllowance, allowLargeTextNodes: true,
                                        budgetSource: "[cda] max_pdf_bytes")
    }

    /// ``options(maxPDFBytes:)`` with the default `[cda] max_pdf_bytes` (20 MB).
    public static let `default` = options(maxPDFBytes: PDFCheck.defaultMaximumBytes)

    /// A CDA read back from Passerelle's own blob store (already checked at intake, stored
    /// under its SHA-256 and verified against it): no byte cap, since `[cda] max_pdf_bytes`
    /// may have been lowered since it was accepted; DOCTYPE refusal and depth limit still apply.
    public static let journaled = XMLDocument.ParseOptions(maxBytes: Int.max, allowLargeTextNodes: true,
                                                           budgetSource: "journaled CDA")
}

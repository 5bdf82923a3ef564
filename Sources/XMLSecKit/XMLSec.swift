import CLibXML2
import CXMLSec
import Foundation

/// Errors from the xmlsec1 wrapper. Each carries xmlsec's (or libxml2's / OpenSSL's)
/// own messages for the failing call, so an operator sees the library's reason.
public enum XMLSecError: Error, CustomStringConvertible, Sendable, Equatable {
    /// xmlsec1 or its OpenSSL back-end could not be initialised (library mismatch, broken install).
    case initialization(String)
    /// The PKCS#12 could not be opened: wrong passphrase, corrupt file, or no private key in it.
    case keyLoad(String)
    /// A trust anchor or CRL could not be loaded.
    case trustAnchor(String)
    /// The XML is not well-formed, or lacks the element the operation needs.
    case malformedXML(String)
    /// xmlsec failed while signing.
    case signing(String)
    /// xmlsec failed while processing a signature for verification (not merely "invalid").
    case verification(String)

    public var description: String {
        switch self {
        case .initialization(let m): "xmlsec1 initialisation failed: \(m)"
        case .keyLoad(let m): "cannot load the signing key from the PKCS#12 (check the file and its passphrase): \(m)"
        case .trustAnchor(let m): "cannot load the trust anchors / CRLs: \(m)"
        case .malformedXML(let m): "malformed XML: \(m)"
        case .signing(let m): "XML signing failed: \(m)"
        case .verification(let m): "XML signature processing failed: \(m)"
        }
    }
}

/// One-time process-wide initialisation of libxml2, xmlsec1 and its OpenSSL back-end.
/// Never torn down: xmlsec's globals live as long as the process.
enum XMLSecLibrary {
    private static let state: Result<Void, XMLSecError> = {
        xmlInitParser()
        if xmlSecInit() < 0 { return .failure(.initialization("xmlSecInit failed")) }
        if xmlSecCheckVersionExt(XMLSEC_VERSION_MAJOR, XMLSEC_VERSION_MINOR, XMLSEC_VERSION_SUBMINOR,
                                 xmlSecCheckVersionABICompatible) != 1 {
            return .failure(.initialization("the loaded libxmlsec1 is not ABI-compatible with the headers \(XMLSEC_VERSION)"))
        }
        if xmlSecOpenSSLAppInit(nil) < 0 { return .failure(.initialization("xmlSecOpenSSLAppInit failed")) }
        if xmlSecOpenSSLInit() < 0 { return .failure(.initialization("xmlSecOpenSSLInit failed")) }
        // xmlsec's default error callback prints to stderr; ours collects per call instead.
        // (Set last: the init calls install the default one.)
        xmlSecErrorsSetCallback(collectXMLSecError)
        return .success(())
    }()

    static func ensureInitialized() throws(XMLSecError) {
        try state.get()
    }
}

// MARK: - Per-call error collection

/// Messages xmlsec reported on the current thread during one wrapper call.
/// xmlsec calls the error callback synchronously on the failing thread, so a
/// thread-local collector keeps concurrent calls apart.
final class ErrorCollector {
    var messages: [String] = []
    var text: String {
        messages.isEmpty ? "no detail from xmlsec" : messages.joined(separator: "; ")
    }
}

private let collectorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()

private func collectXMLSecError(
    file: UnsafePointer<CChar>?, line: Int32, function: UnsafePointer<CChar>?,
    errorObject: UnsafePointer<CChar>?, errorSubject: UnsafePointer<CChar>?,
    reason: Int32, message: UnsafePointer<CChar>?
) {
    // "xmlsec library function failed" only traces the call stack of an error already reported.
    guard reason != XMLSEC_ERRORS_R_XMLSEC_FAILED, let raw = pthread_getspecific(collectorKey) else { return }
    let collector = Unmanaged<ErrorCollector>.fromOpaque(raw).takeUnretainedValue()
    var parts: [String] = []
    if let errorSubject { parts.append(String(cString: errorSubject)) }
    if let reasonText = reasonMessage(reason) { parts.append(reasonText) }
    if let message {
        var text = String(cString: message).trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("details=") { text.removeFirst("details=".count) }
        if text != "NULL", !text.isEmpty { parts.append(text) }
    }
    let text = parts.joined(separator: ": ")
    if !text.isEmpty, collector.messages.last != text, collector.messages.count < 20 {
        collector.messages.append(text)
    }
}

/// xmlsec's text for an error reason code (its table is indexed by position, not code).
private func reasonMessage(_ reason: Int32) -> String? {
    var index: UInt32 = 0
    while let text = xmlSecErrorsGetMsg(index) {
        if xmlSecErrorsGetCode(index) == reason { return String(cString: text) }
        index += 1
    }
    return nil
}

/// Runs `body` with a fresh error collector installed for this thread.
func withXMLSecErrors<T>(_ body: (ErrorCollector) throws -> T) rethrows -> T {
    let collector = ErrorCollector()
    let previous = pthread_getspecific(collectorKey)
    let unmanaged = Unmanaged.passRetained(collector)
    pthread_setspecific(collectorKey, unmanaged.toOpaque())
    defer {
        pthread_setspecific(collectorKey, previous)
        unmanaged.release()
    }
    return try body(collector)
}

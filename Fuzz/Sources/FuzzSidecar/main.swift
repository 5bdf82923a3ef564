import Foundation
import FuzzSupport
import PasserelleCore

/// JSON sidecars as they arrive in the inbox: lenient decoding, validation, and for a valid
/// sidecar the round trip through `sidecarJSON()` (what the journal stores) must give back
/// a valid, equal sidecar.
func fuzzSidecar(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let data = fuzzInput(bytes, count, maxBytes: 64 * 1024) else { return -1 }
    guard let metadata = try? DocumentMetadata.decode(sidecar: data) else { return 0 }
    guard metadata.validate().isEmpty else { return 0 }
    do {
        let again = try DocumentMetadata.decodeValidated(sidecar: try metadata.sidecarJSON())
        fuzzInvariant(again == metadata, "the re-encoded sidecar decodes to different metadata")
    } catch {
        fuzzInvariant(false, "a valid sidecar does not survive sidecarJSON(): \(error)")
    }
    return 0
}

runFuzzer { fuzzSidecar($0, $1) }

import CDA
import Foundation
import FuzzSupport
import PasserelleCore

/// Producer-built CDA documents (passthrough): XML parsing, header reading, and the checks
/// against declared metadata (a qualified identity with an INS and an IPP, and no metadata).
func fuzzCDA(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let data = fuzzInput(bytes, count, maxBytes: 512 * 1024) else { return -1 }
    _ = try? ProducerCDA.accept(data, declared: nil)
    _ = try? ProducerCDA.accept(data, declared: declared)
    return 0
}

/// The patient of the seed CDAs (docs/examples/sidecar-ldl.json).
private let declared: DocumentMetadata? = try? DocumentMetadata.decode(sidecar: Data("""
    {"kind": "ldl", "patient": {"ipp": {"value": "123456", "authority": "1.2.250.1.999.1.2"},
     "ins": {"value": "279035121518989", "oid": "1.2.250.1.213.1.4.10"}, "identity_status": "QUAL"}}
    """.utf8))

runFuzzer { fuzzCDA($0, $1) }

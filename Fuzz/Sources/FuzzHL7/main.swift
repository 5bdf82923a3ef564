import Foundation
import FuzzSupport
import Intake

/// HL7 v2 (ER7) messages as they arrive in the inbox or over MLLP: parse, map ORU/MDM/ADT,
/// and answer with an ACK the way the MLLP listener does. The ACK must parse back.
func fuzzHL7(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let data = fuzzInput(bytes, count, maxBytes: 256 * 1024) else { return -1 }
    let message = try? HL7Message(data: data)
    var code = HL7AckCode.accept
    var errors: [HL7ErrorDetail] = []
    do {
        _ = try loader.loadMessage(data)
    } catch {
        code = .error
        if case .invalidMessage(let intakeError) = error { errors = [HL7ErrorDetail(intakeError)] }
    }
    let ack = acknowledger.acknowledgement(for: message, code: code, errors: errors, controlID: "FUZZ1",
                                                          now: Date(timeIntervalSince1970: 1_800_000_000))
    do { _ = try HL7Message(text: ack) } catch { fuzzInvariant(false, "the ACK does not parse: \(error)") }
    return 0
}

// Made once: each holds a TimeZone, which is slow to build.
private let loader = IntakeLoader()
private let acknowledger = HL7AcknowledgementBuilder()

runFuzzer { fuzzHL7($0, $1) }

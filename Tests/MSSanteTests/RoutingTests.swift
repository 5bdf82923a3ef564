import Foundation
import MSSante
import PasserelleCore
import Testing

@Suite struct RoutingTests {
    static let patientAddress = "279035121518989@patient.mssante.fr"

    /// The three rows of the ANS matrix, written out as the guide states them, plus the
    /// plain professional mailing (no restriction): the independent oracle for the matrix test.
    static func allowed(ps: Bool, pat: Bool, masque: Bool, invisible: Bool, rl: Bool, secret: Bool, dmp: Bool) -> Bool {
        let rowBoth = ps && pat && !masque && !invisible && !rl
        let rowPSOnly = ps && !pat && !masque && !rl  // guide: INVISIBLE_PATIENT=Y; also accepted without it
        let rowPatientOnly = !ps && pat && !invisible && !secret && !dmp
        return rowBoth || rowPSOnly || rowPatientOnly
    }

    /// Every combination of the two MSSanté destinations and the six flags the matrix reads
    /// (MODIF_CONF_CODE and the ACK flags are "N ou Y" in every row and ride along).
    @Test func everyFlagCombinationFollowsTheMatrix() throws {
        var checked = 0, accepted = 0
        for bits in 0..<(1 << 8) {
            let bit = { (n: Int) in bits & (1 << n) != 0 }
            let (ps, pat, masque, invisible, rl, secret, dmp, modif) = (bit(0), bit(1), bit(2), bit(3), bit(4), bit(5), bit(6), bit(7))
            var flags: [MetaDMPMSSFlag] = [.ackReception]
            if ps { flags.append(.destMSSantePS) }
            if pat { flags.append(.destMSSantePatient) }
            if masque { flags.append(.masquePS) }
            if invisible { flags.append(.invisiblePatient) }
            if rl { flags.append(.invisibleRepresentantsLegaux) }
            if secret { flags.append(.connexionSecrete) }
            if dmp { flags.append(.destDMP) }
            if modif { flags.append(.modifConfCode) }
            let metadata = Fixtures.metadata(flags: flags)
            checked += 1
            if !ps && !pat {
                #expect(throws: MSSanteRoutingError.noMSSanteDestination(documentID: "1.2.250.1.999.1^DOC-1")) {
                    try MSSanteRouting.recipients(for: metadata)
                }
                continue
            }
            let expected = Self.allowed(ps: ps, pat: pat, masque: masque, invisible: invisible, rl: rl, secret: secret, dmp: dmp)
            // A Result rather than do/catch: Swift 6.3.1 crashes (SIL ownership) on the typed catch here.
            switch Result(catching: { () throws(MSSanteRoutingError) in try MSSanteRouting.recipients(for: metadata) }) {
            case let .success(result):
                #expect(expected, "accepted but the matrix forbids: \(flags.map(\.rawValue))")
                #expect(result.professionals == (ps ? ["dr.martin@hopital.mssante.fr"] : []))
                #expect(result.patient == (pat ? Self.patientAddress : nil))
                // The invariants the issue states, checked on every accepted combination.
                if invisible { #expect(result.patient == nil) }
                if masque { #expect(result.professionals.isEmpty) }
                accepted += 1
            case let .failure(error):
                #expect(!expected, "refused but the matrix allows: \(flags.map(\.rawValue)): \(error)")
                if case .forbiddenCombination = error {} else { Issue.record("unexpected error \(error)") }
                #expect(!error.description.contains("279035121518989"), "no INS in messages")
            }
        }
        #expect(checked == 256)
        #expect(accepted > 0 && accepted < 192)
    }

    @Test func destinationsListCountsLikeFlags() throws {
        var metadata = Fixtures.metadata(flags: [.invisiblePatient])
        metadata.destinations = [.mssantePS, .mssantePatient]
        #expect(throws: MSSanteRoutingError.self) { try MSSanteRouting.recipients(for: metadata) }
        metadata.destinations = [.mssantePS]
        #expect(try MSSanteRouting.recipients(for: metadata).all == ["dr.martin@hopital.mssante.fr"])
    }

    @Test(arguments: [IdentityStatus.provisional, .recovered, .validated, nil])
    func patientAddressOnlyForQualifiedIdentity(status: IdentityStatus?) throws {
        let metadata = Fixtures.metadata(status: status, flags: [.destMSSantePatient, .destMSSantePS])
        #expect(MSSanteRouting.patientAddress(for: metadata.patient) == nil)
        #expect(throws: MSSanteRoutingError.patientRequiresQualifiedINS(documentID: "1.2.250.1.999.1^DOC-1", status: status)) {
            try MSSanteRouting.recipients(for: metadata)
        }
        // Professionals alone are still fine for a non-qualified identity.
        let ps = Fixtures.metadata(status: status, flags: [.destMSSantePS])
        #expect(try MSSanteRouting.recipients(for: ps).professionals == ["dr.martin@hopital.mssante.fr"])
    }

    @Test func qualifiedIdentityWithInvalidINSHasNoPatientAddress() throws {
        var metadata = Fixtures.metadata(flags: [.destMSSantePatient])
        metadata.patient.ins = INSReference(value: "279035121518900", oid: "1.2.250.1.213.1.4.10")  // wrong key
        #expect(throws: MSSanteRoutingError.self) { try MSSanteRouting.recipients(for: metadata) }
        metadata.patient.ins = INSReference(value: "279035121518989", oid: "1.2.250.1.213.1.4.10")
        #expect(try MSSanteRouting.recipients(for: metadata).patient == Self.patientAddress)
    }

    @Test func professionalRecipientsAreChecked() throws {
        #expect(throws: MSSanteRoutingError.noProfessionalRecipient(documentID: "1.2.250.1.999.1^DOC-1")) {
            try MSSanteRouting.recipients(for: Fixtures.metadata(recipients: []))
        }
        #expect(throws: MSSanteRoutingError.invalidAddress(documentID: "1.2.250.1.999.1^DOC-1", position: 1)) {
            try MSSanteRouting.recipients(for: Fixtures.metadata(recipients: ["a@b.fr", "x@y.fr>\r\nRCPT TO:<evil@z.fr"]))
        }
        // INVISIBLE_PATIENT cannot be bypassed by listing the patient among the professionals.
        #expect(throws: MSSanteRoutingError.patientAddressAmongProfessionals(documentID: "1.2.250.1.999.1^DOC-1", position: 0)) {
            try MSSanteRouting.recipients(for: Fixtures.metadata(flags: [.destMSSantePS, .invisiblePatient],
                                                                  recipients: [Self.patientAddress]))
        }
        let deduplicated = try MSSanteRouting.recipients(for: Fixtures.metadata(recipients: ["a@b.fr", "A@B.fr", "c@d.fr"]))
        #expect(deduplicated.professionals == ["a@b.fr", "c@d.fr"])
    }
}

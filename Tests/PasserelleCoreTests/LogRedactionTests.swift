import PasserelleCore
import Testing

@Suite struct LogRedactionTests {
    @Test func patientMailboxesAndMatriculesAreMasked() {
        let reply = "550 5.1.1 <279035121518989@patient.mssante.fr>: mailbox unknown (INS 279035121518989, NIA 7 ignored)"
        let text = LogRedaction.redact(reply)
        #expect(!text.contains("279035121518989"))
        #expect(text.contains("<\(LogRedaction.patientMailboxPlaceholder)>"))
        #expect(text.contains("INS 2***********989"))
        #expect(LogRedaction.redact("NIR 184022A12345678 refused") == "NIR 1***********678 refused")
    }

    @Test func professionalAddressesCodesAndDocumentIdsStay() {
        let text = "450 4.2.1 <dr.martin@hopital.mssante.fr> busy; document 1.2.250.1.213.1.1.9.42 attempt 3, code 421"
        #expect(LogRedaction.redact(text) == text)
    }
}

import Testing

/// ``SyscallAudit`` on a trace cut from a real `passerelle run` (paths shortened): clean as it
/// is, and failing as soon as any one of its syncs is taken out — what the audit of the running
/// gateway would report if the code lost that fsync.
struct SyscallAuditTests {
    static let layout = SyscallAudit.Layout(root: "/R", journal: "/R/journal.sqlite", blobs: "/R/journal.blobs", error: "/R/error",
                                            work: "/R/work", done: "/R/done", patientKey: "/R/journal.patient-key",
                                            mllpPort: 2575, dmpPort: 4443)

    /// (thread, line): a claim read, its record blob stored and committed on thread 1, the claim
    /// moved to done/ by thread 2; an MLLP message read and answered on thread 3 around a commit
    /// on thread 1; a refusal on thread 4, then its next claim.
    static let trace: [(Int, String)] = [
        (2, #"1.000000 openat(AT_FDCWD</w>, "/R/work/C/doc.pdf", O_RDONLY|O_CLOEXEC) = 9</R/work/C/doc.pdf> <0.000010>"#),
        (1, #"1.001000 mkdir("/R/journal.blobs/5c", 0777) = 0 <0.000100>"#),
        (1, #"1.002000 openat(AT_FDCWD</w>, "/R/journal.blobs/5c/.5c.tmp", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0600) = 14</R/journal.blobs/5c/.5c.tmp> <0.000010>"#),
        (1, #"1.003000 write(14</R/journal.blobs/5c/.5c.tmp>, "passerelle-intake/1 pdf\n{\"action"..., 5918) = 5918 <0.000010>"#),
        (1, #"1.004000 fsync(14</R/journal.blobs/5c/.5c.tmp>) = 0 <0.000100>"#),
        (1, #"1.005000 rename("/R/journal.blobs/5c/.5c.tmp", "/R/journal.blobs/5c/5c") = 0 <0.000010>"#),
        (1, #"1.006000 openat(AT_FDCWD</w>, "/R/journal.blobs/5c", O_RDONLY|O_CLOEXEC|O_DIRECTORY) = 14</R/journal.blobs/5c> <0.000010>"#),
        (1, #"1.007000 fsync(14</R/journal.blobs/5c>) = 0 <0.000100>"#),
        (1, #"1.008000 openat(AT_FDCWD</w>, "/R/journal.blobs", O_RDONLY|O_CLOEXEC|O_DIRECTORY) = 14</R/journal.blobs> <0.000010>"#),
        (1, #"1.009000 fsync(14</R/journal.blobs>) = 0 <0.000100>"#),
        (1, #"1.010000 pwrite64(7</R/journal.sqlite-wal>, "\0\0\0\7\0\0\0\0"..., 24, 185432) = 24 <0.000010>"#),
        (1, #"1.010100 pwrite64(7</R/journal.sqlite-wal>, "\r\0\0\0\1\16\221\0"..., 4096, 185456) = 4096 <0.000010>"#),
        (1, #"1.011000 fdatasync(7</R/journal.sqlite-wal>) = 0 <0.000500>"#),
        (1, #"1.012000 write(2</R/passerelle.log>, "2026-11-23T14:25:19+0000 info"..., 120) = 120 <0.000010>"#),
        (2, #"1.020000 rename("/R/work/C", "/R/done/C") = 0 <0.000010>"#),
        (3, #"2.000000 recvfrom(16<TCP:[127.0.0.1:2575->127.0.0.1:40000]>, "\vMSH|^~\\&|SIL|CHU_X|PFI|CHU_X|20"..., 65536, 0, NULL, NULL) = 10387 <0.000050>"#),
        (1, #"2.001000 pwrite64(7</R/journal.sqlite-wal>, "\0\0\0\10\0\0\0\0"..., 24, 189552) = 24 <0.000010>"#),
        (1, #"2.002000 fdatasync(7</R/journal.sqlite-wal>) = 0 <0.000500>"#),
        (3, #"2.010000 sendto(16<TCP:[127.0.0.1:2575->127.0.0.1:40000]>, "\vMSH|^~\\&|PFI|CHU_X|SIL|CHU_X|20"..., 128, MSG_NOSIGNAL, NULL, 0) = 128 <0.000090>"#),
        (4, #"3.000000 openat(AT_FDCWD</w>, "/R/error/x.docx.error.txt", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0600) = 5</R/error/x.docx.error.txt> <0.000010>"#),
        (4, #"3.001000 write(5</R/error/x.docx.error.txt>, "Refused at 2026"..., 90) = 90 <0.000010>"#),
        (4, #"3.002000 fsync(5</R/error/x.docx.error.txt>) = 0 <0.000100>"#),
        (4, #"3.003000 rename("/R/inbox/x.docx", "/R/error/x.docx") = 0 <0.000010>"#),
        (4, #"3.004000 openat(AT_FDCWD</w>, "/R/error", O_RDONLY|O_CLOEXEC|O_DIRECTORY) = 5</R/error> <0.000010>"#),
        (4, #"3.005000 fsync(5</R/error>) = 0 <0.000100>"#),
        (4, #"3.010000 rename("/R/inbox/y.pdf", "/R/work/D/y.pdf") = 0 <0.000010>"#),
    ]

    static func audit(dropping fragment: String? = nil) -> SyscallAudit {
        var audit = SyscallAudit(layout: layout)
        let lines = trace.filter { fragment == nil || !$0.1.contains(fragment!) }
        audit.run(lines.compactMap { TracedCall.parse($0.1, thread: $0.0) })
        return audit
    }

    @Test func theTraceAsRecordedIsClean() {
        let audit = Self.audit()
        #expect(audit.violations.isEmpty, "\(audit.violations)")
        #expect(audit.counts.claimsDone == 1 && audit.counts.mllpAnswers == 1 && audit.counts.blobRenames == 1 && audit.counts.walSyncs == 2)
    }

    @Test(arguments: [
        ("fsync(14</R/journal.blobs/5c/.5c.tmp>)", "renamed to /R/journal.blobs/5c/5c before its bytes were synced"),
        ("fsync(14</R/journal.blobs/5c>)", "renamed in 5c"),
        ("fsync(14</R/journal.blobs>)", "created the folder 5c"),
        ("1.011000 fdatasync", "wrote /R/journal.sqlite-wal"),
        ("2.002000 fdatasync", "MLLP answer written"),
        ("fsync(5</R/error/x.docx.error.txt>)", "wrote /R/error/x.docx.error.txt"),
        ("fsync(5</R/error>)", "in /R/error"),
    ])
    func eachMissingSyncIsReported(dropped: String, expected: String) {
        let audit = Self.audit(dropping: dropped)
        #expect(audit.violations.contains { $0.contains(expected) }, "without \(dropped): \(audit.violations)")
    }

    @Test func aClaimLetGoBeforeItsCommitIsReported() {
        var audit = SyscallAudit(layout: Self.layout)
        // The done/ rename placed before the commit (as if the code moved the file first).
        let lines = Self.trace.map { thread, line in
            (thread, line.hasPrefix("1.020000") ? line.replacingOccurrences(of: "1.020000", with: "1.000500") : line)
        }
        audit.run(lines.compactMap { TracedCall.parse($0.1, thread: $0.0) })
        #expect(audit.violations.contains { $0.contains("moved to done/ without a journal commit") })
        #expect(audit.violations.contains { $0.contains("moved to done/ without a blob") })
    }

    @Test func socketDescriptorsAndPathsAreRead() throws {
        let send = try #require(TracedCall.parse(Self.trace[18].1, thread: 3))
        #expect(send.tcpPorts?.local == 2575 && send.tcpPorts?.remote == 40000)
        let rename = try #require(TracedCall.parse(Self.trace[5].1, thread: 1))
        #expect(rename.paths == ["/R/journal.blobs/5c/.5c.tmp", "/R/journal.blobs/5c/5c"])
        let relative = try #require(TracedCall.parse(#"1.0 renameat2(5</R/work>, "a", 6</R/done>, "a", RENAME_NOREPLACE) = 0 <0.000010>"#, thread: 1))
        #expect(relative.paths == ["/R/work/a", "/R/done/a"])
    }
}

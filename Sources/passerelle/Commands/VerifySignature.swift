import ArgumentParser
import Foundation
import PasserelleCore
import Signing
import XMLKit

/// `passerelle verify-signature FILE [--documents uniqueId=path …] [--trust-anchors ca.pem …]`
struct VerifySignatureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-signature",
        abstract: "Verify a submission set signature (XAdES) and its Manifest digests against the documents.",
        discussion: """
        Checks the XML signature with xmlsec1 (SignedInfo references, RSA value, signing \
        certificate chained to the trust anchors and not revoked by their CRLs, valid now), \
        then recomputes each ds:Manifest digest (urn:oid:<uniqueId>) from the files given \
        with --documents. Every Manifest reference needs its file, the submission set one \
        included (the bytes that were signed for it). Without --documents only the XML \
        signature is checked. A VIHF (saml2:Assertion) is checked as such: signature over the \
        whole assertion, Issuer = signing certificate, Conditions window.

        Trust anchors default to [certificates] trust_anchors and crl of the configuration.

        Examples:
          passerelle verify-signature signature.xml \\
            --documents 1.2.250.1.999.1.1.3.42=cda.xml 1.2.250.1.999.1.1.2.7=submission-set.xml
          passerelle verify-signature vihf.xml --trust-anchors ca.pem crl.pem

        Exit codes: 0 valid, 1 invalid (the output says what failed) or unreadable input.
        """
    )

    @Argument(help: ArgumentHelp("The signature XML file.", valueName: "file"))
    var file: String

    @Option(parsing: .upToNextOption, help: ArgumentHelp(
        "Signed objects as uniqueId=path (documents and the submission set).", valueName: "uniqueId=path"))
    var documents: [String] = []

    @Option(parsing: .upToNextOption, help: ArgumentHelp(
        "PEM files of trusted CA certificates and CRLs (default: from the configuration).", valueName: "pem"))
    var trustAnchors: [String] = []

    @Option(name: .long, help: ArgumentHelp("Configuration file (for the default trust anchors).", valueName: "file"))
    var config: String?

    func run() async throws {
        do {
            if try isVIHF() {
                let result = try VIHFVerifier(trustAnchorFiles: try anchorFiles()).verify(try Self.read(file))
                print("issuer: \(result.issuer ?? "-")")
                for problem in result.problems { print("problem: \(problem)") }
                print(result.isValid ? "result: VALID" : "result: INVALID")
                if !result.isValid { throw ExitCode(1) }
                return
            }
            let report = try verify()
            if let signer = report.signerSubject { print("signer: \(signer)") }
            print("XML signature: \(report.signatureValid ? "valid" : "INVALID")")
            for reference in report.references {
                print("manifest urn:oid:\(reference.uniqueId): \(Self.describe(reference.status))")
            }
            if documents.isEmpty { print("manifest: not checked (no --documents)") }
            for problem in report.problems { print("problem: \(problem)") }
            print(report.isValid ? "result: VALID" : "result: INVALID")
            if !report.isValid { throw ExitCode(1) }
        } catch let error as ExitCode {
            throw error
        } catch {
            FileHandle.standardError.write(Data("passerelle verify-signature: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    private func isVIHF() throws -> Bool {
        // Same budget as the verifiers (XMLSecKit's xmlSignatureParseBudget): a signature is a few KB.
        let root = try XMLDocument.parse(try Self.read(file), options: .init(maxBytes: 1024 * 1024)).root
        return root?.name == "Assertion" && root?.namespaceURI == "urn:oasis:names:tc:SAML:2.0:assertion"
    }

    private func anchorFiles() throws -> [URL] {
        var anchors = trustAnchors
        if anchors.isEmpty {
            let configuration = try PasserelleConfiguration.load(from: PasserelleConfiguration.resolvePath(explicit: config))
            anchors = [configuration.certificates.trustAnchors] + (configuration.certificates.crl.map { [$0] } ?? [])
        }
        return anchors.map { URL(fileURLWithPath: $0) }
    }

    private func verify() throws -> SubmissionSetSignatureReport {
        var objects: [String: Data] = [:]
        for entry in documents {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                throw ValidationError("--documents '\(entry)' is not uniqueId=path")
            }
            let uniqueId = String(entry[..<equals])
            let path = String(entry[entry.index(after: equals)...])
            guard objects[uniqueId] == nil else { throw ValidationError("--documents names \(uniqueId) twice") }
            objects[uniqueId] = try Self.read(path)
        }
        let verifier = try SubmissionSetSignatureVerifier(trustAnchorFiles: try anchorFiles())
        return try verifier.verify(try Self.read(file), documents: objects, checkManifest: !documents.isEmpty)
    }

    private static func read(_ path: String) throws -> Data {
        do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ValidationError("cannot read \(path): \(error.localizedDescription)")
        }
    }

    static func describe(_ status: SubmissionSetSignatureReport.ReferenceStatus) -> String {
        switch status {
        case .matched: "digest matches"
        case .digestMismatch: "DIGEST MISMATCH (the file is not the signed document)"
        case .notSupplied: "NOT CHECKED (no file given)"
        case .unsupportedAlgorithm(let uri): "UNSUPPORTED digest algorithm \(uri)"
        }
    }
}

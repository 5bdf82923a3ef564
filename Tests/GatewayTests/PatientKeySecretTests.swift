import Foundation
import Gateway
import Handoff
import Synchronization
import Testing
import TestSupport

/// The patient key is the deployment's: nodes starting together on one journal must all end up
/// with the one secret, and none may fail because another is writing it.
@Suite struct PatientKeySecretTests {
    @Test func nodesStartingTogetherAllReadTheOneSecret() throws {
        let folder = try TestPaths.temporaryDirectory("passerelle-patient-key")
        defer { try? FileManager.default.removeItem(at: folder) }
        for round in 0..<40 {
            let path = folder.appendingPathComponent("key-\(round)").path
            let results = Mutex<[Result<Data, GatewayError>]>([])
            DispatchQueue.concurrentPerform(iterations: 12) { _ in
                let result = Result { () throws(GatewayError) in try PatientKeySecret.load(path) }
                results.withLock { $0.append(result) }
            }
            let keys = try results.withLock { try $0.map { try $0.get() } }
            #expect(Set(keys).count == 1, "round \(round): \(Set(keys).count) different secrets")
            #expect(keys.first?.count == 32)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == keys.first)
            let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? 0
            #expect(mode == 0o600)
        }
        // Nothing half-made is left beside the secrets.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix(".") }.isEmpty)
    }
}

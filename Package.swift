// swift-tools-version:6.1
// Passerelle — document-sharing gateway (DMP / MSSanté) for French hospitals.
//
// Layout: the C libraries (libcurl, libxml2, OpenSSL, xmlsec1) sit behind thin Swift
// wrappers (`CurlKit`, `XMLKit`, `OpenSSLKit`, `XMLSecKit`); no other target imports a
// C module. Pipeline stages are small targets that talk through protocols.
// Product vs test code: the production executable `passerelle` links no test endpoint
// (`TestEndpoints`); `passerelle-testbed` holds the local DMP-style endpoint, the MSSanté
// relay launcher and the demo, and `passerelle demo` hands over to it when it is installed.
import PackageDescription

let package = Package(
    name: "Passerelle",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "passerelle", targets: ["passerelle"]),
        .executable(name: "passerelle-bench", targets: ["passerelle-bench"]),
        // Demo and test only: the local DMP-style endpoint and `passerelle-testbed demo`; never installed in production.
        .executable(name: "passerelle-testbed", targets: ["passerelle-testbed"]),
        // For the libFuzzer harnesses in Fuzz/ (a separate package, so `swift build` here never builds them).
        .library(name: "PasserelleParsers", targets: ["PasserelleCore", "Intake", "CDA", "DMP", "MSSante"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),  // LogHandler.log(event:)
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        // The HTTP server (status endpoints and console): only WebServer and the executable import it.
        // Its default traits less ConfigurationSupport: no swift-configuration to build (tools 6.1 for `traits:`).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
        // Already under Hummingbird; named for WebServer's imports (Channel, the graceful shutdown).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
        // The console's passwords (HummingbirdBcrypt only: no swift-crypto target is built for it).
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        // The console over TLS (HummingbirdTLS); the identity comes from OpenSSLKit's PKCS#12 load.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
    ],
    targets: [
        // MARK: C libraries (system headers + tiny shims for variadic functions and macros)
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("curl")]),
        .systemLibrary(name: "CLibXML2", pkgConfig: "libxml-2.0", providers: [.apt(["libxml2-dev"])]),
        .systemLibrary(name: "CXMLSec", pkgConfig: "xmlsec1-openssl", providers: [.apt(["libxmlsec1-dev"])]),
        .target(name: "COpenSSL", linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CPostgres", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),

        // MARK: Swift wrappers, the only importers of the C modules
        // The one executor for blocking calls (serial lanes and bounded pools); no C, no other dependency.
        .target(name: "BlockingIO"),
        .target(name: "CurlKit", dependencies: ["CCurl", "BlockingIO"]),
        .target(name: "XMLKit", dependencies: ["CLibXML2"]),
        .target(name: "OpenSSLKit", dependencies: ["COpenSSL", "BlockingIO"]),
        .target(name: "XMLSecKit", dependencies: ["CXMLSec", "CLibXML2", "XMLKit", "OpenSSLKit"]),
        .target(name: "SQLiteKit", dependencies: ["CSQLite", "BlockingIO"]),
        .target(name: "PostgresKit", dependencies: ["CPostgres", "BlockingIO"]),

        // HTTP/1.1 request reader (size and time budgets) and response writer over an OpenSSLKit
        // connection: the status endpoint and the test endpoints.
        .target(name: "HTTPWire", dependencies: ["OpenSSLKit"]),

        // MARK: Domain and pipeline stages
        .target(name: "PasserelleCore"),
        // The crash suite's hook (`PASSERELLE_CRASH_AT`), off unless that variable is set; only the stages with crash points import it.
        .target(name: "TestHooks"),
        // Generated sample PDFs: `passerelle selfcheck`, the demo, the tests and the bench.
        .target(name: "SampleDocuments"),
        .target(name: "CDA", dependencies: ["PasserelleCore", "XMLKit", "OpenSSLKit"], resources: []),
        .target(name: "Signing", dependencies: ["PasserelleCore", "XMLKit", "OpenSSLKit", "XMLSecKit"]),
        // IHE content shared by the DMP (ITI-41/57) and MSSanté (XDM): XDS schemes and metadata, MTOM, the body type.
        .target(name: "IHE", dependencies: ["PasserelleCore", "CDA", "OpenSSLKit"]),
        .target(name: "DMP", dependencies: ["PasserelleCore", "IHE", "CDA", "Signing", "XMLKit", "CurlKit", "OpenSSLKit"]),
        .target(name: "MSSante", dependencies: ["PasserelleCore", "IHE", "TestHooks", "BlockingIO", "CDA", "OpenSSLKit", "CurlKit", "XMLKit"]),
        // The sources: the watched folder and the MLLP listener (IntakeSource), the HL7 v2 and sidecar readers.
        .target(name: "Intake", dependencies: ["PasserelleCore", "OpenSSLKit", "TestHooks", .product(name: "Logging", package: "swift-log")]),
        .target(name: "Journal", dependencies: ["PasserelleCore", "SQLiteKit", "PostgresKit", "OpenSSLKit", "BlockingIO"]),
        .target(name: "Indicators", dependencies: ["PasserelleCore", "Journal"]),
        .target(name: "Observability", dependencies: [
            "OpenSSLKit", "PasserelleCore", "Journal", "Signing",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // The one HTTP server (Hummingbird): /health, /ready, /metrics and the console under /console/ (pages, login, TLS, actions).
        .target(name: "WebServer", dependencies: ["Observability", "Journal", "Indicators", "PasserelleCore", "BlockingIO", "OpenSSLKit",
                                                  .product(name: "Hummingbird", package: "hummingbird"),
                                                  .product(name: "HummingbirdCore", package: "hummingbird"),
                                                  .product(name: "HummingbirdTLS", package: "hummingbird"),
                                                  .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                                                  .product(name: "NIOSSL", package: "swift-nio-ssl"),
                                                  .product(name: "NIOCore", package: "swift-nio"),
                                                  .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]),
        // Below Admission and Delivery so neither imports the other: what admission writes and delivery reads back (IntakeRecord, OutgoingDocument, AdmittedDocuments), events, stage timing, errors.
        .target(name: "Handoff", dependencies: ["IHE", "PasserelleCore", "Intake", "Journal", "CDA", "OpenSSLKit"]),
        // From a claim to a journaled document: the pipeline (route, CDA build, XSD, one journal
        // transaction) and the intake driver that feeds it from any IntakeSource.
        .target(name: "Admission", dependencies: ["Handoff", "IHE", "PasserelleCore", "TestHooks", "Intake", "Journal", "CDA", "OpenSSLKit",
                                                  .product(name: "Logging", package: "swift-log")]),
        // From the queue to the peers: the workers, the sender adapters (transport results mapped to
        // journal outcomes), MSSanté acknowledgement polling, fault alerts.
        .target(name: "Delivery", dependencies: ["Handoff", "IHE", "PasserelleCore", "TestHooks", "Journal", "CDA", "Signing", "DMP", "MSSante",
                                                 "CurlKit", "OpenSSLKit", .product(name: "Logging", package: "swift-log")]),
        // The service lifecycle and the composition: the one place PasserelleConfiguration is mapped to each part's settings.
        .target(name: "Gateway", dependencies: ["Admission", "Delivery", "Handoff", "IHE", "PasserelleCore", "Intake", "Journal", "CDA", "Signing", "DMP", "MSSante",
                                                "CurlKit", "OpenSSLKit", .product(name: "Logging", package: "swift-log")]),

        // MARK: CLI and daemon wiring
        .executableTarget(
            name: "passerelle",
            dependencies: [
                // Never TestEndpoints: CLITests/ProductionBinaryTests checks the built binary holds none of it.
                "PasserelleCore", "SampleDocuments", "CDA", "Signing", "DMP", "MSSante", "Intake", "Journal", "Indicators", "Observability", "WebServer", "Handoff", "Gateway",
                "CurlKit", "XMLKit", "OpenSSLKit", "XMLSecKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: Demo and test only (never in a production install)
        // The strict DMP-style ITI-41 endpoint, the local MSSanté relay launcher, sample HL7 and
        // the configuration of a gateway wired to them: the testbed, the bench and the tests.
        .target(name: "TestEndpoints", dependencies: ["IHE", "PasserelleCore", "SampleDocuments", "CDA", "DMP", "Signing", "XMLKit", "OpenSSLKit", "XMLSecKit", "HTTPWire"]),
        // `passerelle-testbed demo` (what `passerelle demo` runs: the endpoints here, the real
        // `passerelle run` as a child process) and `passerelle-testbed dmp-endpoint`.
        .executableTarget(
            name: "passerelle-testbed",
            dependencies: ["IHE", "PasserelleCore", "SampleDocuments", "TestEndpoints", "CDA", "DMP", "Journal", "Indicators", "OpenSSLKit",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        // MARK: Benchmarks (`swift run -c release passerelle-bench`)
        .executableTarget(
            name: "passerelle-bench",
            dependencies: ["PasserelleCore", "IHE", "CDA", "Signing", "DMP", "TestEndpoints", "XMLKit", "OpenSSLKit", "XMLSecKit", "CurlKit", "BenchSupport",
                           "Journal", "Indicators", "SQLiteKit", "PostgresKit", "Handoff", "Gateway", "SampleDocuments",
                           .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log")]
        ),

        // What the bench and the tests share (paths, sample metadata, a process runner, a throwaway
        // PostgreSQL server): outside Tests/ so that passerelle-bench does not link the test support.
        .target(name: "BenchSupport", dependencies: ["PasserelleCore", "PostgresKit"]),

        // MARK: Tests
        .target(name: "TestSupport", dependencies: ["BenchSupport", "OpenSSLKit", "PasserelleCore", "SampleDocuments", "PostgresKit"], path: "Tests/TestSupport"),
        .testTarget(name: "PasserelleCoreTests", dependencies: ["PasserelleCore", "TestSupport"]),
        .testTarget(name: "BlockingIOTests", dependencies: ["BlockingIO"]),
        .testTarget(name: "HTTPWireTests", dependencies: ["HTTPWire", "OpenSSLKit"]),
        .testTarget(name: "CurlKitTests", dependencies: ["CurlKit", "TestSupport"], exclude: ["Resources"]),
        .testTarget(name: "XMLKitTests", dependencies: ["XMLKit", "TestSupport"]),
        .testTarget(name: "OpenSSLKitTests", dependencies: ["OpenSSLKit", "TestSupport"]),
        .testTarget(name: "XMLSecKitTests", dependencies: ["XMLSecKit", "XMLKit", "OpenSSLKit", "TestSupport"]),
        .testTarget(name: "CDATests", dependencies: ["CDA", "PasserelleCore", "XMLKit", "TestSupport"]),
        .testTarget(name: "SigningTests", dependencies: ["Signing", "PasserelleCore", "XMLKit", "OpenSSLKit", "TestSupport"]),
        // WebServer: the console's session and lockout types, tested with a clock the test moves.
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "WebServer"]),
        .testTarget(name: "MSSanteTests", dependencies: ["IHE", "MSSante", "PasserelleCore", "CDA", "XMLKit", "OpenSSLKit", "Journal", "CurlKit", "Handoff", "Delivery", "Gateway", "TestSupport"]),
        .testTarget(name: "IntakeTests", dependencies: ["Intake", "PasserelleCore", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "ObservabilityTests", dependencies: ["Observability", "WebServer", "OpenSSLKit", "TestSupport", "Journal", "Indicators", "Signing", "PasserelleCore",
                                                               .product(name: "CoreMetrics", package: "swift-metrics")]),
        .testTarget(name: "SQLiteKitTests", dependencies: ["SQLiteKit", "TestSupport"]),
        .testTarget(name: "PostgresKitTests", dependencies: ["PostgresKit", "BlockingIO", "TestSupport"]),
        .testTarget(name: "JournalTests", dependencies: ["Journal", "PasserelleCore", "SQLiteKit", "PostgresKit", "TestSupport"]),
        .testTarget(name: "DeliveryTests", dependencies: ["Delivery", "Handoff", "Journal", "CDA", "PasserelleCore", "OpenSSLKit", "BenchSupport"]),
        .testTarget(name: "GatewayTests", dependencies: ["Handoff", "Admission", "Delivery", "Gateway", "IHE", "TestHooks", "TestEndpoints", "Journal", "Intake", "DMP", "CDA", "Signing",
                                                         "PasserelleCore", "OpenSSLKit", "CurlKit", "SQLiteKit", "TestSupport",
                                                         .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "IndicatorsTests", dependencies: ["Indicators", "Journal", "PasserelleCore", "PostgresKit", "XMLKit", "Signing", "OpenSSLKit", "TestSupport"]),
        .testTarget(name: "DMPTests", dependencies: ["IHE", "DMP", "CurlKit", "TestEndpoints", "CDA", "Signing", "PasserelleCore", "XMLKit", "OpenSSLKit", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)

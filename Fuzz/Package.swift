// swift-tools-version:6.0
// libFuzzer harnesses for Passerelle's parsers, one executable per parser. A separate package so
// that `swift build` at the root never compiles them; build and run with scripts/fuzz.sh:
//   swift build --package-path Fuzz -c debug -Xswiftc -sanitize=fuzzer,address
import PackageDescription

let package = Package(
    name: "PasserelleFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "Passerelle", path: "..")],
    targets: [
        .target(name: "CFuzzer"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzer"]),
        .executableTarget(name: "FuzzHL7", dependencies: ["FuzzSupport", .product(name: "PasserelleParsers", package: "Passerelle")]),
        .executableTarget(name: "FuzzSidecar", dependencies: ["FuzzSupport", .product(name: "PasserelleParsers", package: "Passerelle")]),
        .executableTarget(name: "FuzzCDA", dependencies: ["FuzzSupport", .product(name: "PasserelleParsers", package: "Passerelle")]),
        .executableTarget(name: "FuzzRegistryResponse", dependencies: ["FuzzSupport", .product(name: "PasserelleParsers", package: "Passerelle")]),
        .executableTarget(name: "FuzzMailReport", dependencies: ["FuzzSupport", .product(name: "PasserelleParsers", package: "Passerelle")]),
    ],
    swiftLanguageModes: [.v6]
)

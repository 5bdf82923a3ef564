// Benchmarks: `passerelle-bench <name>`; each benchmark lives in its own file and is listed here.
import Foundation

let benchmarks: [String: (ArraySlice<String>) throws -> Void] = [
    "sign": SignBenchmark.run,
]

let arguments = CommandLine.arguments.dropFirst()
guard let name = arguments.first, let benchmark = benchmarks[name] else {
    print("usage: passerelle-bench <\(benchmarks.keys.sorted().joined(separator: "|"))> [options]")
    exit(64)
}
do {
    try benchmark(arguments.dropFirst())
} catch {
    FileHandle.standardError.write(Data("passerelle-bench \(name): \(error)\n".utf8))
    exit(1)
}

import ArgumentParser
import Foundation

/// `passerelle-bench <benchmark> [--iterations N]`: each benchmark is a subcommand that
/// prints one table line and one JSON line per measurement. Run in release:
/// `swift run -c release passerelle-bench cda`.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passerelle-bench",
        abstract: "Micro-benchmarks of Passerelle's stages.",
        subcommands: [CDABenchmark.self, SignBenchmark.self, DMPBenchmark.self, DMPEndpointCommand.self, ReportBenchmark.self, LargeBenchmark.self, EndToEndBenchmark.self, MinimalEndpointCommand.self]
    )
}

/// Options every benchmark takes.
struct BenchOptions: ParsableArguments {
    @Option(help: "Measured iterations (after a short warm-up).")
    var iterations = 200
}

/// Timing figures of one benchmark, printed as a table line and as JSON.
struct BenchResult: Encodable {
    var benchmark: String
    var iterations: Int
    var meanMs: Double
    var medianMs: Double
    var p95Ms: Double
    var minMs: Double
    /// Benchmark-specific facts (sizes…).
    var details: [String: Int]

    /// Runs `body` `warmup` + `iterations` times and keeps the measured durations.
    static func measure(_ name: String, iterations: Int, warmup: Int = 10, details: [String: Int] = [:],
                        _ body: () throws -> Void) rethrows -> BenchResult {
        for _ in 0..<warmup { try body() }
        let clock = ContinuousClock()
        var samples: [Double] = []
        samples.reserveCapacity(iterations)
        for _ in 0..<max(1, iterations) {
            let elapsed = try clock.measure(body)
            samples.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
        }
        samples.sort()
        let percentile = { (p: Double) in samples[min(samples.count - 1, Int(Double(samples.count - 1) * p))] }
        return BenchResult(benchmark: name, iterations: samples.count, meanMs: samples.reduce(0, +) / Double(samples.count),
                           medianMs: percentile(0.5), p95Ms: percentile(0.95), minMs: samples[0], details: details)
    }

    func printTableLine() {
        let extra = details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let name = benchmark.padding(toLength: 20, withPad: " ", startingAt: 0)
        print(name + String(format: " n=%-5d mean %8.3f ms  median %8.3f ms  p95 %8.3f ms  min %8.3f ms  ",
                            iterations, meanMs, medianMs, p95Ms, minMs) + extra)
    }

    func printJSON() {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        if let data = try? encoder.encode(self) { print(String(decoding: data, as: UTF8.self)) }
    }
}

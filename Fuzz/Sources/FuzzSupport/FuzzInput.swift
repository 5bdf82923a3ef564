import CFuzzer
import Foundation

/// Runs libFuzzer with the command line of the process (corpus folders, -max_total_time, …)
/// and `callback` as the harness; exits with libFuzzer's status.
public func runFuzzer(_ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
}

/// The bytes of one input, or nil when the input is over `maxBytes` (the harness then returns
/// -1 so that libFuzzer does not keep it in the corpus): real inputs are bounded upstream
/// (inbox and HTTP size limits), and huge inputs only slow the search down.
public func fuzzInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int, maxBytes: Int) -> Data? {
    guard count <= maxBytes else { return nil }
    guard let bytes, count > 0 else { return Data() }
    return Data(bytes: bytes, count: count)
}

/// Stops the run with a message libFuzzer reports as a crash: a broken invariant, not a parse
/// error (parse errors are the expected outcome for most inputs).
public func fuzzInvariant(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("fuzz invariant: \(message())") }
}

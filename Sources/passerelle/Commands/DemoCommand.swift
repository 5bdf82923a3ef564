import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `passerelle demo` — hands over to `passerelle-testbed demo`. The demo needs a local
/// DMP-style endpoint and sample documents, which are test code: they live in the separate
/// demo-only `passerelle-testbed` executable, never in this one. The testbed then runs this
/// executable's `passerelle run` as the gateway.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the demo: the gateway against local DMP-style and MSSanté-style endpoints with sample documents (needs passerelle-testbed).",
        discussion: """
        Runs `passerelle-testbed demo` with the same arguments; passerelle-testbed is a \
        demo-only executable found beside this one (swift build makes both; the Debian \
        package passerelle-demo installs it; a production install has none). Its options: \
        `passerelle-testbed demo --help`. From the repository root, scripts/run.sh builds \
        both and runs the demo.

        Example:
          passerelle demo --folder /tmp/passerelle-demo

        Exit codes: those of passerelle-testbed demo (0 every sample ended as expected, 1 not, \
        or the demo could not run); 1 when passerelle-testbed is absent.
        """
    )

    @Argument(parsing: .captureForPassthrough, help: "Arguments for passerelle-testbed demo.")
    var arguments: [String] = []

    static let testbedName = "passerelle-testbed"

    func run() throws {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let folder = URL(fileURLWithPath: me).deletingLastPathComponent()
        let testbed = folder.appendingPathComponent(Self.testbedName).path
        guard FileManager.default.isExecutableFile(atPath: testbed) else {
            printError("passerelle demo needs the passerelle-testbed executable (demo-only package), not found in \(folder.path): "
                       + "install the passerelle-demo package, or from the repository, `swift build --product passerelle-testbed` (scripts/run.sh does it)")
            throw ExitCode.failure
        }
        // exec, not a child: signals and the exit status are the testbed's own.
        let argv = [testbed, "demo", "--passerelle", me] + arguments
        var cArgs = argv.map { strdup($0) } + [nil]
        execv(testbed, &cArgs)
        printError("passerelle demo: cannot run \(testbed): \(String(cString: strerror(errno)))")
        throw ExitCode.failure
    }
}

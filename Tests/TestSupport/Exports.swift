// The paths, sample metadata, process runner and PostgreSQL test server moved to BenchSupport
// (Sources/BenchSupport) so that passerelle-bench does not link Tests/; the tests keep seeing
// them through `import TestSupport`.
@_exported import BenchSupport

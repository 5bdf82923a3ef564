// Benchmarks: each stage adds a subcommand here.
print("passerelle-bench: no benchmark yet")

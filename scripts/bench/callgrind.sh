#!/usr/bin/env bash
# Instructions per document of the gateway (`passerelle run`), counted by valgrind's callgrind:
# repeatable on a loaded machine where wall clock and CPU time are not.
#
#   scripts/bench/callgrind.sh [N] [N0]          # defaults: N=200, N0=40
#
# Runs `passerelle-bench e2e --endpoint minimal` (issue 17's DMP-only backlog: PDF + sidecar,
# qualified INS, 50–500 KB PDFs; nginx answering a canned RegistryResponse over mutual TLS;
# SQLite journal, synchronous=FULL) twice, with N0 and N documents, the gateway under
# `valgrind --tool=callgrind`. Prints the instructions of the whole `passerelle run` process
# (start-up and shutdown included) per document for N, and the marginal instructions per
# document, (I(N) − I(N0)) / (N − N0), which leaves start-up and shutdown out. The top
# functions (callgrind_annotate: exclusive, and with their callers) go to $OUT/top-functions-N*.txt.
# Under valgrind, OpenSSL does not see the CPU's SHA extensions (valgrind does not emulate them), so
# SHA-256 costs several times more instructions than natively: compare counts with counts.
# Everything under valgrind is ~50× slower: N=200 takes several minutes.
#
# Two workarounds for Debian 12's valgrind 3.19 (both only change how valgrind is started):
# - it cannot read the DWARF 5 debug information of Swift 6 binaries ("unhandled dwarf2 abbrev
#   form code 0x25 … Possibly corrupted debuginfo file"): the gateway runs from a copy with
#   the debug sections stripped (objcopy --strip-debug; the symbol table stays, so functions
#   keep their names);
# - it crashes itself (VALGRIND INTERNAL ERROR, SIGSEGV) on libdispatch's
#   sigsuspend(&mask) when `mask` is a static const in read-only memory (valgrind edits the mask
#   in place); a preloaded sigsuspend() that passes a copy avoids it (built here with cc).
#
# Environment: OUT (default .build/bench-callgrind), SKIP_BUILD=1 (use the release binaries as
# they are), WORKLOAD (options that shape the backlog, given when it is written and when it is
# run, e.g. "--pdf-sizes mixed"), BENCH_ARGS (more e2e options of the run only, e.g.
# "--dmp-connections 2" or "--journal postgresql"),
# PASSERELLE and BENCH (other binaries than .build/release's, e.g. an older build for an A/B).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
n=${1:-200}
n0=${2:-40}
out=${OUT:-$root/.build/bench-callgrind}
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    swift build -c release --product passerelle >/dev/null
    swift build -c release --product passerelle-bench >/dev/null
fi
bench=${BENCH:-$root/.build/release/passerelle-bench}
rm -rf "$out"
mkdir -p "$out"
objcopy --strip-debug "${PASSERELLE:-$root/.build/release/passerelle}" "$out/passerelle"
cat > "$out/sigsuspend-shim.c" <<'C'
#define _GNU_SOURCE
#include <signal.h>
#include <unistd.h>
#include <sys/syscall.h>
/* valgrind 3.19 writes into the mask it is given; libdispatch's is read-only. */
int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, (size_t)(_NSIG / 8));
}
C
cc -shared -fPIC -O2 -o "$out/sigsuspend-shim.so" "$out/sigsuspend-shim.c"

instructions() {  # the Ir total of a callgrind output file
    awk '/^(summary|totals):/ { print $2; exit }' "$1"
}

declare -A total
for count in "$n0" "$n"; do
    # shellcheck disable=SC2086
    "$bench" e2e --endpoint minimal --documents "$count" ${WORKLOAD:-} --prepare-only "$out/backlog-$count" >/dev/null
    echo "callgrind.sh: $count documents under callgrind…" >&2
    # shellcheck disable=SC2086
    "$bench" e2e --endpoint minimal --documents "$count" --inbox-from "$out/backlog-$count" --folder "$out/run-$count" \
        --passerelle "$out/passerelle" \
        --wrapper "env LD_PRELOAD=$out/sigsuspend-shim.so valgrind --tool=callgrind --callgrind-out-file=$out/callgrind.$count.out" \
        --timeout 7200 --json "$out/run-$count.json" ${WORKLOAD:-} ${BENCH_ARGS:-} > "$out/run-$count.txt"
    total[$count]=$(instructions "$out/callgrind.$count.out")
    rm -rf "$out/backlog-$count" "$out/run-$count"
done

# Swift symbols demangled when the toolchain's swift-demangle is there.
demangle=$(command -v swift-demangle || true)
[ -z "$demangle" ] && [ -x "$(dirname "$(readlink -f "$(command -v swift)")")/swift-demangle" ] && demangle="$(dirname "$(readlink -f "$(command -v swift)")")/swift-demangle"
annotate() {
    if [ -n "$demangle" ]; then callgrind_annotate "$@" | "$demangle" --simplified; else callgrind_annotate "$@"; fi
}
# Inclusive costs are meaningless across Swift's async frames (callgrind sees recursion through
# swift_task_switch); the caller tree says who calls the hot functions (e.g. SHA256_Update).
annotate --tree=caller "$out/callgrind.$n.out" > "$out/top-functions-$n.callers.txt" 2>/dev/null || true
annotate "$out/callgrind.$n.out" > "$out/top-functions-$n.txt" 2>/dev/null || true

python3 - "$n0" "${total[$n0]}" "$n" "${total[$n]}" <<'PY'
import sys
n0, i0, n, i = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f"gateway instructions (passerelle run, whole process): {i:,} for {n} documents, {i0:,} for {n0}")
print(f"  per document, whole run of {n}:  {i / n / 1e6:,.1f} M instructions")
print(f"  per document, marginal:         {(i - i0) / (n - n0) / 1e6:,.1f} M instructions  ((I({n}) - I({n0})) / {n - n0})")
print(f"  start-up + shutdown (estimate): {(i - n * (i - i0) / (n - n0)) / 1e6:,.1f} M instructions")
PY
echo "top functions: $out/top-functions-$n.txt (exclusive), $out/top-functions-$n.callers.txt (with their callers); runs: $out/run-$n.txt"
head -40 "$out/top-functions-$n.txt" | sed -n '/Ir/,$p' | head -30

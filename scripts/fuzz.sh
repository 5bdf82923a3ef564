#!/usr/bin/env bash
# Builds the libFuzzer harnesses (Fuzz/, AddressSanitizer) and runs each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS-PER-TARGET] [TARGET…]     (default: 60 s, every target)
#   scripts/fuzz.sh --build-only                       (only the build: scripts/test.sh starts
#                                                       it in the background while the tests run)
#   targets: hl7 sidecar cda registry-response mail-report
#   FUZZ_JOBS=2 runs two targets at once; FUZZ_RSS_MB (default 2048) caps each run's memory,
#   FUZZ_MALLOC_MB (default 512) any single allocation (an entity expansion or a size taken
#   from the input shows up as one huge malloc): both are reported as crashes (OOM).
#
# The XML targets (cda, registry-response) use Fuzz/xml.dict, which holds DOCTYPE / ENTITY /
# parameter-entity tokens, and their corpus holds the attacks XMLKit refuses (billion laughs,
# quadratic blow-up, external DTD over http and file, parameter entity, deep nesting).
#
# Seeds come from Fuzz/Corpus/<target> (read only); what libFuzzer finds goes to
# .build/fuzz-corpus/<target>, crashes, leaks, timeouts and OOMs to
# .build/fuzz-artifacts/<target>-*. Exit status 1 when any target found one, 2 when the
# harnesses do not build.
# Replay one input: Fuzz/.build/debug/Fuzz<Name> .build/fuzz-artifacts/<file>
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

build_only=0
[ "${1:-}" = --build-only ] && { build_only=1; shift; }
seconds=${1:-60}
shift || true
all=(hl7 sidecar cda registry-response mail-report)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
jobs=${FUZZ_JOBS:-1}
rss=${FUZZ_RSS_MB:-2048}
malloc=${FUZZ_MALLOC_MB:-512}

# target → executable, dictionary, largest input (the harnesses refuse bigger ones too)
spec() {
    case "$1" in
        hl7) echo "FuzzHL7 hl7.dict 32768" ;;
        sidecar) echo "FuzzSidecar json.dict 16384" ;;
        cda) echo "FuzzCDA xml.dict 32768" ;;
        registry-response) echo "FuzzRegistryResponse xml.dict 16384" ;;
        mail-report) echo "FuzzMailReport mail.dict 16384" ;;
        *) echo "fuzz.sh: unknown target '$1' (known: ${all[*]})" >&2; return 1 ;;
    esac
}
for t in "${targets[@]}"; do spec "$t" >/dev/null; done

echo "fuzz: building the harnesses (debug, -sanitize=fuzzer,address)"
mkdir -p .build
# (gold warns once per ASan helper symbol; those lines are noise)
build_status=0
swift build --package-path Fuzz -c debug -Xswiftc -sanitize=fuzzer,address >.build/fuzz-build.log 2>&1 || build_status=$?
grep -v -e "Cannot export local symbol" -e "prohibited flag(s)" .build/fuzz-build.log | tail -n 20
[ "$build_status" -eq 0 ] || { echo "fuzz: the harnesses do not build (.build/fuzz-build.log)" >&2; exit 2; }
bin=$(swift build --package-path Fuzz -c debug --show-bin-path)
[ "$build_only" = 0 ] || exit 0
artifacts=.build/fuzz-artifacts
mkdir -p "$artifacts"

run() {
    local t=$1 exe dict maxlen
    read -r exe dict maxlen < <(spec "$t")
    [ -x "$bin/$exe" ] || { echo "fuzz: $bin/$exe was not built" >&2; return 1; }
    mkdir -p ".build/fuzz-corpus/$t"
    local log=".build/fuzz-$t.log"
    echo "fuzz: $t for ${seconds}s (log $log)"
    local status=0
    "$bin/$exe" ".build/fuzz-corpus/$t" "Fuzz/Corpus/$t" -dict="Fuzz/$dict" -max_len="$maxlen" \
        -max_total_time="$seconds" -rss_limit_mb="$rss" -malloc_limit_mb="$malloc" -timeout=10 -artifact_prefix="$artifacts/$t-" \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    local execs speed
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    echo "fuzz: $t: exit $status, ${execs:-?} runs, ${speed:-?} exec/s, corpus $(ls ".build/fuzz-corpus/$t" | wc -l) new files"
    if [ "$status" -ne 0 ]; then
        grep -E "ERROR: |Fatal error|SUMMARY|Test unit written to" "$log" | head -20 >&2 || true
        return 1
    fi
}

failed=0
running=0
pids=()
for t in "${targets[@]}"; do
    run "$t" & pids+=($!)
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait "${pids[0]}" || failed=1
        pids=("${pids[@]:1}")
        running=$((running - 1))
    fi
done
for p in "${pids[@]}"; do wait "$p" || failed=1; done
[ "$failed" -eq 0 ] && echo "fuzz: no crash" || echo "fuzz: crashes found, see $artifacts" >&2
exit "$failed"

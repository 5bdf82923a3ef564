#!/usr/bin/env bash
# A/B of two `passerelle` binaries on issue 17's DMP-only backlog (`passerelle-bench e2e
# --endpoint minimal`), alternating A and B so that both see the same machine state:
#
#   scripts/bench/ab.sh OLD-PASSERELLE NEW-PASSERELLE [PAIRS]        # default 3 pairs
#
# Both runs take the same backlog, written once (`--prepare-only`) and hard-linked into each
# run's inbox. One line per run: documents/s, gateway CPU per document, kernel seconds, load.
# On this 2-core machine wall clock and CPU vary between runs (other work, the disk's state
# after the previous run deleted its files): compare within pairs, and count instructions with
# scripts/bench/callgrind.sh for a repeatable figure.
#
# Environment: BENCH (the passerelle-bench binary; default .build/release's: it must read the
# newer of the two journal schemas), DOCS (default 1000), PAUSE (seconds between runs, default
# 25), WORKLOAD (options that make the backlog, e.g. "--pdf-sizes mixed"), EXTRA (more e2e
# options, e.g. "--journal postgresql --gateways 2"), BACKLOG (the backlog folder).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ $# -ge 2 ] || { sed -n '2,17p' "$0"; exit 64; }
a=$1 b=$2 pairs=${3:-3}
bench=${BENCH:-$root/.build/release/passerelle-bench}
docs=${DOCS:-1000}
workload=${WORKLOAD:-}
backlog=${BACKLOG:-$root/.build/bench-ab-backlog-$docs$(tr -c 'a-z0-9' '-' <<<"$workload" | sed 's/-*$//')}
# shellcheck disable=SC2086
[ -d "$backlog" ] || "$bench" e2e --endpoint minimal --documents "$docs" $workload --prepare-only "$backlog" >/dev/null
for _ in $(seq "$pairs"); do
    for binary in "$a" "$b"; do
        sleep "${PAUSE:-25}"
        # shellcheck disable=SC2086
        out=$("$bench" e2e --endpoint minimal --documents "$docs" --passerelle "$binary" --inbox-from "$backlog" $workload ${EXTRA:-} 2>&1) \
            || { echo "$out" >&2; exit 1; }
        rate=$(awk '/throughput/ { print $2 }' <<<"$out")
        cpu=$(awk '/gateway CPU/ { print $6 }' <<<"$out")
        kernel=$(awk '$1 == "kernel" { print $2 }' <<<"$out")
        database=$(grep -oE 'PostgreSQL server [0-9.]+ s( \([a-z ]+\))?' <<<"$out" | sed 's/^/, /' || true)
        twice=$(grep -o 'requests beyond one per document [0-9]*' <<<"$out" || true)
        echo "$binary: $rate documents/s, $cpu ms gateway CPU per document, ${kernel} s in the kernel$database, $twice, load $(cut -d' ' -f1 /proc/loadavg)"
    done
done

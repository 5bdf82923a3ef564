#!/usr/bin/env bash
# The console's load check (issue 19): the overview under wrk on loopback, with a journal of
# 1,000,000 transmissions, while the gateway sends a DMP backlog to nginx.
#
#   scripts/bench/console-load.sh [--before PASSERELLE] [--rows N] [--documents N]
#                                 [--idle S] [--seconds S] [--connections N]
#
# 1. Builds passerelle and passerelle-bench in release (SKIP_BUILD=1: as they are).
# 2. The journal: `passerelle-bench e2e --endpoint minimal --documents 1` makes a real one (with
#    the oldest passerelle measured: --before, else this build), then sqlite3 fills it to --rows
#    transmissions (default 1,000,000: one document each, spread over the last year; 97 %
#    acknowledged or sent, 2 % failed with an error, 1 % discarded; 3 % carry an earlier error).
# 3. The backlog: --documents DMP-only inputs (issue 17's workload, 50–500 KB PDFs), made once.
# 4. Per passerelle (--before first, then this build), same journal copy, same backlog:
#    `passerelle-bench e2e --endpoint minimal --journal-from … --console-port …` starts the
#    gateway; once it sends, --idle seconds without load (documents/s from /metrics), then
#    --seconds of two wrk at once (--connections each, timeout 10 s): /console/ and
#    /console/api/overview, p50/p99 and requests/s of each, and the gateway's documents/s
#    meanwhile. The rest of the backlog then drains (bounded by the bench's --timeout).
# 5. The overview's journal queries timed by sqlite3 on the filled journal, before and after
#    migration 7.
#
# Only loopback is used; every loop is bounded in time. Environment: OUT (default
# .build/console-load), SKIP_BUILD=1.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

before=""
rows=1000000
documents=8000
idle=8
seconds=15
connections=4
while [ $# -gt 0 ]; do
    case "$1" in
        --before) before=$(realpath "$2"); shift 2 ;;
        --rows) rows=$2; shift 2 ;;
        --documents) documents=$2; shift 2 ;;
        --idle) idle=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        *) echo "console-load.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
    esac
done
out=${OUT:-$root/.build/console-load}

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
    echo "console-load: installing ${need[*]}"
    sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    swift build -c release --product passerelle >/dev/null
    swift build -c release --product passerelle-bench >/dev/null
fi
bench=$root/.build/release/passerelle-bench
after=$root/.build/release/passerelle
# REUSE=1: the journal and the backlog of the previous run in $out, as they are.
if [ "${REUSE:-0}" = 1 ] && [ -f "$out/journal.sqlite" ] && [ -d "$out/backlog" ]; then
    rm -rf "$out"/run-* "$out"/before* "$out"/after* "$out/summary.txt"
else
    rm -rf "$out"
fi
mkdir -p "$out"
log() { echo "console-load: $*" >&2; }
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }

journal=$out/journal.sqlite
if [ ! -f "$journal" ]; then
# 2. The journal, made by the oldest passerelle measured (`passerelle status` creates it with
# that passerelle's schema) in the configuration a one-document e2e run leaves, then filled.
oldest=${before:-$after}
log "empty journal made by $oldest"
"$bench" e2e --endpoint minimal --documents 1 --passerelle "$oldest" --folder "$out/seed" --keep >"$out/seed.txt"
rm -rf "$out/seed/journal"
mkdir -p "$out/seed/journal"
(cd "$out/seed" && "$oldest" status --config "$out/seed/passerelle.toml" >/dev/null)
sqlite3 "$out/seed/journal/journal.sqlite" ".backup '$journal'"
schema=$(sqlite3 "$journal" "SELECT max(version) FROM schema_migrations")
now_ms=$(( $(date +%s) * 1000 ))
log "filling the journal (schema $schema) to $rows transmissions"
start=$(date +%s.%N)
sqlite3 "$journal" <<SQL
PRAGMA journal_mode=WAL;
BEGIN;
CREATE TEMP TABLE n AS WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $rows) SELECT i, $now_ms - ($rows - i) * 31000 AS t FROM c;
INSERT INTO documents (id, version, set_id, kind, patient_key, identity_status, finess, stay_id, blob_sha256, built_sha256,
                       state, received_at, received_month, updated_at)
SELECT '1.2.250.1.999.77.' || i, 1, '1.2.250.1.999.77.' || i, '11490-0', 'pk-' || (i % 50000), 'VALI', '750712184', 'S' || i,
       'load-check', 'load-check', 'queued', t, strftime('%Y-%m', t / 1000, 'unixepoch'), t FROM n;
INSERT INTO transmissions (document_id, version, target, state, attempts, created_at, created_month, updated_at,
                           last_error, last_error_at, failure)
SELECT '1.2.250.1.999.77.' || i, 1,
       CASE WHEN i % 10 = 0 THEN 'mssante_ps' ELSE 'dmp' END,
       CASE WHEN i % 50 = 7 THEN 'failed' WHEN i % 100 = 3 THEN 'discarded' WHEN i % 10 = 0 THEN 'sent' ELSE 'acknowledged' END,
       1, t, strftime('%Y-%m', t / 1000, 'unixepoch'), t + 2000,
       CASE WHEN i % 50 = 7 OR i % 33 = 5 THEN 'HTTP 503 Service Unavailable (essai ' || (i % 7) || ')' END,
       CASE WHEN i % 50 = 7 OR i % 33 = 5 THEN t + 1000 END,
       CASE WHEN i % 50 = 7 THEN 'exhausted' END
FROM n;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
log "filled in $(calc "$(date +%s.%N) - $start") s: $(sqlite3 "$journal" 'SELECT count(*) FROM transmissions') transmissions, $(du -m "$journal" | cut -f1) MB"

# 3. The backlog, once.
"$bench" e2e --endpoint minimal --documents "$documents" --prepare-only "$out/backlog" >&2
fi

metric() {  # url name → the sum of a counter's series (0 when absent or not answered)
    { curl -s --max-time 5 "$1/metrics" || true; } | awk -v n="$2" '$1 ~ "^"n"({|$)" { s += $2 } END { printf "%d\n", s }'
}
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# 4. One measured run.
measure() {  # label passerelle
    local label=$1 gateway=$2 port base pid sent0 sent1 sent2 t0 t1 t2
    port=$(free_port)
    base=http://127.0.0.1:$port
    log "[$label] $gateway, console on $base"
    "$bench" e2e --endpoint minimal --documents "$documents" --inbox-from "$out/backlog" --journal-from "$journal" \
        --console-port "$port" --passerelle "$gateway" --folder "$out/run-$label" --keep --timeout 1200 \
        --json "$out/$label.json" >"$out/$label-bench.txt" 2>&1 &
    pid=$!
    # Sending: the first transmissions counted (bounded wait; migration 7 runs at start on the new build).
    for _ in $(seq 1 600); do
        [ "$(metric "$base" passerelle_transmissions_sent_total)" -gt 0 ] && break
        kill -0 "$pid" 2>/dev/null || { cat "$out/$label-bench.txt" >&2; log "[$label] the bench ended early"; return 1; }
        sleep 0.5
    done
    sent0=$(metric "$base" passerelle_transmissions_sent_total); t0=$(date +%s.%N)
    sleep "$idle"
    sent1=$(metric "$base" passerelle_transmissions_sent_total); t1=$(date +%s.%N)
    wrk -t1 -c"$connections" -d"${seconds}s" --timeout 10s --latency "$base/console/" >"$out/$label-wrk-page.txt" 2>&1 &
    local w1=$!
    wrk -t1 -c"$connections" -d"${seconds}s" --timeout 10s --latency "$base/console/api/overview" >"$out/$label-wrk-api.txt" 2>&1 &
    local w2=$!
    wait "$w1" "$w2"
    sent2=$(metric "$base" passerelle_transmissions_sent_total); t2=$(date +%s.%N)
    curl -s --max-time 15 -o "$out/$label-overview.json" "$base/console/api/overview" || true
    {
        echo "[$label] $gateway"
        printf "  gateway idle     %6.1f documents/s (%d in %.1f s, no console load)\n" \
            "$(calc "($sent1 - $sent0) / ($t1 - $t0)")" $((sent1 - sent0)) "$(calc "$t1 - $t0")"
        printf "  gateway loaded   %6.1f documents/s (%d in %.1f s, under wrk)\n" \
            "$(calc "($sent2 - $sent1) / ($t2 - $t1)")" $((sent2 - sent1)) "$(calc "$t2 - $t1")"
        for kind in page api; do
            local f=$out/$label-wrk-$kind.txt
            printf "  %-4s p50 %10s  p99 %10s  %8s req/s  %s\n" "$kind" \
                "$(awk '$1 == "50%" { print $2 }' "$f")" "$(awk '$1 == "99%" { print $2 }' "$f")" \
                "$(awk '/Requests\/sec/ { print $2 }' "$f")" \
                "$(grep -E "requests in|Socket errors|Non-2xx" "$f" | tr -s ' ' | tr '\n' ';')"
        done
        [ "$sent2" -lt "$documents" ] || echo "  WARNING: the backlog was drained before the end of the window: give more --documents"
    } | tee -a "$out/summary.txt"
    wait "$pid" || log "[$label] the bench did not end cleanly: see $out/$label-bench.txt"
}

: >"$out/summary.txt"
[ -n "$before" ] && measure before "$before"
measure after "$after"

# 5. The overview's queries on the filled journal: as the gateway left it (migration 7 for this
# build), and the seed copy before any run (the schema of the oldest passerelle).
time_queries() {  # label file
    local file=$2
    echo "[$1] $(sqlite3 "$file" 'SELECT max(version) FROM schema_migrations' | sed 's/^/schema /'), sqlite3, user+sys CPU seconds:"
    for q in "stateCounts|SELECT target, state, count(*) AS n FROM transmissions GROUP BY target, state ORDER BY target, state" \
             "lastError(dmp)|SELECT id, document_id, last_error, last_error_at FROM transmissions WHERE target = 'dmp' AND last_error_at IS NOT NULL ORDER BY last_error_at DESC, id DESC LIMIT 1" \
             "oldestWaiting(dmp)|SELECT MIN(created_at) AS oldest FROM transmissions WHERE target = 'dmp' AND state IN ('queued', 'retry-wait', 'sending')" \
             "waitingCounts|SELECT target, state, count(*) AS n FROM transmissions WHERE state IN ('queued', 'retry-wait', 'sending') GROUP BY target, state ORDER BY target, state"; do
        local name=${q%%|*} sql=${q#*|}
        printf "  %-20s %s\n" "$name" "$(printf '.timer on\n%s;\n' "$sql" | sqlite3 "$file" | awk '/Run Time/ { printf "%.4f", $6 + $8 }')"
    done
}
{
    time_queries "filled, before the runs" "$journal"
    time_queries "after the run of this build" "$out/run-after/journal/journal.sqlite"
} | tee -a "$out/summary.txt"
log "summary in $out/summary.txt"

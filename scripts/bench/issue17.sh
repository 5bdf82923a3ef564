#!/usr/bin/env bash
# Issue 17's figures, one after the other on this machine (nothing else should run meanwhile):
#
#   scripts/bench/issue17.sh OLD-PASSERELLE NEW-PASSERELLE [PAIRS]    # default 2 pairs
#
# A/B pairs (scripts/bench/ab.sh, PAUSE 30 s: this machine's ext4 has no journal, and its inode
# allocator skips every inode freed in the last 60–360 s, which the previous run's clean-up
# makes slow for both binaries) of the DMP-only backlog, the mixed one (50 KB–2 MB, 20 % HL7),
# PostgreSQL, and two nodes on one PostgreSQL journal; then NEW alone at 100 documents/s
# (drop-to-acknowledged percentiles) on SQLite and PostgreSQL. The 100,000-document backlog
# takes minutes of its own:
#   passerelle-bench e2e --endpoint minimal --pdf-sizes small --backlog 100000
# Environment: BENCH (passerelle-bench; default .build/release's), PAUSE.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ $# -ge 2 ] || { sed -n '2,14p' "$0"; exit 64; }
old=$1 new=$2 pairs=${3:-2}
bench=${BENCH:-$root/.build/release/passerelle-bench}
export BENCH=$bench PAUSE=${PAUSE:-30}
ab=$root/scripts/bench/ab.sh
echo "== DMP-only backlog (goal ≥ 570 documents/s, ≤ 3.5 ms per document)"; "$ab" "$old" "$new" "$pairs"
echo "== mixed backlog (goal ≥ 300 documents/s)"; WORKLOAD="--pdf-sizes mixed" "$ab" "$old" "$new" "$pairs"
echo "== PostgreSQL"; EXTRA="--journal postgresql" "$ab" "$old" "$new" "$pairs"
echo "== two nodes on one PostgreSQL journal (requests beyond one per document: sent twice)"
EXTRA="--journal postgresql --gateways 2" "$ab" "$old" "$new" "$pairs"
for journal in sqlite postgresql; do
    echo "== $new at 100 documents/s, $journal (goal: p99 drop → acknowledged < 2 s)"
    sleep "$PAUSE"
    "$bench" e2e --endpoint minimal --passerelle "$new" --documents 3000 --rate 100 --journal "$journal" | grep -E 'latency|gateway CPU|result'
done

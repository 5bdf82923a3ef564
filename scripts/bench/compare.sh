#!/usr/bin/env bash
# Passerelle against a plain Python implementation of the same DMP path, on the same workload
# against the same kind of endpoint, in alternating pairs (A B A B …) so that a drift in the
# machine's speed hits both alike.
#
#   scripts/bench/compare.sh [PAIRS] [DOCUMENTS]        # defaults: 3 pairs of 1000 documents
#
# Workload: issue 17's DMP-only backlog (PDF + JSON sidecar, qualified INS, DMP only, 50–500 KB
# PDFs), made once (`passerelle-bench e2e --endpoint minimal --prepare-only`) and hard-linked
# into each run's inbox, so both sides read the same files.
# Endpoint: nginx answering a canned RegistryResponse over mutual TLS (`passerelle-bench
# minimal-endpoint`, or the one `e2e --endpoint minimal` starts: the same configuration).
# A: `passerelle run` (release), 4 DMP connections, SQLite journal synchronous=FULL.
# B: scripts/bench/reference_dmp.py, 2 worker processes, SQLite synchronous=FULL; its
#    requirements (scripts/bench/requirements-reference.txt) are installed into .venv here.
# Figures per run: documents/s (A: from the start of `passerelle run` to the journal recording
# the last success; B: from the start of the Python process to its exit — both include their
# start-up) and CPU ms per document (A: the `passerelle run` process; B: the Python process and
# its workers). Medians at the end; the load average is printed with each run.
#
# Environment: SKIP_BUILD=1 (use the release binaries as they are), OUT (default .build/bench-compare).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
pairs=${1:-3}
documents=${2:-1000}
out=${OUT:-$root/.build/bench-compare}
python=$root/.venv/bin/python
[ -x "$python" ] || { echo "compare.sh: no .venv: run scripts/setup.sh first" >&2; exit 1; }
"$python" -m pip install --quiet --disable-pip-version-check -r scripts/bench/requirements-reference.txt
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    swift build -c release --product passerelle >/dev/null
    swift build -c release --product passerelle-bench >/dev/null
fi
bench=$root/.build/release/passerelle-bench
rm -rf "$out"
mkdir -p "$out"
"$bench" e2e --endpoint minimal --documents "$documents" --prepare-only "$out/backlog"

run_a() {  # $1: run number
    "$bench" e2e --endpoint minimal --documents "$documents" --inbox-from "$out/backlog" --folder "$out/a-$1" \
        --json "$out/a-$1.json" > "$out/a-$1.txt"
    rm -rf "$out/a-$1"
}

run_b() {  # $1: run number
    local folder=$out/b-$1
    mkdir -p "$folder/inbox"
    ln "$out"/backlog/* "$folder/inbox/"
    coproc endpoint { "$bench" minimal-endpoint --folder "$folder/nginx"; }
    local pid=$endpoint_PID line
    read -r line <&"${endpoint[0]}"
    # Wall clock and CPU (process + its workers, getrusage of the children) of the whole Python run.
    "$python" - "$folder" "${line#URL }" "$python" "$root/scripts/bench/reference_dmp.py" > "$out/b-$1.json" <<'PY'
import json, os, resource, subprocess, sys, time
folder, url, python, script = sys.argv[1:5]
start = time.monotonic()
output = subprocess.run([python, script, "--inbox", folder + "/inbox", "--work", folder + "/work", "--url", url],
                        check=True, capture_output=True, text=True).stdout
elapsed = time.monotonic() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
own = json.loads(output.strip().splitlines()[-1])
cpu = usage.ru_utime + usage.ru_stime
print(json.dumps({"documents": own["documents"], "elapsed_seconds": elapsed, "documents_per_second": own["documents"] / elapsed,
                  "cpu_seconds": cpu, "cpu_ms_per_document": cpu * 1000 / max(own["documents"], 1),
                  "load_average": " ".join(open("/proc/loadavg").read().split()[:3]), "script": own}))
PY
    exec {endpoint[1]}>&-
    cat <&"${endpoint[0]}" > "$out/b-$1.endpoint.json"
    wait "$pid" 2>/dev/null || true
    rm -rf "$folder"
}

for i in $(seq 1 "$pairs"); do
    run_a "$i"
    run_b "$i"
    "$python" - "$out" "$i" <<'PY'
import json, sys
out, i = sys.argv[1], sys.argv[2]
a = json.load(open(f"{out}/a-{i}.json"))
b = json.load(open(f"{out}/b-{i}.json"))
e = json.load(open(f"{out}/b-{i}.endpoint.json"))
print(f"pair {i}: passerelle {a['result']['documents_per_second']:6.1f} docs/s {a['cpu']['gateway_ms_per_document']:6.2f} ms CPU/doc "
      f"({a['tls']['connections']} TLS connections, load {a['cpu']['load_average']}) | "
      f"python {b['documents_per_second']:6.1f} docs/s {b['cpu_ms_per_document']:6.2f} ms CPU/doc ({e['connections']} TLS connections, load {b['load_average']})")
PY
done

"$python" - "$out" "$pairs" "$documents" <<'PY'
import json, statistics, sys
out, pairs, documents = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
a = [json.load(open(f"{out}/a-{i}.json")) for i in range(1, pairs + 1)]
b = [json.load(open(f"{out}/b-{i}.json")) for i in range(1, pairs + 1)]
ad = statistics.median(x["result"]["documents_per_second"] for x in a)
ac = statistics.median(x["cpu"]["gateway_ms_per_document"] for x in a)
bd = statistics.median(x["documents_per_second"] for x in b)
bc = statistics.median(x["cpu_ms_per_document"] for x in b)
ratios = [x["result"]["documents_per_second"] / y["documents_per_second"] for x, y in zip(a, b)]
print(f"median of {pairs} pairs, {documents} DMP-only documents each:")
print(f"  passerelle run        {ad:7.1f} documents/s  {ac:6.2f} ms CPU per document")
print(f"  Python reference      {bd:7.1f} documents/s  {bc:6.2f} ms CPU per document")
print(f"  passerelle / Python   {statistics.median(ratios):.2f}× documents/s (pair by pair: {', '.join(f'{r:.2f}' for r in ratios)})")
PY

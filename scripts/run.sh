#!/usr/bin/env bash
# The README's "run" command: installs what is missing, builds, and runs the demo on its
# embedded defaults: a local DMP-style endpoint (mutual TLS, test PKI) and MSSanté relay, the
# production gateway (`passerelle run`) as a child process, sample documents of every kind and
# input type dropped into ./demo-run/inbox, one line per document with its outcome, the
# month's usage report, and where to look next. Exits non-zero when any sample does not end as
# expected. Extra arguments go to `passerelle demo` (e.g. --folder DIR, --metrics-port 9464,
# --keep-running), which hands them to the demo-only `passerelle-testbed demo`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"
swift build --product passerelle
swift build --product passerelle-testbed  # the demo's endpoints and samples: never in the production binary
exec "$(swift build --show-bin-path)/passerelle" demo "$@"

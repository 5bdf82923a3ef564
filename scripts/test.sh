#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what is missing, builds, runs every test.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"
swift build --build-tests
swift test --skip-build "$@"

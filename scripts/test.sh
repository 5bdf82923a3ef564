#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what is missing, builds, runs every test.
#
# Tests run one at a time: many of them wait on real peers (TLS servers, the official
# validators, SMTP/IMAP servers), and on a 2-core machine running them in parallel starves
# Swift's cooperative thread pool, which makes timeout and peak-memory checks meaningless.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"
swift build --build-tests
PASSERELLE_TESTS_SERIAL=1 swift test --skip-build --no-parallel "$@"
# A short bounded fuzzing pass over every parser (Fuzz/, scripts/fuzz.sh); skipped when a test
# filter was given, or with PASSERELLE_FUZZ_SECONDS=0.
if [ $# -eq 0 ] && [ "${PASSERELLE_FUZZ_SECONDS:-30}" != 0 ]; then
    FUZZ_JOBS=2 "$root/scripts/fuzz.sh" "${PASSERELLE_FUZZ_SECONDS:-30}"
fi
# The Debian packages end to end (scripts/package-test.sh, as root: release build, lintian,
# dpkg -i, selfcheck and demo from /tmp as nobody, upgrade, downgrade, purge; 9.5 min on 2
# cores, 7 of them the release build); skipped when a test filter was given, or with
# PASSERELLE_PACKAGE_TEST=0.
if [ $# -eq 0 ] && [ "${PASSERELLE_PACKAGE_TEST:-1}" != 0 ]; then
    "$root/scripts/package-test.sh"
fi

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
fuzz=0 package=0
if [ $# -eq 0 ]; then
    [ "${PASSERELLE_FUZZ_SECONDS:-30}" = 0 ] || fuzz=1
    [ "${PASSERELLE_PACKAGE_TEST:-1}" = 0 ] || package=1
fi
# The builds the fuzzing pass and the package test need (≈ 7 min on 2 cores) start now, in the
# background at the lowest CPU and I/O priority: the serial tests mostly wait on their peers and
# leave a core idle, which these builds take instead of running after the tests. They build
# into their own folders (Fuzz/.build, .build/package), never holding the lock of .build that
# `swift test` takes. fuzz.sh and package.sh build again in the foreground below: a no-op when
# the background build succeeded, the build with its error shown when it did not.
prebuild=
if [ $((fuzz + package)) -gt 0 ]; then
    setsid bash -c '
        [ "$1" = 0 ] || nice -n 19 ionice -c 3 scripts/fuzz.sh --build-only
        [ "$2" = 0 ] || nice -n 19 ionice -c 3 scripts/package.sh --build-only
    ' prebuild "$fuzz" "$package" >.build/prebuild.log 2>&1 &
    prebuild=$!
    # setsid: the builds have their own process group, stopped with this script however it ends.
    trap 'kill -- -"$prebuild" 2>/dev/null || true' EXIT
fi
PASSERELLE_TESTS_SERIAL=1 swift test --skip-build --no-parallel "$@"
if [ -n "$prebuild" ]; then
    waited=$(date +%s)
    wait "$prebuild" || echo "test.sh: the background builds failed (.build/prebuild.log); building again below"
    echo "test.sh: waited $(($(date +%s) - waited)) s for the background builds after the tests"
fi
# A short bounded fuzzing pass over every parser (Fuzz/, scripts/fuzz.sh); skipped when a test
# filter was given, or with PASSERELLE_FUZZ_SECONDS=0.
if [ "$fuzz" = 1 ]; then
    FUZZ_JOBS=2 "$root/scripts/fuzz.sh" "${PASSERELLE_FUZZ_SECONDS:-30}"
fi
# The Debian packages end to end (scripts/package-test.sh, as root: release build — done in the
# background above —, lintian, dpkg -i, selfcheck and demo from /tmp as nobody, upgrade,
# downgrade, purge); skipped when a test filter was given, or with PASSERELLE_PACKAGE_TEST=0.
if [ "$package" = 1 ]; then
    "$root/scripts/package-test.sh"
fi

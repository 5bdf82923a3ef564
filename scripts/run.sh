#!/usr/bin/env bash
# The README's "run" command: installs what is missing, builds, and runs Passerelle's
# main job on its embedded defaults. Today that is the self-check: every C library
# loads, the test PKI and the example configuration check out, a sample document of
# each kind is built and validated, and a submission set is signed and verified.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/setup.sh"
swift build --product passerelle
exec "$(swift build --show-bin-path)/passerelle" selfcheck "$@"

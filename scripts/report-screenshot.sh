#!/usr/bin/env bash
# Renders the usage report's HTML page in headless Chromium and saves a PNG, to check by eye
# that the charts draw. Chromium is large, so it is installed here (on first use), not by
# scripts/setup.sh. Usage: scripts/report-screenshot.sh [OUTPUT_DIR]   (default: .build/report-screenshot)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${1:-"$root/.build/report-screenshot"}
mkdir -p "$out"

if ! command -v chromium >/dev/null 2>&1; then
    echo "report-screenshot: installing chromium"
    sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi

swift build --product passerelle >/dev/null
swift build --product passerelle-bench >/dev/null
bin=$(swift build --show-bin-path)

# A year of synthetic activity (the benchmark's generator, scaled down), then October's page.
journal="$out/journal.sqlite"
rm -rf "$journal" "$out/journal.blobs"
"$bin/passerelle-bench" report --journal "$journal" --transmissions 40000 --stays 12000 --generate-only
"$bin/passerelle" report --journal "$journal" --month 2026-10 --format html -o "$out/report.html"
"$bin/passerelle" report --journal "$journal" --from-month 2026-05 --to-month 2026-10 --format html -o "$out/comparison.html"

# --no-sandbox: Chromium refuses to run as root with its sandbox; the page is local and has no script.
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,2600 \
    --screenshot="$out/report.png" "file://$out/report.html" 2>"$out/chromium.log"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1500 \
    --screenshot="$out/comparison.png" "file://$out/comparison.html" 2>>"$out/chromium.log"
echo "report-screenshot: $out/report.html -> $out/report.png, $out/comparison.html -> $out/comparison.png"

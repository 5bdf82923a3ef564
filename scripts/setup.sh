#!/usr/bin/env bash
# Installs everything Passerelle needs on a fresh Debian machine of the project's kind:
# the C libraries' -dev packages, the servers the tests talk to, the Python test tools
# (in .venv), and the test PKI. Safe to run again: it only installs what is missing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

apt_packages=(
    pkg-config
    libcurl4-openssl-dev libxml2-dev libxmlsec1-dev libssl-dev libsqlite3-dev
    xmlsec1 openssl sqlite3 python3-venv curl
    libpq-dev postgresql
    systemd
    dovecot-imapd
    strace
    nginx-light
    chromium
)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python test tools (independent signature verifiers, SMTP/MLLP peers) in the project's venv.
venv="$root/.venv"
req="$root/scripts/requirements-test.txt"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
stamp="$venv/.requirements.sha1"
want=$(sha1sum "$req" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing Python test tools into .venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
fi

# The official CDA / XDS validation chain builds its own venv on first use; warm it here
# so the first test that calls it does not pay for it inside a time-limited test.
if [ -x "$root/../shared/tools/cda-validate" ]; then
    "$root/../shared/tools/cda-validate" >/dev/null 2>&1 || true
fi

"$root/Certificates/make-test-pki.sh"

#!/usr/bin/env bash
# Makes the Passerelle TEST PKI with the openssl CLI: a root CA standing in for IGC-Santé,
# the structure's certificates (ORG_AUTH_CLI for TLS, ORG_SIGN for signatures), loopback
# server certificates, and the broken ones the tests need (expired, revoked + CRL,
# unknown CA, about to expire, not yet valid).
#
# Usage: Certificates/make-test-pki.sh [--force] [OUTPUT_DIR]   (default: Certificates/test-pki)
#
# Idempotent: an existing, complete PKI whose short-lived certificate still has more than
# five days left is kept. Nothing here is a real structure's key; nothing it writes is
# committed (see .gitignore). Private keys and the passphrase are written 0600.
set -euo pipefail

force=0
if [ "${1:-}" = "--force" ]; then force=1; shift; fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/test-pki}

if [ "$force" = 0 ] && [ -f "$out/.complete" ] && [ -f "$out/revoked-server.p12" ] \
   && openssl x509 -checkend $((5 * 86400)) -noout -in "$out/expiring-sign.pem" >/dev/null 2>&1; then
    echo "test PKI: up to date in $out"
    exit 0
fi

rm -rf "$out"
mkdir -p "$out"
chmod 700 "$out"
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One random passphrase protects every PKCS#12 of the test PKI.
openssl rand -hex 16 > "$out/passphrase.txt"
pass="file:$out/passphrase.txt"

# --- a minimal `openssl ca` set-up per authority, so dates can be set freely and revocations recorded
make_ca_db() { # name
    local d="$work/$1"
    mkdir -p "$d/newcerts"
    : > "$d/index.txt"
    echo "unique_subject = no" > "$d/index.txt.attr"
    openssl rand -hex 8 > "$d/serial"
    echo 1000 > "$d/crlnumber"
    cat > "$d/ca.cnf" <<EOF
[ ca ]
default_ca = this_ca
[ this_ca ]
dir = $d
database = $d/index.txt
new_certs_dir = $d/newcerts
serial = $d/serial
crlnumber = $d/crlnumber
default_md = sha256
policy = loose
copy_extensions = none
default_crl_days = 30
unique_subject = no
[ loose ]
countryName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
serialNumber = optional
[ org_auth ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ org_sign ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ server ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
}

make_root() { # name subject
    make_ca_db "$1"
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
        -subj "$2" \
        -addext "basicConstraints=critical,CA:true" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" \
        -keyout "$work/$1/ca.key" -out "$work/$1/ca.pem" 2>/dev/null
}

# issue CA NAME SUBJECT EXTENSION [START END]   (dates as YYYYMMDDHHMMSSZ)
issue() {
    local ca=$1 name=$2 subject=$3 ext=$4 start=${5:-} end=${6:-}
    local dates=(-days 825)
    if [ -n "$start" ]; then dates=(-startdate "$start" -enddate "$end"); fi
    openssl req -new -newkey rsa:2048 -nodes -subj "$subject" \
        -keyout "$out/$name.key.pem" -out "$work/$name.csr" 2>/dev/null
    openssl ca -batch -config "$work/$ca/ca.cnf" -cert "$work/$ca/ca.pem" -keyfile "$work/$ca/ca.key" \
        -extensions "$ext" "${dates[@]}" -notext \
        -in "$work/$name.csr" -out "$out/$name.pem" 2>/dev/null
    cat "$out/$name.pem" "$work/$ca/ca.pem" > "$out/$name-chain.pem"
    openssl pkcs12 -export -name "$name" \
        -inkey "$out/$name.key.pem" -in "$out/$name.pem" -certfile "$work/$ca/ca.pem" \
        -passout "$pass" -out "$out/$name.p12"
}

utc() { date -u -d "$1" +%Y%m%d%H%M%SZ; }

org="/C=FR/O=CENTRE HOSPITALIER DE TEST PASSERELLE/OU=FINESS 100000001"

make_root ca "/C=FR/O=PASSERELLE TEST/OU=IGC-SANTE TEST/CN=AC RACINE TEST PASSERELLE (IGC-Sante test)"
make_root unknown-ca "/C=FR/O=AUTORITE INCONNUE/CN=AC INCONNUE"
cp "$work/ca/ca.pem" "$out/ca.pem"
cp "$work/unknown-ca/ca.pem" "$out/unknown-ca.pem"

# The structure's certificates (valid).
issue ca org-auth "$org/CN=passerelle.ch-test.fr (ORG_AUTH_CLI)" org_auth
issue ca org-sign "$org/CN=passerelle.ch-test.fr (ORG_SIGN)" org_sign
issue ca server-localhost "/C=FR/O=PASSERELLE TEST/CN=localhost" server

# Broken on purpose.
past_start=$(utc "400 days ago"); past_end=$(utc "35 days ago")
issue ca expired-auth "$org/CN=expired (ORG_AUTH_CLI)" org_auth "$past_start" "$past_end"
issue ca expired-sign "$org/CN=expired (ORG_SIGN)" org_sign "$past_start" "$past_end"
issue ca expired-server "/C=FR/O=PASSERELLE TEST/CN=localhost (expired)" server "$past_start" "$past_end"
issue ca revoked-auth "$org/CN=revoked (ORG_AUTH_CLI)" org_auth
issue ca revoked-sign "$org/CN=revoked (ORG_SIGN)" org_sign
issue ca revoked-server "/C=FR/O=PASSERELLE TEST/CN=localhost (revoked)" server
issue ca expiring-sign "$org/CN=expiring (ORG_SIGN)" org_sign "$(utc "1 day ago")" "$(utc "10 days")"
issue ca notyet-sign "$org/CN=not yet valid (ORG_SIGN)" org_sign "$(utc "30 days")" "$(utc "400 days")"
issue unknown-ca unknown-auth "/C=FR/O=AUTORITE INCONNUE/CN=unknown (ORG_AUTH_CLI)" org_auth
issue unknown-ca unknown-sign "/C=FR/O=AUTORITE INCONNUE/CN=unknown (ORG_SIGN)" org_sign
issue unknown-ca unknown-server "/C=FR/O=AUTORITE INCONNUE/CN=localhost" server

for name in revoked-auth revoked-sign revoked-server; do
    openssl ca -batch -config "$work/ca/ca.cnf" -cert "$work/ca/ca.pem" -keyfile "$work/ca/ca.key" \
        -revoke "$out/$name.pem" -crl_reason keyCompromise 2>/dev/null
done
openssl ca -batch -config "$work/ca/ca.cnf" -cert "$work/ca/ca.pem" -keyfile "$work/ca/ca.key" \
    -gencrl -out "$out/ca.crl.pem" 2>/dev/null
cat "$out/ca.pem" "$out/ca.crl.pem" > "$out/ca-with-crl.pem"

chmod 600 "$out"/*.key.pem "$out"/*.p12 "$out/passphrase.txt"
chmod 644 "$out"/*.pem "$out/ca.crl.pem" 2>/dev/null || true
chmod 600 "$out"/*.key.pem
touch "$out/.complete"
echo "test PKI: made in $out"

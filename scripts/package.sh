#!/usr/bin/env bash
# Builds the Debian packages of Passerelle from this checkout:
#   passerelle_<version>_<arch>.deb       the gateway: /usr/bin/passerelle, its data files in
#                                         /usr/share/passerelle, the systemd unit, the
#                                         configuration (a conffile), man pages, completions
#   passerelle-demo_<version>_<arch>.deb  demo and test only: passerelle-testbed (the local
#                                         DMP-style endpoint and `passerelle demo`), the local
#                                         MSSanté relay script, the XDS.b schema
# The version is the one `passerelle --version` prints (PasserelleCore/Passerelle.swift).
#
# Usage: scripts/package.sh [OUTPUT_DIR]     (default: .build/deb)
#        scripts/package.sh --build-only      only the builds (release binaries in .build/package,
#                                             the man page generator): scripts/test.sh starts
#                                             them in the background while the tests run
# Needs: the Swift toolchain, dpkg-dev (installed if missing), fakeroot not needed (dpkg-deb
# --root-owner-group), the conformance kit in ../shared (or $PASSERELLE_SHARED).
# No network beyond the Debian registry: the Swift packages are those already resolved.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build_only=0
[ "${1:-}" = --build-only ] && { build_only=1; shift; }
out=$(mkdir -p "${1:-$root/.build/deb}" && cd "${1:-$root/.build/deb}" && pwd)
shared=${PASSERELLE_SHARED:-$root/../shared}
say() { echo "package: $*"; }

for file in conformance/cda/xsd/cda/CDA_extended.xsd conformance/xds/XDS.b_DocumentRepository.xsd; do
    [ -f "$shared/$file" ] || { echo "package: $shared/$file is missing: the conformance kit must be in ../shared (or set PASSERELLE_SHARED)" >&2; exit 1; }
done
if [ "$build_only" = 0 ] && ! command -v dpkg-shlibdeps >/dev/null; then
    sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null
fi

# 1. Release binaries with the Swift runtime linked in: only Debian's shared libraries remain.
# Their own build folder: building them never takes the lock of .build, which `swift test` and
# the tests' `swift build --show-bin-path` need while scripts/test.sh prebuilds them.
build=(swift build -c release --static-swift-stdlib --scratch-path "$root/.build/package")
say "release build (static Swift standard library)"
"${build[@]}" --product passerelle
"${build[@]}" --product passerelle-testbed
bin=$("${build[@]}" --show-bin-path)
version=$("$bin/passerelle" --version)
arch=$(dpkg --print-architecture)
case "$version" in [0-9]*) ;; *) echo "package: unexpected version '$version' from passerelle --version" >&2; exit 1 ;; esac
for exe in passerelle passerelle-testbed; do
    if ldd "$bin/$exe" | grep -E 'libswift|libFoundation|libdispatch|libBlocksRuntime|/opt/swift|not found'; then
        echo "package: $exe still needs the Swift toolchain's libraries (above)" >&2; exit 1
    fi
done

# Man pages from the argument-parser help, with the generator of swift-argument-parser's own
# GenerateManual plugin (Tools/generate-manual), built offline from the resolved checkout.
# (The plugin itself rebuilds every product of the package in release without
# --static-swift-stdlib: minutes for nothing; the tool is what it runs.)
parser=$root/.build/package/checkouts/swift-argument-parser  # resolved by the release build above
say "man page generator (swift-argument-parser's generate-manual)"
swift build --package-path "$parser" --scratch-path "$root/.build/generate-manual" --product generate-manual -q >"$root/.build/generate-manual.log" 2>&1 \
    || { cat "$root/.build/generate-manual.log"; exit 1; }
manual=$(swift build --package-path "$parser" --scratch-path "$root/.build/generate-manual" --show-bin-path)/generate-manual
[ "$build_only" = 0 ] || exit 0

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# The hospital's packaging contact goes here (Maintainer: and the changelog).
maintainer=${PASSERELLE_MAINTAINER:-Passerelle maintainers <passerelle@example.org>}
date_epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
changes_date=$(date -u -R -d "@$date_epoch")

# Common parts of a binary package: docs folder with copyright and changelog, man pages.
doc_files() { # package dir
    local pkg=$1 dir=$2
    install -d "$dir/usr/share/doc/$pkg"
    install -m 0644 packaging/debian/copyright "$dir/usr/share/doc/$pkg/copyright"
    sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$changes_date/" -e "s/^passerelle /$pkg /" -e "s/@MAINTAINER@/$maintainer/" packaging/debian/changelog \
        | gzip -9n > "$dir/usr/share/doc/$pkg/changelog.gz"
    chmod 0644 "$dir/usr/share/doc/$pkg/changelog.gz"
}
man_pages() { # executable dir
    local exe=$1 dir=$2 tmp
    tmp=$(mktemp -d)
    # generate-manual drops every non-ASCII character (Tools/generate-manual/MDoc/String+Escaping.swift):
    # it reads the help through this wrapper, which spells it in ASCII ("santé" → "sante") instead.
    printf '#!/bin/sh\n"%s" "$@" | LC_ALL=C.UTF-8 iconv -f UTF-8 -t ASCII//TRANSLIT\n' "$bin/$exe" > "$tmp/$exe"
    chmod +x "$tmp/$exe"
    "$manual" "$tmp/$exe" --output-directory "$tmp" --date "$(date -u -d "@$date_epoch" +%Y-%m-%d)" \
        --authors "The Passerelle authors" --section 1 >/dev/null
    install -d "$dir/usr/share/man/man1"
    # A blank line in mdoc is a paragraph break spelled wrong (groff warns): .Pp is the macro.
    sed 's/^$/.Pp/' "$tmp/$exe.1" | gzip -9n > "$dir/usr/share/man/man1/$exe.1.gz"
    chmod 0644 "$dir/usr/share/man/man1/$exe.1.gz"
    rm -rf "$tmp"
}
# dpkg-shlibdeps wants a debian/control to read; it prints the libraries' packages with the
# versions their symbols files require.
shlib_depends() { # binary...
    local tmp
    tmp=$(mktemp -d)
    mkdir "$tmp/debian"
    printf 'Source: passerelle\n\nPackage: passerelle\nArchitecture: any\n' > "$tmp/debian/control"
    (cd "$tmp" && dpkg-shlibdeps -O "$@" 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
    rm -rf "$tmp"
}
install_stripped() { # from to
    install -m 0755 "$1" "$2"
    strip --remove-section=.comment --remove-section=.note --strip-unneeded "$2"
}
control() { # dir package depends description...
    local dir=$1 pkg=$2 depends=$3 size
    shift 3
    size=$(du -sk --exclude=DEBIAN "$dir" | cut -f1)
    install -d "$dir/DEBIAN"
    {
        echo "Package: $pkg"
        echo "Version: $version"
        echo "Architecture: $arch"
        echo "Maintainer: $maintainer"
        echo "Installed-Size: $size"
        echo "Depends: $depends"
        echo "Section: net"
        echo "Priority: optional"
        printf '%s\n' "$@"
    } > "$dir/DEBIAN/control"
}

# 2. passerelle
p=$stage/passerelle
say "passerelle $version"
install -d "$p/usr/bin" "$p/usr/share/passerelle" "$p/lib/systemd/system" "$p/etc/passerelle"
install_stripped "$bin/passerelle" "$p/usr/bin/passerelle"
cp -r Templates "$p/usr/share/passerelle/Templates"
# The official CDA schema and what it includes: [cda] schema of the installed configuration.
cp -r "$shared/conformance/cda/xsd/cda" "$p/usr/share/passerelle/cda"
install -m 0755 Certificates/make-test-pki.sh "$p/usr/share/passerelle/make-test-pki.sh"
find "$p/usr/share/passerelle" -type d -exec chmod 0755 {} + && find "$p/usr/share/passerelle" -type f ! -name '*.sh' -exec chmod 0644 {} +
install -m 0644 packaging/systemd/passerelle.service "$p/lib/systemd/system/passerelle.service"
# The configuration: the commented example, with the packaged CDA schema switched on.
sed 's|^# schema = "/usr/share/passerelle/cda/CDA_extended.xsd"|schema = "/usr/share/passerelle/cda/CDA_extended.xsd"|' \
    docs/passerelle.example.toml > "$p/etc/passerelle/passerelle.toml"
grep -q '^schema = "/usr/share/passerelle/cda/CDA_extended.xsd"' "$p/etc/passerelle/passerelle.toml" \
    || { echo "package: docs/passerelle.example.toml no longer has the [cda] schema line this script switches on" >&2; exit 1; }
chmod 0644 "$p/etc/passerelle/passerelle.toml"
install -d "$p/usr/share/bash-completion/completions" "$p/usr/share/zsh/vendor-completions" "$p/usr/share/fish/vendor_completions.d"
# (bash-completion sources the file: no #! line)
"$bin/passerelle" --generate-completion-script bash | sed '1{/^#!/d}' > "$p/usr/share/bash-completion/completions/passerelle"
"$bin/passerelle" --generate-completion-script zsh > "$p/usr/share/zsh/vendor-completions/_passerelle"
"$bin/passerelle" --generate-completion-script fish > "$p/usr/share/fish/vendor_completions.d/passerelle.fish"
chmod 0644 "$p"/usr/share/*/completions/* "$p"/usr/share/zsh/vendor-completions/* "$p"/usr/share/fish/vendor_completions.d/*
man_pages passerelle "$p"
doc_files passerelle "$p"
libs=$(shlib_depends "$p/usr/bin/passerelle")
[ -n "$libs" ] || { echo "package: dpkg-shlibdeps found no library of passerelle" >&2; exit 1; }
# adduser (postinst), openssl (selfcheck's throwaway test PKI), tzdata ([report] time_zone: Foundation reads
# /usr/share/zoneinfo), util-linux's runuser (essential).
control "$p" passerelle "$libs, adduser, openssl, tzdata" \
    "Recommends: postgresql-client, sqlite3" \
    "Suggests: passerelle-demo" \
    "Description: document-sharing gateway for French hospitals (DMP, MSSanté)" \
    " Passerelle turns a PDF and its JSON sidecar, an HL7 v2 message or a" \
    " producer CDA into a CI-SIS CDA R2 document carrying the patient's INS," \
    " signs it (XAdES, VIHF), sends it to the DMP (IHE XDS.b over mutual TLS)" \
    " and by MSSanté (XDM in a secure mail), journals every step (SQLite or" \
    " PostgreSQL) and computes the monthly usage report." \
    " ." \
    " This package runs it as a hardened systemd service (passerelle.service)" \
    " under the passerelle account: edit /etc/passerelle/passerelle.toml," \
    " then systemctl enable --now passerelle."
echo "/etc/passerelle/passerelle.toml" > "$p/DEBIAN/conffiles"
for script in postinst prerm postrm; do install -m 0755 "packaging/debian/$script" "$p/DEBIAN/$script"; done

# 3. passerelle-demo
d=$stage/passerelle-demo
say "passerelle-demo $version"
install -d "$d/usr/bin" "$d/usr/share/passerelle-demo/xds"
install_stripped "$bin/passerelle-testbed" "$d/usr/bin/passerelle-testbed"
install -m 0644 scripts/endpoints/smtp_server.py "$d/usr/share/passerelle-demo/smtp_server.py"
install -m 0644 "$shared"/conformance/xds/*.xsd "$d/usr/share/passerelle-demo/xds/"
man_pages passerelle-testbed "$d"
doc_files passerelle-demo "$d"
libs=$(shlib_depends "$d/usr/bin/passerelle-testbed")
control "$d" passerelle-demo "$libs, passerelle (= $version), python3, python3-aiosmtpd" \
    "Description: Passerelle demo: local DMP-style endpoint and MSSanté relay" \
    " passerelle-testbed holds a local DMP-style ITI-41 endpoint (mutual TLS," \
    " test PKI) and runs the whole gateway against it and a local MSSanté-style" \
    " SMTP relay with sample documents: passerelle demo --folder DIR." \
    " ." \
    " Demo and test code only, kept out of the passerelle package: never install" \
    " it on a production server."

for dir in "$p" "$d"; do
    pkg=$(basename "$dir")
    dpkg-deb --root-owner-group -Zxz --build "$dir" "$out/${pkg}_${version}_${arch}.deb" >/dev/null
    say "$out/${pkg}_${version}_${arch}.deb ($(du -h "$out/${pkg}_${version}_${arch}.deb" | cut -f1))"
done

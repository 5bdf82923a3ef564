#!/usr/bin/env bash
# The Debian packages, end to end on this machine (root, or passwordless sudo): builds them
# (scripts/package.sh), checks them with lintian and ldd, installs them with dpkg -i, runs
# `passerelle selfcheck` and `passerelle demo` from /tmp as an unprivileged user with the
# Swift toolchain hidden, upgrades over a "previous" package with a populated journal of the
# previous schema, checks a downgrade is refused, and purges everything at the end.
#
# What the upgrade check proves: there is no older release to build (no tags), so the
# "previous" package is this build repackaged with a lower version (VERSION~prev), and the
# journal of the previous schema is the demo's journal rewound to schema 4 (migrations 8, 7, 6
# and 5 undone with sqlite3: their tables, indexes and column dropped, their rows removed). Installing the real
# package over it runs the new postinst: it must migrate the journal (4 → 8) as the service
# user, keep every row, and leave `passerelle status` and the month's report unchanged. The
# downgrade check marks the journal as written by a newer schema (99) and installs the
# "previous" package: its postinst must refuse, leave the journal untouched, and
# `passerelle config check` (the unit's ExecStartPre) must fail naming the newer schema.
# systemd does not run here (no PID 1 systemd): the unit is checked with systemd-analyze, and the
# maintainer scripts' systemctl calls against logging stubs (step 6).
#
# Usage: scripts/package-test.sh [DEB_DIR]   (default: build into a temporary folder)
# PASSERELLE_PACKAGE_TEST=0 skips it (scripts/test.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
step() { echo "package-test: $*"; }
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
    sudo -n true 2>/dev/null || fail "needs root (dpkg -i): run as root or with passwordless sudo, or PASSERELLE_PACKAGE_TEST=0"
    sudo_cmd=(sudo -n)
fi
as_root() { "${sudo_cmd[@]}" "$@"; }
# It installs, then purges, the packages and removes /var/lib/passerelle, /etc/passerelle and
# the passerelle account at the end: never on a machine that has any of them already.
if dpkg-query -W -f='${Status}' passerelle 2>/dev/null | grep -q "ok installed"; then
    fail "the passerelle package is installed on this machine: this test would replace and purge it; run it elsewhere"
fi
for leftover in /var/lib/passerelle /etc/passerelle; do
    [ ! -e "$leftover" ] || fail "$leftover exists on this machine: this test would remove it; run it elsewhere (or remove it first)"
done
! getent passwd passerelle >/dev/null || fail "the passerelle account exists on this machine: this test would remove it; run it elsewhere"
started=$(date +%s)

work=$(mktemp -d /tmp/passerelle-package-test.XXXXXX)
chmod 0755 "$work"
cleanup() {
    local rc=$?
    # Leave the machine as it was: packages purged, the account and the state folder gone.
    as_root dpkg --purge passerelle-demo passerelle >/dev/null 2>&1 || true
    as_root rm -rf /var/lib/passerelle /etc/passerelle /run/passerelle.upgrade-restart
    if getent passwd passerelle >/dev/null; then as_root deluser --quiet --system passerelle >/dev/null 2>&1 || true; fi
    if getent group passerelle >/dev/null; then as_root delgroup --quiet --system passerelle >/dev/null 2>&1 || true; fi
    as_root rm -rf "$work"
    exit $rc
}
trap cleanup EXIT

# 1. Build
debs=${1:-$work/debs}
if [ -z "${1:-}" ]; then
    step "building the packages"
    scripts/package.sh "$debs" >"$work/package.log" 2>&1 || { tail -40 "$work/package.log"; fail "scripts/package.sh failed"; }
fi
main=$(ls "$debs"/passerelle_*.deb) demo=$(ls "$debs"/passerelle-demo_*.deb)
version=$(dpkg-deb -f "$main" Version)
built=$(date +%s)

# 2. Static checks: lintian (installed here if missing), the unit's exposure score.
missing=()
for p in lintian python3-aiosmtpd sqlite3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The packages' own Depends, from the registry (dpkg -i does not fetch them).
for dep in $( (dpkg-deb -f "$main" Depends; dpkg-deb -f "$demo" Depends) | tr ',' '\n' | sed 's/(.*)//; s/|.*//; s/ //g' | grep -v '^passerelle$' | sort -u); do
    dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q "install ok installed" || missing+=("$dep")
done
if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
step "lintian"
# (as nobody: lintian unpacks what it checks and says root should not)
cp "$main" "$demo" "$work/" && chmod 0644 "$work"/*.deb
(cd /tmp && as_root runuser -u nobody -- env HOME=/tmp lintian --tag-display-limit 0 "$work/$(basename "$main")" "$work/$(basename "$demo")") \
    | tee "$work/lintian.txt" || true
if grep -q '^[EW]:' "$work/lintian.txt"; then fail "lintian reports errors or warnings (above)"; fi
score=$(systemd-analyze security --offline=yes "$root/packaging/systemd/passerelle.service" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
step "systemd-analyze security: exposure $score (0 = most protected, 10 = unprotected)"
awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 <= 2.0) }' || fail "the unit's exposure is '$score', above 2.0"

# 3. The "previous" packages: this build under a lower version (see the header).
prev_version="${version}~prev"
for deb in "$main" "$demo"; do
    pkg=$(dpkg-deb -f "$deb" Package)
    rm -rf "$work/re" && dpkg-deb -R "$deb" "$work/re"
    sed -i -e "s/^Version: .*/Version: $prev_version/" -e "s/passerelle (= $version)/passerelle (= $prev_version)/" "$work/re/DEBIAN/control"
    dpkg-deb --root-owner-group -Zxz -b "$work/re" "$work/${pkg}_${prev_version}.deb" >/dev/null
done
rm -rf "$work/re"

step "installing the previous packages ($prev_version) with dpkg -i"
as_root dpkg -i "$work/passerelle_${prev_version}.deb" "$work/passerelle-demo_${prev_version}.deb" >/dev/null
[ "$(stat -c '%U %a' /var/lib/passerelle)" = "passerelle 700" ] || fail "/var/lib/passerelle is $(stat -c '%U %a' /var/lib/passerelle), expected passerelle 700"
for d in inbox work error done journal; do
    [ "$(stat -c '%U %a' /var/lib/passerelle/$d)" = "passerelle 700" ] || fail "/var/lib/passerelle/$d is not passerelle 700"
done
[ "$(stat -c '%U:%G %a' /etc/passerelle/passerelle.toml)" = "root:passerelle 640" ] || fail "/etc/passerelle/passerelle.toml is $(stat -c '%U:%G %a' /etc/passerelle/passerelle.toml)"
[ "$(getent passwd passerelle | cut -d: -f6,7)" = "/var/lib/passerelle:/usr/sbin/nologin" ] || fail "the passerelle account: $(getent passwd passerelle)"

# 4. From the package: ldd, then selfcheck and demo from /tmp as nobody, /opt/swift hidden.
for exe in /usr/bin/passerelle /usr/bin/passerelle-testbed; do
    ! ldd "$exe" | grep -E 'libswift|libFoundation|libdispatch|/opt/swift|not found' || fail "$exe needs libraries outside Debian's (above)"
done
# Runs a command as nobody in /tmp, in a mount namespace where /opt/swift is an empty folder
# and with a PATH without it: only what the packages installed can answer.
as_nobody() {
    as_root unshare --mount sh -c 'mount -t tmpfs none /opt/swift 2>/dev/null || true; cd /tmp && exec runuser -u nobody -- env -i PATH=/usr/bin:/bin HOME=/nonexistent LANG=C.UTF-8 "$@"' sh "$@"
}
run_demo() { # label
    local folder=$work/demo-$1
    as_root install -d -o nobody -m 0700 "$folder"
    as_nobody passerelle demo --folder "$folder/run" >"$work/demo-$1.txt" 2>"$work/demo-$1.err" \
        || { cat "$work/demo-$1.txt" "$work/demo-$1.err"; fail "passerelle demo ($1) failed"; }
    grep "15 of 15 outcomes as expected" "$work/demo-$1.txt" || { cat "$work/demo-$1.txt"; fail "the demo's outcomes ($1)"; }
    grep -q "gateway             /usr/bin/passerelle run" "$work/demo-$1.txt" || fail "the demo did not run the installed passerelle"
}
step "passerelle demo from /tmp as nobody (previous package): populates a journal"
run_demo previous

# 5. The service's journal: the demo's, as the previous schema (4), under /var/lib/passerelle.
jdir=/var/lib/passerelle/journal
as_root sh -c "cp -a '$work/demo-previous/run/journal/.' '$jdir/' && chown -R passerelle:passerelle '$jdir'"
as_service() { (cd /tmp && as_root runuser -u passerelle -- "$@"); }
month=$(TZ=Europe/Paris date +%Y-%m)
snapshot() { # file
    { as_service passerelle status --config /etc/passerelle/passerelle.toml --json || true
      as_service passerelle report --config /etc/passerelle/passerelle.toml --month "$month" --format csv
      for t in inputs stays documents transmissions attempts acknowledgements operator_actions; do
          echo "$t $(as_root sqlite3 "$jdir/journal.sqlite" "SELECT count(*) FROM $t" 2>/dev/null || echo -)"
      done
    } >"$1" 2>&1
}
# A journal of schema 4 has no service runs (migration 6 records them): the demo's are removed
# first, so "before" is what the report of such a journal says, and the rewind below loses nothing.
as_root sqlite3 "$jdir/journal.sqlite" "DELETE FROM service_runs;"
snapshot "$work/before.txt"
grep -q "acknowledged" "$work/before.txt" || { cat "$work/before.txt"; fail "the journal copied from the demo shows no acknowledged transmission"; }
[ "$(as_root sqlite3 "$jdir/journal.sqlite" 'SELECT max(version) FROM schema_migrations')" = 9 ] \
    || fail "the journal is not at schema 9: this test undoes migrations 9, 8, 7, 6 and 5 (Sources/Journal/Schema.swift), the newest when it was written; make it undo the newer ones too"
# Migration 9 keeps small intake records in the journal's blobs table; a journal of schema 4
# has them as files in journal.blobs/: written out there (0600, owned by passerelle) before the
# table goes, so the rewound journal is whole and still readable after the upgrade.
records=$(as_root sqlite3 "$jdir/journal.sqlite" "SELECT count(*) FROM blobs")
[ "$records" -gt 0 ] || fail "the demo's journal holds no intake record in its blobs table (migration 9)"
as_root sqlite3 "$jdir/journal.sqlite" "SELECT sha256 || ' ' || hex(content) FROM blobs" | while read -r sha hex; do
    folder="$jdir/journal.blobs/${sha:0:2}"
    as_root install -d -m 0700 -o passerelle -g passerelle "$folder"
    printf '%s' "$hex" | perl -ne 'print pack("H*", $_)' | as_root sh -c "umask 077 && cat > '$folder/$sha'"
    as_root chown passerelle:passerelle "$folder/$sha"
    [ "$(as_root sha256sum "$folder/$sha" | cut -d' ' -f1)" = "$sha" ] || fail "intake record $sha not written out whole"
done
as_root sqlite3 "$jdir/journal.sqlite" "BEGIN; DROP TABLE blobs; DROP TABLE console_events; DROP INDEX transmissions_waiting; DROP INDEX transmissions_last_error; DROP INDEX transmissions_state_id;
    DROP INDEX attempts_started; DROP TABLE service_runs; DROP INDEX documents_purged; DROP INDEX documents_blob; DROP INDEX documents_built;
    ALTER TABLE documents DROP COLUMN purged_at; DELETE FROM schema_migrations WHERE version IN (5, 6, 7, 8, 9); COMMIT;"
[ "$(as_root sqlite3 "$jdir/journal.sqlite" 'SELECT max(version) FROM schema_migrations')" = 4 ] || fail "the journal was not rewound to schema 4"

# 6. Upgrade: the new packages over the previous ones, as if systemd ran the service. systemd
# is not PID 1 here: in a mount namespace, /run/systemd/system exists and systemctl and
# deb-systemd-invoke are stubs that log their arguments ("is-active" answers yes). What this
# proves: the maintainer scripts' calls and their order (stop, migrate, start), not systemd's.
systemd_log=$work/systemd.log
for tool in systemctl deb-systemd-invoke; do
    printf '#!/bin/sh\necho "%s $*" >> %s\nexit 0\n' "$tool" "$systemd_log" > "$work/stub-$tool"
    chmod 0755 "$work/stub-$tool"
done
with_systemd() {
    : > "$systemd_log"
    as_root unshare --mount sh -c 'mount -t tmpfs none /run/systemd && mkdir /run/systemd/system &&
        mount --bind "$1" /usr/bin/systemctl && mount --bind "$2" /usr/bin/deb-systemd-invoke && shift 2 && exec "$@"' \
        sh "$work/stub-systemctl" "$work/stub-deb-systemd-invoke" "$@"
}
step "upgrading to $version with dpkg -i (journal at schema 4, the service running)"
with_systemd dpkg -i "$main" "$demo" >"$work/upgrade.txt" 2>&1 || { cat "$work/upgrade.txt"; fail "dpkg -i of the new packages failed"; }
grep "journal: schema version 4 migrated to 9" "$work/upgrade.txt" || { cat "$work/upgrade.txt"; fail "postinst did not migrate the journal"; }
calls=$(grep -E "stop|start" "$systemd_log" | tr '\n' ';')
[ "$calls" = "deb-systemd-invoke stop passerelle.service;deb-systemd-invoke start passerelle.service;" ] \
    || { cat "$systemd_log"; fail "the upgrade did not stop then start the running service (calls above)"; }
[ ! -e /run/passerelle.upgrade-restart ] || fail "postinst left /run/passerelle.upgrade-restart behind"
step "prerm stopped the service before the migration, postinst started it again"
[ "$(as_root sqlite3 "$jdir/journal.sqlite" 'SELECT max(version) FROM schema_migrations')" = 9 ] || fail "the journal is not at schema 9 after the upgrade"
[ "$(as_root sqlite3 "$jdir/journal.sqlite" "SELECT count(*) FROM sqlite_master WHERE name = 'blobs'")" = 1 ] \
    || fail "migration 9's table is missing after the upgrade"
[ "$(as_root sqlite3 "$jdir/journal.sqlite" "SELECT count(*) FROM sqlite_master WHERE name IN ('console_events', 'console_events_time')")" = 2 ] \
    || fail "migration 8's table or index is missing after the upgrade"
[ "$(as_root sqlite3 "$jdir/journal.sqlite" "SELECT count(*) FROM pragma_table_info('documents') WHERE name = 'purged_at'")" = 1 ] \
    || fail "migration 5's column is missing after the upgrade"
[ "$(stat -c %U "$jdir/journal.sqlite")" = passerelle ] || fail "the migrated journal is not owned by passerelle"
snapshot "$work/after.txt"
diff -u "$work/before.txt" "$work/after.txt" || fail "passerelle status, the month's report or the row counts changed across the upgrade"
step "status, report of $month and row counts unchanged: $(grep -c . "$work/after.txt") lines compared"

# 7. From the final package: selfcheck and demo from /tmp as nobody.
step "passerelle selfcheck from /tmp as nobody"
as_nobody passerelle selfcheck >"$work/selfcheck.txt" 2>&1 || { cat "$work/selfcheck.txt"; fail "passerelle selfcheck failed"; }
grep -E "throwaway|selfcheck: all 9 checks passed" "$work/selfcheck.txt" || { cat "$work/selfcheck.txt"; fail "selfcheck"; }
grep -q "XSD + header rules valid" "$work/selfcheck.txt" || { cat "$work/selfcheck.txt"; fail "selfcheck did not use the packaged CDA schema"; }
step "passerelle demo from /tmp as nobody"
run_demo final

# 8. Downgrade: a journal newer than the binary is refused and left untouched.
as_root sqlite3 "$jdir/journal.sqlite" "INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)"
sum=$(as_root sha256sum "$jdir/journal.sqlite" | cut -d' ' -f1)
step "downgrading to $prev_version with a journal of schema 99"
with_systemd dpkg -i "$work/passerelle-demo_${prev_version}.deb" "$work/passerelle_${prev_version}.deb" >"$work/downgrade.txt" 2>&1 || true
! grep -q "start passerelle.service" "$systemd_log" || { cat "$systemd_log"; fail "the refused downgrade started the service"; }
grep -q "stop passerelle.service" "$systemd_log" || { cat "$systemd_log"; fail "the downgrade did not stop the service first"; }
grep "schema version 99 is newer than this passerelle's" "$work/downgrade.txt" || { cat "$work/downgrade.txt"; fail "the downgrade did not say the journal is newer"; }
grep -q "the service was left stopped" "$work/downgrade.txt" || { cat "$work/downgrade.txt"; fail "the downgrade did not say the service stays stopped"; }
if as_service passerelle config check --config /etc/passerelle/passerelle.toml >"$work/check.txt" 2>&1; then
    fail "config check (ExecStartPre) passed on a journal of a newer schema"
fi
grep -q "schema version 99 is newer than this passerelle's" "$work/check.txt" || { cat "$work/check.txt"; fail "config check does not name the newer schema"; }
[ "$(as_root sha256sum "$jdir/journal.sqlite" | cut -d' ' -f1)" = "$sum" ] || fail "the refused downgrade changed the journal"

# 9. Purge: the account and the (emptied) state folder go with it.
as_root rm -rf "$jdir"/* /var/lib/passerelle/done/*
as_root dpkg --purge passerelle-demo passerelle >/dev/null
! getent passwd passerelle >/dev/null || fail "purge left the passerelle account"
[ ! -e /var/lib/passerelle ] && [ ! -e /etc/passerelle ] && [ ! -e /lib/systemd/system/passerelle.service ] || fail "purge left files behind"
ended=$(date +%s)
step "passed: build $((built - started)) s, checks $((ended - built)) s"

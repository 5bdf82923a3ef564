#!/bin/bash
# Test IMAP server for MSSanteTests: Dovecot (Debian dovecot-imapd) with its own configuration
# in DIR, listening for IMAPS on 127.0.0.1:PORT only, TLS 1.2+ with the MSSanté suites and a
# client certificate from the test CA required. One user, USER / PASSWORD, Maildir in DIR/mail.
#
#   imap_server.sh DIR PORT PKI USER PASSWORD [CERTUSER]
#
# With CERTUSER (the client certificate's commonName, lower case), SASL EXTERNAL is offered
# too: that user logs in with its certificate alone.
#
# Runs Dovecot in the foreground (this process becomes the master): stop it with SIGTERM.
# Tests run as root, and Dovecot refuses mail access as root: mail is owned by "nobody".
set -eu
dir=$1 port=$2 pki=$3 user=$4 password=$5 certuser=${6:-}
conf="$dir/dovecot.conf"
mkdir -p "$dir/run" "$dir/state"
for u in "$user" ${certuser:+"$certuser"}; do
    mkdir -p "$dir/mail/$u/Maildir/cur" "$dir/mail/$u/Maildir/new" "$dir/mail/$u/Maildir/tmp"
done
chmod 0755 "$dir" "$dir/run" "$dir/state"
chown -R nobody:nogroup "$dir/mail"
printf '%s:{PLAIN}%s::::::\n' "$user" "$password" > "$dir/passwd"
mechanisms="plain login" from_cert=no
if [ -n "$certuser" ]; then
    printf '%s:::::::nopassword=y\n' "$certuser" >> "$dir/passwd"
    mechanisms="plain login external" from_cert=yes
fi
chmod 0640 "$dir/passwd"
chown root:dovecot "$dir/passwd"
cat > "$conf" <<EOF
protocols = imap
listen = 127.0.0.1
base_dir = $dir/run
state_dir = $dir/state
instance_name = passerelle-test-$port
log_path = $dir/dovecot.log
info_log_path = $dir/dovecot.log
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
ssl = required
ssl_cert = <$pki/server-localhost-chain.pem
ssl_key = <$pki/server-localhost.key.pem
# The CRL (revoking revoked-*) comes with the CA: Dovecot requires one by default.
ssl_ca = <$pki/ca-with-crl.pem
ssl_verify_client_cert = yes
auth_ssl_require_client_cert = yes
ssl_min_protocol = TLSv1.2
ssl_cipher_list = ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256
disable_plaintext_auth = yes
auth_mechanisms = $mechanisms
# EXTERNAL: the user name is the certificate's commonName (spaces and parentheses allowed).
auth_ssl_username_from_cert = $from_cert
auth_username_chars =
passdb {
  driver = passwd-file
  args = scheme=PLAIN $dir/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$dir/mail/%u
}
mail_location = maildir:$dir/mail/%u/Maildir
namespace inbox {
  inbox = yes
  separator = /
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = $port
    ssl = yes
  }
}
service anvil {
  chroot =
}
service imap-login {
  chroot =
}
EOF
# With an empty signal mask: the test runner may start us with SIGTERM blocked.
exec python3 -c 'import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execvp(sys.argv[1], sys.argv[1:])' \
    dovecot -F -c "$conf"

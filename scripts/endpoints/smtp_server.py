"""A local MSSanté-style SMTP relay (aiosmtpd) for the tests and `passerelle demo`: STARTTLS
or implicit TLS on loopback, client certificate required from the test CA, TLS 1.2 with the
MSSanté suites (or a deliberately wrong setting), DSN (RFC 3461) parameters checked and
recorded, failures injected on demand.

With --dsn-maildir DIR, the relay also reports success as a real MTA does once it has
delivered: for each accepted message with a recipient asking NOTIFY=SUCCESS, a DSN (RFC 3464,
Original-Envelope-Id = the ENVID, the original headers returned) is put into the Maildir DIR
(tmp/ then new/, owned by nobody as the test Dovecot wants), where the acknowledgement poller
reads it.

Each accepted message is written to OUT/<n>.json with the envelope, the DSN parameters, the
TLS session facts and the message (base64) — or, with --eml, to OUT/<n>.eml (0600) as a
local delivery agent would store it (Return-Path and one Delivered-To per envelope
recipient, then the message as received). Prints "PORT <n>" once listening.
"""
import argparse, asyncio, base64, json, os, re, signal, ssl, sys, threading
from aiosmtpd.smtp import SMTP

OUT = [None]
XTEXT = re.compile(r"^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})+$")

def split_params(arg, names):
    """Removes the DSN parameters aiosmtpd does not know; returns (rest, {name: value})."""
    kept, found = [], {}
    for i, word in enumerate(arg.split(" ")):
        key, _, value = word.partition("=")
        if i > 0 and key.upper() in names:
            found[key.upper()] = value
        else:
            kept.append(word)
    return " ".join(kept), found

CONNECTIONS = [0]
EML_ONLY = [False]  # --eml: OUT holds the messages only

class DSNSMTP(SMTP):
    def connection_made(self, transport):
        # Called again on the same instance after STARTTLS: count TCP connections only.
        if getattr(self, "counted", False):
            return super().connection_made(transport)
        self.counted = True
        CONNECTIONS[0] += 1
        if EML_ONLY[0]:
            return super().connection_made(transport)
        path = os.path.join(OUT[0], "connections")
        with open(path + ".tmp", "w") as f:
            f.write(str(CONNECTIONS[0]))
        os.replace(path + ".tmp", path)
        super().connection_made(transport)

    async def smtp_MAIL(self, arg):
        if arg:
            arg, dsn = split_params(arg, {"RET", "ENVID"})
            if "RET" in dsn and dsn["RET"] not in ("HDRS", "FULL"):
                return await self.push("501 5.5.4 bad RET")
            if "ENVID" in dsn and not XTEXT.match(dsn["ENVID"]):
                return await self.push("501 5.5.4 bad ENVID xtext")
            self.session.dsn_mail = dsn
            self.session.dsn_rcpt = []
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg):
        dsn = {}
        if arg:
            arg, dsn = split_params(arg, {"NOTIFY", "ORCPT"})
            if "NOTIFY" in dsn and not set(dsn["NOTIFY"].split(",")) <= {"SUCCESS", "FAILURE", "DELAY", "NEVER"}:
                return await self.push("501 5.5.4 bad NOTIFY")
            if "ORCPT" in dsn and not (dsn["ORCPT"].lower().startswith("rfc822;") and XTEXT.match(dsn["ORCPT"][7:])):
                return await self.push("501 5.5.4 bad ORCPT")
        self.session.pending_rcpt_dsn = dsn
        await super().smtp_RCPT(arg)

def success_dsn(envid, recipients, original):
    """A delivery-status report for `recipients` (delivered), returning the original headers."""
    headers = (original.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in original else original.split(b"\n\n", 1)[0])
    stamp = "%d.%d" % (os.getpid(), next(DSN_SEQUENCE))
    per_recipient = "".join(
        "\r\nOriginal-Recipient: rfc822;%s\r\nFinal-Recipient: rfc822; %s\r\nAction: delivered\r\nStatus: 2.0.0\r\n" % (r, r)
        for r in recipients)
    text = ("From: MAILER-DAEMON@smtp.test\r\nSubject: Delivery Status Notification (Success)\r\n"
            "Message-ID: <dsn-%s@smtp.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"DSN-%s\"\r\n\r\n"
            "--DSN-%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nYour message was delivered.\r\n\r\n"
            "--DSN-%s\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; smtp.test\r\nOriginal-Envelope-Id: %s\r\n%s\r\n"
            "--DSN-%s\r\nContent-Type: text/rfc822-headers\r\n\r\n") % (stamp, stamp, stamp, stamp, envid, per_recipient, stamp)
    return text.encode() + headers + ("\r\n\r\n--DSN-%s--\r\n" % stamp).encode()

DSN_SEQUENCE = iter(range(1, 1 << 62))

def deliver_maildir(maildir, name, data):
    """Maildir delivery: written in tmp/, then renamed into new/ (readers never see half a file)."""
    tmp = os.path.join(maildir, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    if os.geteuid() == 0:
        import pwd, grp
        os.chown(tmp, pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid)
    os.rename(tmp, os.path.join(maildir, "new", name))


REPLY_TEXT = {
    421: "4.3.2 Service not available, closing transmission channel",
    450: "4.2.1 Mailbox busy, try again later",
    451: "4.3.0 Temporary local problem, try again later",
    452: "4.2.2 Insufficient system storage",
    550: "5.1.1 Recipient address rejected: mailbox unknown",
    552: "5.2.2 Mailbox full",
}

def parse_replies(specs):
    """--recipient-reply ADDRESS=CODE[:TIMES] -> {address: [code, times]} (times 0: always)."""
    replies = {}
    for spec in specs:
        address, _, rest = spec.partition("=")
        code, _, times = rest.partition(":")
        replies[address] = [int(code), int(times or 0)]
    return replies

class Handler:
    def __init__(self, out, tempfail, reject, dsn=True, eml=False, replies=None, session_421=0, dsn_maildir=None):
        self.out, self.tempfail, self.reject, self.count, self.dsn, self.eml = out, tempfail, set(reject), 0, dsn, eml
        self.replies, self.session_421 = replies or {}, session_421
        self.dsn_maildir = dsn_maildir

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # --session-421 N: the first N transactions are refused as a whole (server going down).
        if self.session_421 > 0:
            self.session_421 -= 1
            return "421 " + REPLY_TEXT[421]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.dsn:
            responses.insert(1, "250-DSN")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            return f"550 5.1.1 <{address}>: Recipient address rejected: mailbox unknown"
        if address in self.replies:
            code, times = self.replies[address]
            if times >= 0:
                if times == 1:
                    self.replies[address][1] = -1  # used up: accept from now on
                elif times > 1:
                    self.replies[address][1] -= 1
                return f"{code} {REPLY_TEXT.get(code, 'refused by the test')}"
        if self.tempfail > 0:
            self.tempfail -= 1
            return "451 4.3.0 Temporary local problem, try again later"
        envelope.rcpt_tos.append(address)
        session.dsn_rcpt.append({"address": address, **session.pending_rcpt_dsn})
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        ssl_object = server.transport.get_extra_info("ssl_object")
        cert = ssl_object.getpeercert() if ssl_object else None
        self.count += 1
        if self.eml:
            self.save_eml(envelope)
            return "250 2.0.0 Ok: queued as TEST%d" % self.count
        record = {
            "mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options, "rcpt_options": envelope.rcpt_options,
            "dsn_mail": getattr(session, "dsn_mail", {}), "dsn_rcpt": getattr(session, "dsn_rcpt", []),
            "tls_version": ssl_object.version() if ssl_object else None,
            "cipher": ssl_object.cipher()[0] if ssl_object else None,
            "client_subject": dict(x[0] for x in cert["subject"]) if cert else None,
            "data": base64.b64encode(envelope.original_content or envelope.content).decode(),
        }
        path = os.path.join(self.out, f"{self.count}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.replace(path + ".tmp", path)
        if self.dsn_maildir:
            wanted = [r["address"] for r in getattr(session, "dsn_rcpt", []) if "SUCCESS" in r.get("NOTIFY", "").split(",")]
            envid = getattr(session, "dsn_mail", {}).get("ENVID")
            if wanted and envid:
                content = envelope.original_content or envelope.content
                deliver_maildir(self.dsn_maildir, "dsn-%d.%d.smtp-test" % (os.getpid(), self.count),
                                success_dsn(envid, wanted, content if isinstance(content, bytes) else content.encode()))
        return "250 2.0.0 Ok: queued as TEST%d" % self.count

    def save_eml(self, envelope):
        # The messages carry patient data: owner-only from the first byte.
        head = "Return-Path: <%s>\r\n" % envelope.mail_from
        head += "".join("Delivered-To: %s\r\n" % r for r in envelope.rcpt_tos)
        path = os.path.join(self.out, "%d.eml" % self.count)
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(head.encode() + (envelope.original_content or envelope.content))
        os.replace(path + ".tmp", path)

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["starttls", "implicit"], required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tls13-only", action="store_true")
    p.add_argument("--ciphers", default="ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:ECDHE-RSA-AES128-SHA256")
    p.add_argument("--tempfail", type=int, default=0)
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--no-dsn", action="store_true")
    p.add_argument("--eml", action="store_true", help="store each message as OUT/<n>.eml (0600) instead of JSON")
    p.add_argument("--max-size", type=int, default=33554432, help="SMTP SIZE limit in bytes (aiosmtpd's default: 32 MiB)")
    p.add_argument("--dsn-maildir", help="put a success DSN for each accepted message into this Maildir (see above)")
    p.add_argument("--no-starttls", action="store_true", help="plain SMTP only (a misconfigured relay)")
    p.add_argument("--recipient-reply", action="append", default=[], metavar="ADDRESS=CODE[:TIMES]",
                   help="answer RCPT TO for ADDRESS with CODE (e.g. 450, 550, 552), TIMES times (default: always)")
    p.add_argument("--session-421", type=int, default=0, metavar="N", help="answer 421 to MAIL FROM in the first N transactions")
    a = p.parse_args()
    OUT[0] = a.out
    EML_ONLY[0] = a.eml

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    ctx.load_verify_locations(a.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    if a.tls13_only:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    else:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(a.ciphers)

    # The test runner may start us with signals blocked; also exit when our stdin closes, so
    # a crashed test run leaves no server behind.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(0)), daemon=True).start()

    handler = Handler(a.out, a.tempfail, a.reject, dsn=not a.no_dsn, eml=a.eml,
                      replies=parse_replies(a.recipient_reply), session_421=a.session_421, dsn_maildir=a.dsn_maildir)
    loop = asyncio.new_event_loop()
    if a.mode == "starttls" and a.no_starttls:
        factory = lambda: DSNSMTP(handler, hostname="smtp.test", data_size_limit=a.max_size)
        server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0))
    elif a.mode == "starttls":
        factory = lambda: DSNSMTP(handler, tls_context=ctx, require_starttls=True, hostname="smtp.test", data_size_limit=a.max_size)
        server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0))
    else:
        factory = lambda: DSNSMTP(handler, hostname="smtp.test", data_size_limit=a.max_size)
        server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0, ssl=ctx))
    print("PORT %d" % server.sockets[0].getsockname()[1], flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass

if __name__ == "__main__":
    main()

"""TLS on every client listener (docs/security.md), with real clients that verify
the chain: python smtplib/imaplib/poplib (STARTTLS/STLS and implicit TLS), swaks,
openssl s_client, mbsync. Certificates come from tests/tlskit.py (a throwaway
root, an intermediate, leaves; the node serves leaf + intermediate, the clients
trust only the root). Also: TLS 1.0/1.1 refused, the handshake deadline, SIGHUP
reload with a session kept open across it, SNI, and the plaintext-injection
class of CVE-2011-0411 on all three protocols."""

import imaplib
import os
import poplib
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

import tlskit
from cluster import DEFAULT_PASSWORD, DOMAIN, HOSTNAME, wait_for
from mailclient import mbsync_config, run_mbsync

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
OTHER_NAME = "mail.other.test"  # served by the SNI certificate
IO_TIMEOUT = 15


@pytest.fixture
def pki(tmp_path):
    return tlskit.Pki(tmp_path / "pki")


def tls_overrides(pki, handshake_timeout_s=10, live=None):
    """Config with every listener and two certificates: the default for
    HOSTNAME and 127.0.0.1, and one for OTHER_NAME chosen by SNI. With
    `live` (a directory), the default files are copies there (for reloads)."""
    mx = pki.leaf("mx", [HOSTNAME, "localhost"], ips=["127.0.0.1"])
    other = pki.leaf("other", [OTHER_NAME])
    chain, key = mx.chain, mx.key
    if live:
        os.makedirs(live, exist_ok=True)
        chain, key = os.path.join(live, "mx.pem"), os.path.join(live, "mx.key")
        shutil.copy(mx.chain, chain)
        shutil.copy(mx.key, key)
    return {
        "listen": {"submission": "127.0.0.1:0", "submissions": "127.0.0.1:0",
                   "imaps": "127.0.0.1:0", "pop3s": "127.0.0.1:0"},
        "tls": {"cert_file": chain, "key_file": key, "handshake_timeout_s": handshake_timeout_s,
                "certificates": [{"domains": [OTHER_NAME], "cert_file": other.chain,
                                  "key_file": other.key}]},
    }


@pytest.fixture
def tls_node(nodes, pki):
    n = nodes.start(overrides=tls_overrides(pki))
    n.add_users([ALICE, BOB])
    return n


def ctx(pki):
    return tlskit.client_context(pki)


def deliver_starttls(node, pki, addr=None, subject="over tls", login=None):
    """Delivers one message to alice over STARTTLS; `login` (a user) authenticates first
    and sends as that user (the submission listener requires it)."""
    host, port = addr or node.smtp
    with smtplib.SMTP(host, port, timeout=IO_TIMEOUT) as s:
        s.ehlo("client.example.org")
        assert s.has_extn("starttls")
        s.starttls(context=ctx(pki))
        s.ehlo("client.example.org")
        assert not s.has_extn("starttls"), "STARTTLS offered again after TLS"
        sender = "sender@example.org"
        if login:
            s.login(login, DEFAULT_PASSWORD)
            sender = login
        s.sendmail(sender, [ALICE], "Subject: %s\r\n\r\nbody\r\n" % subject)


def pop3s_messages(node, pki, user=ALICE):
    p = poplib.POP3_SSL(*node.pop3s, context=ctx(pki), timeout=IO_TIMEOUT)
    try:
        p.user(user)
        p.pass_(DEFAULT_PASSWORD)
        count, _ = p.stat()
        return [b"\r\n".join(p.retr(i + 1)[1]) for i in range(count)]
    finally:
        p.quit()


def metric(node, name, **labels):
    return node.metric(name, **labels)


# ---- real clients --------------------------------------------------------

def test_smtp_starttls_and_pop3s_verify_the_chain(tls_node, pki):
    deliver_starttls(tls_node, pki)
    msgs = pop3s_messages(tls_node, pki)
    assert len(msgs) == 1
    assert b"with ESMTPS id" in msgs[0], msgs[0][:400]
    assert metric(tls_node, "porcupine_tls_handshakes_total", listener="smtp",
                  version="TLSv1.3") == 1
    assert metric(tls_node, "porcupine_tls_handshakes_total", listener="pop3s",
                  version="TLSv1.3") == 1


def test_submission_listeners(tls_node, pki):
    deliver_starttls(tls_node, pki, addr=tls_node.submission, subject="587", login=BOB)
    with smtplib.SMTP_SSL(*tls_node.submissions, context=ctx(pki), timeout=IO_TIMEOUT) as s:
        s.ehlo("client.example.org")
        assert not s.has_extn("starttls")
        s.login(BOB, DEFAULT_PASSWORD)
        s.sendmail(BOB, [ALICE], "Subject: 465\r\n\r\nbody\r\n")
    assert len(pop3s_messages(tls_node, pki)) == 2


def test_imap_starttls_and_imaps(tls_node, pki):
    m = imaplib.IMAP4(*tls_node.imap, timeout=IO_TIMEOUT)
    assert "STARTTLS" in m.capabilities
    m.starttls(ssl_context=ctx(pki))
    assert "STARTTLS" not in m.capabilities  # imaplib asks CAPABILITY again
    m.login(ALICE, DEFAULT_PASSWORD)
    m.append("INBOX", None, None, b"Subject: a\r\n\r\nx\r\n")
    m.logout()
    m = imaplib.IMAP4_SSL(*tls_node.imaps, ssl_context=ctx(pki), timeout=IO_TIMEOUT)
    assert "STARTTLS" not in m.capabilities
    m.login(ALICE, DEFAULT_PASSWORD)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"1"], data
    m.logout()


def test_pop3_stls_and_pop3s(tls_node, pki):
    p = poplib.POP3(*tls_node.pop3, timeout=IO_TIMEOUT)
    assert "STLS" in p.capa()
    p.stls(context=ctx(pki))
    assert "STLS" not in p.capa()
    p.user(ALICE)
    p.pass_(DEFAULT_PASSWORD)
    p.quit()
    assert pop3s_messages(tls_node, pki) == []


def test_swaks_starttls_and_tls_on_connect(tls_node, pki):
    if shutil.which("swaks") is None:
        pytest.skip("swaks not installed")
    for args in (["-tls", "-s", "%s:%d" % tls_node.smtp],
                 ["-tlsc", "-s", "%s:%d" % tls_node.submissions, "--from", BOB, "--auth",
                  "PLAIN", "--auth-user", BOB, "--auth-password", DEFAULT_PASSWORD]):
        if "--from" not in args:
            args = args + ["--from", "s@example.org"]
        r = subprocess.run(["swaks", "--to", ALICE, "--helo",
                            "client.example.org", "--tls-verify", "--tls-ca-path", pki.ca_file,
                            "--body", "via swaks"] + args,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        assert "250 2.0.0 Ok: queued as" in r.stdout
    assert len(pop3s_messages(tls_node, pki)) == 2


def s_client(args, stdin=b"", timeout=30):
    return subprocess.run(["openssl", "s_client", "-verify_return_error", "-brief"] + args,
                          input=stdin, capture_output=True, timeout=timeout)


@pytest.mark.parametrize("proto,attr,close", [
    ("smtp", "smtp", b"QUIT\r\n"), ("imap", "imap", b"a LOGOUT\r\n"),
    ("pop3", "pop3", b"QUIT\r\n")])
def test_openssl_s_client_starttls(tls_node, pki, proto, attr, close):
    host, port = getattr(tls_node, attr)
    r = s_client(["-starttls", proto, "-connect", "%s:%d" % (host, port), "-CAfile", pki.ca_file,
                  "-verify_hostname", HOSTNAME, "-servername", HOSTNAME], close)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, err
    assert "Verification: OK" in err and "Protocol version: TLSv1.3" in err, err


@pytest.mark.parametrize("attr,close", [("imaps", b"a LOGOUT\r\n"), ("pop3s", b"QUIT\r\n"),
                                        ("submissions", b"QUIT\r\n")])
def test_openssl_s_client_implicit(tls_node, pki, attr, close):
    host, port = getattr(tls_node, attr)
    r = s_client(["-connect", "%s:%d" % (host, port), "-CAfile", pki.ca_file,
                  "-verify_hostname", HOSTNAME, "-servername", HOSTNAME], close)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, err
    assert "Verification: OK" in err, err


@pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync (isync) not installed")
@pytest.mark.parametrize("ssltype,attr", [("STARTTLS", "imap"), ("IMAPS", "imaps")])
def test_mbsync(tls_node, pki, tmp_path, ssltype, attr):
    m = imaplib.IMAP4_SSL(*tls_node.imaps, ssl_context=ctx(pki), timeout=IO_TIMEOUT)
    m.login(ALICE, DEFAULT_PASSWORD)
    for i in range(20):
        m.append("INBOX", None, None, b"Subject: n%d\r\n\r\nbody\r\n" % i)
    m.logout()
    (tmp_path / "mail").mkdir()
    config = tmp_path / "mbsyncrc"
    # mbsync checks the host name against the certificate's DNS names (not
    # its IP addresses): "localhost", which the default certificate lists.
    config.write_text(mbsync_config(tmp_path, "localhost", getattr(tls_node, attr)[1], ALICE,
                                    ssltype=ssltype, ca_file=pki.ca_file, sync="Pull"))
    run_mbsync(config, timeout=120)
    got = sum(len(os.listdir(tmp_path / "mail" / "INBOX" / d)) for d in ("cur", "new"))
    assert got == 20
    listener = "imap" if ssltype == "STARTTLS" else "imaps"
    assert metric(tls_node, "porcupine_tls_handshakes_total", listener=listener,
                  version="TLSv1.3") >= 1


# ---- policy --------------------------------------------------------------

@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_old_versions_refused(tls_node, pki, version):
    host, port = tls_node.imaps
    r = s_client([version, "-cipher", "DEFAULT:@SECLEVEL=0", "-connect", "%s:%d" % (host, port),
                  "-CAfile", pki.ca_file], b"a LOGOUT\r\n")
    assert r.returncode != 0, r.stderr.decode(errors="replace")
    wait_for(lambda: metric(tls_node, "porcupine_tls_handshake_failures_total",
                            listener="imaps", reason="version") >= 1, 10,
             what="a version failure counted")
    r = s_client(["-tls1_2", "-connect", "%s:%d" % (host, port), "-CAfile", pki.ca_file],
                 b"a LOGOUT\r\n")
    assert r.returncode == 0 and b"TLSv1.2" in r.stderr, r.stderr


def test_sni_picks_the_certificate(tls_node, pki):
    for name, want in ((OTHER_NAME, OTHER_NAME), (HOSTNAME, HOSTNAME),
                       ("unknown.example.test", HOSTNAME)):
        raw = socket.create_connection(tls_node.imaps, timeout=IO_TIMEOUT)
        c = ssl.create_default_context(cafile=pki.ca_file)
        c.check_hostname = False  # the unknown name gets the default certificate
        with c.wrap_socket(raw, server_hostname=name) as s:
            assert tlskit.peer_common_name(s) == want, name
    r = s_client(["-connect", "%s:%d" % tls_node.pop3s, "-CAfile", pki.ca_file,
                  "-servername", OTHER_NAME, "-verify_hostname", OTHER_NAME], b"QUIT\r\n")
    assert r.returncode == 0, r.stderr


def handshake_cut_within(node, addr, deadline, starttls=None):
    """Connects, optionally says STARTTLS, then sends nothing: the node must
    close the connection within `deadline` seconds."""
    s = socket.create_connection(addr, timeout=deadline + 10)
    try:
        if starttls:
            s.recv(4096)  # greeting
            s.sendall(starttls)
            s.recv(4096)  # go ahead
        start = time.monotonic()
        while s.recv(4096):
            pass  # nothing more should come; EOF when the node cuts us
        return time.monotonic() - start
    finally:
        s.close()


def test_handshake_deadline(nodes, pki):
    n = nodes.start(overrides=tls_overrides(pki, handshake_timeout_s=1))
    assert handshake_cut_within(n, n.imaps, 1) < 5
    assert handshake_cut_within(n, n.smtp, 1, starttls=b"STARTTLS\r\n") < 5
    wait_for(lambda: metric(n, "porcupine_tls_handshake_failures_total", listener="imaps",
                            reason="timeout") == 1 and
             metric(n, "porcupine_tls_handshake_failures_total", listener="smtp",
                    reason="timeout") == 1, 10, what="timeouts counted")


IMPLICIT = ("imaps", "pop3s", "submissions")
# The first bytes of a TLS ClientHello record: a handshake that starts and never ends.
PARTIAL_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"


def half_open(addr, count, partial):
    """count connections that never finish a TLS handshake: silent ones, or ones that
    send the start of a ClientHello and stop."""
    socks = []
    for _ in range(count):
        s = socket.create_connection(addr, timeout=10)
        if partial:
            s.sendall(PARTIAL_HELLO)
        socks.append(s)
    return socks


def all_closed_by_peer(socks, deadline_s):
    """Waits until the node closed every socket; returns the seconds it took."""
    start = time.monotonic()
    for s in socks:
        s.settimeout(max(0.1, deadline_s - (time.monotonic() - start)))
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
        except socket.timeout:
            raise AssertionError("a half-open handshake outlived %.1f s" % deadline_s)
    return time.monotonic() - start


@pytest.mark.parametrize("attr", IMPLICIT)
def test_half_open_handshake_cut_on_every_implicit_listener(nodes, pki, attr):
    n = nodes.start(overrides=tls_overrides(pki, handshake_timeout_s=1))
    for partial in (False, True):
        socks = half_open(getattr(n, attr), 1, partial)
        try:
            took = all_closed_by_peer(socks, 5)
            assert 0.5 < took < 3, (attr, partial, took)
        finally:
            for s in socks:
                s.close()
    wait_for(lambda: metric(n, "porcupine_tls_handshake_failures_total", listener=attr,
                            reason="timeout") == 2, 10, what="two timeouts counted")


def test_200_half_open_handshakes_do_not_stop_real_clients(nodes, pki):
    """200 connections that never finish their handshake, spread over every
    implicit-TLS listener, while real clients log in and deliver over TLS; all 200
    are cut at the deadline and counted."""
    n = nodes.start(overrides=tls_overrides(pki, handshake_timeout_s=3))
    n.add_users([ALICE])
    socks = []
    try:
        for i in range(200):
            socks += half_open(getattr(n, IMPLICIT[i % 3]), 1, partial=bool(i % 2))
        start = time.monotonic()
        with smtplib.SMTP_SSL(*n.submissions, context=ctx(pki), timeout=IO_TIMEOUT) as s:
            s.login(ALICE, DEFAULT_PASSWORD)  # submission wants AUTH (RFC 6409)
            s.sendmail(ALICE, [ALICE], "Subject: past 200\r\n\r\nbody\r\n")
        m = imaplib.IMAP4_SSL(*n.imaps, ssl_context=ctx(pki), timeout=IO_TIMEOUT)
        m.login(ALICE, DEFAULT_PASSWORD)
        assert m.select("INBOX") == ("OK", [b"1"])
        m.logout()
        assert len(pop3s_messages(n, pki)) == 1
        served = time.monotonic() - start
        assert served < 2, "real clients took %.2f s behind 200 half-open handshakes" % served
        cut = all_closed_by_peer(socks, 10)
        print("real clients served in %.3f s; the 200 half-open cut %.1f s later"
              % (served, cut))
    finally:
        for s in socks:
            s.close()
    for attr in IMPLICIT:
        wait_for(lambda: metric(n, "porcupine_tls_handshake_failures_total", listener=attr,
                                reason="timeout") >= 66, 10, what="timeouts of " + attr)


def test_sighup_reload_keeps_open_sessions(nodes, pki, tmp_path):
    live = str(tmp_path / "live")
    n = nodes.start(overrides=tls_overrides(pki, live=live))
    n.add_users([ALICE])
    old = imaplib.IMAP4_SSL(*n.imaps, ssl_context=ctx(pki), timeout=IO_TIMEOUT)
    old.login(ALICE, DEFAULT_PASSWORD)
    assert tlskit.peer_common_name(old.sock) == HOSTNAME
    new = pki.leaf("renewed", ["renewed.example.test"], ips=["127.0.0.1"])
    shutil.copy(new.chain, os.path.join(live, "mx.pem"))
    shutil.copy(new.key, os.path.join(live, "mx.key"))
    n.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: metric(n, "porcupine_tls_reloads_total", result="ok") == 1, 10,
             what="the reload")
    fresh = imaplib.IMAP4_SSL(*n.imaps, ssl_context=ctx(pki), timeout=IO_TIMEOUT)
    assert tlskit.peer_common_name(fresh.sock) == "renewed.example.test"
    fresh.logout()
    # The session opened before the reload still works, with its certificate.
    typ, data = old.select("INBOX")
    assert typ == "OK", data
    assert tlskit.peer_common_name(old.sock) == HOSTNAME
    old.logout()
    # A broken update is refused and the node keeps serving the renewed one.
    with open(os.path.join(live, "mx.key"), "w") as f:
        f.write("not a key\n")
    n.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: metric(n, "porcupine_tls_reloads_total", result="failed") == 1, 10,
             what="the failed reload")
    again = imaplib.IMAP4_SSL(*n.imaps, ssl_context=ctx(pki), timeout=IO_TIMEOUT)
    assert tlskit.peer_common_name(again.sock) == "renewed.example.test"
    again.logout()


def test_sighup_without_tls_is_harmless(node):
    node.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "nothing to reload" in node.log_text(), 10, what="the SIGHUP log line")
    assert node.alive()
    assert node.http("GET", "/readyz")[0] == 200


def test_no_certificate_no_starttls(node):
    with smtplib.SMTP(*node.smtp, timeout=IO_TIMEOUT) as s:
        s.ehlo("client.example.org")
        assert not s.has_extn("starttls")
    m = imaplib.IMAP4(*node.imap, timeout=IO_TIMEOUT)
    assert "STARTTLS" not in m.capabilities
    m.logout()


# ---- CVE-2011-0411: plaintext pipelined behind STARTTLS --------------------

def inject(addr, pki, greeting_lines, starttls_and_injection, after_tls):
    """Sends STARTTLS and the injected commands in one write, does the
    handshake, sends `after_tls`; returns what came back over TLS (or None
    when the injected bytes reached the handshake and broke it: also safe)."""
    raw = socket.create_connection(addr, timeout=IO_TIMEOUT)
    f = raw.makefile("rb")
    for _ in range(greeting_lines):
        f.readline()
    raw.sendall(starttls_and_injection)
    while True:  # replies to what came before STARTTLS, then its go-ahead
        ready = f.readline()
        assert ready, "closed before the go-ahead"
        if ready.startswith(b"220 ") or b"Begin TLS" in ready:
            break
    try:
        s = ctx(pki).wrap_socket(raw, server_hostname=HOSTNAME)
    except (ssl.SSLError, OSError):
        return None
    with s:
        s.sendall(after_tls)
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return out
            out += chunk


def test_cve_2011_0411_smtp(tls_node, pki):
    injected = (b"STARTTLS\r\nMAIL FROM:<attacker@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                b"Subject: injected\r\n\r\nx\r\n.\r\n" % ALICE.encode())
    out = inject(tls_node.smtp, pki, 1, b"EHLO c.test\r\n" + injected,
                 b"EHLO c.test\r\nRCPT TO:<%s>\r\nQUIT\r\n" % BOB.encode())
    if out is not None:
        assert b"503 5.5.1 Error: need MAIL command" in out, out
        assert b"queued as" not in out, out
    assert pop3s_messages(tls_node, pki) == []


def test_cve_2011_0411_pop3(tls_node, pki):
    out = inject(tls_node.pop3, pki, 1,
                 b"USER %s\r\nSTLS\r\nPASS %s\r\nDELE 1\r\n" % (ALICE.encode(),
                                                                 DEFAULT_PASSWORD.encode()),
                 b"PASS %s\r\nSTAT\r\nQUIT\r\n" % DEFAULT_PASSWORD.encode())
    if out is not None:
        assert out.startswith(b"-ERR send USER first\r\n"), out
        assert b"maildrop has" not in out, out


def test_cve_2011_0411_imap(tls_node, pki):
    out = inject(tls_node.imap, pki, 1,
                 b"a STARTTLS\r\nb LOGIN %s %s\r\nc SELECT INBOX\r\n"
                 % (ALICE.encode(), DEFAULT_PASSWORD.encode()),
                 b"d SELECT INBOX\r\ne LOGOUT\r\n")
    if out is not None:
        assert b"d BAD Log in first" in out, out
        assert b"b OK" not in out and b"c OK" not in out, out

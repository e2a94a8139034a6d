"""SCRAM-SHA-256 (RFC 5802, RFC 7677) on SMTP AUTH, IMAP AUTHENTICATE and POP3 AUTH
(docs/security.md, "SCRAM-SHA-256"): the node runs GNU SASL's server; the client here is
written from the RFC with hashlib/hmac (test code), and the `gsasl` command line client is an
independent second one. Checks the server's signature, that a wrong password and an unknown
user fail alike and are counted by the login throttle, and the stored secrets' form."""

import base64
import hashlib
import hmac
import imaplib
import os
import poplib
import shutil
import smtplib
import subprocess

import pytest

import tlskit
from cluster import DEFAULT_PASSWORD, DOMAIN, HOSTNAME, porcupine_bin

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
IO_TIMEOUT = 15


def b64(data):
    return base64.b64encode(data).decode()


class ScramClient:
    """The client side of one SCRAM-SHA-256 exchange, without channel binding."""

    def __init__(self, user, password):
        self.user, self.password = user, password
        self.nonce = b64(os.urandom(18))
        self.first_bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"),
                                         self.nonce)
        self.server_signature = None

    def first(self):
        return ("n,," + self.first_bare).encode()

    def final(self, server_first):
        server_first = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        assert attrs["r"].startswith(self.nonce) and len(attrs["r"]) > len(self.nonce), attrs
        iterations = int(attrs["i"])
        assert iterations >= 4096, attrs
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(),
                                     base64.b64decode(attrs["s"]), iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        auth_message = ",".join([self.first_bare, server_first, without_proof]).encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
        return (without_proof + ",p=" + b64(proof)).encode()

    def check(self, server_final):
        assert server_final.decode() == "v=" + b64(self.server_signature), server_final


@pytest.fixture
def pki(tmp_path):
    return tlskit.Pki(tmp_path / "pki")


@pytest.fixture
def scram_node(nodes, pki):
    mx = pki.leaf("mx", [HOSTNAME, "localhost"], ips=["127.0.0.1"])
    n = nodes.start(overrides={
        "listen": {"submission": "127.0.0.1:0", "submissions": "127.0.0.1:0"},
        "tls": {"cert_file": mx.chain, "key_file": mx.key},
        "auth": {"argon2_opslimit": 1, "argon2_memlimit_kib": 8, "failures_before_delay": 100,
                 "failures_before_lockout": 200}})
    n.add_users([ALICE, BOB])
    return n


def smtp_scram(s, user, password):
    """AUTH SCRAM-SHA-256 with an initial response; (code, text) of the last reply."""
    c = ScramClient(user, password)
    code, resp = s.docmd("AUTH", "SCRAM-SHA-256 " + b64(c.first()))
    if code != 334:
        return code, resp
    code, resp = s.docmd(b64(c.final(base64.b64decode(resp))))
    if code != 334:
        return code, resp
    c.check(base64.b64decode(resp))
    return s.docmd("")


def test_smtp_scram_then_submit(scram_node, pki):
    with smtplib.SMTP(*scram_node.submission, timeout=IO_TIMEOUT) as s:
        s.ehlo("laptop.example.org")
        s.starttls(context=tlskit.client_context(pki))
        s.ehlo("laptop.example.org")
        assert "SCRAM-SHA-256" in s.esmtp_features["auth"].split()
        assert smtp_scram(s, ALICE, "wrong")[0] == 535
        assert smtp_scram(s, "nobody@" + DOMAIN, DEFAULT_PASSWORD)[0] == 535
        assert smtp_scram(s, ALICE, DEFAULT_PASSWORD) == (235, b"2.7.0 Authentication successful")
        s.sendmail(ALICE, [BOB], "Subject: scram\r\n\r\nbody\r\n")
    p = poplib.POP3(*scram_node.pop3, timeout=IO_TIMEOUT)
    p.user(BOB)
    p.pass_(DEFAULT_PASSWORD)
    msg = b"\r\n".join(p.retr(1)[1])
    p.quit()
    assert b"with ESMTPSA id" in msg and b"(authenticated as alice@example.test)" in msg
    # Both failures went through the login throttle.
    assert scram_node.metric("porcupine_auth_failures_total") == 2


def test_imap_and_pop3_scram(scram_node):
    m = imaplib.IMAP4(*scram_node.imap, timeout=IO_TIMEOUT)
    assert "AUTH=SCRAM-SHA-256" in m.capabilities
    c = ScramClient(ALICE, DEFAULT_PASSWORD)
    steps = []

    def respond(challenge):
        steps.append(challenge)
        if len(steps) == 1:
            return c.first()
        if len(steps) == 2:
            return c.final(challenge)
        c.check(challenge)
        return b""

    typ, _ = m.authenticate("SCRAM-SHA-256", respond)
    assert typ == "OK" and len(steps) == 3
    typ, data = m.select("INBOX")
    assert typ == "OK", data
    m.logout()
    m = imaplib.IMAP4(*scram_node.imap, timeout=IO_TIMEOUT)
    bad = ScramClient(ALICE, "wrong")
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        m.authenticate("SCRAM-SHA-256",
                       lambda ch: bad.first() if not ch else bad.final(ch))
    m.logout()

    p = poplib.POP3(*scram_node.pop3, timeout=IO_TIMEOUT)
    assert "SCRAM-SHA-256" in p.capa()["SASL"]
    c = ScramClient(ALICE, DEFAULT_PASSWORD)
    assert p._shortcmd("AUTH SCRAM-SHA-256") == b"+ "
    server_first = p._shortcmd(b64(c.first()))
    server_final = p._shortcmd(b64(c.final(base64.b64decode(server_first[2:]))))
    c.check(base64.b64decode(server_final[2:]))
    assert p._shortcmd("").startswith(b"+OK maildrop has 0 messages"), "no maildrop"
    assert p.stat() == (0, 0)
    p.quit()
    p = poplib.POP3(*scram_node.pop3, timeout=IO_TIMEOUT)
    bad = ScramClient(ALICE, "wrong")
    server_first = p._shortcmd("AUTH SCRAM-SHA-256 " + b64(bad.first()))
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\] invalid credentials"):
        p._shortcmd(b64(bad.final(base64.b64decode(server_first[2:]))))
    p.quit()


def test_password_change_replaces_the_secrets(scram_node):
    r = subprocess.run([porcupine_bin(), "user", "passwd", ALICE, "--password", "changed-pw"]
                       + scram_node.admin_args(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    with smtplib.SMTP(*scram_node.submission, timeout=IO_TIMEOUT) as s:
        s.ehlo("laptop.example.org")
        assert smtp_scram(s, ALICE, DEFAULT_PASSWORD)[0] == 535
        assert smtp_scram(s, ALICE, "changed-pw")[0] == 235


@pytest.mark.skipif(shutil.which("gsasl") is None, reason="gsasl (Debian package gsasl) missing")
def test_gsasl_client(scram_node, pki):
    def run(proto, addr, *extra):
        return subprocess.run(["gsasl", "--connect=%s:%d" % addr, proto, "-m", "SCRAM-SHA-256",
                               "-a", ALICE, "-p", DEFAULT_PASSWORD, "--no-cb", "--quiet",
                               *extra], input=b"", capture_output=True, timeout=60)
    r = run("--imap", scram_node.imap, "--no-starttls")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("--smtp", scram_node.submission, "--starttls", "--x509-ca-file=" + pki.ca_file,
            "--hostname=" + HOSTNAME)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["gsasl", "--connect=%s:%d" % scram_node.imap, "--imap", "--no-starttls",
                        "-m", "SCRAM-SHA-256", "-a", ALICE, "-p", "wrong", "--quiet"],
                       input=b"", capture_output=True, timeout=60)
    assert r.returncode != 0

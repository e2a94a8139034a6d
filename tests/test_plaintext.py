"""Cleartext logins need TLS except from loopback (docs/security.md, "Cleartext logins need
TLS"): from a client in a network namespace (so the node sees a non-loopback address), IMAP
advertises LOGINDISABLED and refuses LOGIN with NO [PRIVACYREQUIRED], POP3 hides USER and
refuses it, SMTP submission offers no AUTH and answers 538 5.7.11; after STARTTLS/STLS all of
them work. `auth.allow_plaintext_without_tls = true` allows them in cleartext. Needs root
(network namespaces); skipped otherwise."""

import json
import poplib
import shutil

import pytest

import netlab
import tlskit
from cluster import DEFAULT_PASSWORD, DOMAIN, HOSTNAME

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN

# Runs inside the namespace: every observation as JSON on stdout.
CLIENT = r'''
import base64, imaplib, json, poplib, smtplib, ssl, sys
host, imap_port, pop3_port, sub_port, ca, user, password = sys.argv[1:8]
imap_port, pop3_port, sub_port = int(imap_port), int(pop3_port), int(sub_port)
ctx = ssl.create_default_context(cafile=ca)
out = {}

m = imaplib.IMAP4(host, imap_port, timeout=15)
out["imap_caps"] = list(m.capabilities)
try:
    m.login(user, password)
    out["imap_login"] = "OK"
except imaplib.IMAP4.error as e:
    out["imap_login"] = str(e)
plain = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
out["imap_authenticate"] = m._simple_command("AUTHENTICATE", "PLAIN", plain)[0]
out["imap_authenticate_text"] = m.untagged_responses.get("NO", [b""])[-1].decode()
m.starttls(ssl_context=ctx)
out["imap_caps_tls"] = list(m.capabilities)
out["imap_login_tls"] = m.login(user, password)[0]
m.logout()

p = poplib.POP3(host, pop3_port, timeout=15)
out["pop3_capa"] = sorted(p.capa())
try:
    p.user(user)
    out["pop3_user"] = "+OK"
except poplib.error_proto as e:
    out["pop3_user"] = e.args[0].decode()
p.stls(context=ctx)
out["pop3_capa_tls"] = sorted(p.capa())
p.user(user)
out["pop3_pass_tls"] = p.pass_(password).decode()
p.quit()

s = smtplib.SMTP(host, sub_port, timeout=15)
s.ehlo("laptop.example.org")
out["smtp_auth_offered"] = s.has_extn("auth")
out["smtp_auth"] = list(s.docmd("AUTH", "PLAIN " + plain))
out["smtp_auth"][1] = out["smtp_auth"][1].decode()
s.starttls(context=ctx)
s.ehlo("laptop.example.org")
out["smtp_auth_tls"] = s.esmtp_features.get("auth", "")
s.login(user, password)
s.sendmail(user, [sys.argv[8]], "Subject: from afar\r\n\r\nbody\r\n")
s.quit()
print(json.dumps(out))
'''

# The same clients where the operator allowed cleartext: logins work without TLS.
CLIENT_ALLOWED = r'''
import imaplib, json, poplib, smtplib, sys
host, imap_port, pop3_port, sub_port, user, password = sys.argv[1:7]
out = {}
m = imaplib.IMAP4(host, int(imap_port), timeout=15)
out["imap_caps"] = list(m.capabilities)
out["imap_login"] = m.login(user, password)[0]
m.logout()
p = poplib.POP3(host, int(pop3_port), timeout=15)
out["pop3_capa"] = sorted(p.capa())
p.user(user)
out["pop3_pass"] = p.pass_(password).decode()
p.quit()
s = smtplib.SMTP(host, int(sub_port), timeout=15)
s.ehlo("laptop.example.org")
out["smtp_auth"] = s.esmtp_features.get("auth", "")
out["smtp_login"] = s.login(user, password)[0]
s.quit()
print(json.dumps(out))
'''


@pytest.fixture
def lab():
    with netlab.lab(1) as net:
        yield net


def start_node(nodes, pki, lab, **extra):
    """A node in the root namespace whose client listeners are on the bridge address the
    namespace reaches; its admin API stays on loopback."""
    mx = pki.leaf("mx", [HOSTNAME], ips=[lab.gateway])
    gw = lab.gateway
    over = {"listen": {"smtp": gw + ":0", "submission": gw + ":0", "imap": gw + ":0",
                       "pop3": gw + ":0"},
            "tls": {"cert_file": mx.chain, "key_file": mx.key}}
    over.update(extra)
    n = nodes.start(overrides=over)
    n.add_users([ALICE, BOB])
    return n


def bob_mailbox(n, pki, lab):
    """Bob's messages, read over STLS from the root namespace (the node sees the bridge
    address, not loopback)."""
    p = poplib.POP3(lab.gateway, n.pop3[1], timeout=15)
    try:
        p.stls(context=tlskit.client_context(pki))
        p.user(BOB)
        p.pass_(DEFAULT_PASSWORD)
        count, _ = p.stat()
        return [b"\r\n".join(p.retr(i + 1)[1]) for i in range(count)]
    finally:
        p.quit()


def in_namespace(lab, script, *args):
    r = netlab.run("/usr/bin/python3", "-c", script, *[str(a) for a in args], ns=lab.names[0],
                   check=False, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_cleartext_refused_from_afar_and_allowed_after_starttls(lab, nodes, tmp_path):
    pki = tlskit.Pki(tmp_path / "pki")
    n = start_node(nodes, pki, lab)
    out = in_namespace(lab, CLIENT, lab.gateway, n.imap[1], n.pop3[1], n.submission[1],
                       pki.ca_file, ALICE, DEFAULT_PASSWORD, BOB)
    assert "LOGINDISABLED" in out["imap_caps"] and "AUTH=PLAIN" not in out["imap_caps"], out
    assert "[PRIVACYREQUIRED]" in out["imap_login"], out
    assert out["imap_authenticate"] == "NO", out
    assert "LOGINDISABLED" not in out["imap_caps_tls"] and "AUTH=PLAIN" in out["imap_caps_tls"]
    assert out["imap_login_tls"] == "OK"
    assert "USER" not in out["pop3_capa"] and "SASL" not in out["pop3_capa"], out
    assert out["pop3_user"].startswith("-ERR [AUTH] Plaintext authentication disallowed"), out
    assert "USER" in out["pop3_capa_tls"] and "SASL" in out["pop3_capa_tls"], out
    assert out["pop3_pass_tls"].startswith("+OK"), out
    assert out["smtp_auth_offered"] is False, out
    assert out["smtp_auth"] == [538, "5.7.11 Encryption required for requested authentication "
                                     "mechanism"], out
    assert out["smtp_auth_tls"].split() == ["SCRAM-SHA-256", "PLAIN", "LOGIN"], out
    # The message sent after STARTTLS arrived, recorded as an authenticated submission.
    [msg] = bob_mailbox(n, pki, lab)
    assert b"with ESMTPSA id" in msg and b"(authenticated as alice@example.test)" in msg
    if shutil.which("swaks"):
        base = ["swaks", "--to", BOB, "--from", ALICE, "-s", "%s:%d" % n.submission,
                "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", DEFAULT_PASSWORD,
                "--helo", "laptop.example.org"]
        r = netlab.run(*base, ns=lab.names[0], check=False, timeout=60)
        assert r.returncode != 0 and "235 " not in r.stdout, r.stdout
        r = netlab.run(*(base + ["--tls", "--tls-verify", "--tls-ca-path", pki.ca_file]),
                       ns=lab.names[0], check=False, timeout=60)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        assert "235 2.7.0 Authentication successful" in r.stdout
        assert len(bob_mailbox(n, pki, lab)) == 2


def test_allow_plaintext_without_tls(lab, nodes, tmp_path):
    pki = tlskit.Pki(tmp_path / "pki")
    n = start_node(nodes, pki, lab, auth={"argon2_opslimit": 1, "argon2_memlimit_kib": 8,
                                          "allow_plaintext_without_tls": True})
    out = in_namespace(lab, CLIENT_ALLOWED, lab.gateway, n.imap[1], n.pop3[1], n.submission[1],
                       ALICE, DEFAULT_PASSWORD)
    assert "AUTH=PLAIN" in out["imap_caps"] and "LOGINDISABLED" not in out["imap_caps"], out
    assert out["imap_login"] == "OK"
    assert "USER" in out["pop3_capa"] and out["pop3_pass"].startswith("+OK"), out
    assert out["smtp_auth"].split() == ["SCRAM-SHA-256", "PLAIN", "LOGIN"] and out["smtp_login"] == 235, out

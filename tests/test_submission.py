"""SMTP AUTH (RFC 4954) and message submission (RFC 6409) on the submission listeners
(docs/security.md, "SMTP AUTH and submission"), with real clients: python smtplib (its
login() uses AUTH PLAIN or LOGIN) and swaks. Port 25 offers no AUTH and relays nothing.

The clients here connect from loopback, where cleartext mechanisms are allowed without TLS;
tests/test_plaintext.py covers a client on another address."""

import poplib
import shutil
import smtplib
import subprocess

import pytest

import tlskit
from cluster import DEFAULT_PASSWORD, DOMAIN, HOSTNAME

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
IO_TIMEOUT = 15
THROTTLE = {"failures_before_delay": 2, "delay_initial_ms": 50, "delay_max_ms": 100,
            "failures_before_lockout": 4, "lockout_s": 60, "failure_memory_s": 120}


@pytest.fixture
def pki(tmp_path):
    return tlskit.Pki(tmp_path / "pki")


def overrides(pki, **extra):
    mx = pki.leaf("mx", [HOSTNAME, "localhost"], ips=["127.0.0.1"])
    over = {"listen": {"submission": "127.0.0.1:0", "submissions": "127.0.0.1:0"},
            "tls": {"cert_file": mx.chain, "key_file": mx.key}}
    for section, keys in extra.items():
        over.setdefault(section, {}).update(keys)
    return over


@pytest.fixture
def sub_node(nodes, pki):
    n = nodes.start(overrides=overrides(pki))
    n.add_users([ALICE, BOB])
    return n


def ctx(pki):
    return tlskit.client_context(pki)


def mailbox(node, user):
    """Every message of the user's POP3 maildrop (over loopback: cleartext allowed)."""
    p = poplib.POP3(*node.pop3, timeout=IO_TIMEOUT)
    try:
        p.user(user)
        p.pass_(DEFAULT_PASSWORD)
        count, _ = p.stat()
        return [b"\r\n".join(p.retr(i + 1)[1]) for i in range(count)]
    finally:
        p.quit()


def submit(node, pki, mechanism=None, implicit=False, sender=ALICE, rcpts=(BOB,),
           subject="submitted"):
    if implicit:
        s = smtplib.SMTP_SSL(*node.submissions, context=ctx(pki), timeout=IO_TIMEOUT)
    else:
        s = smtplib.SMTP(*node.submission, timeout=IO_TIMEOUT)
    with s:
        s.ehlo("laptop.example.org")
        if not implicit:
            s.starttls(context=ctx(pki))
            s.ehlo("laptop.example.org")
        assert s.has_extn("auth"), s.esmtp_features
        assert s.esmtp_features["auth"].split() == ["SCRAM-SHA-256", "PLAIN", "LOGIN"]
        if mechanism:
            s.user, s.password = ALICE, DEFAULT_PASSWORD
            code, resp = s.auth(mechanism, getattr(s, "auth_" + mechanism.lower()),
                                initial_response_ok=mechanism == "PLAIN")
            assert code == 235, resp
        else:
            s.login(ALICE, DEFAULT_PASSWORD)
        return s.sendmail(sender, list(rcpts), "Subject: %s\r\n\r\nbody\r\n" % subject)


def test_smtplib_plain_and_login_over_starttls_and_implicit_tls(sub_node, pki):
    submit(sub_node, pki, "PLAIN", subject="plain 587")
    submit(sub_node, pki, "LOGIN", subject="login 587")
    submit(sub_node, pki, None, implicit=True, subject="login() 465")
    msgs = mailbox(sub_node, BOB)
    assert len(msgs) == 3
    for m in msgs:
        head = m.split(b"\r\n\r\n")[0]
        assert b"\r\n\t(authenticated as alice@example.test)\r\n\tby " in head, head
        assert b"with ESMTPSA id" in head, head
        assert DEFAULT_PASSWORD.encode() not in m
    assert b"Return-Path: <alice@example.test>" in msgs[0]


def test_submission_rules(sub_node, pki):
    with smtplib.SMTP(*sub_node.submission, timeout=IO_TIMEOUT) as s:
        s.ehlo("laptop.example.org")
        s.starttls(context=ctx(pki))
        s.ehlo("laptop.example.org")
        assert s.mail(ALICE) == (530, b"5.7.0 Authentication required")
        s.login(ALICE, DEFAULT_PASSWORD)
        code, msg = s.docmd("AUTH", "PLAIN")
        assert (code, msg) == (503, b"5.5.1 Error: already authenticated")
        code, msg = s.mail(BOB)
        assert code == 553 and msg.startswith(b"5.7.1 <bob@example.test>: Sender address"), msg
        code, msg = s.mail("")
        assert code == 553 and msg.startswith(b"5.7.1 <>: Sender address rejected"), msg
        assert s.mail("Alice@Example.Test")[0] == 250
        code, msg = s.rcpt("someone@elsewhere.example")
        assert code == 451 and msg.startswith(b"4.3.2 <someone@elsewhere.example>: Outbound"), msg
        assert s.rcpt(BOB)[0] == 250
        code, msg = s.docmd("AUTH", "PLAIN")
        assert code == 503
        code, msg = s.data(b"Subject: rules\r\n\r\nbody\r\n")
        assert code == 250, msg
    assert len(mailbox(sub_node, BOB)) == 1


def test_sender_match_can_be_turned_off(nodes, pki):
    n = nodes.start(overrides=overrides(pki, submission={"require_sender_match": False}))
    n.add_users([ALICE, BOB])
    assert submit(n, pki, "PLAIN", sender="newsletter@example.org") == {}
    [msg] = mailbox(n, BOB)
    assert b"Return-Path: <newsletter@example.org>" in msg
    assert b"(authenticated as alice@example.test)" in msg


def test_wrong_password_then_throttle(nodes, pki):
    n = nodes.start(overrides=overrides(pki, auth=THROTTLE))
    n.add_users([ALICE])
    replies = []
    with smtplib.SMTP_SSL(*n.submissions, context=ctx(pki), timeout=IO_TIMEOUT) as s:
        s.ehlo("laptop.example.org")
        s.user, s.password = ALICE, "wrong"
        for _ in range(5):
            # One mechanism per attempt (login() would try PLAIN, then LOGIN).
            try:
                s.auth("PLAIN", s.auth_plain)
            except smtplib.SMTPAuthenticationError as e:
                replies.append((e.smtp_code, e.smtp_error))
    assert replies[:4] == [(535, b"5.7.8 Error: authentication failed")] * 4, replies
    # The fourth failure locked the address and the account: the right password is refused.
    assert replies[4] == (454, b"4.7.0 Too many failed logins, try again later"), replies
    with smtplib.SMTP_SSL(*n.submissions, context=ctx(pki), timeout=IO_TIMEOUT) as s:
        s.ehlo("laptop.example.org")
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.login(ALICE, DEFAULT_PASSWORD)
        assert e.value.smtp_code == 454
    assert n.metric("porcupine_auth_failures_total") >= 4


def test_port_25_offers_no_auth_and_relays_nothing(sub_node, pki):
    with smtplib.SMTP(*sub_node.smtp, timeout=IO_TIMEOUT) as s:
        s.ehlo("mta.example.org")
        assert not s.has_extn("auth")
        assert s.docmd("AUTH", "PLAIN AGFsaWNlAHB3LXNlY3JldA==")[0] == 502
        # A local sender does not help: mail for another domain is refused.
        assert s.mail(ALICE)[0] == 250
        code, msg = s.rcpt("victim@elsewhere.example")
        assert (code, msg[:5]) == (550, b"5.7.1"), msg
        assert s.rcpt(BOB)[0] == 250
        assert s.data(b"Subject: inbound\r\n\r\nbody\r\n")[0] == 250
    [msg] = mailbox(sub_node, BOB)
    assert b"with ESMTP id" in msg and b"authenticated" not in msg
    # Submission without AUTH relays nothing either.
    with smtplib.SMTP(*sub_node.submission, timeout=IO_TIMEOUT) as s:
        s.ehlo("mta.example.org")
        s.starttls(context=ctx(pki))
        s.ehlo("mta.example.org")
        assert s.mail("spammer@example.org")[0] == 530
        assert s.rcpt("victim@elsewhere.example")[0] == 503


def test_loopback_plaintext_auth_on_submission(sub_node):
    with smtplib.SMTP(*sub_node.submission, timeout=IO_TIMEOUT) as s:
        s.ehlo("laptop.example.org")
        assert s.esmtp_features["auth"].split() == ["SCRAM-SHA-256", "PLAIN", "LOGIN"]
        s.login(ALICE, DEFAULT_PASSWORD)
        s.sendmail(ALICE, [BOB], "Subject: loopback\r\n\r\nbody\r\n")
    [msg] = mailbox(sub_node, BOB)
    assert b"with ESMTPA id" in msg


def swaks(*args):
    return subprocess.run(["swaks", "--helo", "laptop.example.org", "--body", "via swaks"] +
                          list(args), capture_output=True, text=True, timeout=60)


def test_swaks_auth(sub_node, pki):
    if shutil.which("swaks") is None:
        pytest.skip("swaks not installed")
    tls = ["--tls-verify", "--tls-ca-path", pki.ca_file]
    sub = "%s:%d" % sub_node.submission
    for mech in ("PLAIN", "LOGIN"):
        r = swaks("--to", BOB, "--from", ALICE, "-s", sub, "--tls", "--auth", mech,
                  "--auth-user", ALICE, "--auth-password", DEFAULT_PASSWORD, *tls)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        assert "235 2.7.0 Authentication successful" in r.stdout
        assert "250 2.0.0 Ok: queued as" in r.stdout
    r = swaks("--to", BOB, "--from", ALICE, "-s", "%s:%d" % sub_node.submissions, "--tlsc",
              "--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", DEFAULT_PASSWORD, *tls)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    r = swaks("--to", BOB, "--from", ALICE, "-s", sub, "--tls", "--auth", "PLAIN",
              "--auth-user", ALICE, "--auth-password", "wrong", *tls)
    assert r.returncode != 0 and "535 5.7.8" in r.stdout, r.stdout[-3000:]
    # Without AUTH, submission refuses the sender.
    r = swaks("--to", BOB, "--from", ALICE, "-s", sub, "--tls", *tls)
    assert r.returncode != 0 and "530 5.7.0 Authentication required" in r.stdout
    assert len(mailbox(sub_node, BOB)) == 3

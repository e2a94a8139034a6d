"""SMTP in, POP3 out, byte for byte, with real clients (smtplib, poplib, swaks)."""

import base64
import poplib
import re
import signal
import subprocess

import pytest

from cluster import DEFAULT_PASSWORD, DOMAIN, HOSTNAME, POSTMASTER, sample, wait_for
from clusterkit import start_cluster
from mailclient import (
    CRLF, RawPop3, RawSmtp, assert_delivered, fast_message, make_message, poplib_message,
    pop3_client, retrieve_all, smtp_client, split_received, stuff)

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
CAROL = "carol@" + DOMAIN
SENDER = "sender@example.org"


def send_smtplib(node, rcpts, data, sender=SENDER, mail_options=()):
    """One transaction through smtplib; returns the reply to the end of DATA."""
    with smtp_client(node) as s:
        code, _ = s.ehlo()
        assert code == 250
        code, resp = s.mail(sender, list(mail_options))
        assert code == 250, resp
        for r in rcpts:
            code, resp = s.rcpt(r)
            assert code == 250, (r, resp)
        code, resp = s.data(data)
        assert code == 250, resp
        return resp


def only_message(node, user):
    got = retrieve_all(node, user)
    assert len(got) == 1, "expected one message for %s, found %d" % (user, len(got))
    return got[0][1]


def test_greeting_and_ehlo_extensions(node):
    with RawSmtp(node.smtp) as c:
        assert c.greeting[0].startswith(HOSTNAME), c.greeting
        _, lines = c.ehlo()
        assert lines[0].split()[0] == HOSTNAME
        ext = {line.split()[0].upper(): line for line in lines[1:]}
        for want in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"):
            assert want in ext, lines
        assert ext["SIZE"].split()[1:] == ["26214400"], lines
        c.quit()


def test_round_trip_smtplib_poplib(node):
    sent = make_message(3000, seed=1, tag="round-trip")
    resp = send_smtplib(node, [ALICE], sent)
    assert resp.startswith(b"2.0.0"), resp

    p = pop3_client(node, ALICE)
    try:
        count, total = p.stat()
        assert count == 1
        resp, lines, octets = p.retr(1)
        assert resp.startswith(b"+OK")
        got = poplib_message(lines)
        header = split_received(got, sent)
        assert b"for <%s>" % ALICE.encode() in header
        assert total == len(got), "STAT size %d != message size %d" % (total, len(got))
        resp, listing, _ = p.list()
        assert listing == [b"1 %d" % len(got)]
        assert p.quit().startswith(b"+OK")
    finally:
        p.close()


@pytest.mark.parametrize("how", ["smtplib", "raw"])
def test_dot_stuffing_both_ways(node, how):
    sent = (b"Subject: dots\r\n\r\n"
            b".\r\n..\r\n...\r\n.leading\r\n..two\r\n. space\r\nmiddle . dot\r\n .\r\n"
            b".\r\n")  # the last line is a lone '.' right before the end of data
    if how == "smtplib":
        send_smtplib(node, [ALICE], sent)  # smtplib stuffs
    else:
        with RawSmtp(node.smtp) as c:
            c.ehlo()
            c.expect("MAIL FROM:<%s>" % SENDER, 250)
            c.expect("RCPT TO:<%s>" % ALICE, 250)
            c.expect("DATA", 354)
            c.send(stuff(sent) + b".\r\n")
            assert c.reply()[0] == 250
            c.quit()

    # On the POP3 wire the server must stuff again: exactly stuff(stored) + ".\r\n".
    with RawPop3(node.pop3) as p:
        p.login(ALICE)
        p.ok("RETR 1")
        wire = p.read_until(b"\r\n.\r\n")
        assert wire.startswith(b"Return-Path: <%s>\r\nReceived: " % SENDER.encode()), wire[:100]
        assert wire.endswith(stuff(sent) + b".\r\n"), wire[-200:]
        p.quit()
    # ... and poplib (which unstuffs '..' itself) sees the original lines.
    p = pop3_client(node, ALICE)
    try:
        _, lines, _ = p.retr(1)
        assert_delivered(poplib_message(lines), sent)
    finally:
        p.quit()


def send_raw_exact(node, rcpt, data):
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        c.send_message(SENDER, [rcpt], data)
        c.quit()


@pytest.mark.parametrize("size", [0, 1, 2, 1024, 1 << 20, 20 << 20],
                         ids=["0B", "1B", "2B", "1KiB", "1MiB", "20MiB"])
def test_body_sizes(node, size):
    if size == 0:
        # "DATA" then "." at once: an empty message; only a raw client can send it.
        sent = b""
        send_raw_exact(node, ALICE, sent)
    elif size == 1:
        # A one-byte body: smtplib completes the last line with CRLF (RFC 5321:
        # the data is lines), so what is sent on the wire is "x\r\n".
        send_smtplib(node, [ALICE], b"x")
        sent = b"x\r\n"
    elif size < (1 << 20):
        sent = make_message(size, seed=size, tag="size%d" % size)
        send_smtplib(node, [ALICE], sent)
    else:
        sent = fast_message(size, tag="size%d" % size)
        send_smtplib(node, [ALICE], sent)

    with RawPop3(node.pop3) as p:
        p.login(ALICE)
        sizes = p.list()
        got = p.retr(1)
        split_received(got, sent)
        assert sizes == {1: len(got)}, "LIST size must be the exact octet count"
        p.quit()
    if size <= (1 << 20):
        p = pop3_client(node, ALICE)
        try:
            _, lines, _ = p.retr(1)
            assert poplib_message(lines) == got
        finally:
            p.quit()


def test_eight_bit_body(node):
    sent = (b"Subject: raw bytes\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            b"latin-1 \xe9\xe8 and invalid utf-8 \xff\x80\xc3( and NUL-free high bytes \xfe\r\n")
    send_smtplib(node, [ALICE], sent, mail_options=["BODY=8BITMIME"])
    assert_delivered(only_message(node, ALICE), sent)


def test_smtputf8_headers_and_sender(node):
    sent = ("From: Jörg <jörg@exämple.org>\r\nTo: alice@example.test\r\n"
            "Subject: Grüße aus Köln — 日本語\r\n\r\nПривет, 日本語. ✓\r\n").encode("utf-8")
    send_smtplib(node, [ALICE], sent, sender="jörg@exämple.org", mail_options=["SMTPUTF8"])
    got = only_message(node, ALICE)
    header = split_received(got, sent)
    assert b"UTF8SMTP" in header, "RFC 6531 §3.7.3 with-protocol: %r" % header


def test_utf8_sender_without_smtputf8_is_refused(node):
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        code, lines = c.cmd("MAIL FROM:<jörg@example.org>".encode("utf-8"))
        assert code == 553 and lines[0].startswith("5.6.7"), (code, lines)
        c.expect("MAIL FROM:<jörg@example.org> SMTPUTF8".encode("utf-8"), 250)
        c.quit()


def test_multiple_recipients_each_get_a_copy(node):
    before = node.metric("porcupine_messages_stored_total")
    sent = make_message(5000, seed=7, tag="multi")
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % ALICE, 250)
        code, lines = c.cmd("RCPT TO:<nobody@%s>" % DOMAIN)
        assert code == 550 and lines[0].startswith("5.1.1"), (code, lines)
        c.expect("RCPT TO:<%s>" % BOB.upper(), 250)  # addresses are case-insensitive
        c.expect("RCPT TO:<%s>" % CAROL, 250)
        c.expect("DATA", 354)
        c.send(stuff(sent) + b".\r\n")
        assert c.reply()[0] == 250
        c.quit()
    for user in (ALICE, BOB, CAROL):
        header = split_received(only_message(node, user), sent)
        for other in (ALICE, BOB, CAROL):
            assert other.encode() not in header.lower(), \
                "a copy's Received: names recipients: %r" % header
    assert node.metric("porcupine_messages_stored_total") == before + 3


def put_messages(node, user, n, tag):
    msgs = [make_message(400 + 37 * i, seed=i, tag="%s-%d" % (tag, i)) for i in range(n)]
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        for m in msgs:
            c.send_message(SENDER, [user], m)
        c.quit()
    return msgs


def test_dele_takes_effect_only_at_quit(node):
    msgs = put_messages(node, ALICE, 3, "dele")
    deleted_before = node.metric("porcupine_messages_deleted_total")

    # DELE then drop the connection without QUIT: nothing is deleted.
    p = RawPop3(node.pop3)
    p.login(ALICE)
    uids = p.uidl()
    assert len(uids) == 3
    p.ok("DELE 1")
    assert p.stat()[0] == 2, "a deleted message no longer counts in STAT"
    assert p.cmd("RETR 1").startswith(b"-ERR")
    assert p.cmd("LIST 1").startswith(b"-ERR")
    assert p.cmd("DELE 1").startswith(b"-ERR")
    p.close()

    with RawPop3(node.pop3) as p:
        p.login(ALICE)
        assert p.uidl() == uids, "a session that ended without QUIT deleted messages"
        # RSET undeletes.
        p.ok("DELE 2")
        p.ok("RSET")
        assert p.stat()[0] == 3
        p.ok("DELE 2")
        assert p.uidl() == {1: uids[1], 3: uids[3]}
        sizes = p.list()
        assert sorted(sizes) == [1, 3], "LIST must omit deleted messages"
        assert p.stat() == (2, sizes[1] + sizes[3])
        p.quit()

    with RawPop3(node.pop3) as p:
        p.login(ALICE)
        after = p.uidl()
        assert sorted(after.values()) == sorted([uids[1], uids[3]])
        assert_delivered(p.retr(1), msgs[0])
        assert_delivered(p.retr(2), msgs[2])
        p.quit()
    assert node.metric("porcupine_messages_deleted_total") == deleted_before + 1


def check_uid_syntax(uids):
    assert len(set(uids.values())) == len(uids), "UIDs must be unique: %r" % uids
    for uid in uids.values():
        assert 1 <= len(uid) <= 70 and all(0x21 <= ord(ch) <= 0x7E for ch in uid), uid


def test_uidl_stable_across_sessions_and_restarts(node):
    msgs = put_messages(node, BOB, 5, "uidl")
    with RawPop3(node.pop3) as p:
        p.login(BOB)
        first = p.uidl()
        p.quit()
    check_uid_syntax(first)
    assert len(first) == 5
    with RawPop3(node.pop3) as p:
        p.login(BOB)
        assert p.uidl() == first
        assert p.cmd("UIDL 3") == b"+OK 3 " + first[3].encode()
        p.quit()

    node.restart()  # SIGTERM, exit 0, start again
    with RawPop3(node.pop3) as p:
        p.login(BOB)
        assert p.uidl() == first, "UIDL changed across a clean restart"
        for n, m in enumerate(msgs, 1):
            assert_delivered(p.retr(n), m)
        p.ok("DELE 2")
        p.quit()

    node.restart(signal.SIGKILL)
    put_messages(node, BOB, 1, "uidl-new")
    with RawPop3(node.pop3) as p:
        p.login(BOB)
        now = p.uidl()
        p.quit()
    check_uid_syntax(now)
    old = {first[n] for n in (1, 3, 4, 5)}
    assert old <= set(now.values()), "UIDs changed across a SIGKILL restart"
    new = set(now.values()) - old
    assert len(new) == 1 and not new & set(first.values()), \
        "a new message must get a UID never used before (RFC 1939 §7)"


def test_top(node):
    head = b"Subject: top test\r\nFrom: a@example.org\r\n"
    body_lines = [b"line %d" % i for i in range(10)]
    body_lines[3] = b".dotted line"
    sent = head + b"\r\n" + b"".join(line + CRLF for line in body_lines)
    send_raw_exact(node, CAROL, sent)
    with RawPop3(node.pop3) as p:
        p.login(CAROL)
        whole = p.retr(1)
        header_part = whole[:whole.index(b"\r\n\r\n") + 4]
        assert header_part.endswith(head + b"\r\n")
        assert p.ok_multi("TOP 1 0") == header_part
        assert p.ok_multi("TOP 1 4") == header_part + b"".join(
            line + CRLF for line in body_lines[:4])
        assert p.ok_multi("TOP 1 100") == whole
        assert p.cmd("TOP 1").startswith(b"-ERR")
        assert p.cmd("TOP 2 0").startswith(b"-ERR")
        assert p.cmd("TOP 1 -1").startswith(b"-ERR")
        p.quit()
    p = pop3_client(node, CAROL)
    try:
        _, lines, _ = p.top(1, 2)
        assert poplib_message(lines) == header_part + b"line 0\r\nline 1\r\n"
    finally:
        p.quit()


def test_capa_and_auth_plain(node):
    with RawPop3(node.pop3) as p:
        capa = p.ok_multi("CAPA").decode().split("\r\n")
        names = {line.split()[0].upper(): line for line in capa if line}
        for want in ("USER", "UIDL", "TOP", "SASL", "RESP-CODES", "PIPELINING"):
            assert want in names, capa
        assert "PLAIN" in names["SASL"].upper().split()
        cred = base64.b64encode(b"\0" + ALICE.encode() + b"\0" + DEFAULT_PASSWORD.encode())
        p.ok(b"AUTH PLAIN " + cred)
        assert p.stat() == (0, 0)
        p.quit()
    # The response may also follow a "+ " continuation (RFC 5034 §4).
    with RawPop3(node.pop3) as p:
        got = p.cmd("AUTH PLAIN")
        assert got.rstrip() == b"+", "expected an empty '+ ' challenge: %r" % got
        cred = base64.b64encode(ALICE.encode() + b"\0" + ALICE.encode() + b"\0"
                                + DEFAULT_PASSWORD.encode())
        p.ok(cred)
        assert p.stat() == (0, 0)
        p.quit()
    with RawPop3(node.pop3) as p:
        bad = base64.b64encode(b"\0" + ALICE.encode() + b"\0wrong")
        got = p.cmd(b"AUTH PLAIN " + bad)
        assert got.startswith(b"-ERR [AUTH]"), got
        p.quit()


def test_pop3_login_names(node):
    send_raw_exact(node, ALICE, b"Subject: whose\r\n\r\nalice's\r\n")
    with RawPop3(node.pop3) as p:
        p.ok("USER " + ALICE.upper())  # addresses are case-insensitive
        p.ok("PASS " + DEFAULT_PASSWORD)
        assert p.stat()[0] == 1
        p.quit()
    # A bare local part means the first local domain (the node's convention).
    with RawPop3(node.pop3) as p:
        p.ok("user alice")  # commands are case-insensitive too
        p.ok("pass " + DEFAULT_PASSWORD)
        assert p.cmd("stat").startswith(b"+OK 1 ")
        p.quit()
    with RawPop3(node.pop3) as p:
        if p.cmd("USER alice@elsewhere.example").startswith(b"+OK"):
            assert p.cmd("PASS " + DEFAULT_PASSWORD).startswith(b"-ERR")
        p.quit()


def run_swaks(node, *args):
    host, port = node.smtp
    return subprocess.run(
        ["swaks", "--server", "%s:%d" % (host, port), "--helo", "client.example.org", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=60)


@pytest.mark.parametrize("pipeline", [False, True])
def test_swaks_delivers(node, pipeline):
    token = "swaks-token-%s" % ("pipelined" if pipeline else "plain")
    args = ["--to", ALICE, "--from", "x@y.z", "--header", "Subject: %s" % token,
            "--body", "hello from swaks %s\nsecond line" % token]
    if pipeline:
        args.append("--pipeline")
    r = run_swaks(node, *args)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out
    got = only_message(node, ALICE)
    assert got.startswith(b"Return-Path: <x@y.z>\r\nReceived: "), got[:200]
    assert b"Subject: " + token.encode() in got
    assert b"hello from swaks " + token.encode() + b"\r\nsecond line\r\n" in got, got
    assert re.search(rb"(?m)^From: ?<?x@y\.z", got), got


def test_swaks_unknown_user_fails(node):
    r = run_swaks(node, "--to", "nobody@" + DOMAIN, "--from", "x@y.z")
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode != 0, out
    assert "550 5.1.1" in out, out


def test_poplib_dele_and_quit(node):
    msgs = put_messages(node, ALICE, 2, "poplib")
    p = pop3_client(node, ALICE)
    try:
        resp, listing, _ = p.uidl()
        assert len(listing) == 2
        p.dele(1)
        with pytest.raises(poplib.error_proto):
            p.retr(1)
    finally:
        assert p.quit().startswith(b"+OK")
    left = retrieve_all(node, ALICE)
    assert len(left) == 1
    assert_delivered(left[0][1], msgs[1])


def test_metrics_count_sessions_replies_and_errors(node):
    m0 = node.metrics()
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        assert c.cmd("BOGUS")[0] == 500
        c.send_message(SENDER, [ALICE], b"Subject: m\r\n\r\nmetrics\r\n")
        c.quit()
    with RawPop3(node.pop3) as p:
        p.ok("USER " + ALICE)
        assert p.cmd("PASS wrong").startswith(b"-ERR")
        p.login(ALICE)
        p.quit()

    def delta(name, **labels):
        return node.metric(name, **labels) - sample(m0, name, **labels)

    # Replies are counted when a session ends.
    wait_for(lambda: node.metric("porcupine_sessions_active", protocol="smtp") == 0
             and node.metric("porcupine_sessions_active", protocol="pop3") == 0, 10,
             what="sessions to end")
    assert delta("porcupine_sessions_total", protocol="smtp") == 1
    assert delta("porcupine_sessions_total", protocol="pop3") == 1
    assert delta("porcupine_messages_stored_total") == 1
    assert delta("porcupine_bytes_stored_total") > len(b"Subject: m\r\n\r\nmetrics\r\n")
    assert delta("porcupine_errors_total", protocol="smtp", kind="client") == 1
    assert delta("porcupine_errors_total", protocol="pop3", kind="client") == 1
    # Exported, and a delivery that was acknowledged is not a 4xx after a store.
    assert "porcupine_smtp_tempfail_after_store_total" in node.metrics_text()
    assert delta("porcupine_smtp_tempfail_after_store_total") == 0
    # SMTP: 220, EHLO, MAIL, RCPT, end of DATA, QUIT (221) are 2xx; 354 is 3xx; one 500.
    assert delta("porcupine_replies_total", protocol="smtp", **{"class": "2xx"}) == 6
    assert delta("porcupine_replies_total", protocol="smtp", **{"class": "3xx"}) == 1
    assert delta("porcupine_replies_total", protocol="smtp", **{"class": "5xx"}) == 1
    # POP3: greeting, USER, USER, PASS, QUIT are +OK; the failed PASS is -ERR.
    assert delta("porcupine_replies_total", protocol="pop3", **{"class": "2xx"}) == 5
    assert delta("porcupine_replies_total", protocol="pop3", **{"class": "5xx"}) == 1


def test_pop3_pipelined_session_in_one_write(node):
    msgs = put_messages(node, ALICE, 3, "pipe")
    with RawPop3(node.pop3) as p:
        p.send(("USER %s\r\nPASS %s\r\nSTAT\r\nRETR 1\r\nTOP 2 0\r\nUIDL\r\nDELE 1\r\n"
                "RETR 3\r\nQUIT\r\n" % (ALICE, DEFAULT_PASSWORD)).encode())
        assert p.status().startswith(b"+OK")  # USER
        assert p.status().startswith(b"+OK")  # PASS
        stat = p.status().split()
        assert stat[:2] == [b"+OK", b"3"], stat
        assert p.status().startswith(b"+OK")
        assert_delivered(p.multiline(), msgs[0])
        assert p.status().startswith(b"+OK")
        assert p.multiline().endswith(b"\r\n\r\n")
        assert p.status().startswith(b"+OK")
        assert len(p.multiline().split(CRLF)) == 4
        assert p.status().startswith(b"+OK")  # DELE
        assert p.status().startswith(b"+OK")
        assert_delivered(p.multiline(), msgs[2])
        assert p.status().startswith(b"+OK")  # QUIT
        assert p.is_closed(5)
    assert len(retrieve_all(node, ALICE)) == 2


def test_longest_data_line(node):
    # smtp_max_data_line (65536) counts the line with its CRLF.
    longest = b"Subject: long\r\n\r\n" + b"L" * 65534 + b"\r\nend\r\n"
    too_long = b"Subject: too long\r\n\r\n" + b"M" * 65535 + b"\r\nend\r\n"
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        c.send_message(SENDER, [ALICE], longest)
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % ALICE, 250)
        c.expect("DATA", 354)
        c.send(too_long + b".\r\n")
        code, lines = c.reply()
        assert 500 <= code < 600, (code, lines)
        c.send_message(SENDER, [ALICE], b"Subject: after\r\n\r\nafter\r\n")
        c.quit()
    got = retrieve_all(node, ALICE)
    assert len(got) == 2
    assert_delivered(got[0][1], longest)


def test_mail_arriving_during_a_pop3_session_survives_its_quit(node):
    put_messages(node, ALICE, 2, "before")
    p = RawPop3(node.pop3)
    p.login(ALICE)
    assert p.stat()[0] == 2
    late = put_messages(node, ALICE, 1, "late")[0]
    assert p.stat()[0] == 2, "the maildrop is a snapshot taken at login"
    p.ok("DELE 1")
    p.ok("DELE 2")
    p.quit()
    left = retrieve_all(node, ALICE)
    assert len(left) == 1
    assert_delivered(left[0][1], late)


def test_two_pop3_sessions_on_one_maildrop(node):
    msgs = put_messages(node, BOB, 3, "two")
    a = RawPop3(node.pop3)
    a.login(BOB)
    b = RawPop3(node.pop3)
    b.ok("USER " + BOB)
    second = b.cmd("PASS " + DEFAULT_PASSWORD)
    try:
        if second.startswith(b"-ERR"):
            assert b"[IN-USE]" in second, second  # RFC 2449 RESP-CODES
        else:
            a.ok("DELE 1")
            a.quit()
            # b still sees its snapshot; message 1 is gone underneath it.
            got = b.cmd("RETR 1")
            if got.startswith(b"+OK"):
                assert_delivered(b.multiline(), msgs[0])
            b.cmd("DELE 1")
            b.ok("DELE 2")
            b.quit()
            left = retrieve_all(node, BOB)
            assert len(left) == 1
            assert_delivered(left[0][1], msgs[2])
    finally:
        a.close()
        b.close()


def set_password(node, user, password=DEFAULT_PASSWORD):
    status, body = node.http("PUT", "/v1/users/%s/password" % user, {"password": password})
    assert status == 204, (status, body)


def test_null_sender_and_postmaster(node):
    # The node made the mailbox itself, without a password (docs/config.md).
    node.wait_postmaster()
    set_password(node, POSTMASTER)
    bounce = b"Subject: bounce\r\n\r\nundeliverable\r\n"
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        c.expect("MAIL FROM:<>", 250)
        c.expect("RCPT TO:<Postmaster>", 250)  # RFC 5321 4.5.1: no domain needed
        c.expect("DATA", 354)
        c.send(bounce + b".\r\n")
        assert c.reply()[0] == 250
        c.expect("RSET", 250)
        c.expect("MAIL FROM:<>", 250)
        c.expect("RSET", 250)
        assert c.cmd("RCPT TO:<%s>" % ALICE)[0] == 503, "RSET must end the transaction"
        c.quit()
    split_received(only_message(node, POSTMASTER), bounce, return_path="")


# ---- issue #13: RFC 5321 trace headers, postmaster, queue ids -------------------

def test_return_path_is_the_envelope_sender_once(node):
    """RFC 5321 4.4: the final delivery adds Return-Path: once, above Received:."""
    first = b"Subject: rp 1\r\n\r\none\r\n"
    second = b"Subject: rp 2\r\n\r\ntwo\r\n"
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        c.send_message("Some.One@Example.ORG", [ALICE, BOB], first)
        c.send_message("", [ALICE], second)
        c.quit()
    got = [m for _, m in retrieve_all(node, ALICE)]
    assert len(got) == 2, got
    for retrieved, sent, sender in ((got[0], first, "Some.One@Example.ORG"), (got[1], second, "")):
        header = split_received(retrieved, sent, return_path=sender)
        assert header.count(b"Return-Path:") == 1, header
    split_received(only_message(node, BOB), first, return_path="Some.One@Example.ORG")


def test_postmaster_of_every_local_domain_reaches_one_mailbox(nodes):
    node = nodes.start(overrides={"mail": {"domains": [DOMAIN, "second.test"]}})
    node.wait_postmaster()
    assert node.users() == [POSTMASTER]
    set_password(node, POSTMASTER, "pm-secret")
    sent = b"Subject: to every postmaster\r\n\r\nhello\r\n"
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        for rcpt in ("postmaster@second.test", "POSTMASTER@" + DOMAIN.upper(), "postmaster"):
            c.expect("RCPT TO:<%s>" % rcpt, 250)
        code, lines = c.cmd("RCPT TO:<postmaster@elsewhere.test>")
        assert code == 550 and lines[0].startswith("5.7.1"), (code, lines)
        c.expect("DATA", 354)
        c.send(stuff(sent) + b".\r\n")
        assert c.reply()[0] == 250
        c.quit()
    # One copy: three names of one mailbox.
    assert len(retrieve_all(node, POSTMASTER, "pm-secret")) == 1
    # Idempotent: a restart finds the mailbox and leaves its password and mail alone.
    node.restart()
    wait_for(lambda: "the postmaster mailbox %s exists" % POSTMASTER in node.log_text(), 30,
             what="the restarted node to find the postmaster mailbox")
    assert node.users() == [POSTMASTER]
    got = retrieve_all(node, POSTMASTER, "pm-secret")
    assert len(got) == 1
    split_received(got[0][1], sent, return_path=SENDER)


def test_configured_postmaster_mailbox(nodes):
    admin = "admin@" + DOMAIN
    node = nodes.start(overrides={"mail": {"postmaster": admin.upper()}})
    wait_for(lambda: "does not exist: mail to postmaster is refused" in node.log_text(), 30,
             what="the warning about the missing mailbox")
    assert node.users() == [], "a configured mailbox is the operator's to create"
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        c.expect("MAIL FROM:<>", 250)
        code, lines = c.cmd("RCPT TO:<postmaster>")
        assert code == 550 and lines[0].startswith("5.1.1"), (code, lines)
        c.quit()
    node.add_user(admin)
    sent = b"Subject: for the admin\r\n\r\nhi\r\n"
    send_raw_exact(node, "Postmaster@" + DOMAIN, sent)
    split_received(only_message(node, admin), sent)


def test_postmaster_created_once_when_nodes_start_together(nodes):
    ns = start_cluster(nodes, 3)
    for n in ns:
        wait_for(lambda n=n: ("postmaster mailbox %s" % POSTMASTER) in n.log_text(), 30,
                 what="%s to create or find the postmaster mailbox" % n.name)
    created = [n.name for n in ns if "created the postmaster mailbox" in n.log_text()]
    assert len(created) == 1, "created by %r" % created
    for n in ns:
        assert n.users() == [POSTMASTER], n.name
    set_password(ns[0], POSTMASTER)
    bodies = []
    for i, n in enumerate(ns):
        body = b"Subject: via %s\r\n\r\npostmaster mail %d\r\n" % (n.name.encode(), i)
        send_raw_exact(n, "postmaster", body)
        bodies.append(body)
    # One mailbox, whichever node is asked.
    for n in ns:
        got = sorted(m for _, m in retrieve_all(n, POSTMASTER))
        assert len(got) == 3, (n.name, got)
        assert all(any(m.endswith(b) for m in got) for b in bodies), (n.name, got)


def test_queue_ids_unique_across_two_nodes(nodes):
    """Issue #13: two nodes started together handed out the same queue ids."""
    ns = start_cluster(nodes, 2)
    ns[0].add_users([ALICE])
    ids = []
    # The first sessions of both nodes, interleaved within the same second or so.
    for round_ in range(4):
        for n in ns:
            with RawSmtp(n.smtp) as c:
                c.ehlo()
                for k in range(2):
                    code, lines = c.send_message(SENDER, [ALICE], b"r%d k%d via %s\r\n"
                                                 % (round_, k, n.name.encode()))
                    assert code == 250, lines
                    ids.append(lines[-1].split()[-1])
                c.quit()
    assert len(set(ids)) == len(ids), "queue ids repeat: %r" % ids
    for qid in ids:
        assert re.fullmatch(r"[0-9a-f]{24}\.\d+", qid), qid
    # Each id is in its message's Received: header.
    stored = [m for _, m in retrieve_all(ns[0], ALICE)]
    assert len(stored) == len(ids)
    in_headers = sorted(re.search(rb" id ([0-9a-f]{24}\.\d+)", m).group(1).decode() for m in stored)
    assert in_headers == sorted(ids)

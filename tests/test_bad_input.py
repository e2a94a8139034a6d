"""Hostile and broken clients over raw sockets: refused, limited, never stored.

Every test ends by checking that the node still serves a normal session and
that nothing it refused was stored (the stored-message counter and the
mailboxes).
"""

import base64
import random
import signal
import socket
import subprocess
import threading
import time

import pytest

from cluster import DOMAIN, port_closed, wait_for
from mailclient import (
    Closed, RawPop3, RawSmtp, assert_delivered, fast_message, make_message, retrieve_all, stuff,
    unstuff)

ALICE = "alice@" + DOMAIN
OK_USER = "ok@" + DOMAIN

LIMITS = {
    "smtp_max_message_bytes": 100000,
    "smtp_max_recipients": 5,
    "smtp_soft_error_limit": 3,
    "smtp_hard_error_limit": 6,
    "smtp_tarpit_delay_ms": 200,
    "pop3_soft_error_limit": 3,
    "pop3_hard_error_limit": 6,
    "pop3_tarpit_delay_ms": 200,
}


def start(nodes, limits=None, server=None):
    overrides = {"limits": dict(LIMITS, **(limits or {}))}
    if server:
        overrides["server"] = server
    node = nodes.start(overrides=overrides)
    node.add_users([ALICE, OK_USER])
    return node


def stored(node):
    return node.metric("porcupine_messages_stored_total")


def assert_still_serves(node, stored_before, extra=0):
    """A normal delivery works; the only new stored copies are `extra` + this one."""
    assert node.alive(), "node died"
    assert stored(node) == stored_before + extra, "a refused message was stored"
    data = make_message(700, seed=99, tag="still-serves")
    before = len(retrieve_all(node, OK_USER))
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        c.send_message("x@example.org", [OK_USER], data)
        c.quit()
    got = retrieve_all(node, OK_USER)
    assert len(got) == before + 1
    assert_delivered(got[-1][1], data)
    assert stored(node) == stored_before + extra + 1


def mailbox_size(node, user):
    with RawPop3(node.pop3) as p:
        p.login(user)
        n = p.stat()[0]
        p.quit()
        return n


def session(node):
    c = RawSmtp(node.smtp)
    c.ehlo()
    return c


# ---- SMTP command lines -----------------------------------------------------

def test_overlong_command_lines(nodes):
    node = start(nodes)
    before = stored(node)
    with session(node) as c:
        exact = "NOOP " + "x" * (512 - len("NOOP ") - 2)  # 512 bytes with CRLF
        c.expect(exact, 250)
        code, lines = c.cmd("NOOP " + "x" * 600)
        assert code == 500 and lines[0].startswith("5.5.2"), (code, lines)
        c.expect("NOOP", 250)  # the long line was skipped to its LF, no more
        # One MiB without a line end: refused when the line ends, never buffered whole.
        c.send(b"A" * (1 << 20) + b"\r\n")
        code, lines = c.reply()
        assert code == 500, (code, lines)
        c.expect("NOOP", 250)
        # An overlong RCPT must not half-execute.
        c.expect("MAIL FROM:<x@example.org>", 250)
        code, _ = c.cmd("RCPT TO:<%s%s>" % ("a" * 600, "@" + DOMAIN))
        assert code == 500
        code, _ = c.cmd("DATA")
        assert code in (503, 554), code
        c.quit()
    assert_still_serves(node, before)


def test_nul_and_bare_cr_lf_in_commands(nodes):
    node = start(nodes, limits={"smtp_soft_error_limit": 10, "smtp_hard_error_limit": 20})
    before = stored(node)
    with session(node) as c:
        c.send(b"NO\0OP\r\n")
        assert c.reply()[0] == 500
        c.send(b"NOOP\n")
        assert c.reply()[0] == 500
        c.send(b"NOOP\rQUIT\r\n")  # the QUIT after a bare CR is not a command
        assert c.reply()[0] == 500
        c.expect("NOOP", 250)
        c.send(b"MAIL FROM:<x@example.org>\0\r\n")
        assert c.reply()[0] == 500
        c.expect("RCPT TO:<%s>" % ALICE, 503)  # the MAIL above did not count
        c.quit()
    assert_still_serves(node, before)


def test_commands_out_of_order(nodes):
    node = start(nodes, limits={"smtp_soft_error_limit": 10, "smtp_hard_error_limit": 20})
    before = stored(node)
    with RawSmtp(node.smtp) as c:
        assert c.cmd("MAIL FROM:<x@example.org>")[0] == 503  # before EHLO
        c.ehlo()
        assert c.cmd("RCPT TO:<%s>" % ALICE)[0] == 503
        assert c.cmd("DATA")[0] == 503
        c.expect("MAIL FROM:<x@example.org>", 250)
        assert c.cmd("MAIL FROM:<y@example.org>")[0] == 503
        assert c.cmd("DATA")[0] == 503
        c.expect("RSET", 250)
        assert c.cmd("RCPT TO:<%s>" % ALICE)[0] == 503  # RSET cleared the transaction
        c.expect("mail from:<x@example.org>", 250)  # verbs are case-insensitive
        c.expect("rcpt to:<%s>" % ALICE, 250)
        c.ehlo("again.example.org")  # EHLO resets the transaction (RFC 5321 4.1.4)
        assert c.cmd("DATA")[0] == 503
        c.quit()
    assert_still_serves(node, before)


def test_thousand_pipelined_noops_in_one_write(nodes):
    node = start(nodes)
    before = stored(node)
    with session(node) as c:
        c.send(b"NOOP\r\n" * 1000 + b"QUIT\r\n")
        codes = [c.reply()[0] for _ in range(1001)]
        assert codes[:1000] == [250] * 1000
        assert codes[1000] == 221
        assert c.is_closed(10)
    assert_still_serves(node, before)


# ---- DATA ----------------------------------------------------------------------

def test_bare_lf_in_data_disconnects_and_stores_nothing(nodes):
    node = start(nodes)
    before = stored(node)
    c = session(node)
    c.expect("MAIL FROM:<x@example.org>", 250)
    c.expect("RCPT TO:<%s>" % ALICE, 250)
    c.expect("DATA", 354)
    # SMTP smuggling: the "\n.\n" must not end the data, the rest must not run.
    c.send(b"Subject: first\r\n\r\nbody\n.\nMAIL FROM:<evil@example.org>\r\n"
           b"RCPT TO:<" + ALICE.encode() + b">\r\nDATA\r\nforged\r\n.\r\n")
    try:
        code, lines = c.reply()
        assert code == 521, (code, lines)
    except (Closed, ConnectionResetError):
        pytest.fail("no 521 before the disconnect")
    assert c.is_closed(10), "the session must end after a bare LF in DATA"
    c.close()
    assert mailbox_size(node, ALICE) == 0
    assert_still_serves(node, before)


def test_bare_cr_in_data_is_refused_at_end_of_data(nodes):
    node = start(nodes)
    before = stored(node)
    with session(node) as c:
        c.expect("MAIL FROM:<x@example.org>", 250)
        c.expect("RCPT TO:<%s>" % ALICE, 250)
        c.expect("DATA", 354)
        c.send(b"line one\r\nbare\rCR\r\n.\r\n")
        code, lines = c.reply()
        assert code == 550, (code, lines)
        good = b"after the refused one\r\n"
        c.send_message("x@example.org", [ALICE], good)  # the session goes on
        c.quit()
    got = retrieve_all(node, ALICE)
    assert len(got) == 1
    assert_delivered(got[0][1], good)
    assert_still_serves(node, before, extra=1)


def test_nul_in_data_is_refused_at_end_of_data(nodes):
    """A NUL byte inside DATA: 550 5.6.0 after the final dot, nothing stored,
    the session goes on (docs/protocols.md)."""
    node = start(nodes)
    before = stored(node)
    errors = node.metric("porcupine_errors_total", protocol="smtp", kind="client")
    with session(node) as c:
        # Raw bytes, already stuffed: a NUL mid-line, a line of one NUL, and
        # ".\0", which is a stuffed line and not the end of the data.
        for raw in (b"Subject: nul\r\n\r\nNUL \0 inside\r\n", b"\0\r\n", b".\0\r\n"):
            c.expect("MAIL FROM:<x@example.org>", 250)
            c.expect("RCPT TO:<%s>" % ALICE, 250)
            c.expect("DATA", 354)
            c.send(raw + b".\r\n")
            code, lines = c.reply()
            assert (code, lines) == (550, ["5.6.0 Error: NUL character in message"]), raw
        good = b"after the refused ones\r\n"
        c.send_message("x@example.org", [ALICE], good)
        c.quit()
    got = retrieve_all(node, ALICE)
    assert len(got) == 1
    assert_delivered(got[0][1], good)
    wait_for(lambda: node.metric("porcupine_errors_total", protocol="smtp", kind="client")
             == errors + 3, 10, what="three client errors counted")
    assert_still_serves(node, before, extra=1)


def test_swaks_message_with_nul_is_refused(nodes, tmp_path):
    node = start(nodes)
    data = tmp_path / "nul.eml"
    data.write_bytes(b"Subject: swaks nul\r\n\r\nbefore \0 after\r\n")
    host, port = node.smtp
    r = subprocess.run(
        ["swaks", "--server", "%s:%d" % (host, port), "--helo", "client.example.org",
         "--from", "x@example.org", "--to", ALICE, "--data", "@%s" % data],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode != 0, out
    assert "550 5.6.0 Error: NUL character in message" in out, out
    assert mailbox_size(node, ALICE) == 0


def test_message_size_limit(nodes):
    node = start(nodes)
    before = stored(node)
    with session(node) as c:
        code, lines = c.cmd("MAIL FROM:<x@example.org> SIZE=100001")
        assert code == 552 and lines[0].startswith("5.3.4"), (code, lines)
        # Over the limit: read to the end, 552, not stored; the session goes on.
        for size in (100001, 150000, 3 << 20):
            c.expect("MAIL FROM:<x@example.org>", 250)
            c.expect("RCPT TO:<%s>" % ALICE, 250)
            c.expect("DATA", 354)
            big = make_message(size, seed=size) if size < 200000 else fast_message(size, "big")
            c.send(stuff(big) + b".\r\n")
            code, lines = c.reply()
            assert code == 552 and lines[0].startswith("5.3.4"), (size, code, lines)
        # Exactly the limit, counted without the quoting dots (RFC 1870 §3).
        exact = make_message(100000, seed=5, tag="exact")
        assert stuff(exact) != exact, "the message should contain dot-stuffed lines"
        c.expect("MAIL FROM:<x@example.org> SIZE=100000", 250)
        c.expect("RCPT TO:<%s>" % ALICE, 250)
        c.expect("DATA", 354)
        c.send(stuff(exact) + b".\r\n")
        code, lines = c.reply()
        assert code == 250, (code, lines)
        c.quit()
    got = retrieve_all(node, ALICE)
    assert len(got) == 1
    assert_delivered(got[0][1], exact)
    assert_still_serves(node, before, extra=1)


def test_rcpt_flood_beyond_max_recipients(nodes):
    node = start(nodes)
    users = node.add_users(["r%d@%s" % (i, DOMAIN) for i in range(60)])
    before = stored(node)
    with session(node) as c:
        c.expect("MAIL FROM:<x@example.org>", 250)
        codes = []
        for user in users:  # 60 distinct local users; the limit is 5
            code, lines = c.cmd("RCPT TO:<%s>" % user)
            codes.append(code)
            if code == 452:
                assert lines[0].startswith("4.5.3"), lines
        assert codes == [250] * 5 + [452] * 55, codes
        # A duplicate of an accepted recipient is folded, not refused nor doubled.
        c.expect("RCPT TO:<%s>" % users[0].upper(), 250)
        c.expect("DATA", 354)
        data = b"Subject: flood\r\n\r\nto five\r\n"
        c.send(data + b".\r\n")
        assert c.reply()[0] == 250
        c.quit()
    for i, user in enumerate(users[:10]):
        got = retrieve_all(node, user)
        if i < 5:
            assert len(got) == 1, user
            assert_delivered(got[0][1], data)
        else:
            assert got == [], "%s was refused but got the message" % user
    assert_still_serves(node, before, extra=5)


@pytest.mark.parametrize("rcpt", [
    "victim@elsewhere.example",
    "alice@example.test.evil.example",
    "alice@[127.0.0.1]",
    "alice@sub.example.test",
])
def test_relay_attempt_is_refused(nodes, rcpt):
    node = start(nodes)
    before = stored(node)
    with session(node) as c:
        c.expect("MAIL FROM:<x@example.org>", 250)
        code, lines = c.cmd("RCPT TO:<%s>" % rcpt)
        assert code == 550 and lines[0].startswith("5.7.1"), (code, lines)
        code, _ = c.cmd("DATA")
        assert code in (503, 554), code
        c.quit()
    assert_still_serves(node, before)


# ---- garbage -------------------------------------------------------------------

SMTP_WORDS = [b"EHLO x", b"HELO", b"MAIL FROM:<a@b.example>", b"RCPT TO:<nobody@example.test>",
              b"RCPT TO:<v@elsewhere.example>", b"DATA", b"RSET", b"NOOP", b"VRFY", b".", b"..",
              b"MAIL FROM:<", b"RCPT", b"\0", b"\r", b"\n", b"\xff\xfe", b"BDAT 5", b"AUTH x"]


def garbage(rnd, words):
    parts = []
    for _ in range(rnd.randint(1, 40)):
        r = rnd.random()
        if r < 0.4:
            parts.append(bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 200))))
        elif r < 0.8 and words:
            parts.append(rnd.choice(words))
        else:
            parts.append(b"\r\n")
    if rnd.random() < 0.1:
        parts.append(bytes(rnd.randrange(256) for _ in range(3000)))
    return b"".join(parts)


def smtp_garbage_session(node, seed, problems):
    rnd = random.Random(seed)
    try:
        with RawSmtp(node.smtp, timeout=20) as c:
            c.send(garbage(rnd, SMTP_WORDS) + b"\r\nQUIT\r\n")
            out = c.read_to_eof(timeout=20)  # 221, 421 or 521 close it
        for line in out.split(b"\r\n")[:-1]:
            if not (len(line) >= 3 and line[:3].isdigit() and line[:1] in b"2345"
                    and line[3:4] in (b" ", b"-", b"")):
                problems.append("seed %d: malformed reply line %r" % (seed, line[:100]))
        if not out.endswith(b"\r\n"):
            problems.append("seed %d: output does not end with CRLF: %r" % (seed, out[-100:]))
    except socket.timeout:
        problems.append("seed %d: session neither answered QUIT nor closed" % seed)
    except (ConnectionResetError, BrokenPipeError):
        pass  # closed on us while we still wrote: a clean enough disconnect


def pop3_garbage_session(node, seed, problems):
    rnd = random.Random(seed)
    try:
        with RawPop3(node.pop3, timeout=20) as p:
            p.send(garbage(rnd, [b"USER", b"PASS", b"APOP", b"AUTH FOO", b"\0", b"\r", b"QUITX"])
                   + b"\r\nQUIT\r\n")
            out = p.read_to_eof(timeout=20)
        for line in out.split(b"\r\n")[:-1]:
            if not (line.startswith(b"+OK") or line.startswith(b"-ERR") or line.startswith(b"+ ")):
                problems.append("seed %d: malformed POP3 line %r" % (seed, line[:100]))
    except socket.timeout:
        problems.append("seed %d: POP3 session neither answered QUIT nor closed" % seed)
    except (ConnectionResetError, BrokenPipeError):
        pass


def test_random_garbage(nodes):
    node = start(nodes, limits={"smtp_tarpit_delay_ms": 10, "pop3_tarpit_delay_ms": 10},
                 server={"idle_timeout_s": 3})
    before = stored(node)
    problems = []
    seeds = list(range(40))

    def worker(k):
        for seed in seeds[k::4]:
            smtp_garbage_session(node, seed, problems)
            pop3_garbage_session(node, 1000 + seed, problems)

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
        assert not th.is_alive(), "garbage sessions hung"
    assert not problems, problems[:10]
    assert node.http("GET", "/healthz")[0] == 200
    assert_still_serves(node, before)


# ---- slow and abusive clients ---------------------------------------------------

def test_client_that_never_reads_is_disconnected(nodes):
    node = start(nodes, limits={"smtp_max_message_bytes": 26214400},
                 server={"write_timeout_s": 2})
    big = fast_message(2 << 20, "slow-reader")
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        c.send_message("x@example.org", [ALICE], big)
        c.quit()
    before = stored(node)

    victim = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    victim.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    victim.settimeout(30)
    victim.connect(node.pop3)
    greeting = victim.recv(1024)
    assert greeting.startswith(b"+OK"), greeting
    victim.sendall(b"USER %s\r\nPASS pw-secret\r\n" % ALICE.encode())
    flood_errors = []

    def flood():
        try:
            for _ in range(100):  # 100 x 80 RETRs x 2 MiB of replies, never read
                victim.sendall(b"RETR 1\r\n" * 80)
        except OSError as e:
            flood_errors.append(e)  # the node closed the connection: expected

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    # The node is blocked writing to the victim; other sessions must not notice.
    wait_for(lambda: node.metric("porcupine_sessions_active", protocol="pop3") >= 1, 10,
             what="the victim session")
    t0 = time.monotonic()
    with RawPop3(node.pop3) as p:
        p.login(ALICE)
        assert_delivered(p.retr(1), big)
        p.quit()
    assert time.monotonic() - t0 < 5, "another POP3 session was slowed by the stuck one"
    assert_still_serves(node, before)

    # The stuck session is closed after the write timeout.
    wait_for(lambda: node.metric("porcupine_sessions_active", protocol="pop3") == 0, 20,
             what="the node to close the session that never reads")
    # On the client side: after the buffered replies, EOF or reset (bounded read).
    victim.settimeout(10)
    total, closed = 0, False
    try:
        while total < (64 << 20):
            chunk = victim.recv(1 << 20)
            if not chunk:
                closed = True
                break
            total += len(chunk)
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    except socket.timeout:
        pass
    victim.close()
    t.join(timeout=30)
    assert closed, "the connection stayed open after %d bytes" % total


def test_error_limit_tarpit_then_421(nodes):
    node = start(nodes)
    before = stored(node)
    with session(node) as c:
        t0 = time.monotonic()
        c.send(b"BOGUS\r\n" * 10)
        codes = []
        while True:
            try:
                code, lines = c.reply()
            except (Closed, ConnectionResetError):
                break
            codes.append(code)
            if code == 421:
                assert lines[0].startswith("4.7.0"), lines
                break
        elapsed = time.monotonic() - t0
        assert codes == [500] * 6 + [421], codes  # hard limit 6
        assert c.is_closed(10), "the session must end at the hard error limit"
        # Past the soft limit (3 errors) every reply waits 200 ms: at least two delays.
        assert elapsed >= 0.35, "no tarpit delay (%.2f s)" % elapsed
    assert_still_serves(node, before)


def test_tarpit_slows_only_the_offender(nodes):
    node = start(nodes, limits={"smtp_tarpit_delay_ms": 2000, "smtp_hard_error_limit": 50,
                                "smtp_soft_error_limit": 1})
    with session(node) as bad:
        bad.send(b"BOGUS\r\n" * 5)  # replies come at most every 2 s from now on
        assert bad.reply()[0] == 500
        t0 = time.monotonic()
        with session(node) as good:
            for _ in range(20):
                good.expect("NOOP", 250)
            good.quit()
        assert time.monotonic() - t0 < 1.5, "a tarpit delayed another session"
    assert_still_serves(node, stored(node))


def test_idle_timeout_smtp_and_pop3(nodes):
    node = start(nodes, server={"idle_timeout_s": 2})
    before = stored(node)
    t0 = time.monotonic()
    c = session(node)
    c.settimeout(15)
    code, lines = c.reply()
    elapsed = time.monotonic() - t0
    assert code == 421 and lines[0].startswith("4.4.2"), (code, lines)
    assert 1.5 <= elapsed <= 10, elapsed
    assert c.is_closed(5)
    c.close()

    # Idle in the middle of DATA: 421 and nothing stored.
    c = session(node)
    c.settimeout(15)
    c.expect("MAIL FROM:<x@example.org>", 250)
    c.expect("RCPT TO:<%s>" % ALICE, 250)
    c.expect("DATA", 354)
    c.send(b"Subject: half\r\n\r\nhalf a mess")
    code, _ = c.reply()
    assert code == 421
    assert c.is_closed(5)
    c.close()

    p = RawPop3(node.pop3)
    p.settimeout(15)
    t0 = time.monotonic()
    line = p.status()
    assert line.startswith(b"-ERR"), line
    assert 1.5 <= time.monotonic() - t0 <= 10
    assert p.is_closed(5)
    p.close()
    assert mailbox_size(node, ALICE) == 0
    assert_still_serves(node, before)


def test_max_connections(nodes):
    node = start(nodes, server={"max_connections": 4})
    held = [RawSmtp(node.smtp) for _ in range(2)] + [RawPop3(node.pop3) for _ in range(2)]
    try:
        extra = RawSmtp(node.smtp, greet=False)
        code, lines = extra.reply()
        assert code == 421 and lines[0].startswith("4.3.2"), (code, lines)
        assert extra.is_closed(5)
        extra.close()
        extra = RawPop3(node.pop3, greet=False)
        line = extra.status()
        assert line.startswith(b"-ERR"), line
        assert extra.is_closed(5)
        extra.close()
    finally:
        for h in held:
            h.close()
    wait_for(lambda: node.metric("porcupine_sessions_active", protocol="smtp") == 0
             and node.metric("porcupine_sessions_active", protocol="pop3") == 0, 10,
             what="held sessions to end")
    counts = {(name, proto): node.metric(name, protocol=proto)
              for name in ("porcupine_sessions_total", "porcupine_sessions_refused_total")
              for proto in ("smtp", "pop3")}
    # Two sessions of each protocol were accepted and one of each refused.
    assert counts == {("porcupine_sessions_total", "smtp"): 2,
                      ("porcupine_sessions_total", "pop3"): 2,
                      ("porcupine_sessions_refused_total", "smtp"): 1,
                      ("porcupine_sessions_refused_total", "pop3"): 1}, counts
    assert_still_serves(node, stored(node))


# ---- POP3 ------------------------------------------------------------------------

def pop3_node(nodes):
    node = start(nodes, limits={"pop3_soft_error_limit": 40, "pop3_hard_error_limit": 50})
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        c.send_message("x@example.org", [ALICE], b"Subject: one\r\n\r\nbody\r\n")
        c.quit()
    return node


def assert_err(p, line):
    got = p.cmd(line)
    assert got.startswith(b"-ERR"), "%r: %r" % (line, got)
    return got


def test_pop3_overlong_and_nul(nodes):
    node = pop3_node(nodes)
    before = stored(node)
    with RawPop3(node.pop3) as p:
        assert_err(p, "USER " + "a" * 2000)
        assert p.ok_multi("CAPA")  # the session goes on
        p.send(b"A" * (1 << 20) + b"\r\n")
        assert p.status().startswith(b"-ERR")
        assert_err(p, b"US\0ER " + ALICE.encode())
        p.login(ALICE)
        assert p.stat()[0] == 1
        p.quit()
    assert_still_serves(node, before)


def test_pop3_bad_authentication(nodes):
    node = pop3_node(nodes)
    before = stored(node)
    with RawPop3(node.pop3) as p:
        assert_err(p, "PASS pw-secret")  # PASS without USER
        p.ok("USER " + ALICE)
        assert assert_err(p, "PASS wrong").startswith(b"-ERR [AUTH]")
        p.cmd("USER nobody@" + DOMAIN)  # may be refused now or at PASS
        assert_err(p, "PASS pw-secret")
        assert_err(p, "AUTH CRAM-MD5")
        assert_err(p, "AUTH PLAIN !!!notbase64")
        assert_err(p, "AUTH PLAIN " + "AGFsaWNl")  # "\0alice": no password part
        proxy = base64.b64encode(b"ok@example.test\0" + ALICE.encode() + b"\0pw-secret")
        assert_err(p, b"AUTH PLAIN " + proxy)  # authorization identity != authenticated
        got = p.cmd("AUTH PLAIN")
        assert got.rstrip() == b"+", got
        assert_err(p, "*")  # client cancels (RFC 5034 §4)
        p.login(ALICE)
        assert p.stat()[0] == 1
        p.quit()
    assert_still_serves(node, before)


def test_pop3_commands_in_the_wrong_state(nodes):
    node = pop3_node(nodes)
    before = stored(node)
    with RawPop3(node.pop3) as p:
        for cmd in ("STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 0", "RSET", "NOOP",
                    "BOGUS"):
            assert_err(p, cmd)
        p.login(ALICE)
        for cmd in ("USER " + ALICE, "PASS pw-secret", "AUTH PLAIN", "RETR 0", "RETR 2",
                    "RETR x", "LIST 99", "UIDL 0", "DELE 2", "TOP 1", "TOP 1 x",
                    "BOGUS"):
            assert_err(p, cmd)
        p.ok("DELE 1")
        assert_err(p, "DELE 1")
        assert_err(p, "RETR 1")
        p.ok("RSET")
        assert p.retr(1).endswith(b"body\r\n")
        p.ok("NOOP")
        p.quit()
    assert mailbox_size(node, ALICE) == 1
    assert_still_serves(node, before)


def test_pop3_error_limit_disconnects(nodes):
    node = start(nodes)
    with RawPop3(node.pop3) as p:
        p.send(b"BOGUS\r\n" * 12)
        lines = []
        while True:
            try:
                lines.append(p.status())
            except (Closed, ConnectionResetError):
                break
        assert all(line.startswith(b"-ERR") for line in lines), lines
        assert 6 <= len(lines) <= 7, lines  # hard limit 6, then (maybe) a closing -ERR
    assert_still_serves(node, stored(node))


def test_max_commands_per_session(nodes):
    node = start(nodes, limits={"smtp_max_commands": 10, "pop3_max_commands": 10})
    with session(node) as c:  # EHLO was command 1
        c.send(b"NOOP\r\n" * 12)
        codes = []
        while True:
            try:
                codes.append(c.reply()[0])
            except (Closed, ConnectionResetError):
                break
        assert codes == [250] * 9 + [421], codes
    with RawPop3(node.pop3) as p:
        p.send(b"CAPA\r\n" * 12)
        out = p.read_to_eof(timeout=10)
        assert out.count(b"+OK") == 10 and out.rstrip().splitlines()[-1].startswith(b"-ERR"), out
    assert_still_serves(node, stored(node))


def test_slow_but_steady_reader_is_not_cut_off(nodes):
    """write_timeout_s is about a client that stops reading, not one that reads
    slowly: a 12 MiB RETR read at about 3 MiB/s takes longer than the 2 s
    write timeout in total but makes progress all the time."""
    node = start(nodes, limits={"smtp_max_message_bytes": 26214400},
                 server={"write_timeout_s": 2})
    big = fast_message(12 << 20, "steady")
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        c.send_message("x@example.org", [ALICE], big)
        c.quit()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(20)
    s.connect(node.pop3)
    try:
        s.sendall(b"USER %s\r\nPASS pw-secret\r\nRETR 1\r\n" % ALICE.encode())
        data = bytearray()
        t0 = time.monotonic()
        while not data.endswith(b"\r\n.\r\n") and time.monotonic() - t0 < 30:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            time.sleep(0.02)  # pacing: about 3 MiB/s at most
        elapsed = time.monotonic() - t0
    finally:
        s.close()
    assert data.endswith(b"\r\n.\r\n"), (
        "connection closed after %d of %d bytes in %.1f s" % (len(data), len(big), elapsed))
    assert elapsed > 2.5, "the read was not slower than the write timeout (%.1f s)" % elapsed
    body = bytes(data).split(b"\r\n", 4)[4]  # after the greeting and +OK USER, PASS, RETR
    assert_delivered(unstuff(body[:-3]), big)
    assert_still_serves(node, stored(node))


def test_shutdown_with_a_stuck_writer_is_bounded(nodes):
    """SIGTERM while a client never reads a big RETR (write timeout 60 s): the
    node drains for at most 10 s and exits 0."""
    node = start(nodes, limits={"smtp_max_message_bytes": 26214400},
                 server={"write_timeout_s": 60})
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        c.send_message("x@example.org", [ALICE], fast_message(8 << 20, "stuck"))
        c.quit()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(20)
    s.connect(node.pop3)
    try:
        s.sendall(b"USER %s\r\nPASS pw-secret\r\nRETR 1\r\nRETR 1\r\n" % ALICE.encode())
        time.sleep(0.5)  # let the node fill the socket buffers (no observable condition)
        t0 = time.monotonic()
        node.kill(signal.SIGTERM)
        # While it drains: not ready, no new connections, still alive.
        wait_for(lambda: node.http("GET", "/readyz", timeout=2)[0] == 503, 5,
                 what="/readyz to turn 503 during the drain")
        assert node.http("GET", "/healthz", timeout=2)[0] == 200
        wait_for(lambda: port_closed(*node.smtp), 5, what="the SMTP listener to close")
        rc = node.wait_exit(timeout=30)
        took = time.monotonic() - t0
    finally:
        s.close()
    assert rc == 0, "exit status %s:\n%s" % (rc, node.log_tail())
    assert took < 14, "shutdown took %.1f s; the drain is bounded at 10 s" % took

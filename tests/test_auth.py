"""Logins (issue #14, docs/security.md): the login throttle, fast right passwords and no
account-existence oracle, with real clients (poplib, imaplib, raw sockets).

Every client socket is bound to a chosen loopback source address (127.0.0.0/8 is all local
on Linux), so that "another address" is really another address to the node: loopback is
counted like any client.
"""

import base64
import imaplib
import poplib
import socket
import statistics
import threading
import time

from cluster import DEFAULT_PASSWORD, DOMAIN, wait_for

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN

# Small limits keep the tests fast: three failures answered at once, then
# 100, 200, 400, 800, 800 ms; the eighth failure locks for 3 s.
THROTTLE = {"failures_before_delay": 3, "delay_initial_ms": 100, "delay_max_ms": 800,
            "failures_before_lockout": 8, "lockout_s": 3, "failure_memory_s": 60}
EXPECTED_DELAYS = [0, 0, 0, 0.1, 0.2, 0.4, 0.8, 0.8]
OUT_OF_THE_WAY = {"failures_before_delay": 1000000, "failures_before_lockout": 1000001}


class POP3From(poplib.POP3):
    """poplib.POP3 from a chosen source address."""

    def __init__(self, addr, source, timeout=60):
        self._source = source
        super().__init__(addr[0], addr[1], timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._source, 0))


class IMAPFrom(imaplib.IMAP4):
    """imaplib.IMAP4 from a chosen source address."""

    def __init__(self, addr, source, timeout=60):
        self._source = source
        super().__init__(addr[0], addr[1], timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._source, 0))


def pop3_login(node, user, password, source):
    """USER/PASS on a new connection: (the reply to PASS, seconds it took)."""
    p = POP3From(node.pop3, source)
    try:
        p.user(user)
        start = time.monotonic()
        try:
            reply = p.pass_(password)
        except poplib.error_proto as e:
            reply = e.args[0]
        took = time.monotonic() - start
        return reply.decode(), took
    finally:
        try:
            p.quit()
        except (poplib.error_proto, OSError):
            p.close()


def pop3_auth_plain(node, user, password, source):
    """AUTH PLAIN with an initial response on a new connection: the reply."""
    p = POP3From(node.pop3, source)
    try:
        token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        try:
            return p._shortcmd("AUTH PLAIN " + token).decode()
        except poplib.error_proto as e:
            return e.args[0].decode()
    finally:
        p.close()


def imap_login(m, user, password):
    """LOGIN on an open imaplib session: "OK" or the text of the NO."""
    try:
        typ, _ = m.login(user, password)
        return typ
    except imaplib.IMAP4.error as e:
        return str(e)


def test_pop3_failures_are_delayed_then_refused_while_others_log_in_fast(nodes):
    node = nodes.start(overrides={"auth": THROTTLE})
    node.add_users([ALICE, BOB])
    # Alice's usual client, before the attack: its (address, account) pair is trusted.
    assert pop3_login(node, ALICE, DEFAULT_PASSWORD, "127.0.0.3")[0].startswith("+OK")

    attempts = []

    def attack():
        for i in range(30):
            attempts.append(pop3_login(node, ALICE, "guess-%d" % i, "127.0.0.1"))

    attacker = threading.Thread(target=attack)
    attacker.start()
    try:
        # While the attacker's answers are held back, others log in at once: bob from
        # another address, and alice from her usual one (also once her account is locked).
        wait_for(lambda: len(attempts) >= 4, 60, what="the attacker's fourth answer")
        others = []
        for _ in range(6):
            for who, source in ((BOB, "127.0.0.2"), (ALICE, "127.0.0.3")):
                reply, took = pop3_login(node, who, DEFAULT_PASSWORD, source)
                assert reply.startswith("+OK"), (who, reply)
                others.append(took)
    finally:
        attacker.join(120)
    assert not attacker.is_alive()
    replies = [r for r, _ in attempts]
    times = [t for _, t in attempts]
    assert all(r.startswith("-ERR [AUTH] ") for r in replies[:8]), replies
    assert all(r.startswith("-ERR [SYS/TEMP] too many failed logins") for r in replies[8:]), \
        replies
    # The delays grow (each at least its configured value), up to the cap.
    for took, want in zip(times, EXPECTED_DELAYS):
        assert took >= want * 0.95, (times, EXPECTED_DELAYS)
    assert times[3] < times[5] < times[6], times
    # Refusals are immediate (no password is checked), and so were the others' logins.
    assert statistics.median(times[8:]) < 0.3, times
    assert statistics.median(others) < 0.3, others
    # The account is locked for any new address, right password or not, in any protocol.
    reply, _ = pop3_login(node, ALICE, DEFAULT_PASSWORD, "127.0.0.4")
    assert reply.startswith("-ERR [SYS/TEMP] too many failed logins"), reply
    assert pop3_auth_plain(node, ALICE, DEFAULT_PASSWORD, "127.0.0.4").startswith(
        "-ERR [SYS/TEMP] too many failed logins")
    m = node.metrics()
    assert m["porcupine_auth_failures_total"] == 8, m
    assert m["porcupine_auth_delayed_total"] == 5, m
    assert m['porcupine_auth_refused_total{by="address"}'] == 22, m
    assert m['porcupine_auth_refused_total{by="account"}'] == 2, m


def test_imap_failures_lock_the_address_for_every_protocol(nodes):
    node = nodes.start(overrides={"auth": THROTTLE})
    node.add_users([ALICE, BOB])
    m = IMAPFrom(node.imap, "127.0.0.1")
    try:
        # One session may try again and again: every LOGIN counts.
        for i in range(8):
            got = imap_login(m, ALICE, "guess-%d" % i)
            assert "[AUTHENTICATIONFAILED]" in got, (i, got)
        got = imap_login(m, ALICE, DEFAULT_PASSWORD)
        assert "[UNAVAILABLE] Too many failed logins" in got, got
    finally:
        m.shutdown()
    # The address is locked for AUTHENTICATE and for POP3 too, whichever account ...
    m = IMAPFrom(node.imap, "127.0.0.1")
    try:
        token = ("\0%s\0%s" % (BOB, DEFAULT_PASSWORD)).encode()
        try:
            m.authenticate("PLAIN", lambda _: token)
            got = "OK"
        except imaplib.IMAP4.error as e:
            got = str(e)
        assert "[UNAVAILABLE] Too many failed logins" in got, got
    finally:
        m.shutdown()
    assert pop3_login(node, BOB, DEFAULT_PASSWORD, "127.0.0.1")[0].startswith("-ERR [SYS/TEMP]")
    # ... while another address logs in as bob.
    m = IMAPFrom(node.imap, "127.0.0.2")
    try:
        assert imap_login(m, BOB, DEFAULT_PASSWORD) == "OK"
        m.logout()
    except BaseException:
        m.shutdown()
        raise


def test_lockout_ends_after_its_time(nodes):
    node = nodes.start(overrides={"auth": THROTTLE})
    node.add_users([ALICE])
    for i in range(8):
        assert pop3_login(node, ALICE, "guess-%d" % i, "127.0.0.1")[0].startswith("-ERR [AUTH]")
    # The lock began when the eighth password was checked, before its answer's delay.
    locked_by = time.monotonic()
    reply, _ = pop3_login(node, ALICE, DEFAULT_PASSWORD, "127.0.0.1")
    assert reply.startswith("-ERR [SYS/TEMP] too many failed logins"), reply

    def logged_in():
        reply, _ = pop3_login(node, ALICE, DEFAULT_PASSWORD, "127.0.0.1")
        assert reply.startswith(("+OK", "-ERR [SYS/TEMP] too many failed logins")), reply
        return reply.startswith("+OK")

    wait_for(logged_in, THROTTLE["lockout_s"] + 10, interval=0.1, what="the lockout to end")
    waited = time.monotonic() - locked_by
    lockout, delay = THROTTLE["lockout_s"], THROTTLE["delay_max_ms"] / 1000
    assert waited >= lockout - delay - 0.1, waited


def test_unknown_user_costs_what_a_wrong_password_costs(nodes):
    # A real argon2id cost (16 MiB, 2 passes: tens of ms) and the throttle out of the way.
    auth = {"argon2_opslimit": 2, "argon2_memlimit_kib": 16384}
    auth.update(OUT_OF_THE_WAY)
    node = nodes.start(overrides={"auth": auth})
    node.add_users([ALICE])
    known, unknown = [], []
    for i in range(15):
        source = "127.0.1.%d" % (i + 1)
        reply, took = pop3_login(node, ALICE, "wrong-%d" % i, source)
        assert reply.startswith("-ERR [AUTH] "), reply
        known.append(took)
        reply, took = pop3_login(node, "nobody%d@%s" % (i, DOMAIN), "wrong", source)
        assert reply.startswith("-ERR [AUTH] "), reply
        unknown.append(took)
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 <= ratio <= 2.0, (ratio, sorted(known), sorted(unknown))


def imap_burst(node, users, per_user, source="127.0.0.1"):
    """Opens per_user sessions for each user, then sends every LOGIN at once: the replies."""
    conns = []
    try:
        for i in range(len(users) * per_user):
            s = socket.create_connection(node.imap, timeout=60, source_address=(source, 0))
            f = s.makefile("rwb", buffering=0)
            conns.append((s, f, users[i % len(users)]))
            assert f.readline().startswith(b"* OK")
        for s, _, user in conns:
            s.sendall(b"a LOGIN %s %s\r\n" % (user.encode(), DEFAULT_PASSWORD.encode()))
        replies = []
        for _, f, _ in conns:
            line = f.readline()
            while line.startswith(b"*"):
                line = f.readline()
            replies.append(line)
        return replies
    finally:
        for s, _, _ in conns:
            s.close()


def test_concurrent_logins_share_one_verification_then_the_cache(nodes):
    node = nodes.start(overrides={"auth": {"argon2_opslimit": 2, "argon2_memlimit_kib": 16384}})
    users = node.add_users(["burst%d@%s" % (i, DOMAIN) for i in range(10)])
    verifications = lambda: node.metric("porcupine_auth_verifications_total")  # noqa: E731
    before = verifications()
    replies = imap_burst(node, users, 5)
    assert all(r.startswith(b"a OK") for r in replies), replies
    cold = verifications() - before
    # Each user's first login verifies; the other four sessions of the user wait for
    # that verification (a late one may find the cache). Without sharing: 50.
    assert 10 <= cold <= 15, cold
    hits = node.metric("porcupine_auth_cache_hits_total")
    replies = imap_burst(node, users, 5)
    assert all(r.startswith(b"a OK") for r in replies), replies
    assert verifications() - before == cold
    assert node.metric("porcupine_auth_cache_hits_total") - hits == 50


def test_a_password_change_forgets_the_remembered_password(node):
    source = "127.0.0.5"
    assert pop3_login(node, ALICE, DEFAULT_PASSWORD, source)[0].startswith("+OK")
    assert pop3_login(node, ALICE, DEFAULT_PASSWORD, source)[0].startswith("+OK")  # cached
    status, body = node.http("PUT", "/v1/users/%s/password" % ALICE, {"password": "new-pw"})
    assert status == 204, (status, body)
    assert pop3_login(node, ALICE, DEFAULT_PASSWORD, source)[0].startswith("-ERR [AUTH]")
    assert pop3_login(node, ALICE, "new-pw", source)[0].startswith("+OK")

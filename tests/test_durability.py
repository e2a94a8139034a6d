"""SIGKILL at arbitrary points loses nothing that was acknowledged.

What counts as acknowledged is recorded on the client side only: a message is
acknowledged when its 250 after DATA has arrived; a POP3 deletion when the +OK
to QUIT has. After every kill the node is restarted and every acknowledged
message must be there byte for byte; anything else found must be a complete
message that some client sent (never a torn or partial one), stored once.
"""

import random
import re
import signal
import threading
import time

from cluster import DOMAIN
from mailclient import CRLF, Closed, RawPop3, RawSmtp, make_message, retrieve_all, split_received, stuff

USERS = ["dur%d@%s" % (i, DOMAIN) for i in range(5)]
ID_RE = re.compile(rb"X-Test-Id: ([a-z0-9-]+)\r\n")
BACKGROUND_SENDERS = 3
CYCLE_DEADLINE_S = 40.0
MAX_PER_SENDER = 400  # bounds each sender loop even if the kill never comes


class Ledger:
    """Client-side record of what was sent and what was acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempted = {}  # id -> (rcpt, data), recorded before the first byte is sent
        self.acked = set()
        self.never_completed = set()  # DATA never ended: must never be stored
        self.errors = []  # failures that happened before the kill
        self.killed = threading.Event()
        self.seq = 0

    def new_message(self, who, size=None):
        with self.lock:
            self.seq += 1
            mid = "%s-%d" % (who, self.seq)
        rnd = random.Random(mid)
        size = size or rnd.choice([rnd.randint(100, 3000), rnd.randint(3000, 60000)])
        data = b"X-Test-Id: " + mid.encode() + CRLF + make_message(size, seed=self.seq, tag=mid)
        rcpt = USERS[rnd.randrange(len(USERS))]
        with self.lock:
            self.attempted[mid] = (rcpt, data)
        return mid, rcpt, data

    def ack(self, mid):
        with self.lock:
            self.acked.add(mid)

    def acked_count(self):
        with self.lock:
            return len(self.acked)


def send_one(c, ledger, who, size=None):
    mid, rcpt, data = ledger.new_message(who, size)
    c.send("MAIL FROM:<%s@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (who, rcpt))
    for want in (250, 250, 354):
        got = c.reply()
        assert got[0] == want, (want, got)
    c.send(stuff(data) + b".\r\n")
    got = c.reply()
    assert got[0] == 250, got
    ledger.ack(mid)  # right after the reply arrived
    return mid


def background_sender(node, ledger, who, deadline):
    try:
        with RawSmtp(node.smtp, timeout=20) as c:
            c.ehlo()
            for _ in range(MAX_PER_SENDER):
                if ledger.killed.is_set() or time.monotonic() > deadline:
                    return
                send_one(c, ledger, who)
    except Exception as e:
        if not ledger.killed.is_set():
            ledger.errors.append("%s before the kill: %r" % (who, e))


def kill(node, ledger):
    ledger.killed.set()
    node.kill(signal.SIGKILL)


def verify(node, ledger, uids_seen):
    """Every acked message present and exact; everything present complete and unique."""
    present = {}
    for user in USERS:
        for uid, got in retrieve_all(node, user):
            m = ID_RE.search(got)
            assert m, "stored message without our id (torn?): %r" % got[:300]
            mid = m.group(1).decode()
            assert mid in ledger.attempted, "unknown message %s" % mid
            rcpt, data = ledger.attempted[mid]
            assert rcpt == user, "%s stored for %s, sent to %s" % (mid, user, rcpt)
            split_received(got, data)
            assert mid not in present, "%s stored twice" % mid
            present[mid] = uid
            if mid in uids_seen:
                assert uids_seen[mid] == uid, "UIDL of %s changed across a crash" % mid
            uids_seen[mid] = uid
    missing = ledger.acked - set(present)
    assert not missing, "%d acknowledged messages lost after SIGKILL: %s" % (
        len(missing), sorted(missing)[:10])
    stored_partial = ledger.never_completed & set(present)
    assert not stored_partial, "messages whose DATA never ended were stored: %s" % stored_partial
    return present


def test_sigkill_loses_no_acknowledged_message(nodes):
    node = nodes.start()
    node.add_users(USERS)
    rnd = random.Random(20250602)
    ledger = Ledger()
    uids_seen = {}
    modes = ["after_ack", "mid_data", "random_time"] * 4
    for cycle, mode in enumerate(modes):
        ledger.killed.clear()
        deadline = time.monotonic() + CYCLE_DEADLINE_S
        bg = [threading.Thread(target=background_sender, daemon=True,
                               args=(node, ledger, "c%db%d" % (cycle, k), deadline))
              for k in range(BACKGROUND_SENDERS)]
        for th in bg:
            th.start()
        who = "c%dmain" % cycle
        with RawSmtp(node.smtp, timeout=20) as c:
            c.ehlo()
            if mode == "after_ack":
                # Kill right after the k-th 250 arrives, other senders in flight.
                k = rnd.randint(3, 40)
                for _ in range(k):
                    send_one(c, ledger, who)
                kill(node, ledger)
            elif mode == "mid_data":
                for _ in range(rnd.randint(1, 10)):
                    send_one(c, ledger, who)
                mid, rcpt, data = ledger.new_message(who, size=200000)
                ledger.never_completed.add(mid)
                c.send("MAIL FROM:<x@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n" % rcpt)
                assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]
                c.send(stuff(data)[:len(data) // 2])
                kill(node, ledger)
            else:
                # A random moment while the background senders run.
                end = time.monotonic() + rnd.uniform(0.05, 0.6)
                while time.monotonic() < end:
                    send_one(c, ledger, who)
                kill(node, ledger)
        for th in bg:
            th.join(timeout=30)
            assert not th.is_alive(), "a sender hung after the kill"
        assert not ledger.errors, ledger.errors

        node.start()
        present = verify(node, ledger, uids_seen)
        assert len(present) >= len(ledger.acked) > 0
        print("cycle %d (%s): %d attempted, %d acknowledged, %d stored"
              % (cycle, mode, len(ledger.attempted), len(ledger.acked), len(present)))

    # A clean restart keeps everything as well.
    node.restart()
    verify(node, ledger, uids_seen)


def test_pop3_deletion_acknowledged_by_quit_survives_sigkill(nodes):
    node = nodes.start()
    user = USERS[0]
    node.add_user(user)
    msgs = []
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        for i in range(8):
            data = make_message(500 + i, seed=i, tag="del%d" % i)
            c.send_message("x@example.org", [user], data)
            msgs.append(data)
        c.quit()

    with RawPop3(node.pop3) as p:
        p.login(user)
        uids = p.uidl()
        for n in (1, 3, 5):
            p.ok("DELE %d" % n)
        p.quit()  # +OK only after the deletion is durable
    node.kill(signal.SIGKILL)
    node.start()
    left = retrieve_all(node, user)
    assert [uid for uid, _ in left] == [uids[n] for n in (2, 4, 6, 7, 8)]
    for (_, got), n in zip(left, (2, 4, 6, 7, 8)):
        split_received(got, msgs[n - 1])

    # DELE without QUIT, then SIGKILL: nothing deleted.
    p = RawPop3(node.pop3)
    p.login(user)
    p.ok("DELE 1")
    p.ok("DELE 2")
    node.kill(signal.SIGKILL)
    p.close()
    node.start()
    assert [uid for uid, _ in retrieve_all(node, user)] == [uids[n] for n in (2, 4, 6, 7, 8)]


def test_sigterm_under_load_keeps_every_acknowledged_message(nodes):
    node = nodes.start()
    node.add_users(USERS)
    ledger = Ledger()
    idle = []
    for _ in range(50):
        c = RawSmtp(node.smtp, timeout=20)
        c.ehlo()
        idle.append(c)
    deadline = time.monotonic() + CYCLE_DEADLINE_S
    bg = [threading.Thread(target=background_sender, daemon=True,
                           args=(node, ledger, "t%d" % k, deadline)) for k in range(4)]
    for th in bg:
        th.start()
    while ledger.acked_count() < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    ledger.killed.set()  # from now on senders may see 421 or a close
    t0 = time.monotonic()
    node.kill(signal.SIGTERM)
    for c in idle:
        c.settimeout(20)
        try:
            code, lines = c.reply()
            assert code == 421, (code, lines)
        except (Closed, ConnectionResetError):
            pass  # a clean close is acceptable too
        c.close()
    for th in bg:
        th.join(timeout=30)
        assert not th.is_alive()
    assert node.wait_exit(timeout=25) == 0
    assert time.monotonic() - t0 < 12, "shutdown with idle sessions took too long"
    assert not ledger.errors, ledger.errors
    node.start()
    verify(node, ledger, {})

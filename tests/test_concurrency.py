"""Many concurrent senders and readers: nothing lost, duplicated or mixed up."""

import random
import re
import threading
import time

from cluster import DOMAIN, wait_for
from mailclient import CRLF, RawPop3, RawSmtp, make_message, smtp_client, split_received, stuff

SENDERS = 8
PER_SENDER = 200
USERS = ["user%02d@%s" % (i, DOMAIN) for i in range(50)]
DEADLINE_S = 150.0
ID_RE = re.compile(rb"X-Test-Id: (t\d+-\d+)\r\n")


def message_for(thread, i):
    """A distinct message: unique id header, size and content vary per id."""
    mid = "t%d-%d" % (thread, i)
    rnd = random.Random(mid)
    body = make_message(rnd.randint(60, 6000), seed=thread * 100000 + i, tag=mid)
    return mid, b"X-Test-Id: " + mid.encode() + CRLF + body


def sender_smtplib(node, thread, expected, errors, lock, deadline):
    """Sends through smtplib, reconnecting every 50 messages."""
    try:
        s = None
        for i in range(PER_SENDER):
            if time.monotonic() > deadline:
                raise AssertionError("sender %d out of time at %d" % (thread, i))
            if s is None:
                s = smtp_client(node)
                s.ehlo()
            mid, data = message_for(thread, i)
            rcpt = USERS[(thread * PER_SENDER + i) % len(USERS)]
            code, resp = s.mail("s%d@example.org" % thread)
            assert code == 250, resp
            code, resp = s.rcpt(rcpt)
            assert code == 250, resp
            code, resp = s.data(data)
            assert code == 250, resp
            with lock:
                expected[mid] = (rcpt, data)
            if i % 50 == 49:
                s.quit()
                s = None
        if s is not None:
            s.quit()
    except Exception as e:  # reported by the main thread
        errors.append("sender %d: %r" % (thread, e))


def sender_pipelined(node, thread, expected, errors, lock, deadline):
    """Sends with RFC 2920 pipelining: MAIL, RCPT, DATA in one write."""
    try:
        with RawSmtp(node.smtp) as c:
            c.ehlo()
            for i in range(PER_SENDER):
                if time.monotonic() > deadline:
                    raise AssertionError("sender %d out of time at %d" % (thread, i))
                mid, data = message_for(thread, i)
                rcpt = USERS[(thread * PER_SENDER + i) % len(USERS)]
                c.send("MAIL FROM:<s%d@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (thread, rcpt))
                for want in (250, 250, 354):
                    got = c.reply()
                    assert got[0] == want, (want, got)
                c.send(stuff(data) + b".\r\n")
                got = c.reply()
                assert got[0] == 250, got
                with lock:
                    expected[mid] = (rcpt, data)
            c.quit()
    except Exception as e:
        errors.append("sender %d: %r" % (thread, e))


def reader(node, users, expected, found, errors, lock):
    """Retrieves, checks and deletes every message of `users`."""
    try:
        for user in users:
            with RawPop3(node.pop3) as p:
                p.login(user)
                uids = p.uidl()
                sizes = p.list()
                for n in sorted(uids):
                    got = p.retr(n)
                    assert len(got) == sizes[n], "LIST size differs from RETR octets"
                    m = ID_RE.search(got)
                    assert m, "message without X-Test-Id: %r" % got[:300]
                    mid = m.group(1).decode()
                    rcpt, data = expected[mid]
                    assert rcpt == user, "%s delivered to %s, not %s" % (mid, user, rcpt)
                    split_received(got, data)
                    with lock:
                        assert mid not in found, "message %s stored twice" % mid
                        found.add(mid)
                    p.ok("DELE %d" % n)
                p.quit()
    except Exception as e:
        errors.append("reader %s: %r" % (users[:1], e))


def test_concurrent_senders_then_readers(nodes):
    node = nodes.start()
    node.add_users(USERS)
    deadline = time.monotonic() + DEADLINE_S
    expected, errors, lock = {}, [], threading.Lock()
    threads = []
    for t in range(SENDERS):
        fn = sender_pipelined if t % 4 == 3 else sender_smtplib
        threads.append(threading.Thread(target=fn, daemon=True,
                                        args=(node, t, expected, errors, lock, deadline)))
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=max(1.0, deadline - time.monotonic()))
        assert not th.is_alive(), "a sender hung"
    assert not errors, errors
    assert len(expected) == SENDERS * PER_SENDER

    assert node.metric("porcupine_messages_stored_total") == SENDERS * PER_SENDER
    syncs = node.metric("porcupine_store_syncs_total")
    batches = node.metric("porcupine_store_batches_total")
    assert batches >= SENDERS * PER_SENDER, "one batch per delivery at least"
    assert 0 < syncs < batches, "no group commit: %s syncs for %s batches" % (syncs, batches)
    # The batches-per-sync histogram accounts for every group and batch.
    assert node.metric("porcupine_store_group_batches_count") == syncs
    assert node.metric("porcupine_store_group_batches_sum") == batches
    assert node.metric("porcupine_store_group_batches_bucket", le="+Inf") == syncs

    # Five readers in parallel, ten users each.
    found = set()
    readers = [threading.Thread(target=reader, daemon=True,
                                args=(node, USERS[k::5], expected, found, errors, lock))
               for k in range(5)]
    for th in readers:
        th.start()
    for th in readers:
        th.join(timeout=max(1.0, deadline + 60 - time.monotonic()))
        assert not th.is_alive(), "a reader hung"
    assert not errors, errors
    missing = set(expected) - found
    assert not missing, "%d acknowledged messages missing, e.g. %s" % (
        len(missing), sorted(missing)[:5])

    for user in USERS:
        with RawPop3(node.pop3) as p:
            p.login(user)
            assert p.stat() == (0, 0), "%s not empty after DELE+QUIT" % user
            p.quit()
    assert node.metric("porcupine_messages_deleted_total") == SENDERS * PER_SENDER
    assert node.metric("porcupine_sessions_total", protocol="smtp") >= SENDERS
    wait_for(lambda: node.metric("porcupine_sessions_active", protocol="smtp") == 0, 10,
             what="SMTP sessions to end")


def test_many_simultaneous_connections(nodes):
    node = nodes.start(overrides={"server": {"max_connections": 400}})
    users = node.add_users(["many%d@%s" % (i, DOMAIN) for i in range(10)])
    conns = []
    try:
        for i in range(300):
            c = RawSmtp(node.smtp, timeout=30)
            c.ehlo()
            conns.append(c)
        # Every open session gets its envelope in, then all send their data.
        for i, c in enumerate(conns):
            c.send("MAIL FROM:<m%d@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                   % (i, users[i % 10]))
        for c in conns:
            assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]
        for i, c in enumerate(conns):
            c.send(b"X-Test-Id: many-%d\r\n\r\nbody %d\r\n.\r\n" % (i, i))
        for c in conns:
            assert c.reply()[0] == 250
            c.quit()
    finally:
        for c in conns:
            c.close()
    total = 0
    for user in users:
        with RawPop3(node.pop3) as p:
            p.login(user)
            total += p.stat()[0]
            p.quit()
    assert total == 300

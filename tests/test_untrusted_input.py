"""Limits on untrusted input found by probing a node (issue #14, item 8;
docs/security.md): IMAP lines must end in CRLF; SMTP sessions in DATA and IMAP
APPEND literals share one node-wide memory budget; one client address may hold
only so many connections."""

import collections
import socket
import threading
import time

import pytest

import smtpflood
from cluster import DEFAULT_PASSWORD, DOMAIN, wait_for
from mailclient import imap_client, pop3_client, split_received

ALICE = "alice@" + DOMAIN
IO_TIMEOUT_S = 20


class RawImap:
    """A raw IMAP connection: bytes out, CRLF-ended lines in."""

    def __init__(self, node):
        self.sock = socket.create_connection(node.imap, timeout=IO_TIMEOUT_S)
        self.file = self.sock.makefile("rb")
        assert self.line().startswith(b"* OK")

    def line(self):
        row = self.file.readline()
        assert row.endswith(b"\r\n"), "server line without CRLF: %r" % (row,)
        return row

    def send(self, data):
        self.sock.sendall(data)

    def until_tagged(self, tag):
        """Every line up to and including the one tagged `tag`."""
        rows = []
        while True:
            rows.append(self.line())
            if rows[-1].startswith(tag + b" "):
                return rows

    def close(self):
        self.file.close()
        self.sock.close()


def test_imap_bare_lf_gets_bad_and_the_session_goes_on(node):
    c = RawImap(node)
    try:
        # A command line ended by LF alone does not run: BAD, tagged.
        c.send(b"a1 LOGIN %s %s\n" % (ALICE.encode(), DEFAULT_PASSWORD.encode()))
        assert c.line().startswith(b"a1 BAD ")
        c.send(b"a2 SELECT INBOX\r\n")
        assert c.until_tagged(b"a2")[-1].startswith(b"a2 BAD"), "not logged in: SELECT is BAD"
        c.send(b"a3 LOGIN %s %s\r\n" % (ALICE.encode(), DEFAULT_PASSWORD.encode()))
        assert c.until_tagged(b"a3")[-1].startswith(b"a3 OK")
        # A synchronizing literal announced on a bare-LF line gets no "+".
        c.send(b"a4 APPEND INBOX {5}\n")
        assert c.line().startswith(b"a4 BAD ")
        # Literal octets are data: bare LFs inside are stored as sent.
        body = b"Subject: lf\n\nline one\nline two\n"
        c.send(b"a5 APPEND INBOX {%d}\r\n" % len(body))
        assert c.line().startswith(b"+")
        c.send(body + b"\r\n")
        assert c.until_tagged(b"a5")[-1].startswith(b"a5 OK")
        c.send(b"a6 LOGOUT\r\n")
        c.until_tagged(b"a6")
    finally:
        c.close()
    m = imap_client(node, ALICE, DEFAULT_PASSWORD, IO_TIMEOUT_S)
    try:
        typ, data = m.select("INBOX")
        assert typ == "OK" and int(data[0]) == 1, data
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK", data
        assert data[0][1] == body
    finally:
        m.logout()


def test_imap_idle_done_needs_crlf(node):
    c = RawImap(node)
    try:
        c.send(b"a LOGIN %s %s\r\nb SELECT INBOX\r\nc IDLE\r\n"
               % (ALICE.encode(), DEFAULT_PASSWORD.encode()))
        c.until_tagged(b"b")
        assert c.line().startswith(b"+ ")
        c.send(b"DONE\n")  # ends the IDLE, but as a bad line
        assert c.line().startswith(b"c BAD ")
        c.send(b"d NOOP\r\n")
        assert c.until_tagged(b"d")[-1].startswith(b"d OK")
    finally:
        c.close()


# What the node may hold beyond its SMTP DATA budget, over its memory before
# the flood: the store's copies while it writes (a commit group of up to 64 MiB
# copied into the RocksDB write batch, the body memtable until it is flushed),
# allocator slack. Measured: about 70 MiB; without the budget the flood below
# took about 1 GB.
STORE_OVERHEAD = 160 << 20


@pytest.mark.slow  # RSS under ASan is the sanitizer's quarantine and shadow, not the node's
def test_smtp_data_memory_is_one_budget_for_the_node(nodes):
    budget = 64 << 20
    size = 5 << 20
    node = nodes.start(overrides={"limits": {"smtp_data_memory_bytes": budget}})
    users = ["flood%d@%s" % (i, DOMAIN) for i in range(10)]
    node.add_users(users)
    before = smtpflood.peak_rss(node.proc.pid)
    rcpts = [users[i % len(users)] for i in range(100)]
    replies = smtpflood.flood(*node.smtp, rcpts, size)
    peak = smtpflood.peak_rss(node.proc.pid)

    kinds = collections.Counter(r[:9] for r in replies)
    assert peak - before <= budget + STORE_OVERHEAD, (
        "100 sessions of 5 MB took %d MiB over the %d MiB the node held before (budget %d MiB): %r"
        % ((peak - before) >> 20, before >> 20, budget >> 20, kinds))
    assert set(kinds) <= {"250 2.0.0", "452 4.3.1"}, replies
    assert kinds["250 2.0.0"] >= 1 and kinds["452 4.3.1"] >= 1, kinds
    assert node.metric("porcupine_smtp_data_memory_refused_total") == kinds["452 4.3.1"]
    assert node.metric("porcupine_smtp_data_memory_bytes") == 0
    assert 0 < node.metric("porcupine_smtp_data_memory_peak_bytes") <= budget
    assert node.metric("porcupine_smtp_data_memory_limit_bytes") == budget

    # The refused senders try again, one at a time: accepted now. What was
    # stored is whole.
    body = smtpflood.make_body(size)
    again = smtpflood.flood(*node.smtp, [users[0]], size)
    assert again == [again[0]] and again[0].startswith("250 2.0.0"), again
    p = pop3_client(node, users[0])
    try:
        count, _ = p.stat()
        assert count >= 1
        _, lines, _ = p.retr(count)
        split_received(b"".join(line + b"\r\n" for line in lines), body)
    finally:
        p.quit()


# ---- IMAP APPEND shares the budget (limits.message_memory_bytes) ----------------------

def imap_message(size, tag):
    head = b"Subject: append %s\r\n\r\n" % tag.encode()
    line = b"0123456789abcdef" * 4 + b"\r\n"
    return head + (line * (size // len(line) + 1))[:size - len(head)]


@pytest.mark.slow  # RSS under ASan is the sanitizer's quarantine and shadow, not the node's
def test_imap_appends_share_the_message_memory_budget(nodes):
    """40 imaplib clients APPEND 8 MiB each at once under a 64 MiB budget: the node
    holds at most the budget (plus its fixed part); the rest get NO [LIMIT] at once,
    without a continuation, and succeed when they try again."""
    budget = 64 << 20
    size = 8 << 20
    clients = 40
    node = nodes.start(overrides={"limits": {"message_memory_bytes": budget}})
    node.add_users([ALICE])
    sessions = [imap_client(node, ALICE, DEFAULT_PASSWORD, 60) for _ in range(clients)]
    before = smtpflood.peak_rss(node.proc.pid)
    body = imap_message(size, "flood")
    start = threading.Barrier(clients)
    results = [None] * clients

    def append(i):
        start.wait(timeout=30)
        try:
            results[i] = sessions[i].append("INBOX", None, None, body)
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = ("EXC", [repr(e).encode()])

    threads = [threading.Thread(target=append, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "an APPEND did not finish"
    peak = smtpflood.peak_rss(node.proc.pid)

    kinds = collections.Counter(typ for typ, _ in results)
    refused = [data for typ, data in results if typ == "NO"]
    print("40 x 8 MiB APPENDs under 64 MiB: %r; RSS %d -> %d MiB"
          % (dict(kinds), before >> 20, peak >> 20))
    assert set(kinds) <= {"OK", "NO"}, results
    assert kinds["OK"] >= 1 and kinds["NO"] >= 1, kinds
    for data in refused:
        assert data[0].startswith(b"[LIMIT] "), data
    assert peak - before <= budget + STORE_OVERHEAD, (
        "40 APPENDs of 8 MiB took %d MiB over the %d MiB the node held before (budget %d MiB)"
        % ((peak - before) >> 20, before >> 20, budget >> 20))
    assert node.metric("porcupine_message_memory_refused_total") >= kinds["NO"]
    assert node.metric("porcupine_message_memory_bytes") == 0
    assert 0 < node.metric("porcupine_message_memory_peak_bytes") <= budget
    # The old names show the same budget.
    assert node.metric("porcupine_smtp_data_memory_limit_bytes") == budget

    # A refused client tries again alone: taken, and stored whole.
    m = sessions[0]
    typ, data = m.append("INBOX", None, None, body)
    assert typ == "OK", data
    typ, data = m.select("INBOX")
    assert typ == "OK" and int(data[0]) == kinds["OK"] + 1, (data, kinds)
    typ, data = m.fetch(data[0].decode(), "(BODY.PEEK[])")
    assert typ == "OK" and data[0][1] == body
    for s in sessions:
        s.logout()


def test_imap_literal_plus_over_the_budget_is_discarded_not_buffered(nodes):
    """One session holds most of the budget with an announced literal it never sends;
    another's LITERAL+ APPEND is refused NO [LIMIT], its octets read and dropped (its
    session goes on, the octets are not run as commands, the budget is untouched), and
    the budget is whole again when the first one goes."""
    budget = 56 << 20  # at least 2 x smtp_max_message_bytes (25 MiB) + 1 MiB
    node = nodes.start(overrides={"limits": {"message_memory_bytes": budget}})
    node.add_users([ALICE])
    login = b"l LOGIN %s %s\r\n" % (ALICE.encode(), DEFAULT_PASSWORD.encode())
    holder = RawImap(node)
    other = RawImap(node)
    try:
        holder.send(login)
        holder.until_tagged(b"l")
        holder.send(b"h APPEND INBOX {%d}\r\n" % (48 << 20))
        assert holder.line().startswith(b"+ "), "the first literal fits: a continuation"
        assert node.metric("porcupine_message_memory_bytes") == 48 << 20

        other.send(login)
        other.until_tagged(b"l")
        octets = b"x LOGOUT\r\n" + imap_message(10 << 20, "plus")
        other.send(b"p APPEND INBOX {%d+}\r\n" % len(octets))
        other.send(octets + b"\r\n")
        reply = other.line()
        assert reply.startswith(b"p NO [LIMIT] "), reply
        other.send(b"n NOOP\r\n")
        rows = other.until_tagged(b"n")
        assert rows[-1].startswith(b"n OK"), rows
        assert not any(b"BYE" in r for r in rows), rows
        assert node.metric("porcupine_message_memory_bytes") == 48 << 20
        assert node.metric("porcupine_message_memory_peak_bytes") == 48 << 20
    finally:
        holder.close()
    # The holder's reservation goes with its connection.
    wait_for(lambda: node.metric("porcupine_message_memory_bytes") == 0, 10,
             what="the abandoned literal's reservation to be given back")
    try:
        body = imap_message(1 << 20, "after")
        other.send(b"q APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")
        assert other.until_tagged(b"q")[-1].startswith(b"q OK"), "fits again"
    finally:
        other.close()


# ---- connections per client address (limits.max_connections_per_address) ------------

def greeting(addr, timeout=IO_TIMEOUT_S):
    """Connects; returns (socket, first line)."""
    s = socket.create_connection(addr, timeout=timeout)
    return s, s.makefile("rb").readline()


def test_connections_per_address_are_limited(nodes):
    """With the loopback exemption off, one address gets 5 connections over every
    listener together; the sixth gets its protocol's busy reply and is closed. A closed
    connection gives its slot back."""
    node = nodes.start(overrides={"limits": {"max_connections_per_address": 5,
                                             "address_limit_exempts_loopback": False}})
    held = []
    try:
        for addr in (node.smtp, node.smtp, node.imap, node.pop3, node.imap):
            s, line = greeting(addr)
            held.append(s)
            assert line.startswith((b"220 ", b"* OK", b"+OK")), line
        s, line = greeting(node.smtp)
        assert line == b"421 4.7.0 Too many connections from your address, try again later\r\n"
        assert s.recv(1) == b"", "closed after the busy reply"
        s.close()
        s, line = greeting(node.imap)
        assert line.startswith(b"* BYE [UNAVAILABLE] Too many connections from your address")
        s.close()
        s, line = greeting(node.pop3)
        assert line.startswith(b"-ERR [SYS/TEMP] Too many connections from your address")
        s.close()
        assert node.metric("porcupine_sessions_refused_per_address_total", protocol="smtp") == 1
        assert node.metric("porcupine_sessions_refused_per_address_total", protocol="imap") == 1
        assert node.metric("porcupine_sessions_refused_per_address_total", protocol="pop3") == 1
        assert node.metric("porcupine_sessions_refused_total", protocol="smtp") == 0
        # One goes: its slot is free again (the node sees the close a moment later).
        held.pop(0).close()

        def sixth_accepted():
            s, line = greeting(node.smtp)
            if line.startswith(b"220 "):
                held.append(s)
                return True
            s.close()
            return False
        wait_for(sixth_accepted, 10, what="a freed slot for the address")
    finally:
        for s in held:
            s.close()


def test_loopback_is_exempt_by_default(nodes):
    """The default limit (50) does not count loopback peers: a webmail on the node's
    machine may hold more."""
    node = nodes.start()
    held = []
    try:
        for _ in range(60):
            s, line = greeting(node.imap)
            held.append(s)
            assert line.startswith(b"* OK"), (len(held), line)
        assert node.metric("porcupine_sessions_refused_per_address_total", protocol="imap") == 0
    finally:
        for s in held:
            s.close()

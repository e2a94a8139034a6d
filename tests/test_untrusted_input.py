"""Limits on untrusted input found by probing a node (issue #14, item 8;
docs/security.md): IMAP lines must end in CRLF, and SMTP sessions in DATA share
one node-wide memory budget."""

import collections
import socket

import pytest

import smtpflood
from cluster import DEFAULT_PASSWORD, DOMAIN
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

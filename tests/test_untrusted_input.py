"""Limits on untrusted input found by probing a node (issue #14, item 8;
docs/security.md): IMAP lines must end in CRLF, and SMTP sessions in DATA share
one node-wide memory budget."""

import socket

from cluster import DEFAULT_PASSWORD, DOMAIN
from mailclient import imap_client

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

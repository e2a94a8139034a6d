"""Byte-exact SMTP and POP3 clients over raw sockets, and message helpers.

smtplib and poplib are used by the tests too; these exist because the tests
must see exactly which bytes travel (dot-stuffing, bare CR/LF, pipelining,
0-byte messages, clients that misbehave on purpose).
"""

import imaplib
import poplib
import random
import re
import smtplib
import socket
import subprocess
import time

from cluster import DEFAULT_PASSWORD, HOSTNAME

CRLF = b"\r\n"
IO_TIMEOUT_S = 60.0


class Closed(Exception):
    """The server closed the connection."""


class LineSocket:
    def __init__(self, addr, timeout=IO_TIMEOUT_S):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.buf = bytearray()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise Closed("connection closed by server; unread %r" % self.buf[:200])
        self.buf += chunk

    def readline(self):
        """One line including its CRLF (or LF)."""
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            self._fill()

    def read_until(self, marker):
        start = 0
        while True:
            i = self.buf.find(marker, start)
            if i >= 0:
                out = bytes(self.buf[:i + len(marker)])
                del self.buf[:i + len(marker)]
                return out
            start = max(0, len(self.buf) - len(marker) + 1)
            self._fill()

    def read_to_eof(self, timeout=IO_TIMEOUT_S):
        """Everything until the server closes; raises socket.timeout if it never does."""
        self.sock.settimeout(timeout)
        while True:
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                break
            if not chunk:
                break
            self.buf += chunk
        out = bytes(self.buf)
        self.buf = bytearray()
        return out

    def is_closed(self, timeout=10.0):
        """True once the server has closed (EOF or reset) within timeout, discarding data."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RawSmtp(LineSocket):
    """SMTP over a raw socket: send exact bytes, read replies one at a time."""

    def __init__(self, addr, timeout=IO_TIMEOUT_S, greet=True):
        super().__init__(addr, timeout)
        if greet:
            code, lines = self.reply()
            assert code == 220, (code, lines)
            self.greeting = lines

    def reply(self):
        """(code, [text lines]) of one possibly multi-line reply."""
        lines = []
        while True:
            line = self.readline()
            assert line.endswith(CRLF), "reply line without CRLF: %r" % line
            assert len(line) >= 5 and line[:3].isdigit() and line[3:4] in (b" ", b"-"), \
                "malformed reply line %r" % line
            lines.append(line[4:-2].decode("utf-8", "replace"))
            if line[3:4] == b" ":
                return int(line[:3]), lines

    def cmd(self, line):
        self.send(line.encode() + CRLF if isinstance(line, str) else line + CRLF)
        return self.reply()

    def expect(self, line, code):
        got = self.cmd(line)
        assert got[0] == code, "%r: expected %s, got %r" % (line, code, got)
        return got

    def ehlo(self, name="client.example.org"):
        return self.expect("EHLO " + name, 250)

    def send_message(self, sender, rcpts, data, final_code=250):
        """One transaction with exact data bytes (stuffed here); returns the final reply."""
        self.expect("MAIL FROM:<%s>" % sender, 250)
        for r in rcpts:
            self.expect("RCPT TO:<%s>" % r, 250)
        self.expect("DATA", 354)
        self.send(stuff(data) + b".\r\n")
        got = self.reply()
        assert got[0] == final_code, "after DATA: expected %s, got %r" % (final_code, got)
        return got

    def quit(self):
        try:
            got = self.cmd("QUIT")
            assert got[0] == 221, got
        finally:
            self.close()


class RawPop3(LineSocket):
    """POP3 over a raw socket with exact multi-line handling."""

    def __init__(self, addr, timeout=IO_TIMEOUT_S, greet=True):
        super().__init__(addr, timeout)
        if greet:
            self.greeting = self.status()
            assert self.greeting.startswith(b"+OK"), self.greeting

    def status(self):
        line = self.readline()
        assert line.endswith(CRLF), "status line without CRLF: %r" % line
        return line[:-2]

    def cmd(self, line):
        self.send((line.encode() if isinstance(line, str) else line) + CRLF)
        return self.status()

    def ok(self, line):
        got = self.cmd(line)
        assert got.startswith(b"+OK"), "%r: %r" % (line, got)
        return got

    def multiline(self):
        """The body of a multi-line response (after its +OK line), dot-unstuffed.

        Lines keep their CRLF; an empty body (just ".\\r\\n") gives b"".
        """
        while len(self.buf) < 3:
            self._fill()
        if self.buf.startswith(b".\r\n"):
            del self.buf[:3]
            return b""
        raw = self.read_until(b"\r\n.\r\n")
        return unstuff(raw[:-3])  # drop the terminating ".\r\n", keep the last CRLF

    def ok_multi(self, line):
        self.ok(line)
        return self.multiline()

    def login(self, user, password=DEFAULT_PASSWORD):
        self.ok("USER " + user)
        self.ok("PASS " + password)

    def retr(self, n):
        return self.ok_multi("RETR %d" % n)

    def uidl(self):
        """{msgno: uid}."""
        out = {}
        for line in self.ok_multi("UIDL").split(CRLF):
            if line:
                n, uid = line.split(b" ", 1)
                out[int(n)] = uid.decode()
        return out

    def list(self):
        out = {}
        for line in self.ok_multi("LIST").split(CRLF):
            if line:
                n, size = line.split(b" ", 1)
                out[int(n)] = int(size)
        return out

    def stat(self):
        got = self.ok("STAT").split()
        return int(got[1]), int(got[2])

    def quit(self):
        try:
            got = self.cmd("QUIT")
            assert got.startswith(b"+OK"), got
        finally:
            self.close()


def stuff(data):
    """SMTP/POP3 transparency (RFC 5321 §4.5.2): data must end with CRLF or be empty."""
    assert data == b"" or data.endswith(CRLF), "data must end with CRLF"
    return re.sub(rb"(?m)^\.", b"..", data)


def unstuff(data):
    return re.sub(rb"(?m)^\.", b"", data)


# ---- messages ---------------------------------------------------------------

def make_message(size, seed=0, tag=""):
    """Exactly `size` bytes of a plausible message with CRLF line ends.

    Has headers, then body lines of 1..76 chars; some lines start with '.' or
    '..' or are a lone '.'. size 0 gives b""; otherwise it ends with CRLF
    (size >= 2).
    """
    if size == 0:
        return b""
    assert size >= 2
    rnd = random.Random(seed)
    head = ("Subject: test %s\r\nMessage-ID: <%s.%d@client.example.org>\r\n\r\n"
            % (tag, tag or "m", seed)).encode()
    if len(head) + 2 > size:
        head = b""
    parts = [head]
    total = len(head)
    alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_=+/"
    specials = [b".", b"..", b".x", b"...", b". dot"]
    while total < size:
        left = size - total
        if left <= 78:
            line = bytes(rnd.choice(alphabet) for _ in range(left - 2))
        elif rnd.random() < 0.05:
            line = rnd.choice(specials)
        else:
            n = rnd.randint(1, 76)
            if left - (n + 2) == 1:
                n -= 1
            line = bytes(rnd.choice(alphabet) for _ in range(n))
        parts.append(line + CRLF)
        total += len(line) + 2
    out = b"".join(parts)
    assert len(out) == size, (len(out), size)
    return out


def fast_message(size, tag):
    """A large message of exactly `size` bytes built quickly (repeated lines, some dotted)."""
    head = ("Subject: big %s\r\n\r\n" % tag).encode()
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-=+_ 0123456\r\n"
    unit = line * 100 + b".\r\n..\r\n.leading dot\r\n"
    assert size >= len(head) + 200
    left = size - len(head)
    count = max(0, (left - 200) // len(unit))
    parts = [head, unit * count]
    left -= count * len(unit)
    while left > 156:
        parts.append(line)
        left -= len(line)
    first = left // 2 if left > 78 else 0
    for n in (first, left - first):
        if n:
            parts.append(b"f" * (n - 2) + CRLF)
    out = b"".join(parts)
    assert len(out) == size, (len(out), size)
    return out


RETURN_PATH_RE = re.compile(rb"\AReturn-Path: <([^\r\n<>]*)>\r\n")
RECEIVED_RE = re.compile(rb"\AReceived: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*")


def split_received(retrieved, sent, return_path=None):
    """Checks retrieved == one Return-Path: header + Received: header(s) + sent
    (RFC 5321 4.4: the server adds both at final delivery); returns the header block.
    return_path: the expected envelope sender ("" for <>), checked when given."""
    m = RETURN_PATH_RE.match(retrieved)
    assert m, "retrieved message does not start with Return-Path: %r" % retrieved[:200]
    if return_path is not None:
        assert m.group(1) == return_path.encode(), (m.group(0), return_path)
    assert retrieved.endswith(sent), (
        "retrieved message does not end with the sent bytes "
        "(%d retrieved, %d sent); tail %r vs %r" % (
            len(retrieved), len(sent), retrieved[-120:], sent[-120:]))
    header = retrieved[:len(retrieved) - len(sent)]
    rest = header[m.end():]
    assert rest.startswith(b"Received: "), "no Received: after Return-Path: %r" % header
    while rest:
        r = RECEIVED_RE.match(rest)
        assert r, "prefix before the sent bytes is not trace headers: %r" % header
        rest = rest[r.end():]
    assert (b"by " + HOSTNAME.encode()) in header, "Received: lacks our host: %r" % header
    return header


def assert_delivered(retrieved, sent):
    split_received(retrieved, sent)


# ---- library clients ----------------------------------------------------------

def smtp_client(node, timeout=IO_TIMEOUT_S):
    host, port = node.smtp
    return smtplib.SMTP(host, port, local_hostname="client.example.org", timeout=timeout)


def pop3_client(node, user, password=DEFAULT_PASSWORD, timeout=IO_TIMEOUT_S):
    host, port = node.pop3
    p = poplib.POP3(host, port, timeout=timeout)
    p.user(user)
    p.pass_(password)
    return p


def poplib_message(lines):
    """poplib's line list back to bytes (exact for messages of CRLF lines)."""
    return b"".join(line + CRLF for line in lines)


def retrieve_all(node, user, password=DEFAULT_PASSWORD, delete=False):
    """[(uid, bytes)] of the whole maildrop via the raw client, optionally deleting."""
    p = RawPop3(node.pop3)
    try:
        p.login(user, password)
        uids = p.uidl()
        out = []
        for n in sorted(uids):
            out.append((uids[n], p.retr(n)))
            if delete:
                p.ok("DELE %d" % n)
        p.quit()
        return out
    finally:
        p.close()


def imap_client(node, user, password=DEFAULT_PASSWORD, timeout=IO_TIMEOUT_S):
    """An imaplib client logged in as user."""
    host, port = node.imap
    m = imaplib.IMAP4(host, port, timeout=timeout)
    typ, _ = m.login(user, password)
    assert typ == "OK"
    return m


def imap_subjects_by_uid(m):
    """{uid: subject} of the selected folder, from one FETCH of every message."""
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", data
    out = {}
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            out[uid] = item[1].decode().split(":", 1)[1].strip()
    return out


def mbsync_config(root, host, port, user, password=DEFAULT_PASSWORD, ssltype="None",
                  ca_file=None, patterns="INBOX", sync="All", expunge=False):
    """An mbsync (Debian isync) configuration, as text: channel "sync" between
    the IMAP account user@host:port ("remote"; ssltype None, STARTTLS or
    IMAPS, trusting ca_file if given; LOGIN) and a Maildir under root/mail/
    ("local"), for the folders `patterns`, creating them on both sides;
    `sync` is mbsync's Sync (All, Pull, ...), `expunge` expunges both sides."""
    lines = [
        "IMAPAccount porcupine",
        "Host %s" % host,
        "Port %d" % port,
        "User %s" % user,
        "Pass %s" % password,
        "SSLType %s" % ssltype,
    ]
    if ca_file is not None:
        lines.append("CertificateFile %s" % ca_file)
    lines += [
        "AuthMechs LOGIN",
        "Timeout 60",
        "",
        "IMAPStore remote",
        "Account porcupine",
        "",
        "MaildirStore local",
        "Path %s/mail/" % root,
        "Inbox %s/mail/INBOX" % root,
        "SubFolders Verbatim",
        "",
        "Channel sync",
        "Far :remote:",
        "Near :local:",
        "Patterns %s" % patterns,
        "Create Both",
    ]
    if expunge:
        lines.append("Expunge Both")
    lines += ["SyncState *", "Sync %s" % sync]
    return "\n".join(lines) + "\n"


def run_mbsync(config_path, timeout):
    """Runs every channel of the mbsync configuration at config_path; asserts
    that mbsync succeeded (showing the tail of its output if not)."""
    proc = subprocess.run(["mbsync", "-c", str(config_path), "-a"], capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, "mbsync failed (%d):\n%s\n%s" % (
        proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:])
    return proc

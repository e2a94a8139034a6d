"""The admin API against slow and greedy clients (issue #14 item 8, docs/security.md
"Admin API limits").

Slow-loris clients open a connection and send a header line every few seconds, or one
byte at a time, and never finish their request. Before the fix eight of them took every
worker thread of the admin server and /healthz and /readyz did not answer while they
lasted. Now every connection has its own worker up to `admin.max_connections`, the request
head and the body have whole-request deadlines (`admin.header_timeout_s`,
`admin.body_timeout_s`), and heads and bodies have sizes (`admin.max_header_bytes`,
`admin.max_body_bytes`). Plain HTTP and HTTPS alike. Every wait has a deadline; every
socket is closed by the test.
"""

import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request

import pytest

from cluster import wait_for
from clusterkit import protection

HEALTH_BUDGET_S = 1.0  # /healthz must answer within this while slow clients are connected


class SlowClients:
    """n connections that each send a request line, then one header line every
    `interval` seconds (or `chunk` bytes at a time) from one thread, never ending
    their head. Records when the server closed each one and what it sent back."""

    def __init__(self, addr, n, interval=2.0, tls_context=None, handshake=True, body=False):
        self.addr = addr
        self.interval = interval
        self.socks = []
        self.closed_at = {}
        self.received = {}
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.body = body
        self.silent = tls_context is not None and not handshake  # sends nothing at all
        for i in range(n):
            raw = socket.create_connection(addr, timeout=10)
            s = raw
            if tls_context is not None and handshake:
                s = tls_context.wrap_socket(raw, server_hostname=addr[0])
            if tls_context is None or handshake:
                s.sendall(self._first())
            s.setblocking(False)
            self.socks.append(s)
            self.received[i] = b""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _first(self):
        if self.body:  # a complete head announcing a body that never comes in full
            return (b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 1000\r\n\r\n{")
        return b"GET /v1/cluster HTTP/1.1\r\nHost: x\r\n"

    def _poll_closed(self, i, s, now):
        while True:
            try:
                data = s.recv(4096)
            except (BlockingIOError, ssl.SSLWantReadError):
                return
            except (OSError, ssl.SSLError):
                data = b""
            if not data:
                self.closed_at.setdefault(i, now - self.started)
                return
            self.received[i] += data

    def _run(self):
        n = 0
        while not self.stop.is_set():
            now = time.monotonic()
            for i, s in enumerate(self.socks):
                if i in self.closed_at:
                    continue
                self._poll_closed(i, s, now)
                if i in self.closed_at or self.silent:
                    continue
                try:
                    s.send(b" " if self.body else b"X-Slow-%d: %d\r\n" % (i, n))
                except (BlockingIOError, ssl.SSLWantWriteError):
                    pass
                except (OSError, ssl.SSLError):
                    self.closed_at.setdefault(i, now - self.started)
            n += 1
            self.stop.wait(self.interval)

    def open_count(self):
        return len(self.socks) - len(self.closed_at)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=10)
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture
def slow():
    made = []

    def make(*args, **kw):
        c = SlowClients(*args, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def addr_of(node):
    host, _, port = node.admin.rpartition(":")
    return host, int(port)


def timed_get(node, path, timeout=HEALTH_BUDGET_S):
    """(status, seconds) of one GET, or (None, seconds) when it did not answer in time."""
    start = time.monotonic()
    try:
        status, _ = node.http("GET", path, timeout=timeout)
    except (OSError, urllib.error.URLError):
        status = None
    return status, time.monotonic() - start


def assert_health_answers(node, label):
    for path, want in (("/healthz", 200), ("/readyz", 200), ("/healthz", 200)):
        status, took = timed_get(node, path)
        print("%s: GET %s -> %s in %.3f s" % (label, path, status, took))
        assert status == want and took < HEALTH_BUDGET_S, \
            "%s: %s answered %s after %.2f s" % (label, path, status, took)


def raw_exchange(addr, request, timeout=10.0):
    """Sends request and returns everything until the server closes (bounded)."""
    with socket.create_connection(addr, timeout=timeout) as s:
        s.sendall(request)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out


# ---- slow loris ---------------------------------------------------------------------

@pytest.mark.parametrize("count", [8, 100])
def test_health_answers_while_slow_clients_trickle_headers(nodes, slow, count):
    """The issue's probe: slow clients sending a header line every 2 s. With the
    defaults /healthz and /readyz answer within a second throughout."""
    node = nodes.start()
    clients = slow(addr_of(node), count, interval=2.0)
    time.sleep(0.3)  # let the server take every connection (there is nothing to poll)
    assert clients.open_count() == count
    assert_health_answers(node, "%d slow clients" % count)
    assert clients.open_count() == count  # still trickling, and still not cut (default 10 s)


def test_slow_head_is_cut_at_the_header_deadline(nodes, slow):
    """A client trickling its head (one line every 0.3 s: each read succeeds, so a
    per-read timeout never fires) is cut at admin.header_timeout_s with 408."""
    node = nodes.start(overrides={"admin": {"header_timeout_s": 2}})
    clients = slow(addr_of(node), 4, interval=0.3)
    wait_for(lambda: clients.open_count() == 0, 8, what="the slow clients to be cut")
    for i, at in clients.closed_at.items():
        assert 1.5 < at < 4.5, (i, at)
        assert clients.received[i].startswith(b"HTTP/1.1 408 "), clients.received[i][:200]
    assert_health_answers(node, "after the cut")
    assert node.metric("porcupine_admin_requests_cut_total", reason="header_timeout") == 4


def test_slow_body_is_cut_at_the_body_deadline(nodes, slow):
    node = nodes.start(overrides={"admin": {"body_timeout_s": 2}})
    clients = slow(addr_of(node), 2, interval=0.3, body=True)
    wait_for(lambda: clients.open_count() == 0, 8, what="the slow bodies to be cut")
    for i, at in clients.closed_at.items():
        assert 1.5 < at < 4.5, (i, at)
        assert clients.received[i].startswith(b"HTTP/1.1 408 "), clients.received[i][:200]
    assert node.metric("porcupine_admin_requests_cut_total", reason="body_timeout") == 2


def test_connection_limit_refuses_at_once_and_recovers(nodes, slow):
    """Over admin.max_connections (and its health slots) a connection gets 503 at once
    instead of waiting in a queue; when the slow ones are gone, every request is served
    again."""
    node = nodes.start(overrides={"admin": {"max_connections": 4, "health_connections": 0,
                                            "header_timeout_s": 3}})
    clients = slow(addr_of(node), 4, interval=0.5)
    time.sleep(0.3)
    start = time.monotonic()
    out = raw_exchange(addr_of(node), b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    took = time.monotonic() - start
    assert took < HEALTH_BUDGET_S, took
    assert out == b"" or out.startswith(b"HTTP/1.1 503 "), out[:200]
    status, took = timed_get(node, "/healthz")
    assert status in (503, None) and took < HEALTH_BUDGET_S, (status, took)
    wait_for(lambda: clients.open_count() == 0, 8, what="the slow clients to be cut")
    # Each cut connection gives its slot back once its close is done (the node
    # drains what the client still sends for up to 0.5 s after the reply).
    wait_for(lambda: timed_get(node, "/healthz")[0] == 200, 5, what="a free slot")
    assert_health_answers(node, "after the cut")
    assert node.metric("porcupine_admin_connections_refused_total") >= 2


def take_health_slot(addr):
    """A connection that holds a health slot and sends nothing. A slot may still be held for a
    moment by a connection answered just before (its worker ends after the reply): such a
    connection is refused 503 at once, and is tried again."""
    deadline = time.monotonic() + 10
    while True:
        s = socket.create_connection(addr, timeout=10)
        s.settimeout(0.3)
        try:
            data = s.recv(4096)
        except socket.timeout:
            s.settimeout(10)
            return s  # not refused: it holds a slot
        s.close()
        assert data == b"" or data.startswith(b"HTTP/1.1 503 "), data[:200]
        assert time.monotonic() < deadline, "no health slot came free"
        time.sleep(0.1)


def test_health_answers_while_slow_clients_hold_every_connection(nodes, slow):
    """admin.max_connections slow clients hold the whole pool: /healthz and /readyz
    are still answered 200 at once, on the slots kept for them (admin.health_connections);
    any other request there is refused 503 at once, and a health-slot connection that
    sends nothing is cut at admin.health_header_timeout_s."""
    node = nodes.start(overrides={"admin": {"max_connections": 4, "health_connections": 2}})
    clients = slow(addr_of(node), 4, interval=0.5)
    time.sleep(0.3)
    assert clients.open_count() == 4
    assert_health_answers(node, "4 slow clients hold max_connections = 4")
    for path in ("/healthz?verbose", "/readyz"):
        out = raw_exchange(addr_of(node), b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        assert out.startswith(b"HTTP/1.1 200 "), out[:200]
        assert b"Connection: close" in out, "one request per health slot"
    start = time.monotonic()
    out = raw_exchange(addr_of(node), b"GET /v1/cluster HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 503 "), out[:200]
    assert time.monotonic() - start < HEALTH_BUDGET_S
    # Silent connections take both health slots until their head deadline cuts them.
    silent = []
    try:
        silent = [take_health_slot(addr_of(node)) for _ in range(2)]
        out = raw_exchange(addr_of(node), b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert out == b"" or out.startswith(b"HTTP/1.1 503 "), out[:200]
        for s in silent:
            s.settimeout(5)
            start = time.monotonic()
            assert s.recv(4096).startswith(b"HTTP/1.1 408 ")
            assert time.monotonic() - start < 3.5
    finally:
        for s in silent:
            s.close()
    wait_for(lambda: timed_get(node, "/healthz")[0] == 200, 5, what="a free health slot")
    assert clients.open_count() == 4, "the slow clients still hold the pool"
    clients.close()  # /metrics is an ordinary request: it needs a free connection
    wait_for(lambda: timed_get(node, "/metrics")[0] == 200, 5, what="the pool to free up")
    assert node.metric("porcupine_admin_health_slot_requests_total") >= 5
    assert node.metric("porcupine_admin_connections_refused_total") >= 1


def test_head_and_body_sizes(nodes):
    node = nodes.start(overrides={"admin": {"max_header_bytes": 2048, "max_body_bytes": 1500}})
    addr = addr_of(node)
    big_head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: %s\r\n" % (b"p" * 100) * 30
    out = raw_exchange(addr, big_head + b"\r\n")
    assert out.startswith(b"HTTP/1.1 431 "), out[:200]
    # One head just under the limit is fine.
    ok_head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + \
        b"X-Pad: %s\r\n" % (b"p" * 1900) + b"\r\n"
    assert len(ok_head) < 2048
    assert raw_exchange(addr, ok_head).startswith(b"HTTP/1.1 200 ")
    status, _ = node.http("POST", "/v1/users", b"{" + b" " * 2000 + b"}")
    assert status == 413, status
    assert node.metric("porcupine_admin_requests_cut_total", reason="header_size") == 1


# ---- over HTTPS ---------------------------------------------------------------------

@pytest.mark.parametrize("count", [8, 100])
def test_https_health_answers_while_slow_clients_trickle(nodes, slow, count):
    """The same over HTTPS: half the slow clients finished their handshake and trickle
    headers, the other half never start their handshake."""
    tls = protection(nodes, ["n1"], ["127.0.0.1"])
    node = nodes.make("n1", {"admin": {"tls_cert_file": os.path.join(tls["dir"], "n1.crt"),
                                       "tls_key_file": os.path.join(tls["dir"], "n1.key"),
                                       "token": tls["token"]}})
    node.admin_ca = os.path.join(tls["dir"], "ca.crt")
    node.admin_token = tls["token"]
    node.start()
    ctx = ssl.create_default_context(cafile=node.admin_ca)
    half = count // 2
    trickling = slow(addr_of(node), count - half, interval=2.0, tls_context=ctx)
    silent = slow(addr_of(node), half, interval=2.0, tls_context=ctx, handshake=False)
    time.sleep(0.3)
    assert trickling.open_count() == count - half and silent.open_count() == half
    assert_health_answers(node, "https, %d trickling + %d silent clients" % (count - half, half))
    assert trickling.open_count() + silent.open_count() == count


def test_https_silent_handshake_cut_at_the_header_deadline(nodes, slow):
    tls = protection(nodes, ["n1"], ["127.0.0.1"])
    node = nodes.make("n1", {"admin": {"tls_cert_file": os.path.join(tls["dir"], "n1.crt"),
                                       "tls_key_file": os.path.join(tls["dir"], "n1.key"),
                                       "token": tls["token"], "header_timeout_s": 2}})
    node.admin_ca = os.path.join(tls["dir"], "ca.crt")
    node.admin_token = tls["token"]
    node.start()
    ctx = ssl.create_default_context(cafile=node.admin_ca)
    silent = slow(addr_of(node), 3, interval=0.3, tls_context=ctx, handshake=False)
    trickling = slow(addr_of(node), 3, interval=0.3, tls_context=ctx)
    wait_for(lambda: silent.open_count() == 0 and trickling.open_count() == 0, 8,
             what="the slow TLS clients to be cut")
    for c in (silent, trickling):
        for i, at in c.closed_at.items():
            assert 1.5 < at < 4.5, (i, at)
    assert_health_answers(node, "https after the cut")


def test_stop_does_not_wait_for_slow_clients(nodes, slow):
    """SIGTERM with slow clients connected: every admin connection is woken and
    closed at once, the node exits 0 well before any request deadline."""
    node = nodes.start()
    clients = slow(addr_of(node), 20, interval=0.5)
    time.sleep(0.3)
    assert clients.open_count() == 20
    start = time.monotonic()
    node.stop()
    took = time.monotonic() - start
    print("stopped in %.2f s with 20 slow admin clients" % took)
    assert took < 5, took
    wait_for(lambda: clients.open_count() == 0, 5, what="the clients to see the close")

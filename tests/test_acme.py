"""Certificates from an ACME CA (docs/security.md "ACME") against pebble, the
ACME test server Debian packages, running in a network namespace the test
creates (netlab.py: a bridge in the root namespace, 10.77.X.254, and one
namespace behind a veth, 10.77.X.1; X unique per test process).

pebble and pebble-challtestsrv run in the namespace: pebble's API and
management API on 10.77.X.1 (its certificate, from tlskit, names that
address), challtestsrv's DNS on the namespace's own loopback, its management
API on 10.77.X.1. challtestsrv answers every name with the address the nodes'
`listen.acme_http` is on (or what a test sets; no AAAA): a bridge address of
the root namespace, so pebble's HTTP-01 validation crosses the veth to the
nodes. The nodes run in the root namespace (mail and cluster ports on
loopback). The clients verify what the nodes serve against pebble's issuing
root, fetched from its management API. Root only (skipped otherwise).

- two nodes: the certificate is ordered once (by the node that manages the
  record's bucket), kept in the replicated store, and served by both nodes on
  IMAPS and IMAP STARTTLS; the CA's validation is answered by the node that
  did not order, from the replicated record; a failed first order is retried;
- renewal (renew_before_days beyond pebble's validity): a new certificate is
  installed while a session opened under the old one keeps working;
- a CA that cannot be reached: the node serves mail in plaintext and its
  placeholder certificate, counts failures and backs off.
"""

import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest

import netlab
import tlskit
from cluster import DEFAULT_PASSWORD, DOMAIN, HOSTNAME, sample, wait_for
from clusterkit import free_port, make_node, new_secret, wait_view

ALICE = "alice@" + DOMAIN
IO_TIMEOUT = 15
ISSUE_DEADLINE = 60
# Inside the namespace nothing else listens: fixed ports.
PEBBLE_PORT = 14000
PEBBLE_MGMT_PORT = 15000
PEBBLE_TLS_PORT = 5001  # pebble wants one (TLS-ALPN-01); unused here
DNS_PORT = 8053
DNS_MGMT_PORT = 8055
# Addresses of the root namespace on the bridge besides the gateway (10.77.X.254).
SECOND_NODE = 253  # the second node's acme_http
NOBODY = 252       # nothing listens there: connections are refused at once


class Pebble:
    """pebble and pebble-challtestsrv (its DNS) in the lab's first namespace."""

    def __init__(self, root, lab, default_ipv4=None):
        assert shutil.which("pebble") and shutil.which("pebble-challtestsrv"), (
            "pebble not installed (scripts/install-deps installs it)")
        self.root = str(root)
        self.ns = lab.names[0]
        self.addr = lab.hosts[0]
        self.procs = []
        pki = tlskit.Pki(os.path.join(self.root, "pki"))
        leaf = pki.leaf("pebble", ["localhost"], ips=[self.addr])
        self.api_ca = pki.ca_file  # trusted by the nodes for pebble's API
        # Where pebble validates HTTP-01: a port of the root namespace.
        self.http_port = free_port(lab.gateway)
        self.directory_url = "https://%s:%d/dir" % (self.addr, PEBBLE_PORT)
        config = {"pebble": {
            "listenAddress": "%s:%d" % (self.addr, PEBBLE_PORT),
            "managementListenAddress": "%s:%d" % (self.addr, PEBBLE_MGMT_PORT),
            "certificate": leaf.chain,
            "privateKey": leaf.key,
            "httpPort": self.http_port,
            "tlsPort": PEBBLE_TLS_PORT,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }}
        config_path = os.path.join(self.root, "pebble.json")
        with open(config_path, "w") as f:
            json.dump(config, f)
        self._spawn("dns", ["pebble-challtestsrv", "-dns01", "127.0.0.1:%d" % DNS_PORT,
                            "-http01", "", "-https01", "", "-tlsalpn01", "",
                            "-management", "%s:%d" % (self.addr, DNS_MGMT_PORT),
                            "-defaultIPv4", default_ipv4 or lab.gateway, "-defaultIPv6", ""])
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0")
        self._spawn("pebble", ["pebble", "-config", config_path,
                               "-dnsserver", "127.0.0.1:%d" % DNS_PORT], env=env)
        self.api_context = ssl.create_default_context(cafile=self.api_ca)
        wait_for(self._directory_ok, 20, interval=0.1, what="pebble's directory")
        wait_for(self._dns_ok, 20, interval=0.1, what="pebble-challtestsrv's management API")

    def _spawn(self, name, args, env=None):
        log = open(os.path.join(self.root, name + ".log"), "wb")
        try:
            # `ip netns exec` execs the program in place: terminate() reaches it.
            self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.ns] + args,
                                               stdin=subprocess.DEVNULL, stdout=log,
                                               stderr=subprocess.STDOUT, env=env, cwd=self.root))
        finally:
            log.close()

    def _check_running(self):
        for p in self.procs:
            assert p.poll() is None, "%s exited:\n%s" % (p.args[4], self.logs())

    def _directory_ok(self):
        self._check_running()
        try:
            with urllib.request.urlopen(self.directory_url, timeout=2,
                                        context=self.api_context) as r:
                return r.status == 200
        except OSError:
            return False

    def _dns_ok(self):
        self._check_running()
        try:
            socket.create_connection((self.addr, DNS_MGMT_PORT), timeout=2).close()
            return True
        except OSError:
            return False

    def set_address(self, host, address):
        """Makes pebble's DNS answer host with address (challtestsrv /add-a)."""
        body = json.dumps({"host": host, "addresses": [address]}).encode()
        url = "http://%s:%d/add-a" % (self.addr, DNS_MGMT_PORT)
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"),
                                    timeout=5) as r:
            assert r.status == 200, r.status

    def root_pem(self):
        """The root pebble issues under (regenerated at each pebble start)."""
        url = "https://%s:%d/roots/0" % (self.addr, PEBBLE_MGMT_PORT)
        with urllib.request.urlopen(url, timeout=5, context=self.api_context) as r:
            return r.read().decode()

    def client_context(self):
        return ssl.create_default_context(cadata=self.root_pem())

    def logs(self):
        out = []
        for name in ("pebble", "dns"):
            try:
                with open(os.path.join(self.root, name + ".log"), errors="replace") as f:
                    out.append("== %s ==\n%s" % (name, f.read()[-4000:]))
            except OSError:
                pass
        return "\n".join(out)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)


@pytest.fixture
def lab():
    """The namespace pebble runs in; ask for it before `nodes`, so that the nodes stop
    before their network goes away."""
    with netlab.lab(1) as net:
        yield net


@pytest.fixture
def pebble(lab, tmp_path):
    p = Pebble(tmp_path / "pebble", lab)
    yield p
    p.close()


def acme_overrides(pebble, acme_host, **acme):
    conf = {"directory_url": pebble.directory_url, "email": "ops@" + DOMAIN,
            "ca_file": pebble.api_ca, "check_interval_s": 1, "retry_max_s": 4}
    conf.update(acme)
    listen = {"imaps": "127.0.0.1:0", "acme_http": "%s:%d" % (acme_host, pebble.http_port)}
    return {"listen": listen, "acme": conf}


# ---- clients -------------------------------------------------------------

def _readline(sock):
    buf = b""
    while not buf.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("closed after %r" % buf)
        buf += chunk
    return buf


def _command(sock, tag, line):
    sock.sendall(b"%s %s\r\n" % (tag, line))
    while True:
        reply = _readline(sock)
        if reply.startswith(tag + b" "):
            return reply


def open_imaps(addr, context):
    """An IMAPS connection verified against context for HOSTNAME, greeting read."""
    raw = socket.create_connection(addr, timeout=IO_TIMEOUT)
    s = context.wrap_socket(raw, server_hostname=HOSTNAME)
    assert _readline(s).startswith(b"* OK")
    return s


def imaps_cert(addr, context):
    with open_imaps(addr, context) as s:
        return s.getpeercert(binary_form=True)


def starttls_cert(addr, context):
    with socket.create_connection(addr, timeout=IO_TIMEOUT) as raw:
        assert _readline(raw).startswith(b"* OK")
        assert _command(raw, b"a1", b"STARTTLS").startswith(b"a1 OK")
        with context.wrap_socket(raw, server_hostname=HOSTNAME) as s:
            return s.getpeercert(binary_form=True)


def verified_cert(addr, context, starttls=False):
    """The DER certificate served at addr when it verifies, else None."""
    try:
        return (starttls_cert if starttls else imaps_cert)(addr, context)
    except (ssl.SSLError, OSError):
        return None


def fingerprint(der):
    return hashlib.sha256(der).hexdigest()[:16]


def total(node_list, name, **labels):
    return sum(sample(n.metrics(), name, **labels) for n in node_list)


# ---- tests ---------------------------------------------------------------

def test_cluster_orders_once_and_every_node_serves_it(lab, nodes, tmp_path):
    """n1 answers HTTP-01 on the bridge's gateway address, n2 on a second one
    (same port). The name first resolves to a third, where nobody answers: the
    first order fails, which tells the test which node orders. Then the name
    is pointed at the *other* node, which can only answer from the replicated
    record."""
    hosts = [lab.gateway, lab.add_address(SECOND_NODE)]
    pebble = Pebble(tmp_path / "pebble", lab, default_ipv4=lab.add_address(NOBODY))
    try:
        run_cluster_test(nodes, pebble, hosts)
    finally:
        pebble.close()


def run_cluster_test(nodes, pebble, hosts):
    ports = [free_port(), free_port()]
    seeds = ["127.0.0.1:%d" % p for p in ports]
    secret = new_secret()
    pair = [make_node(nodes, "n%d" % (i + 1), "127.0.0.1", ports[i], seeds, secret,
                      extra=acme_overrides(pebble, acme_host=hosts[i])) for i in range(2)]
    for n in pair:
        n.spawn()
    for n in pair:
        n.wait_ready()
    wait_view(pair, ["n1", "n2"], 20)
    n1, n2 = pair
    failed = wait_for(lambda: [n for n in pair
                               if n.metric("porcupine_acme_orders_total", result="failed")],
                      ISSUE_DEADLINE, interval=0.2, what="the first (unanswerable) order")
    assert len(failed) == 1, "both nodes ordered"
    orderer = failed[0]
    other = n2 if orderer is n1 else n1
    assert "acme: order failed" in orderer.log_text()
    pebble.set_address(HOSTNAME, hosts[pair.index(other)])

    ctx = pebble.client_context()
    certs = {}
    for n in pair:
        certs[n.name] = wait_for(lambda n=n: verified_cert(n.imaps, ctx), ISSUE_DEADLINE,
                                 interval=0.2, what="a verified certificate on %s" % n.name)
    assert certs["n1"] == certs["n2"], "the nodes serve different certificates"
    for n in pair:
        assert verified_cert(n.imap, ctx, starttls=True) == certs["n1"], n.name
    # Ordered once for the cluster; the other node installed the stored copy
    # and answered the CA from the record it received.
    assert orderer.metric("porcupine_acme_orders_total", result="ok") == 1
    assert other.metric("porcupine_acme_orders_total", result="ok") == 0
    assert other.metric("porcupine_acme_orders_total", result="failed") == 0
    assert other.metric("porcupine_acme_challenges_answered_total") >= 1
    assert other.metric("porcupine_acme_installs_total") >= 1
    assert "acme: certificate issued" in orderer.log_text()
    for n in pair:
        assert sample(n.metrics(), "porcupine_tls_certificate_expiry_timestamp_seconds") > time.time()
        assert n.metric("porcupine_acme_certificate_expiry_timestamp_seconds") > time.time()
    # Later checks find the stored certificate good: no second order. Nothing
    # to wait for here: the counter must stay put over a few check intervals.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert total(pair, "porcupine_acme_orders_total", result="ok") == 1
        time.sleep(0.5)
    # A restarted node serves the stored certificate at once, without ordering.
    other.restart()
    assert verified_cert(other.imaps, ctx) == certs["n1"]
    assert total(pair, "porcupine_acme_orders_total", result="ok") == 1


def test_renewal_replaces_the_certificate_without_dropping_a_session(lab, pebble, nodes):
    # Longer than pebble's validity: every check finds the renewal due.
    n = nodes.start(overrides=acme_overrides(pebble, lab.gateway, renew_before_days=100000,
                                             check_interval_s=2))
    n.add_user(ALICE)
    ctx = pebble.client_context()
    first = wait_for(lambda: verified_cert(n.imaps, ctx), ISSUE_DEADLINE, interval=0.2,
                     what="the first certificate")
    session = open_imaps(n.imaps, ctx)
    try:
        assert session.getpeercert(binary_form=True) == first
        login = b"a1 LOGIN %s %s" % (ALICE.encode(), DEFAULT_PASSWORD.encode())
        assert _command(session, b"a1", login[3:]).startswith(b"a1 OK")
        second = wait_for(lambda: (lambda c: c if c and c != first else None)(
            verified_cert(n.imaps, ctx)), ISSUE_DEADLINE, interval=0.2,
            what="a renewed certificate")
        assert fingerprint(second) != fingerprint(first)
        # The session made under the old certificate goes on.
        assert _command(session, b"a2", b"NOOP").startswith(b"a2 OK")
        assert _command(session, b"a3", b"SELECT INBOX").startswith(b"a3 OK")
        assert session.getpeercert(binary_form=True) == first
    finally:
        session.close()
    assert n.metric("porcupine_acme_orders_total", result="ok") >= 2
    assert n.metric("porcupine_acme_orders_total", result="failed") == 0


def test_mail_is_served_while_the_ca_is_unreachable(lab, pebble, nodes):
    # The namespace's address, where nothing listens on this port: refused at once.
    over = acme_overrides(pebble, lab.gateway,
                          directory_url="https://%s:%d/dir" % (pebble.addr, PEBBLE_PORT + 1))
    n = nodes.start(overrides=over)
    n.add_user(ALICE)
    # Failures are counted and retried with growing delays.
    wait_for(lambda: n.metric("porcupine_acme_orders_total", result="failed") >= 2, 30,
             interval=0.2, what="two failed orders")
    retry_at = n.metric("porcupine_acme_retry_timestamp_seconds")
    assert retry_at > time.time() - 1
    assert "acme: order failed" in n.log_text()
    # Plaintext IMAP (loopback) works; IMAPS serves the placeholder, which a
    # client verifying against the CA refuses.
    with socket.create_connection(n.imap, timeout=IO_TIMEOUT) as s:
        assert _readline(s).startswith(b"* OK")
        login = b"LOGIN %s %s" % (ALICE.encode(), DEFAULT_PASSWORD.encode())
        assert _command(s, b"a1", login).startswith(b"a1 OK")
    assert verified_cert(n.imaps, pebble.client_context()) is None
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    assert imaps_cert(n.imaps, unverified)

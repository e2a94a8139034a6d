"""Mutual TLS between nodes, an HTTPS admin API, and the refusal to serve the network
unprotected (issue #14, docs/security.md "Cluster and admin").

Certificates come from `porcupine cluster certs` (cluster.make_certs). Strangers are
played by python `ssl` clients and servers and by rogue porcupine nodes: with a
certificate of another CA, without TLS, or with the right certificate and a wrong
secret. Every wait has a deadline.
"""

import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from cluster import DEFAULT_PASSWORD, DOMAIN, make_certs, porcupine_bin, wait_for
from clusterkit import (
    Ledger, assert_exact_everywhere, cli, cluster_status, free_port, make_node, new_secret,
    protection, read_all, send_all, start_cluster, up_names, user_names, wait_view)
from mailclient import RawPop3

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def h2_hello(addr, cert=None, key=None, timeout=5.0):
    """Opens TLS to a cluster port (presenting cert/key if given, checking nothing of the
    server), sends the HTTP/2 preface and returns what the server answers: b"" or an
    exception's text when it refuses; the server's SETTINGS frame when it accepts us."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    if cert:
        ctx.load_cert_chain(cert, key)
    host, _, port = addr.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=host) as s:
                s.sendall(H2_PREFACE)
                return s.recv(64)
    except (OSError, ssl.SSLError) as e:
        return "refused: %r" % (e,)


def is_h2_settings(reply):
    return isinstance(reply, bytes) and len(reply) >= 9 and reply[3] == 0x04


def server_cert_der(addr, ca, cert, key, timeout=5.0):
    """The certificate a TLS cluster port presents, verified against ca (DER)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])
    host, _, port = addr.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            return s.getpeercert(binary_form=True)


def pop3_login_ok(node, user, password):
    with RawPop3(node.pop3) as p:
        p.ok("USER " + user)
        ok = p.cmd("PASS " + password).startswith(b"+OK")
        p.quit()
        return ok


# ---- a cluster with mutual TLS ------------------------------------------------------

def test_mtls_cluster_forms_delivers_and_speaks_only_tls(nodes):
    ns = start_cluster(nodes, 3, tls=True)
    certs = os.path.dirname(ns[0].config["cluster"]["tls_ca_file"])
    users = user_names(9)
    for i, u in enumerate(users):
        ns[i % 3].add_user(u)
    ledger = Ledger()
    send_all(ns, users, ledger, "tls", per_user=2)
    assert_exact_everywhere(ns, users, ledger)
    assert all("mutual TLS" in n.log_text() for n in ns)

    # The cluster port is TLS: a node certificate of the CA gets HTTP/2 SETTINGS
    # (the positive control), a certificate of another CA or none gets nothing.
    addr = ns[0].cluster_addr
    ok = h2_hello(addr, os.path.join(certs, "n2.crt"), os.path.join(certs, "n2.key"))
    assert is_h2_settings(ok), ok
    rogue = make_certs(nodes.tempdir("rogue"), ["n2"], ["127.0.0.1"])
    for cert, key in ((None, None),
                      (os.path.join(rogue, "n2.crt"), os.path.join(rogue, "n2.key")),
                      (os.path.join(rogue, "ca.crt"), os.path.join(rogue, "ca.key"))):
        got = h2_hello(addr, cert, key)
        assert not is_h2_settings(got), (cert, got)
    # Plaintext HTTP/2 (what a node without TLS sends) is not answered either.
    host, _, port = addr.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(H2_PREFACE)
        s.settimeout(5)
        try:
            reply = s.recv(64)
        except OSError:
            reply = b""
        assert not is_h2_settings(reply), reply
    # The server's certificate chains to the cluster CA and names the dialled address.
    der = server_cert_der(addr, os.path.join(certs, "ca.crt"), os.path.join(certs, "n2.crt"),
                          os.path.join(certs, "n2.key"))
    assert der


def _rogue(nodes, name, seeds, secret, tls=None, extra=None):
    """A porcupine node that tries to join through the good nodes' seeds."""
    port = free_port()
    node = make_node(nodes, name, "127.0.0.1", port, seeds, secret, tls=tls,
                     cluster_extra={"probe_interval_ms": 200}, extra=extra)
    return node.start()


def test_rogue_nodes_cannot_join_call_or_read(nodes):
    """Three rogues against a protected cluster, each missing one thing: a certificate of
    the cluster CA (it has one of its own CA), TLS altogether, and the secret (it has a
    real node certificate). None appears in a view, changes a password or reads mail."""
    ns = start_cluster(nodes, 3, tls=True)
    seeds = ns[0].config["cluster"]["seeds"]
    secret = ns[0].config["cluster"]["secret"]
    certs = os.path.dirname(ns[0].config["cluster"]["tls_ca_file"])
    user = user_names(1)[0]
    ns[0].add_user(user)
    ledger = Ledger()
    send_all(ns, [user], ledger, "private")

    # Its own CA, and (as the CA certificate is no secret) trusting ours too: only the
    # cluster's check of the client certificate stands in its way.
    other_ca = protection(nodes, ["r1"], ["127.0.0.1"])
    with open(os.path.join(certs, "ca.crt")) as ours:
        with open(os.path.join(other_ca["dir"], "ca.crt"), "a") as bundle:
            bundle.write(ours.read())
    # A certificate the cluster CA really issued, in the hands of a node without the secret.
    make_certs(certs, ["r3"], ["127.0.0.1"])
    stolen = {"dir": certs, "token": "rogue-token"}
    rogues = [_rogue(nodes, "r1", seeds, secret, tls=other_ca),
              _rogue(nodes, "r2", seeds, secret),
              _rogue(nodes, "r3", seeds, "wrong-" + secret, tls=stolen)]
    refused_before = sum(n.metric("porcupine_rpc_refused_total") for n in ns)
    # Each rogue calls the seeds over and over (probes every 200 ms): wait until every
    # one has failed several calls, and the cluster refused the stolen certificate's.
    def tried_or_joined():
        seen = {m["name"] for n in ns for m in cluster_status(n)["members"]}
        return all(r.metric("porcupine_rpc_failures_total") >= 10 or r.name in seen
                   for r in rogues)
    wait_for(tried_or_joined, 30, what="every rogue to have tried the seeds")
    wait_for(lambda: sum(n.metric("porcupine_rpc_refused_total") for n in ns)
             >= refused_before + 5, 30, what="calls with a wrong secret to be refused")
    names = ["n1", "n2", "n3"]
    for node in ns:
        st = cluster_status(node)
        assert up_names(st) == names, st
        assert not {m["name"] for m in st["members"]} & {"r1", "r2", "r3"}, st
    for r in rogues:
        st = cluster_status(r)
        assert up_names(st) == [r.name], st
        # Alone in its own cluster: it knows no user of ours...
        assert user not in r.users()
        # ...and what it does to "our" user stays its own.
        r.add_user(user, "rogue-password")
        assert not pop3_login_ok(ns[1], user, "rogue-password")
        assert read_all(r, user, "rogue-password") == {}
    assert pop3_login_ok(ns[2], user, DEFAULT_PASSWORD)
    assert_exact_everywhere(ns, [user], ledger)


def test_no_secret_for_a_seed_that_cannot_prove_itself(nodes):
    """A process bound to a down seed's address (plain TCP, or TLS with a certificate
    of another CA) sees a TLS ClientHello and never the secret."""
    secret = "capture-me-" + new_secret()
    fake_port = free_port()
    fake = "127.0.0.1:%d" % fake_port
    tls = protection(nodes, ["n1"], ["127.0.0.1"])
    rogue = make_certs(nodes.tempdir("rogue"), ["seed"], ["127.0.0.1"])
    captured, connections = [], []
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", fake_port))
    server.listen(16)
    server.settimeout(0.5)
    stop = threading.Event()
    rogue_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    rogue_ctx.load_cert_chain(os.path.join(rogue, "seed.crt"), os.path.join(rogue, "seed.key"))
    rogue_ctx.set_alpn_protocols(["h2"])

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.settimeout(1)
            with conn:
                index = len(connections)
                connections.append(index)
                try:
                    if index % 2 == 1:  # every other connection: a TLS server of another CA
                        with rogue_ctx.wrap_socket(conn, server_side=True) as s:
                            captured.append(b"TLS:" + s.recv(65536))
                    else:
                        data = b""
                        until = time.monotonic() + 2
                        while len(data) < 65536 and time.monotonic() < until:
                            try:
                                chunk = conn.recv(65536)
                            except OSError:  # quiet for 1 s: keep what came
                                break
                            if not chunk:
                                break
                            if not data and chunk.startswith(b"PRI * HTTP/2.0"):
                                # Play an HTTP/2 server: SETTINGS, then ACK the client's.
                                conn.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                                             b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")
                            data += chunk
                        captured.append(data)
                except (OSError, ssl.SSLError):
                    pass
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        node = make_node(nodes, "n1", "127.0.0.1", free_port(), [fake], secret, tls=tls,
                         cluster_extra={"probe_interval_ms": 200})
        node.start()
        wait_for(lambda: len(connections) >= 4 and len(captured) >= 2, 30,
                 what="the node to dial the fake seed a few times")
    finally:
        stop.set()
        t.join(10)
        server.close()
    assert all(secret.encode() not in c for c in captured), "the secret reached a stranger"
    plain = [c for c in captured if not c.startswith(b"TLS:")]
    assert plain and all(c[:2] == b"\x16\x03" for c in plain if c), captured  # ClientHello
    assert all(c == b"TLS:" for c in captured if c.startswith(b"TLS:")), captured


def test_certificates_are_reloaded_without_a_restart(nodes):
    ns = start_cluster(nodes, 2, tls=True,
                       cluster_extra={"tls_refresh_s": 1}, extra={"admin": {"tls_refresh_s": 1}})
    certs = os.path.dirname(ns[0].config["cluster"]["tls_ca_file"])
    ca, crt, key = (os.path.join(certs, f) for f in ("ca.crt", "n1.crt", "n1.key"))
    n2 = (os.path.join(certs, "n2.crt"), os.path.join(certs, "n2.key"))
    before = server_cert_der(ns[0].cluster_addr, ca, *n2)
    admin_before = ssl.get_server_certificate(tuple(_split(ns[0].admin)))
    # A new certificate for n1 from the same CA, moved over the old files.
    fresh = nodes.tempdir("fresh")
    shutil.copy(ca, fresh)
    shutil.copy(os.path.join(certs, "ca.key"), fresh)
    make_certs(fresh, ["n1"], ["127.0.0.1"])
    os.rename(os.path.join(fresh, "n1.key"), key)
    os.rename(os.path.join(fresh, "n1.crt"), crt)
    wait_for(lambda: server_cert_der(ns[0].cluster_addr, ca, *n2) != before, 20,
             what="the cluster port to present the new certificate")
    wait_for(lambda: ssl.get_server_certificate(tuple(_split(ns[0].admin))) != admin_before, 20,
             what="the admin API to present the new certificate")
    # The cluster still works across the new certificate.
    ns[1].restart()
    wait_view(ns, ["n1", "n2"], 20)
    user = ns[0].add_user(user_names(1)[0])
    ledger = Ledger()
    send_all(ns, [user], ledger, "after-reload")
    assert_exact_everywhere(ns, [user], ledger)


def _split(addr):
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


# ---- the admin API over HTTPS ------------------------------------------------------

def _https_node(nodes, listen_admin="0.0.0.0:0"):
    tls = protection(nodes, ["n1"], ["127.0.0.1"])
    node = nodes.make("n1", {
        "listen": {"admin": listen_admin},
        "admin": {"tls_cert_file": os.path.join(tls["dir"], "n1.crt"),
                  "tls_key_file": os.path.join(tls["dir"], "n1.key"), "token": tls["token"]}})
    node.admin_ca = os.path.join(tls["dir"], "ca.crt")
    node.admin_token = tls["token"]
    node.start()  # listen.json says 0.0.0.0; node.admin dials loopback, which the cert names
    return node, tls


def test_admin_api_over_https_with_its_token(nodes):
    node, tls = _https_node(nodes)
    url = "https://%s" % node.admin
    ca = node.admin_ca
    user = "alice@" + DOMAIN

    # python ssl verifying the chain: the token opens, its absence does not.
    ctx = ssl.create_default_context(cafile=ca)

    def call(path, token, method="GET", body=None):
        req = urllib.request.Request(url + path, method=method, data=body,
                                     headers={"Authorization": "Bearer " + token} if token else {})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
    assert call("/healthz", None) == 200
    assert call("/v1/users", None) == 401
    assert call("/v1/users", "wrong") == 401
    body = json.dumps({"address": user, "password": "p"}).encode()
    assert call("/v1/users", None, "POST", body) == 401
    assert call("/v1/users", tls["token"]) == 200
    # Another CA's client trusts nothing here; plain HTTP gets no API.
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/healthz", timeout=10,
                               context=ssl.create_default_context())
    with pytest.raises((urllib.error.URLError, OSError, ConnectionError)):
        urllib.request.urlopen("http://%s/healthz" % node.admin, timeout=10)

    # The CLI: https:// with --ca-file and the token works...
    r = cli("user", "add", user, "--password", "pw", *node.admin_args())
    assert r.returncode == 0, r.stderr
    r = cli("user", "list", "--admin", "127.0.0.1:%d" % _split(node.admin)[1], "--ca-file", ca,
            "--token", tls["token"])
    # The postmaster mailbox is created by the node itself (RFC 5321 §4.5.1).
    assert r.returncode == 0 and r.stdout.split() == [user, "postmaster@" + DOMAIN], \
        r.stdout + r.stderr
    r = cli("cluster", "status", *node.admin_args())
    assert r.returncode == 0 and "n1" in r.stdout, r.stdout + r.stderr
    # ...without the CA it does not trust the certificate, without the token it is refused,
    # and plain HTTP does not reach the API.
    r = cli("user", "list", "--admin", url, "--token", tls["token"])
    assert r.returncode != 0 and "verification" in r.stderr.lower(), r.stderr
    other = make_certs(nodes.tempdir("other"), ["x"], ["127.0.0.1"])
    r = cli("user", "list", "--admin", url, "--ca-file", os.path.join(other, "ca.crt"),
            "--token", tls["token"])
    assert r.returncode != 0, r.stdout
    r = cli("user", "list", "--admin", url, "--ca-file", ca)
    assert r.returncode != 0 and "bearer token" in r.stderr, r.stderr
    r = cli("user", "list", "--admin", "http://" + node.admin, "--token", tls["token"])
    assert r.returncode != 0, r.stdout


# ---- refusing to start unprotected ---------------------------------------------------

def _refused(nodes, overrides, *expected):
    node = nodes.make("n1", overrides)
    node.spawn()
    rc = node.wait_exit(timeout=20)
    node.expect_dead = True
    log = node.log_text()
    assert rc != 0, log
    for e in expected:
        assert e in log, (e, log)
    assert not os.path.exists(os.path.join(node.data_dir, "listen.json")), log
    return log


def test_node_refuses_non_loopback_listeners_without_protection(nodes):
    tls = protection(nodes, ["n1"], ["127.0.0.1"])
    cluster_tls = {"tls_ca_file": os.path.join(tls["dir"], "ca.crt"),
                   "tls_cert_file": os.path.join(tls["dir"], "n1.crt"),
                   "tls_key_file": os.path.join(tls["dir"], "n1.key")}
    anywhere = {"cluster": "0.0.0.0:0"}
    advertise = {"advertise": "127.0.0.1:%d" % free_port()}
    _refused(nodes, {"listen": anywhere, "cluster": dict(advertise)},
             "listen.cluster: 0.0.0.0:0 is not a loopback address",
             "needs mutual TLS and a cluster.secret")
    _refused(nodes, {"listen": anywhere, "cluster": dict(advertise, secret="s")},
             "listen.cluster: 0.0.0.0:0", "needs mutual TLS (")
    _refused(nodes, {"listen": anywhere, "cluster": dict(advertise, **cluster_tls)},
             "listen.cluster: 0.0.0.0:0", "needs a cluster.secret")
    _refused(nodes, {"cluster": {"secret": "s", "seeds": ["10.255.1.2:7000"]}},
             "cluster.seeds: 10.255.1.2:7000 is not a loopback address")
    _refused(nodes, {"listen": {"admin": "0.0.0.0:0"}},
             "listen.admin: 0.0.0.0:0 is not a loopback address",
             "needs HTTPS and an admin.token")
    _refused(nodes, {"listen": {"admin": "0.0.0.0:0"}, "admin": {"token": "t"}},
             "listen.admin: 0.0.0.0:0", "needs HTTPS (")
    # Files that do not fit: another CA's certificate, and one not naming the address.
    other = make_certs(nodes.tempdir("other"), ["n1"], ["127.0.0.1"])
    _refused(nodes, {"cluster": dict(cluster_tls,
                                     tls_cert_file=os.path.join(other, "n1.crt"),
                                     tls_key_file=os.path.join(other, "n1.key"))},
             "cluster.tls_cert_file:", "does not verify against the CA")
    _refused(nodes, {"listen": {"cluster": "127.0.0.2:0"}, "cluster": cluster_tls},
             "cluster.tls_cert_file:", "does not name 127.0.0.2")

    # Protected, the same addresses serve; the escape hatches serve with a warning.
    ok = nodes.make("n1", {"listen": anywhere,
                           "cluster": dict(advertise, secret="s", **cluster_tls)})
    ok.start()
    ok.stop()
    hatch = nodes.make("n1", {"listen": {"cluster": "0.0.0.0:0", "admin": "0.0.0.0:0"},
                              "cluster": dict(advertise, allow_insecure=True),
                              "admin": {"allow_insecure": True}})
    hatch.spawn()
    hatch.wait_ready()
    log = hatch.log_text()
    assert "cluster.allow_insecure: listen.cluster 0.0.0.0:0 is not loopback" in log, log
    assert "admin.allow_insecure: listen.admin 0.0.0.0:0 is not loopback" in log, log
    hatch.stop()

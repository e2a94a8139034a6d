"""Helpers for multi-node tests: start a cluster, wait for views, move mail.

- `start_cluster(nodes, n)`: n nodes with fixed free cluster ports (a restarted
  node keeps its address), seeds = every node's cluster address, a shared
  secret; waits until every node is ready and all share one n-member view.
  Nodes on addresses other than loopback (the netlab namespaces) get mutual
  TLS between them and HTTPS with a token on their admin API (`protection`),
  as a node refuses to serve such addresses without.
- `wait_view(node_list, names, timeout)`: polls GET /v1/cluster until those
  nodes agree on one epoch whose "up" members are exactly `names`.
- `deliver` / `deliver_retry`: one SMTP transaction through smtplib; the
  retrying form retries temporary (4xx, connection) failures until a deadline
  and returns the monotonic time of the first success.
- `read_all` / `read_all_retry`: a whole maildrop through poplib, {uidl: bytes}.
- `Ledger`: what was sent to whom (acknowledged, and attempted), and the check
  that a node's POP3 shows exactly that.

Every wait is bounded by a deadline; no bare sleeps.
"""

import itertools
import json
import os
import poplib
import random
import smtplib
import socket
import subprocess
import threading
import time

from cluster import DEFAULT_PASSWORD, DOMAIN, make_certs, porcupine_bin
from mailclient import poplib_message, split_received

_clusters = itertools.count(1)


def new_secret():
    """A secret of its own for each cluster: nodes of another run on this
    machine (same secret, a recycled port) can then never join it."""
    return "test-secret-%d-%d" % (os.getpid(), next(_clusters))


SENDER = "sender@example.org"
IO_TIMEOUT_S = 30.0



def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host="127.0.0.1"):
    """A port that was free on host a moment ago (bound, read, closed).

    Taken below the ephemeral range when possible: the cluster port stays in
    the config across restarts, and a port in that range could meanwhile be
    taken as the source port of an outgoing connection (even a TCP
    self-connect of a peer probing the dead node's address)."""
    low = _ephemeral_low()
    rnd = random.Random()
    for _ in range(50):
        port = rnd.randrange(10000, low) if low > 11000 else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return s.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def user_names(count, prefix="u"):
    return ["%s%03d@%s" % (prefix, i, DOMAIN) for i in range(count)]


# ---- starting nodes -----------------------------------------------------------

def protection(nodes, names, hosts):
    """Certificates of a new cluster CA for the named nodes, naming every host
    and loopback (`porcupine cluster certs`), and an admin token: what
    make_node(tls=...) needs for mutual TLS and an HTTPS admin API."""
    certs = make_certs(nodes.tempdir("certs"), names, sorted(set(hosts) | {"127.0.0.1"}))
    return {"dir": certs, "token": "admin-" + new_secret()}


def is_loopback(host):
    return host == "localhost" or host.startswith("127.") or host == "::1"


def cluster_overrides(name, host, cluster_port, seeds, secret, cluster_extra=None,
                      extra=None, listen_host=None, tls=None):
    """Config overrides for one cluster node; all listeners on listen_host (default host).
    tls: protection(...) for mutual TLS and an HTTPS admin API with a token."""
    lh = listen_host or host
    over = {
        "listen": {
            "smtp": "%s:0" % lh,
            "pop3": "%s:0" % lh,
            "imap": "%s:0" % lh,
            "admin": "%s:0" % lh,
            "cluster": "%s:%d" % (lh, cluster_port),
        },
        "cluster": dict({"seeds": list(seeds), "secret": secret}, **(cluster_extra or {})),
    }
    if not is_loopback(lh):
        # Test clients reach these nodes from another network namespace, over
        # plaintext: cleartext logins must be allowed there (docs/security.md).
        over["auth"] = {"allow_plaintext_without_tls": True}
    if tls:
        files = {"tls_ca_file": os.path.join(tls["dir"], "ca.crt"),
                 "tls_cert_file": os.path.join(tls["dir"], name + ".crt"),
                 "tls_key_file": os.path.join(tls["dir"], name + ".key")}
        over["cluster"].update(files)
        over["admin"] = {"tls_cert_file": files["tls_cert_file"],
                         "tls_key_file": files["tls_key_file"], "token": tls["token"]}
    for section, keys in (extra or {}).items():
        over.setdefault(section, {}).update(keys)
    return over


def make_node(nodes, name, host, cluster_port, seeds, secret, netns=None, tls=None, **kw):
    """A Node (not started) for the cluster; `netns` runs it inside that namespace."""
    node = nodes.make(name, cluster_overrides(name, host, cluster_port, seeds, secret, tls=tls,
                                              **kw))
    node.cluster_addr = "%s:%d" % (host, cluster_port)
    if netns:
        node.netns = netns
    if tls:
        node.admin_ca = os.path.join(tls["dir"], "ca.crt")
        node.admin_token = tls["token"]
    return node


def start_cluster(nodes, n, names=None, hosts=None, netns=None, cluster_extra=None,
                  extra=None, secret=None, timeout=20.0, tls=None):
    """Starts n nodes that know each other as seeds; returns them once they share a view.

    hosts: one address per node (default 127.0.0.1 for all); netns: one
    namespace name per node (default: none). Cluster ports are picked here and
    stay in the config, so Node.restart() keeps each node's address. tls: True
    for mutual TLS between the nodes and HTTPS admin APIs with a token, False
    for neither, None (default) for TLS exactly when a host is not loopback.
    """
    names = names or ["n%d" % (i + 1) for i in range(n)]
    secret = secret or new_secret()
    hosts = hosts or ["127.0.0.1"] * n
    if tls is None:
        tls = not all(is_loopback(h) for h in hosts)
    protect = protection(nodes, names, hosts) if tls else None
    ports = [free_port(h) if not netns else 7000 + i for i, h in enumerate(hosts)]
    seeds = ["%s:%d" % (h, p) for h, p in zip(hosts, ports)]
    out = []
    for i in range(n):
        out.append(make_node(nodes, names[i], hosts[i], ports[i], seeds, secret,
                             netns=netns[i] if netns else None, tls=protect,
                             cluster_extra=cluster_extra, extra=extra))
    for node in out:
        node.spawn()
    deadline = time.monotonic() + timeout
    for node in out:
        node.wait_ready(max(1.0, deadline - time.monotonic()))
    wait_view(out, names, max(1.0, deadline - time.monotonic()))
    return out


def wait_listening(node, timeout=30.0):
    """After node.spawn(): waits for listen.json only (not /readyz), fills node.addrs."""
    path = os.path.join(node.data_dir, "listen.json")
    deadline = time.monotonic() + timeout
    while True:
        if node.proc.poll() is not None:
            raise AssertionError("node %s exited with %s:\n%s"
                                 % (node.name, node.proc.returncode, node.log_tail()))
        try:
            with open(path, encoding="utf-8") as f:
                node.addrs = json.load(f)
            return node
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError("node %s wrote no listen.json within %.0f s"
                                 % (node.name, timeout))
        time.sleep(0.02)


# ---- views --------------------------------------------------------------------

def cluster_status(node, timeout=5):
    status, body = node.http("GET", "/v1/cluster", timeout=timeout)
    assert status == 200, "GET /v1/cluster on %s: HTTP %s %r" % (node.name, status, body)
    return body


def up_names(status):
    return sorted(m["name"] for m in status["members"] if m["state"] == "up")


def describe_views(node_list):
    parts = []
    for node in node_list:
        try:
            st = cluster_status(node, timeout=2)
            parts.append("%s: epoch %s up %s ready %s removed %s" % (
                node.name, st["epoch"], up_names(st), st.get("ready"), st.get("removed")))
        except (OSError, AssertionError, ValueError) as e:
            parts.append("%s: %r" % (node.name, e))
    return "; ".join(parts)


def wait_view(node_list, expected_names, timeout, ready=True):
    """Waits until every node in node_list has the same epoch with exactly
    expected_names up (and, if ready, reports ready). Returns {name: status}.
    """
    want = sorted(expected_names)
    deadline = time.monotonic() + timeout
    while True:
        statuses = {}
        try:
            for node in node_list:
                statuses[node.name] = cluster_status(node, timeout=2)
        except (OSError, AssertionError, ValueError):
            statuses = None
        if statuses:
            epochs = {st["epoch"] for st in statuses.values()}
            if (len(epochs) == 1 and "0" not in epochs
                    and all(up_names(st) == want for st in statuses.values())
                    and (not ready or all(st["ready"] for st in statuses.values()))):
                return statuses
        if time.monotonic() > deadline:
            raise AssertionError("no common view of %s within %.1f s: %s"
                                 % (want, timeout, describe_views(node_list)))
        time.sleep(0.05)


def bucket_counts(status):
    return {m["name"]: m["buckets"] for m in status["members"] if m["state"] == "up"}


def cli(*args, timeout=30):
    """Runs the porcupine binary; returns CompletedProcess (text)."""
    return subprocess.run([porcupine_bin(), *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def cli_cluster_status(node):
    r = cli("cluster", "status", *node.admin_args(), "--json")
    assert r.returncode == 0, "cluster status: rc %s\n%s%s" % (r.returncode, r.stdout, r.stderr)
    return json.loads(r.stdout)


# ---- SMTP ---------------------------------------------------------------------

class TempFailure(Exception):
    """A 4xx reply or a connection problem: worth trying again."""


def deliver(node, user, body, timeout=IO_TIMEOUT_S):
    """One SMTP transaction through smtplib. Raises TempFailure on 4xx or a
    connection failure, AssertionError on a permanent (5xx) refusal."""
    if "smtp" not in node.addrs:  # (re)starting: listen.json not read yet
        raise TempFailure("%s is not listening yet" % node.name)
    host, port = node.smtp
    try:
        with smtplib.SMTP(host, port, local_hostname="client.example.org",
                          timeout=timeout) as s:
            s.sendmail(SENDER, [user], body)
    except smtplib.SMTPRecipientsRefused as e:
        code, msg = list(e.recipients.values())[0]
        if 400 <= code < 500:
            raise TempFailure("RCPT %s via %s: %s %r" % (user, node.name, code, msg))
        raise AssertionError("RCPT %s via %s refused: %s %r" % (user, node.name, code, msg))
    except (smtplib.SMTPResponseException) as e:
        if 400 <= e.smtp_code < 500:
            raise TempFailure("%s via %s: %s %r" % (user, node.name, e.smtp_code, e.smtp_error))
        raise AssertionError("%s via %s refused: %s %r"
                             % (user, node.name, e.smtp_code, e.smtp_error))
    except (smtplib.SMTPServerDisconnected, OSError) as e:
        raise TempFailure("%s via %s: %r" % (user, node.name, e))


def deliver_retry(node_or_nodes, user, body, deadline, ledger=None, pause=0.05):
    """Delivers, retrying temporary failures until the monotonic deadline.

    node_or_nodes: one node or a list tried in turn (round robin). Returns
    (time of the first success, attempts). Raises AssertionError with the
    last failure if the deadline passes. With a ledger, records the attempt
    and the acknowledgement.
    """
    targets = node_or_nodes if isinstance(node_or_nodes, (list, tuple)) else [node_or_nodes]
    attempts = 0
    last = None
    while True:
        node = targets[attempts % len(targets)]
        attempts += 1
        if ledger is not None:
            ledger.attempt(user, body)
        try:
            deliver(node, user, body)
            done = time.monotonic()
            if ledger is not None:
                ledger.ack(user, body, via=node.name)
            return done, attempts
        except TempFailure as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError("no delivery to %s within the deadline after %d attempts; "
                                 "last: %s" % (user, attempts, last))
        time.sleep(pause)


def deliver_once(node, user, body, ledger):
    """One delivery that must succeed at once (a stable cluster has no excuse for 4xx)."""
    ledger.attempt(user, body)
    deliver(node, user, body)
    ledger.ack(user, body, via=node.name)


def send_all(node_list, users, ledger, tag, per_user=1):
    """per_user messages to each user, through different nodes in turn, no retries."""
    for i, u in enumerate(users):
        for j in range(per_user):
            deliver_once(node_list[(i + j) % len(node_list)], u, body_for(u, tag, j), ledger)


# ---- POP3 ---------------------------------------------------------------------

def read_all(node, user, password=DEFAULT_PASSWORD, timeout=IO_TIMEOUT_S):
    """{uidl: message bytes} of user's maildrop through node's POP3 (poplib)."""
    host, port = node.pop3
    p = poplib.POP3(host, port, timeout=timeout)
    try:
        p.user(user)
        p.pass_(password)
        _, listing, _ = p.uidl()
        out = {}
        for line in listing:
            num, uid = line.split(b" ", 1)
            _, lines, _ = p.retr(int(num))
            out[uid.decode()] = poplib_message(lines)
        p.quit()
        return out
    finally:
        p.close()


def read_all_retry(node, user, deadline, password=DEFAULT_PASSWORD):
    """read_all, retrying -ERR and connection failures until the monotonic deadline."""
    last = None
    while True:
        try:
            return read_all(node, user, password)
        except (poplib.error_proto, OSError) as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError("cannot read %s via %s: %r" % (user, node.name, last))
        time.sleep(0.05)


def dele_uids(node, user, uids, password=DEFAULT_PASSWORD):
    """Deletes the messages with these UIDLs through node's POP3."""
    host, port = node.pop3
    p = poplib.POP3(host, port, timeout=IO_TIMEOUT_S)
    try:
        p.user(user)
        p.pass_(password)
        _, listing, _ = p.uidl()
        by_uid = {u.decode(): int(n) for n, u in (line.split(b" ", 1) for line in listing)}
        for uid in uids:
            p.dele(by_uid[uid])
        p.quit()
    finally:
        p.close()


def sent_part(retrieved, sent_bodies):
    """The sent body that `retrieved` ends with (after the trace headers), or None."""
    for body in sent_bodies:
        if retrieved.endswith(body):
            split_received(retrieved, body)
            return body
    return None


def body_for(user, tag, i):
    """A short unique message for user."""
    return ("Subject: %s %d\r\nTo: %s\r\n\r\nbody of %s #%d for %s\r\n"
            % (tag, i, user, tag, i, user)).encode()


class Ledger:
    """What each user was sent: acknowledged bodies, and every body attempted."""

    def __init__(self):
        self.acked = {}      # user -> [body]
        self.attempts = {}   # user -> {body: attempts}
        self.via = {}        # body -> name of the node that acknowledged it
        self.lock = threading.Lock()  # deliveries may run in threads

    def attempt(self, user, body):
        with self.lock:
            d = self.attempts.setdefault(user, {})
            d[body] = d.get(body, 0) + 1

    def ack(self, user, body, via=None):
        with self.lock:
            self.acked.setdefault(user, []).append(body)
            if via is not None:
                self.via[body] = via

    def merge(self, *others):
        """Adds the other ledgers' attempts and acknowledgements to this one; returns self."""
        for other in others:
            for user, bodies in other.attempts.items():
                for body, count in bodies.items():
                    d = self.attempts.setdefault(user, {})
                    d[body] = d.get(body, 0) + count
            for user, bodies in other.acked.items():
                self.acked.setdefault(user, []).extend(bodies)
            self.via.update(other.via)
        return self

    def users(self):
        return sorted(self.attempts)

    def total_acked(self):
        return sum(len(v) for v in self.acked.values())

    def check(self, got, user, where):
        """got = read_all(...) for user. Every acknowledged body is there; nothing
        else is there, except extra copies of bodies that also had a failed
        attempt (an SMTP failure after the store is allowed to duplicate).
        Returns {body: count}."""
        attempted = self.attempts.get(user, {})
        counts = {}
        for uid, msg in got.items():
            assert len(uid) == 32 and all(c in "0123456789abcdef" for c in uid), \
                "%s: bad UIDL %r" % (where, uid)
            body = sent_part(msg, attempted)
            assert body is not None, "%s: %s has a message nobody sent: %r" % (where, user, msg[:300])
            counts[body] = counts.get(body, 0) + 1
        missing = [b for b in self.acked.get(user, []) if b not in counts]
        assert not missing, "%s: %s lacks %d of %d acknowledged messages, e.g. %r" % (
            where, user, len(missing), len(self.acked.get(user, [])), missing[0][:120])
        for body, c in counts.items():
            acked = self.acked.get(user, []).count(body)
            allowed = max(acked, 1) + (attempted[body] - acked)
            assert c <= allowed, "%s: %s has %d copies of a message sent %d time(s): %r" % (
                where, user, c, attempted[body], body[:120])
        return counts

    def check_everywhere(self, node_list, deadline=None, users=None):
        """Every node shows every user exactly the ledger (retrying logins until deadline)."""
        deadline = deadline or time.monotonic() + 30
        for user in users or self.users():
            for node in node_list:
                got = read_all_retry(node, user, deadline)
                self.check(got, user, "POP3 of %s" % node.name)


def deliver_concurrently(jobs, deadline, ledger=None, pause=0.05):
    """jobs: [(targets, user, body)], each run in its own thread with
    deliver_retry. Returns {user: (first success time, attempts)}; raises the
    failures (every user's) together once all threads ended."""
    results, errors = {}, {}

    def run(targets, user, body):
        try:
            results[user] = deliver_retry(targets, user, body, deadline, ledger, pause)
        except BaseException as e:  # noqa: B902 - reported below
            errors[user] = e
    threads = [threading.Thread(target=run, args=job, daemon=True) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, deadline - time.monotonic() + 2 * IO_TIMEOUT_S))
    assert not any(t.is_alive() for t in threads), "delivery threads still running"
    assert not errors, "%d deliveries failed: %s" % (
        len(errors), "; ".join("%s: %s" % kv for kv in sorted(errors.items())[:5]))
    return results


def assert_exact_everywhere(node_list, users, ledger, deadline_s=15.0):
    """Every node shows every user the same mailbox: every acknowledged message,
    and nothing else but extra copies of messages that also had a failed
    attempt (Ledger.check: an SMTP failure after the store may duplicate; the
    client retried it)."""
    deadline = time.monotonic() + deadline_s
    for u in users:
        seen = {}
        for node in node_list:
            got = read_all_retry(node, u, deadline)
            ledger.check(got, u, "POP3 of %s" % node.name)
            seen[node.name] = sorted(got)
        first = next(iter(seen.values()))
        assert all(v == first for v in seen.values()), \
            "%s: nodes disagree on the mailbox: %r" % (u, {k: len(v) for k, v in seen.items()})


def wait_all_visible(node_list, users, ledger, timeout, label):
    """Polls until every node shows every user all acknowledged mail; returns seconds."""
    start = time.monotonic()
    deadline = start + timeout
    pending = [(n, u) for u in users for n in node_list]
    last = None
    while pending:
        node, u = pending[0]
        try:
            ledger.check(read_all(node, u), u, "POP3 of %s" % node.name)
            pending.pop(0)
            continue
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        if time.monotonic() > deadline:
            raise AssertionError("%s: after %.1f s, %d (node, user) pairs still lack mail; "
                                 "first %s/%s: %s" % (label, timeout, len(pending),
                                                      node.name, u, last))
        time.sleep(0.1)
    return time.monotonic() - start


def accepted_by(uid):
    """The 8-hex id of the node that accepted the SMTP session of a message id."""
    return uid[16:24]

#!/usr/bin/env python3
"""The IMAP issue's numbers, on one real node process on loopback.

  python3 bench/imap_numbers.py [--idle 5000] [--messages 1000]

 1. idle sessions: --idle connections log in, SELECT INBOX and IDLE; the node's
    resident memory before and after (KiB per session) and its CPU while they
    idle (the sessions re-read their folder every limits.imap_idle_poll_ms);
 2. FETCH of --messages headers (BODY.PEEK[HEADER]) and flags in one command,
    after APPENDing them (the APPEND time is printed too; note that imaplib
    sends a literal and its CRLF in two writes, so each APPEND waits out a
    delayed ACK: it measures the client more than the server);
 3. idle sessions on a full folder: --idle-full sessions of the user of 2.
    SELECT its INBOX of --messages messages and IDLE; the node's CPU while
    they poll, and per poll;
 4. idle sessions on a cluster: --cluster-idle sessions of 50 users on the
    first of --cluster-nodes nodes (R = 2), the mail on all of them; every
    node's CPU while they idle, with the change watch (polls skip their
    re-read while no node reports a change) and, as the baseline in the same
    run, without it (server.imap_idle_recheck_ms = 1: every poll re-reads).
 5. with --tls N: idle sessions over TLS: N sessions connect to listen.imaps
    (implicit TLS, TLS 1.3), log in, SELECT INBOX and IDLE on a fresh node, and
    N plaintext sessions do the same on another fresh node in the same run:
    the resident memory per session of each (goal: <= 64 KiB per TLS session).
Results are printed and written to bench/results/imap_numbers.json.
"""

import argparse
import imaplib
import json
import os
import resource
import socket
import ssl
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import clusterkit as ck  # noqa: E402
import tlskit  # noqa: E402
from cluster import DOMAIN, HOSTNAME, NodeSet  # noqa: E402


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_idle(host, port, user, context=None):
    """A session of user's (password "pw") in IDLE on INBOX: (socket, file, EXISTS);
    over TLS (implicit) with `context`."""
    s = socket.create_connection((host, port), timeout=30)
    if context is not None:
        s = context.wrap_socket(s, server_hostname=HOSTNAME)
    f = s.makefile("rwb", buffering=0)
    f.readline()
    f.write(b"a LOGIN %s pw\r\nb SELECT INBOX\r\nc IDLE\r\n" % user.encode())
    exists = 0
    while True:
        line = f.readline()
        if line.endswith(b" EXISTS\r\n"):
            exists = int(line.split()[1])
        if line.startswith(b"+"):
            return s, f, exists


def idle(node, count, addr=None, context=None):
    users = ["idle%d@%s" % (i, DOMAIN) for i in range(20)]
    for u in users:
        node.add_user(u, "pw")
    host, port = addr or node.imap
    pid = node.proc.pid
    before = rss_kib(pid)
    conns = []
    try:
        for i in range(count):
            s, f, _ = start_idle(host, port, users[i % 20], context)
            conns.append((s, f))
        time.sleep(3)
        after = rss_kib(pid)
        c0, t0 = cpu_s(pid), time.monotonic()
        time.sleep(10)
        cores = (cpu_s(pid) - c0) / (time.monotonic() - t0)
    finally:
        for s, f in conns:
            s.close()
    return {"sessions": count, "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_session": round((after - before) / count, 1), "idle_cpu_cores": round(cores, 3)}


def idle_full(node, count, user, messages):
    """count sessions of one user idle on an INBOX of `messages` messages:
    the node's CPU while they poll (each poll re-reads the folder)."""
    host, port = node.imap
    pid = node.proc.pid
    conns = []
    try:
        for _ in range(count):
            s, f, exists = start_idle(host, port, user)
            assert exists == messages, (exists, messages)
            conns.append((s, f))
        time.sleep(3)
        c0, t0 = cpu_s(pid), time.monotonic()
        time.sleep(10)
        wall = time.monotonic() - t0
        cores = (cpu_s(pid) - c0) / wall
    finally:
        for s, f in conns:
            s.close()
    polls = count * wall / 0.5  # limits.imap_idle_poll_ms = 500
    return {"sessions": count, "messages": messages, "idle_cpu_cores": round(cores, 3),
            "cpu_us_per_poll": round(cores * wall / polls * 1e6, 1)}


def cluster_idle(count, nodes, recheck_ms):
    """count IDLE sessions of 50 users on the first of `nodes` nodes: the CPU
    of every node while they idle, and the node's idle polls read/skipped."""
    ns = NodeSet()
    conns = []
    try:
        extra = {"server": {"max_connections": count + 100, "imap_idle_recheck_ms": recheck_ms}}
        cl = ck.start_cluster(ns, nodes, cluster_extra={"replication": 2}, extra=extra)
        users = ["cidle%d@%s" % (i, DOMAIN) for i in range(50)]
        cl[0].add_users(users, "pw")
        for i, u in enumerate(users):
            for j in range(3):
                ck.deliver(cl[(i + j) % nodes], u, "Subject: x\r\n\r\nx\r\n")
        host, port = cl[0].imap
        for i in range(count):
            s, f, _ = start_idle(host, port, users[i % 50])
            conns.append((s, f))
        time.sleep(3)
        polls = lambda r: cl[0].metric("porcupine_imap_idle_polls_total", result=r)  # noqa: E731
        p0 = {r: polls(r) for r in ("read", "skipped")}
        c0, t0 = [cpu_s(n.proc.pid) for n in cl], time.monotonic()
        time.sleep(15)
        wall = time.monotonic() - t0
        cores = [(cpu_s(n.proc.pid) - c) / wall for n, c in zip(cl, c0)]
        p1 = {r: polls(r) - p0[r] for r in p0}
    finally:
        for s, f in conns:
            s.close()
        ns.close()
    return {"sessions": count, "nodes": nodes, "imap_idle_recheck_ms": recheck_ms,
            "cores_per_node": [round(c, 3) for c in cores], "cores_total": round(sum(cores), 3),
            "polls_read": p1["read"], "polls_skipped": p1["skipped"]}


def tls_idle(count):
    """count IDLE sessions over implicit TLS on one fresh node and count
    plaintext ones on another: KiB per session of each."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        pki = tlskit.Pki(os.path.join(tmp, "pki"))
        leaf = pki.leaf("mx", [HOSTNAME], ips=["127.0.0.1"])
        context = tlskit.client_context(pki)
        for name in ("plain", "tls"):
            ns = NodeSet()
            try:
                overrides = {"server": {"max_connections": count + 100},
                             "listen": {"imaps": "127.0.0.1:0"},
                             "tls": {"cert_file": leaf.chain, "key_file": leaf.key}}
                node = ns.start(overrides=overrides)
                if name == "tls":
                    out[name] = idle(node, count, node.imaps, context)
                else:
                    out[name] = idle(node, count)
            finally:
                ns.close()
    out["tls_extra_kib_per_session"] = round(out["tls"]["kib_per_session"]
                                             - out["plain"]["kib_per_session"], 1)
    return out


def fetch(node, messages):
    user = "fetch@" + DOMAIN
    node.add_user(user, "pw")
    host, port = node.imap
    m = imaplib.IMAP4(host, port, timeout=60)
    m.login(user, "pw")
    t = time.monotonic()
    for i in range(messages):
        m.append("INBOX", None, None,
                 ("From: a%d@example.org\r\nTo: %s\r\nSubject: number %d\r\n\r\nbody\r\n"
                  % (i, user, i)).encode())
    append_s = time.monotonic() - t
    m.select("INBOX")
    t = time.monotonic()
    typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER])")
    headers_s = time.monotonic() - t
    assert typ == "OK" and len([d for d in data if isinstance(d, tuple)]) == messages
    t = time.monotonic()
    typ, data = m.fetch("1:*", "(FLAGS)")
    flags_s = time.monotonic() - t
    m.logout()
    return {"user": user, "messages": messages, "append_s": round(append_s, 2),
            "fetch_headers_s": round(headers_s, 4), "fetch_flags_s": round(flags_s, 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--idle", type=int, default=5000)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--idle-full", type=int, default=200,
                    help="sessions idle on the --messages folder (3.)")
    ap.add_argument("--cluster-idle", type=int, default=1000,
                    help="sessions idle on a cluster (4.); 0 skips it")
    ap.add_argument("--cluster-nodes", type=int, default=3)
    ap.add_argument("--tls", type=int, default=0,
                    help="idle sessions over TLS and plaintext on fresh nodes (5.) only")
    ap.add_argument("--out", default="imap_numbers.json", help="file in bench/results")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE,
                       (max(soft, min(hard, max(args.idle, args.tls) + 1000)), hard))
    if args.tls:
        out = {"idle_tls": tls_idle(args.tls)}
        print(json.dumps(out))
        path = os.path.join(HERE, "results", args.out.replace(".json", "_tls.json"))
        with open(path, "w") as f:
            json.dump(out, f, indent=1)
        print("written", path)
        return
    ns = NodeSet()
    try:
        node = ns.start(overrides={"server": {"max_connections": args.idle + 100}})
        out = {"fetch": fetch(node, args.messages), "idle": idle(node, args.idle)}
        out["idle_full"] = idle_full(node, args.idle_full, out["fetch"].pop("user"),
                                     args.messages)
        out["binary"] = os.path.basename(os.environ.get("PORCUPINE_BIN", "build/porcupine"))
    finally:
        ns.close()
    if args.cluster_idle:
        watched = cluster_idle(args.cluster_idle, args.cluster_nodes, 10000)
        polled = cluster_idle(args.cluster_idle, args.cluster_nodes, 1)
        out["cluster_idle"] = {"watch": watched, "baseline_every_poll_reads": polled,
                               "cores_ratio": round(watched["cores_total"]
                                                    / max(polled["cores_total"], 1e-9), 3)}
    print(json.dumps(out))
    path = os.path.join(HERE, "results", args.out)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("written", path)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""SMTP over STARTTLS against plaintext, one node on loopback, one run
(docs/security.md, bench/README.md "TLS").

  python3 bench/tls_numbers.py [--duration 20] [--sessions 16]

Four bench windows on the same node, alternating plaintext and STARTTLS:
  bulk:  --messages-per-connection 1000 (a handshake per 1000 messages: the
         cost of encrypting the traffic);
  fresh: --messages-per-connection 1 (every message pays a connection and a
         full TLS handshake: the worst case).
Reported: delivered/s, node CPU ms per message, and their STARTTLS/plaintext
ratios; the node's CPU per TLS handshake = (fresh STARTTLS - fresh plaintext)
CPU per message, hence TLS handshakes per second per core = 1 / that; the
handshakes the node counted (porcupine_tls_handshakes_total). The store does
not fsync (store.sync = false), so the numbers are the CPU path, not the disk.
Results are printed and written to bench/results/tls_numbers.json.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, HERE)

import lib  # noqa: E402
import tlskit  # noqa: E402
from cluster import HOSTNAME, NodeSet  # noqa: E402


def handshakes(node):
    return sum(node.metric("porcupine_tls_handshakes_total", listener="smtp", version=v)
               for v in ("TLSv1.2", "TLSv1.3", "other"))


def window(node, args, starttls, per_connection, users_created):
    extra = ["--messages-per-connection", per_connection, "--admin", node.admin]
    if starttls:
        extra += ["--starttls", "--tls-ca", args.ca, "--tls-name", HOSTNAME]
    h0 = handshakes(node)
    r = lib.run_bench("%s:%d" % node.smtp, duration=args.duration, warmup=args.warmup,
                      sessions=args.sessions, readers=0, users=args.users,
                      pids=[node.proc.pid], create_users=not users_created, extra=extra,
                      threads=args.threads)
    out = {"starttls": starttls, "messages_per_connection": per_connection,
           "delivered_per_s": r.get("delivered_per_s"),
           "cpu_ms_per_msg": (r.get("cpu_s_per_msg") or 0) * 1000,
           "errors": r.get("errors"), "handshakes": handshakes(node) - h0}
    print(json.dumps(out), flush=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--out", default="tls_numbers.json", help="file in bench/results")
    args = ap.parse_args()
    ns = NodeSet()
    try:
        node = ns.make()
        pki = tlskit.Pki(os.path.join(node.root, "pki"))
        leaf = pki.leaf("mx", [HOSTNAME], days=30, ips=["127.0.0.1"])
        args.ca = pki.ca_file
        node.config = lib_overrides(node.config, leaf)
        node.start()
        runs = {}
        created = False
        for per in (1000, 1):
            for tls in (False, True):
                runs[(per, tls)] = window(node, args, tls, per, created)
                created = True
    finally:
        ns.close()
    out = {"runs": list(runs.values())}
    for per, name in ((1000, "bulk"), (1, "fresh")):
        plain, tls = runs[(per, False)], runs[(per, True)]
        out[name] = {
            "throughput_ratio": round(tls["delivered_per_s"] / max(plain["delivered_per_s"], 1e-9),
                                      3),
            "cpu_per_msg_ratio": round(tls["cpu_ms_per_msg"] / max(plain["cpu_ms_per_msg"], 1e-9),
                                       3)}
    per_handshake_ms = runs[(1, True)]["cpu_ms_per_msg"] - runs[(1, False)]["cpu_ms_per_msg"]
    out["cpu_ms_per_handshake"] = round(per_handshake_ms, 4)
    out["handshakes_per_s_per_core"] = round(1000 / per_handshake_ms) if per_handshake_ms > 0 \
        else None
    out["binary"] = os.path.basename(os.environ.get("PORCUPINE_BIN", "build/porcupine"))
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}))
    path = os.path.join(HERE, "results", args.out)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("written", path)


def lib_overrides(config, leaf):
    config = dict(config)
    config["tls"] = {"cert_file": leaf.chain, "key_file": leaf.key}
    config["store"] = {"sync": False}
    config["server"] = {"max_connections": 20000}
    return config


if __name__ == "__main__":
    main()

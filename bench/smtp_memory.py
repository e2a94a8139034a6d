#!/usr/bin/env python3
"""SMTP DATA memory: many sessions sending the largest messages at once cannot
exhaust a node (docs/security.md, "Memory of messages being received").

  python3 bench/smtp_memory.py [--sessions 500] [--size-mb 49] [--budget-mib 512]

One real node on loopback with its default limits (50 MiB messages, a 512 MiB
`limits.smtp_data_memory_bytes` budget unless --budget-mib says otherwise).
--sessions connections each reach DATA, then all send one message of --size-mb
MB at once; the node answers 250 to those it could hold and 452 4.3.1 to the
others. Measured: the node's peak resident memory (VmHWM of /proc/PID/status)
before and after, the replies, the time, the node's CPU and its
porcupine_smtp_data_memory_* metrics. The run fails (exit 1) when the peak
grows by more than the budget plus FIXED_MIB, the memory the node may hold
outside the budget (docs/security.md): one commit group's copy in the RocksDB
write batch (64 MiB), two body memtables (64 MiB plus one message each),
the block cache (64 MiB), allocator slack.

Results are printed and written to bench/results/smtp_memory.json.
"""

import argparse
import collections
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import smtpflood  # noqa: E402
from cluster import DOMAIN, NodeSet  # noqa: E402

MIB = 1 << 20
MAX_MESSAGE = 50 * MIB  # the node's default limits.smtp_max_message_bytes
FIXED_MIB = 400


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mem_total_mib():
    with open("/proc/meminfo") as f:
        for row in f:
            if row.startswith("MemTotal:"):
                return int(row.split()[1]) // 1024
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=500)
    ap.add_argument("--size-mb", type=float, default=49.0, help="message size, MB (10^6 bytes)")
    ap.add_argument("--budget-mib", type=int, default=0,
                    help="limits.smtp_data_memory_bytes in MiB (0: the node's default, 512)")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "smtp_memory.json"))
    args = ap.parse_args()

    size = int(args.size_mb * 1000 * 1000)
    limits = {"smtp_max_message_bytes": MAX_MESSAGE}
    if args.budget_mib:
        limits["smtp_data_memory_bytes"] = args.budget_mib * MIB
    overrides = {"limits": limits, "cluster": {"max_rpc_message_mib": 64}}
    nodes = NodeSet()
    try:
        node = nodes.start(overrides=overrides)
        users = ["mem%d@%s" % (i, DOMAIN) for i in range(args.users)]
        node.add_users(users)
        pid = node.proc.pid
        budget = int(node.metric("porcupine_smtp_data_memory_limit_bytes"))
        before = smtpflood.peak_rss(pid)
        cpu0, t0 = cpu_s(pid), time.monotonic()
        replies = smtpflood.flood(*node.smtp, [users[i % len(users)] for i in range(args.sessions)],
                                  size, ready_timeout=120.0)
        seconds = time.monotonic() - t0
        node_cpu = cpu_s(pid) - cpu0
        peak = smtpflood.peak_rss(pid)
        result = {
            "sessions": args.sessions,
            "message_bytes": size,
            "offered_mib": round(args.sessions * size / MIB),
            "budget_mib": budget // MIB,
            "rss_before_mib": before // MIB,
            "peak_rss_mib": peak // MIB,
            "growth_mib": (peak - before) // MIB,
            "allowed_growth_mib": budget // MIB + FIXED_MIB,
            "replies": dict(collections.Counter(r[:9] for r in replies)),
            "seconds": round(seconds, 1),
            "node_cpu_s": round(node_cpu, 1),
            "metric_refused": node.metric("porcupine_smtp_data_memory_refused_total"),
            "metric_peak_mib": node.metric("porcupine_smtp_data_memory_peak_bytes") // MIB,
            "metric_in_use_after": node.metric("porcupine_smtp_data_memory_bytes"),
            "machine": "%s, %d cores, %d MiB RAM" % (platform.machine(), os.cpu_count(),
                                                     mem_total_mib()),
        }
        node.stop()
    finally:
        problems = nodes.close()
    print(json.dumps(result, indent=2))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    ok = result["growth_mib"] <= result["allowed_growth_mib"] and not problems
    others = set(result["replies"]) - {"250 2.0.0", "452 4.3.1"}
    if others:
        print("unexpected replies: %s" % sorted(others), file=sys.stderr)
        ok = False
    if not ok:
        print("FAILED: the node grew by %d MiB, allowed %d MiB; %s"
              % (result["growth_mib"], result["allowed_growth_mib"], problems), file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

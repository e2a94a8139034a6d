#!/usr/bin/env python3
"""The replication issue's catch-up numbers, on real node processes on loopback.

  python3 bench/replication_numbers.py [--messages 10000]

Two nodes, replication 2, so every message is on both:
 1. log catch-up: the second node is killed, every message is deleted through the
    first (the tombstones wait for it in the first node's update log), the node
    restarts: time until the log is drained (porcupine_replication_unretired 0);
 2. anti-entropy catch-up: the second node's data directory is wiped, it restarts
    as itself: time until it holds every message again.
Results are printed and written to bench/results/replication_numbers.json.
"""

import argparse
import json
import os
import poplib
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from cluster import NodeSet, porcupine_bin, wait_for  # noqa: E402
import clusterkit as ck  # noqa: E402

USERS = 100


def fill(nodes, messages):
    smtp = ",".join("%s:%d" % n.smtp for n in nodes)
    start = sum(n.metric("porcupine_messages_stored_total") for n in nodes)
    created = False
    while sum(n.metric("porcupine_messages_stored_total") for n in nodes) - start < messages:
        cmd = [porcupine_bin(), "bench", "--admin", nodes[0].admin, "--smtp", smtp, "--pop3",
               ",".join("%s:%d" % n.pop3 for n in nodes), "--readers", "0", "--sessions", "16",
               "--users", str(USERS), "--size-mean", "1024", "--size-sigma", "0",
               "--duration", "3", "--json"]
        if created:
            cmd.append("--no-create-users")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=600)
        created = True


def held_live(node):
    total = 0
    for i in range(USERS):
        status, body = node.http("GET", "/v1/fragments/bench%d@example.test" % i)
        if status == 200:
            total += sum(1 for m in body["messages"] if not m["tombstone"])
    return total


def delete_all(node):
    host, port = node.pop3
    deleted = 0
    for i in range(USERS):
        p = poplib.POP3(host, port, timeout=60)
        p.user("bench%d@example.test" % i)
        p.pass_("bench-pw")
        count, _ = p.stat()
        for n in range(1, count + 1):
            p.dele(n)
        p.quit()
        deleted += count
    return deleted


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=10000)
    args = ap.parse_args()
    results = {}
    ns = NodeSet()
    try:
        a, b = ck.start_cluster(ns, 2, cluster_extra={"anti_entropy_interval_ms": 3600000})
        fill([a, b], args.messages)
        wait_for(lambda: a.metric("porcupine_replication_unretired") == 0 and
                 b.metric("porcupine_replication_unretired") == 0, 60, what="quiescent")
        on_b = held_live(b)
        # 1. Log catch-up.
        b.kill(signal.SIGKILL)
        ck.wait_view([a], ["n1"], 10)
        deleted = delete_all(a)
        pending = a.metric("porcupine_replication_unretired")
        t0 = time.monotonic()
        b.start()
        wait_for(lambda: a.metric("porcupine_replication_unretired") == 0, 600, interval=0.05,
                 what="log drained")
        results["log_catch_up"] = {"deletes_missed": deleted, "entries_pending": pending,
                                   "restart_to_drained_s": round(time.monotonic() - t0, 2)}
        print(json.dumps(results["log_catch_up"]), flush=True)
        # 2. Anti-entropy catch-up of a wiped node.
        fill([a, b], args.messages)
        wait_for(lambda: a.metric("porcupine_replication_unretired") == 0 and
                 b.metric("porcupine_replication_unretired") == 0, 60, what="quiescent")
        on_b = held_live(b)
        b.kill(signal.SIGKILL)
        shutil.rmtree(b.data_dir)
        t0 = time.monotonic()
        b.start()
        wait_for(lambda: held_live(b) >= on_b, 900, interval=0.5, what="replicas back")
        results["wipe_catch_up"] = {"messages": on_b,
                                    "restart_to_all_back_s": round(time.monotonic() - t0, 2),
                                    "anti_entropy_pushed": b.metric(
                                        "porcupine_anti_entropy_pushed_total") + a.metric(
                                        "porcupine_anti_entropy_pushed_total")}
        print(json.dumps(results["wipe_catch_up"]), flush=True)
    finally:
        ns.close()
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "replication_numbers.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

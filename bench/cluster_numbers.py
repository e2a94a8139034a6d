#!/usr/bin/env python3
"""The cluster issue's numbers, measured on real node processes on loopback.

  python3 bench/cluster_numbers.py failover        # kill -9 of a user's manager, 10 times
  python3 bench/cluster_numbers.py rebuild         # reconstruction time vs nodes and messages
  python3 bench/cluster_numbers.py rpcs            # inter-node calls per delivered message
  python3 bench/cluster_numbers.py all [--quick]

Results are printed as tables and written to bench/results/cluster_numbers.json.
Every process started is killed at the end (tests/cluster.py NodeSet).
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from cluster import NodeSet, porcupine_bin, wait_for  # noqa: E402
import clusterkit as ck  # noqa: E402


def up_members(node):
    try:
        return ck.up_names(ck.cluster_status(node, timeout=2))
    except (OSError, AssertionError):
        return None


def manager_of(node, user):
    status, body = node.http("GET", "/v1/users/%s" % user)
    assert status == 200, (status, body)
    return body["manager"]


def deliver_until_ok(node, user, deadline):
    """Delivers through `node` until a 250; returns the monotonic time of it."""
    while time.monotonic() < deadline:
        try:
            ck.deliver(node, user, "Subject: failover\r\n\r\nprobe\r\n", timeout=5)
            return time.monotonic()
        except Exception:  # 4xx, connection trouble: try again
            time.sleep(0.01)
    raise AssertionError("no delivery to %s within the deadline" % user)


def failover(trials, traffic):
    """kill -9 of the manager of a user; time to the new view and to delivery."""
    ns = NodeSet()
    try:
        nodes = ck.start_cluster(ns, 5)
        users = ck.user_names(40)
        nodes[0].add_users(users)
        by_name = {n.name: n for n in nodes}
        views, deliveries = [], []
        for t in range(trials):
            user = users[t % len(users)]
            victim = by_name[manager_of(nodes[0], user)]
            survivor = next(n for n in nodes if n is not victim)
            t0 = time.monotonic()
            victim.kill(signal.SIGKILL)
            seen = {}

            def watch():
                while time.monotonic() - t0 < 20:
                    up = up_members(survivor)
                    if up is not None and victim.name not in up:
                        seen["view"] = time.monotonic()
                        return
                    time.sleep(0.005)

            w = threading.Thread(target=watch)
            w.start()
            if not traffic:
                w.join()
            t_deliver = deliver_until_ok(survivor, user, t0 + 20)
            w.join()
            views.append(seen["view"] - t0)
            deliveries.append(t_deliver - t0)
            victim.start()
            ck.wait_view(nodes, [n.name for n in nodes], 30)
        return {"trials": trials, "traffic_from_kill": traffic,
                "view_s": summary(views), "first_delivery_s": summary(deliveries)}
    finally:
        ns.close()


def summary(xs):
    return {"median": round(statistics.median(xs), 3), "max": round(max(xs), 3),
            "min": round(min(xs), 3)}


def metric_sum(nodes, name):
    return sum(n.metric(name) for n in nodes if n.alive())


def bench_fill(nodes, messages, users, size=512, sessions=16):
    """Delivers at least `messages` messages to `users` users through every node."""
    smtp = ",".join("%s:%d" % n.smtp for n in nodes)
    admin = nodes[0].admin
    start = metric_sum(nodes, "porcupine_messages_stored_total")
    created = False
    while metric_sum(nodes, "porcupine_messages_stored_total") - start < messages:
        cmd = [porcupine_bin(), "bench", "--admin", admin, "--smtp", smtp, "--pop3",
               ",".join("%s:%d" % n.pop3 for n in nodes), "--readers", "0",
               "--sessions", str(sessions), "--users", str(users), "--size-mean", str(size),
               "--size-sigma", "0", "--duration", "5", "--json"]
        if created:
            cmd.append("--no-create-users")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, timeout=600)
        created = True
    return metric_sum(nodes, "porcupine_messages_stored_total") - start


RECON = re.compile(r"reconstruction for view (\w+): (\d+) buckets, (\d+) users scanned in (\d+) ms")


def rebuild(sizes, messages_list):
    out = []
    for n in sizes:
        for messages in messages_list:
            ns = NodeSet()
            try:
                nodes = ck.start_cluster(ns, n, timeout=60)
                users = max(1000, messages // 10)
                stored = bench_fill(nodes, messages, users)
                victim = nodes[0]
                logs_before = {x.name: len(x.log_text()) for x in nodes}
                victim.kill(signal.SIGKILL)
                ck.wait_view(nodes[1:], [x.name for x in nodes[1:]], 30)
                t0 = time.monotonic()
                victim.spawn()
                ck.wait_listening(victim)
                wait_for(lambda: victim.http("GET", "/readyz", timeout=2)[0] == 200, 60,
                         interval=0.01, what="restarted node ready")
                t_ready = time.monotonic() - t0

                def all_rebuilt():
                    for x in nodes:
                        st = ck.cluster_status(x)
                        if st["buckets_rebuilding"] or len(ck.up_names(st)) != n:
                            return False
                    return True

                wait_for(all_rebuilt, 60, interval=0.01, what="every node rebuilt")
                t_all = time.monotonic() - t0
                scans = []
                for x in nodes:
                    text = x.log_text()[logs_before[x.name]:]
                    found = RECON.findall(text)
                    if found:
                        epoch, buckets, scanned, ms = found[-1]
                        scans.append({"node": x.name, "buckets": int(buckets),
                                      "users": int(scanned), "ms": int(ms)})
                row = {"nodes": n, "messages": stored, "users": users,
                       "restart_to_ready_s": round(t_ready, 3),
                       "restart_to_cluster_rebuilt_s": round(t_all, 3),
                       "slowest_scan_ms": max(s["ms"] for s in scans) if scans else None,
                       "scans": scans}
                print(json.dumps(row), flush=True)
                out.append(row)
            finally:
                ns.close()
    return out


def rpcs(duration):
    ns = NodeSet()
    try:
        nodes = ck.start_cluster(ns, 5)
        bench_fill(nodes, 200, 200)  # creates the users
        c0 = metric_sum(nodes, "porcupine_rpc_calls_total")
        time.sleep(duration)
        idle = (metric_sum(nodes, "porcupine_rpc_calls_total") - c0) / duration
        c1 = metric_sum(nodes, "porcupine_rpc_calls_total")
        m1 = metric_sum(nodes, "porcupine_messages_stored_total")
        t1 = time.monotonic()
        bench_fill(nodes, 5000, 200, size=4096)
        elapsed = time.monotonic() - t1
        calls = metric_sum(nodes, "porcupine_rpc_calls_total") - c1 - idle * elapsed
        msgs = metric_sum(nodes, "porcupine_messages_stored_total") - m1
        return {"nodes": 5, "messages": msgs, "background_calls_per_s": round(idle, 1),
                "rpcs_per_message": round(calls / msgs, 3)}
    finally:
        ns.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", choices=["failover", "rebuild", "rpcs", "all"])
    ap.add_argument("--quick", action="store_true", help="fewer trials, smaller sizes")
    args = ap.parse_args()
    results = {}
    trials = 3 if args.quick else 10
    if args.what in ("failover", "all"):
        results["failover_with_traffic"] = failover(trials, traffic=True)
        print(json.dumps(results["failover_with_traffic"]), flush=True)
        results["failover_idle"] = failover(trials, traffic=False)
        print(json.dumps(results["failover_idle"]), flush=True)
    if args.what in ("rebuild", "all"):
        sizes = [3, 5] if args.quick else [3, 5, 8]
        messages = [10000] if args.quick else [10000, 100000]
        results["rebuild"] = rebuild(sizes, messages)
    if args.what in ("rpcs", "all"):
        results["rpcs"] = rpcs(3 if args.quick else 5)
        print(json.dumps(results["rpcs"]), flush=True)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", "cluster_numbers.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print("written", path)


if __name__ == "__main__":
    main()

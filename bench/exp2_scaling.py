#!/usr/bin/env python3
"""Experiment 2: cost per message against cluster size (1, 2, 4, 8 nodes).

All nodes run as processes on this machine, so total throughput is capped by
its cores; what scales on real hardware is shown by the cost per message:
CPU-seconds summed over every node process, and inter-node RPCs (the delta of
porcupine_rpc_calls_total summed over all nodes), both divided by the
messages delivered in the measured window. Flat CPU per message means linear
scaling when each node has its own machine. The same closed-loop workload
(sessions and readers spread round-robin over all nodes) runs on each size,
on a fresh cluster.

    python3 bench/exp2_scaling.py [--quick] [--nodes 1,2,4,8] [--duration S] [--tls off|on|both]

--tls on runs the nodes with mutual TLS between them (certificates from
`porcupine cluster certs`); --tls both runs every size without and with it,
one after the other in each round, and reports the ratio of CPU per delivered
message (results in exp2_tls.*, leaving exp2.* alone).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

COUNTERS = ["porcupine_rpc_calls_total", "porcupine_rpc_failures_total",
            "porcupine_messages_stored_total", "porcupine_messages_deleted_total",
            "porcupine_store_syncs_total", "porcupine_store_batches_total"]


def snapshot(cluster):
    return {"cpu": {n.name: n.cpu_s() for n in cluster.nodes},
            "ctx": sum(lib.ctx_switches(n.pid) or 0 for n in cluster.live()),
            "threads": sum(lib.thread_count(n.pid) or 0 for n in cluster.live()),
            "m": cluster.metrics_all()}


def run_size(session, args, n, tls=False):
    overrides = {"cluster": {"replication": args.replication, "spread": args.spread,
                             "policy": args.policy}}
    if args.io_threads is not None:
        overrides["node"] = {"io_threads": args.io_threads}
    cluster = lib.Cluster(session, n, overrides=overrides, tls=tls).start()
    r = lib.run_bench(cluster.smtp_list(), cluster.pop3_list(), cluster.admin_list(),
                      duration=args.duration, warmup=args.warmup, drain=args.drain,
                      sessions=args.sessions, readers=args.readers, users=args.users,
                      pids=cluster.pids(), edge_hook=lambda kind: snapshot(cluster),
                      extra=args.bench_args)
    row = {"nodes": n, "tls": "on" if tls else "off", "case": "%d/%s" % (n, tls),
           "delivered_per_s": r["delivered_per_s"],
           "retrieved_per_s": r["retrieved_per_s"], "errors": r["errors"],
           "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"], "delivered": r["delivered"],
           "retrieved": r["retrieved"], "duration_s": r["duration_s"],
           "bench_cpu_s": r["bench_cpu_s"], "cpu_s_per_msg_reported": r["cpu_s_per_msg"],
           "error_samples": "; ".join(r.get("error_samples") or [])}
    e = r.edges
    if "start" in e and "end" in e:
        s, t = e["start"], e["end"]
        cpus = [t["cpu"][k] - s["cpu"][k] for k in t["cpu"]
                if t["cpu"][k] is not None and s["cpu"].get(k) is not None]
        row["cpu_s"] = sum(cpus)
        row["cpu_min_node_s"] = min(cpus)
        row["cpu_max_node_s"] = max(cpus)
        row["nodes_measured"] = len(cpus)
        row["ctx_switches"] = t["ctx"] - s["ctx"]
        row["threads"] = t["threads"]
        for c in COUNTERS:
            row[c.replace("porcupine_", "").replace("_total", "")] = (
                lib.sum_metric(t["m"], c) - lib.sum_metric(s["m"], c))
    deaths = cluster.deaths(save_as="exp2-%dnodes" % n)
    row["node_deaths"] = " ".join("%s(exit %s)" % d for d in deaths)
    d = row["delivered"] or 0
    if d and row.get("ctx_switches") is not None:
        row["ctx_per_msg"] = row["ctx_switches"] / d
    if d and row.get("cpu_s") is not None:
        row["cpu_ms_per_msg"] = row["cpu_s"] / d * 1000
        row["rpcs_per_msg"] = row["rpc_calls"] / d
        row["msgs_per_sync"] = row["messages_stored"] / row["store_syncs"] \
            if row["store_syncs"] else None
    lib.log("%d node(s)%s: %.0f delivered/s, %.3f CPU ms/msg, %.2f RPCs/msg, errors %s"
            % (n, " with mutual TLS" if tls else "", row["delivered_per_s"] or 0,
               row.get("cpu_ms_per_msg") or 0,
               row.get("rpcs_per_msg") or 0, row["errors"]))
    cluster.stop()
    return row


FIELDS = ["nodes", "tls", "delivered_per_s", "x_1node", "retrieved_per_s", "errors", "p50_ms", "p99_ms",
          "delivered", "retrieved", "duration_s", "cpu_s", "cpu_ms_per_msg", "cpu_x_1node",
          "cpu_min_node_s", "cpu_max_node_s", "rpc_calls", "rpcs_per_msg", "rpc_failures",
          "messages_stored", "messages_deleted", "store_syncs", "store_batches", "msgs_per_sync",
          "ctx_switches", "ctx_per_msg", "threads", "nodes_measured", "node_deaths",
          "bench_cpu_s", "cpu_s_per_msg_reported", "error_samples"]

NUMERIC = ["delivered_per_s", "retrieved_per_s", "p50_ms", "p99_ms", "cpu_ms_per_msg",
           "rpcs_per_msg", "msgs_per_sync", "ctx_per_msg", "cpu_s", "delivered"]

COLS = [("nodes", "nodes", "%d"), ("mTLS", "tls", None), ("runs", "runs", "%d"), ("delivered/s", "delivered_per_s", "%.0f"),
        ("x 1 node", "x_1node", "%.2f"), ("retrieved/s", "retrieved_per_s", "%.0f"),
        ("p99 ms", "p99_ms", "%.1f"), ("CPU ms/msg", "cpu_ms_per_msg", "%.3f"),
        ("x 1 node", "cpu_x_1node", "%.2f"), ("RPCs/msg", "rpcs_per_msg", "%.2f"),
        ("msgs/sync", "msgs_per_sync", "%.1f"), ("ctx sw/msg", "ctx_per_msg", "%.1f"),
        ("errors", "errors", "%d"), ("node deaths", "node_deaths", None)]


def plot(rows, png, dat):
    with open(dat, "w") as f:
        f.write("# nodes delivered_per_s cpu_ms_per_msg rpcs_per_msg\n")
        for r in rows:
            f.write("%d %s %s %s\n" % (r["nodes"], r["delivered_per_s"] or 0,
                                       r.get("cpu_ms_per_msg") or 0, r.get("rpcs_per_msg") or 0))
    script = """
set multiplot layout 1,2 title "Experiment 2: cost per message vs nodes (all nodes on one 2-core machine)"
set grid
set xlabel "nodes"
set logscale x 2
set xtics (1,2,4,8,16)
set xrange [0.8:10]
set key top left
set title "throughput (capped by the machine's cores)"
set ylabel "delivered messages/s"
set yrange [0:*]
plot '{dat}' using 1:2 with linespoints lw 2 pt 7 title "delivered/s"
set title "cost per message"
set ylabel "CPU ms per message (sum of all nodes)"
set y2label "inter-node RPCs per message"
set ytics nomirror
set y2tics
set y2range [0:*]
plot '{dat}' using 1:3 with linespoints lw 2 pt 7 title "CPU ms/msg" axes x1y1, \\
     '' using 1:4 with linespoints lw 2 pt 5 title "RPCs/msg" axes x1y2
unset multiplot
""".format(dat=dat)
    lib.gnuplot(script, png)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--nodes", default="1,2,4,8")
    ap.add_argument("--rounds", type=int, help="repeat every size this often (median reported)")
    ap.add_argument("--duration", type=float)
    ap.add_argument("--warmup", type=float)
    ap.add_argument("--drain", type=float, help="bench --drain (default 3, quick 1)")
    ap.add_argument("--sessions", type=int, default=32)
    ap.add_argument("--readers", type=int, default=None)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--replication", type=int, default=1)
    ap.add_argument("--spread", type=int, default=2)
    ap.add_argument("--policy", default="dynamic", choices=["dynamic", "static", "random"])
    ap.add_argument("--io-threads", type=int, default=None,
                    help="[node] io_threads per node (default: the node's default)")
    ap.add_argument("--bench-arg", dest="bench_args", action="append", default=[])
    ap.add_argument("--tls", default="off", choices=["off", "on", "both"],
                    help="mutual TLS between the nodes: off, on, or both (the ratio)")
    args = ap.parse_args()
    q = args.quick
    args.rounds = args.rounds or (1 if q else 2)
    args.duration = args.duration or (5 if q else 30)
    args.drain = args.drain if args.drain is not None else (1 if q else 3)
    args.warmup = args.warmup if args.warmup is not None else (2 if q else 5)
    sizes = [int(x) for x in args.nodes.split(",")]
    lib.check_binary()
    machine = lib.machine_line()
    session = lib.Session()
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.tls]
    runs = []
    try:
        for rnd in range(1, args.rounds + 1):
            for n in sizes:
                for tls in modes:
                    row = run_size(session, args, n, tls)
                    row["round"] = rnd
                    runs.append(row)
    finally:
        session.close()
    rows = lib.median_rows(runs, "case", NUMERIC)
    for r in rows + runs:
        base = next(b for b in rows if b["tls"] == r["tls"])  # the first size, same TLS
        r["x_1node"] = r["delivered_per_s"] / base["delivered_per_s"] \
            if base["delivered_per_s"] else None
        r["cpu_x_1node"] = r["cpu_ms_per_msg"] / base["cpu_ms_per_msg"] \
            if base.get("cpu_ms_per_msg") and r.get("cpu_ms_per_msg") else None
    res = lib.ensure_results()
    name = {"off": "exp2", "on": "exp2_tls_on", "both": "exp2_tls"}[args.tls]
    lib.write_csv(os.path.join(res, name + ".csv"), runs, ["round"] + FIELDS)
    if args.tls != "both":
        plot(rows, os.path.join(res, name + ".png"), os.path.join(res, name + ".dat"))
    head = ("Experiment 2 (%s): nodes %s, %d round(s) (medians), %.0f s (+%.0f s warmup) each, %d senders, %s readers, "
            "%d users, replication %d, spread %d, policy %s, mutual TLS %s\n%s"
            % ("quick" if q else "full", args.nodes, args.rounds, args.duration, args.warmup, args.sessions,
               args.readers if args.readers is not None else "sessions/4", args.users,
               args.replication, args.spread, args.policy, args.tls, machine))
    print(head)
    print(lib.table(rows, COLS))
    ratios = tls_ratios(rows) if args.tls == "both" else []
    if ratios:
        print(lib.table(ratios, RATIO_COLS))
    cmd = "python3 bench/exp2_scaling.py" + (" --quick" if q else "") + \
        ("" if args.tls == "off" else " --tls " + args.tls)
    with open(os.path.join(res, name + ".md"), "w") as f:
        f.write("%s\n\n`%s`\n\n%s\n" % (head.replace("\n", "\n\n"), cmd, lib.markdown_table(rows, COLS)))
        if ratios:
            f.write("\nMutual TLS against plaintext, per size:\n\n%s\n"
                    % lib.markdown_table(ratios, RATIO_COLS))


RATIO_COLS = [("nodes", "nodes", "%d"), ("CPU ms/msg plain", "plain", "%.3f"),
              ("CPU ms/msg mTLS", "tls", "%.3f"), ("ratio", "ratio", "%.3f"),
              ("RPCs/msg", "rpcs", "%.2f"), ("delivered/s plain", "dps_plain", "%.0f"),
              ("delivered/s mTLS", "dps_tls", "%.0f")]


def tls_ratios(rows):
    """Per size: CPU per delivered message with mutual TLS over the same without."""
    out = []
    for plain in (r for r in rows if r["tls"] == "off"):
        tls = next((r for r in rows if r["tls"] == "on" and r["nodes"] == plain["nodes"]), None)
        if not tls or not plain.get("cpu_ms_per_msg") or not tls.get("cpu_ms_per_msg"):
            continue
        out.append({"nodes": plain["nodes"], "plain": plain["cpu_ms_per_msg"],
                    "tls": tls["cpu_ms_per_msg"],
                    "ratio": tls["cpu_ms_per_msg"] / plain["cpu_ms_per_msg"],
                    "rpcs": tls.get("rpcs_per_msg"), "dps_plain": plain["delivered_per_s"],
                    "dps_tls": tls["delivered_per_s"]})
    return out


if __name__ == "__main__":
    main()

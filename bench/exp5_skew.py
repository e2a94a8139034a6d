#!/usr/bin/env python3
"""Experiment 5: skewed recipients and one slow node, under each load-balancing policy.

4 nodes; recipients (and readers) drawn with Zipf skew (`bench --zipf`); one
node (the last) slowed with the test-only `[store] debug_op_delay_ms` (every
store, list, fetch and delete there takes that much longer, as on a slow disk).
For each policy (`[cluster] policy` static / random / dynamic) and spread
(`[cluster] spread` 1, 2, 4) a fresh cluster runs the same closed-loop
workload. The baseline, in the same run, is the default configuration
(dynamic, spread 2) with no slow node. Reported: delivered/s (and as a ratio
of the baseline), p99 delivery latency, CPU per message, and the share of new
writes (store batches) the slow node committed (1/4 would be an even split).

    python3 bench/exp5_skew.py [--quick] [--zipf 1.0] [--delay-ms 20]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402


def run_config(session, args, policy, spread, delay_ms, label):
    overrides = {"cluster": {"policy": policy, "spread": spread,
                             "replication": args.replication}}
    per_node = {args.nodes - 1: {"store": {"debug_op_delay_ms": delay_ms}}} if delay_ms else None
    cluster = lib.Cluster(session, args.nodes, overrides=overrides, per_node=per_node).start()
    r = lib.run_bench(cluster.smtp_list(), cluster.pop3_list(), cluster.admin_list(),
                      duration=args.duration, warmup=args.warmup, drain=args.drain,
                      sessions=args.sessions, readers=args.readers, users=args.users,
                      pids=cluster.pids(), edge_hook=lambda kind: cluster.metrics_all(),
                      extra=["--zipf", args.zipf] + args.bench_args)
    deaths = cluster.deaths(save_as="exp5-%s" % label.replace(" ", "_"))
    # Where the writes went: store batches committed by each node in the window
    # (a delivery is one batch on the node that stores it; a POP3 QUIT that deletes
    # is one more on each node holding the deleted mail). porcupine_messages_stored_total
    # cannot say this: it counts at the node that accepted the SMTP transaction.
    before, after = r.edges.get("start") or {}, r.edges.get("end") or {}
    stored = {n: after[n].get("porcupine_store_batches_total", 0)
              - before.get(n, {}).get("porcupine_store_batches_total", 0)
              for n in after if n in before}
    total = sum(stored.values())
    slow = cluster.nodes[-1].name
    row = {"config": label, "policy": policy, "spread": spread, "slow_delay_ms": delay_ms,
           "delivered_per_s": r["delivered_per_s"], "retrieved_per_s": r["retrieved_per_s"],
           "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"], "errors": r["errors"],
           "cpu_ms_per_msg": (r["cpu_s_per_msg"] or 0) * 1000 if r["cpu_s_per_msg"] else None,
           "slow_node_share": (stored.get(slow, 0) / total) if total else None,
           "batches_per_node": " ".join("%s:%d" % (k, v) for k, v in sorted(stored.items())),
           "node_deaths": " ".join("%s(exit %s)" % d for d in deaths),
           "error_samples": "; ".join(r.get("error_samples") or [])}
    lib.log("%s: %.0f delivered/s, p99 %s ms, slow node share %s, errors %s"
            % (label, row["delivered_per_s"] or 0, row["p99_ms"],
               "%.3f" % row["slow_node_share"] if row["slow_node_share"] is not None else "-",
               row["errors"]))
    cluster.stop()
    return row


FIELDS = ["config", "policy", "spread", "slow_delay_ms", "delivered_per_s", "x_baseline",
          "retrieved_per_s", "p50_ms", "p99_ms", "errors", "cpu_ms_per_msg", "slow_node_share",
          "batches_per_node", "node_deaths", "error_samples"]
BASELINE = "baseline dynamic/2 no slow node"
NUMERIC = ["delivered_per_s", "retrieved_per_s", "p50_ms", "p99_ms", "cpu_ms_per_msg",
           "slow_node_share"]
COLS = [("config", "config", None), ("runs", "runs", "%d"), ("delivered/s", "delivered_per_s", "%.0f"),
        ("x baseline", "x_baseline", "%.2f"), ("p50 ms", "p50_ms", "%.1f"),
        ("p99 ms", "p99_ms", "%.1f"), ("CPU ms/msg", "cpu_ms_per_msg", "%.3f"),
        ("slow node share of writes", "slow_node_share", "%.3f"), ("errors", "errors", "%d"),
        ("node deaths", "node_deaths", None)]


def plot(rows, args, png, dat):
    spreads = args.spreads
    policies = args.policies
    with open(dat, "w") as f:
        f.write("# spread " + " ".join("%s_tput %s_p99" % (p, p) for p in policies) + "\n")
        for s in spreads:
            vals = []
            for p in policies:
                r = next((x for x in rows if x["policy"] == p and x["spread"] == s
                          and x["slow_delay_ms"]), {})
                vals += [r.get("delivered_per_s") or 0, r.get("p99_ms") or 0]
            f.write("%d %s\n" % (s, " ".join(str(v) for v in vals)))
    base = next((r for r in rows if not r["slow_delay_ms"]), None)
    baseline = ""
    if base:
        baseline = "set arrow from graph 0, first %s to graph 1, first %s nohead dt 2 lc rgb 'black'\n" \
                   "set label 'baseline: dynamic, spread 2, no slow node' at graph 0.02, first %s " \
                   "offset 0,0.7 font ',9'\n" % (base["delivered_per_s"], base["delivered_per_s"],
                                                 base["delivered_per_s"])
    tput = ", ".join("'%s' using %d:xtic(1) title '%s'" % (dat if i == 0 else "", 2 + 2 * i, p)
                     for i, p in enumerate(policies))
    p99 = ", ".join("'%s' using %d:xtic(1) title '%s'" % (dat if i == 0 else "", 3 + 2 * i, p)
                    for i, p in enumerate(policies))
    script = """
set multiplot layout 1,2 title "Experiment 5: {n} nodes, Zipf {z} recipients, node n{n} slowed by {d} ms per disk op"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set xlabel "spread"
set key outside bottom center horizontal
set title "throughput"
set ylabel "delivered messages/s"
set yrange [0:{ymax}]
{baseline}
plot {tput}
unset arrow
unset label
set title "p99 delivery latency"
set ylabel "ms"
set yrange [0:*]
plot {p99}
unset multiplot
""".format(n=args.nodes, z=args.zipf, d=args.delay_ms, baseline=baseline, tput=tput, p99=p99,
           ymax=1.2 * max([r.get("delivered_per_s") or 0 for r in rows] + [1]))
    lib.gnuplot(script, png)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--zipf", type=float, default=1.0)
    ap.add_argument("--delay-ms", type=int, default=20)
    ap.add_argument("--policies", default="static,random,dynamic")
    ap.add_argument("--spreads", default="1,2,4")
    ap.add_argument("--rounds", type=int, help="repeat every config this often (median reported)")
    ap.add_argument("--duration", type=float)
    ap.add_argument("--warmup", type=float)
    ap.add_argument("--drain", type=float, help="bench --drain (default 3, quick 1)")
    ap.add_argument("--sessions", type=int, default=32)
    ap.add_argument("--readers", type=int, default=None)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--replication", type=int, default=1)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--bench-arg", dest="bench_args", action="append", default=[])
    args = ap.parse_args()
    q = args.quick
    args.rounds = args.rounds or (1 if q else 2)
    args.duration = args.duration or (3 if q else 20)
    args.drain = args.drain if args.drain is not None else (1 if q else 3)
    args.warmup = args.warmup if args.warmup is not None else (1 if q else 5)
    args.policies = args.policies.split(",")
    args.spreads = [int(s) for s in args.spreads.split(",")]
    lib.check_binary()
    machine = lib.machine_line()
    session = lib.Session()
    runs = []
    try:
        for rnd in range(1, args.rounds + 1):
            if not args.no_baseline:
                runs.append(run_config(session, args, "dynamic", 2, 0, BASELINE))
                runs[-1]["round"] = rnd
            for spread in args.spreads:
                for policy in args.policies:
                    runs.append(run_config(session, args, policy, spread, args.delay_ms,
                                           "%s spread %d" % (policy, spread)))
                    runs[-1]["round"] = rnd
    finally:
        session.close()
    rows = lib.median_rows(runs, "config", NUMERIC)
    base = rows[0] if not args.no_baseline else None
    for r in rows + runs:
        r["x_baseline"] = (r["delivered_per_s"] / base["delivered_per_s"]) \
            if base and base["delivered_per_s"] else None
    res = lib.ensure_results()
    lib.write_csv(os.path.join(res, "exp5.csv"), runs, ["round"] + FIELDS)
    plot(rows, args, os.path.join(res, "exp5.png"), os.path.join(res, "exp5.dat"))
    head = ("Experiment 5 (%s): %d nodes, zipf %.2f, n%d slowed by %d ms per disk op, "
            "%d round(s) (medians), %.0f s (+%.0f s warmup) per config, %d senders, %s readers, %d users\n%s"
            % ("quick" if q else "full", args.nodes, args.zipf, args.nodes, args.delay_ms,
               args.rounds, args.duration, args.warmup, args.sessions,
               args.readers if args.readers is not None else "sessions/4", args.users, machine))
    print(head)
    print(lib.table(rows, COLS))
    cmd = "python3 bench/exp5_skew.py" + (" --quick" if q else "")
    with open(os.path.join(res, "exp5.md"), "w") as f:
        f.write("%s\n\n`%s`\n\n%s\n" % (head.replace("\n", "\n\n"), cmd, lib.markdown_table(rows, COLS)))


if __name__ == "__main__":
    main()

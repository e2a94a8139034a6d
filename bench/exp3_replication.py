#!/usr/bin/env python3
"""Experiment 3: replication R=1 against R=2 (cost per message and throughput).

The same closed-loop workload as experiment 2 on a fresh N-node cluster (default
4) for each `[cluster] replication` value given with --replication (default
1,2). Reported: delivered/s and its ratio to the first value (the baseline, in
the same run), CPU-seconds per message summed over all nodes, inter-node RPCs
per message, and store batches per delivered message (each copy of a message
is one batch on the node that writes it, so this is ~R per message plus the
POP3 deletions).

NOTE: docs/config.md says `replication` is validated but every message is
stored once until the replication work lands; store batches per message show
what the binary under test actually does (see bench/README.md).

    python3 bench/exp3_replication.py [--quick] [--replication 1,2] [--nodes 4]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
import exp2_scaling  # noqa: E402

NUMERIC = ["delivered_per_s", "retrieved_per_s", "p50_ms", "p99_ms", "cpu_ms_per_msg",
           "rpcs_per_msg", "batches_per_msg", "msgs_per_sync"]
COLS = [("R", "replication", "%d"), ("runs", "runs", "%d"),
        ("delivered/s", "delivered_per_s", "%.0f"), ("x R=first", "x_base", "%.2f"),
        ("retrieved/s", "retrieved_per_s", "%.0f"), ("p99 ms", "p99_ms", "%.1f"),
        ("CPU ms/msg", "cpu_ms_per_msg", "%.3f"), ("x R=first", "cpu_x_base", "%.2f"),
        ("RPCs/msg", "rpcs_per_msg", "%.2f"), ("store batches/msg", "batches_per_msg", "%.2f"),
        ("errors", "errors", "%d"), ("node deaths", "node_deaths", None)]


def plot(rows, png, dat):
    with open(dat, "w") as f:
        f.write("# R delivered_per_s cpu_ms_per_msg rpcs_per_msg batches_per_msg\n")
        for r in rows:
            f.write("%d %s %s %s %s\n" % (r["replication"], r["delivered_per_s"] or 0,
                                          r.get("cpu_ms_per_msg") or 0, r.get("rpcs_per_msg") or 0,
                                          r.get("batches_per_msg") or 0))
    script = """
set multiplot layout 1,2 title "Experiment 3: replication factor (all nodes on one machine)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key outside bottom center horizontal
set xlabel "replication R"
set yrange [0:*]
set title "throughput"
set ylabel "delivered messages/s"
plot '{dat}' using 2:xtic(1) title "delivered/s"
set title "cost per message"
set ylabel "per delivered message"
plot '{dat}' using 3:xtic(1) title "CPU ms", '' using 4 title "RPCs", '' using 5 title "store batches"
unset multiplot
""".format(dat=dat)
    lib.gnuplot(script, png)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--replication", default="1,2", help="comma-separated R values")
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=float)
    ap.add_argument("--warmup", type=float)
    ap.add_argument("--drain", type=float, help="bench --drain (default 3, quick 1)")
    ap.add_argument("--sessions", type=int, default=32)
    ap.add_argument("--readers", type=int, default=None)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--spread", type=int, default=2)
    ap.add_argument("--policy", default="dynamic", choices=["dynamic", "static", "random"])
    ap.add_argument("--io-threads", type=int, default=None)
    ap.add_argument("--bench-arg", dest="bench_args", action="append", default=[])
    args = ap.parse_args()
    q = args.quick
    args.rounds = args.rounds or (2 if q else 3)
    args.duration = args.duration or (5 if q else 30)
    args.drain = args.drain if args.drain is not None else (1 if q else 3)
    args.warmup = args.warmup if args.warmup is not None else (2 if q else 5)
    values = [int(x) for x in args.replication.split(",")]
    if any(r < 1 or r > args.nodes for r in values):
        sys.exit("--replication values must be between 1 and --nodes")
    lib.check_binary()
    machine = lib.machine_line()
    session = lib.Session()
    runs = []
    try:
        for rnd in range(1, args.rounds + 1):
            for rep in values:
                args.replication = rep
                row = exp2_scaling.run_size(session, args, args.nodes)
                row["replication"] = rep
                row["round"] = rnd
                d = row.get("delivered") or 0
                row["batches_per_msg"] = row["store_batches"] / d if d and \
                    row.get("store_batches") is not None else None
                runs.append(row)
    finally:
        session.close()
    rows = lib.median_rows(runs, "replication", NUMERIC)
    base = rows[0]
    for r in rows + runs:
        r["x_base"] = r["delivered_per_s"] / base["delivered_per_s"] \
            if base["delivered_per_s"] else None
        r["cpu_x_base"] = r["cpu_ms_per_msg"] / base["cpu_ms_per_msg"] \
            if base.get("cpu_ms_per_msg") and r.get("cpu_ms_per_msg") else None
    res = lib.ensure_results()
    lib.write_csv(os.path.join(res, "exp3.csv"), runs,
                  ["round", "replication", "x_base", "cpu_x_base", "batches_per_msg"]
                  + exp2_scaling.FIELDS)
    plot(rows, os.path.join(res, "exp3.png"), os.path.join(res, "exp3.dat"))
    head = ("Experiment 3 (%s): %d nodes, replication %s, %d round(s) (medians), %.0f s "
            "(+%.0f s warmup) each, %d senders, %s readers, %d users, spread %d, policy %s. "
            "(store batches/msg: each copy, its replica push and the POP3 deletes)\n%s"
            % ("quick" if q else "full", args.nodes, ",".join(map(str, values)), args.rounds,
               args.duration, args.warmup, args.sessions,
               args.readers if args.readers is not None else "sessions/4", args.users,
               args.spread, args.policy, machine))
    print(head)
    print(lib.table(rows, COLS))
    cmd = "python3 bench/exp3_replication.py" + (" --quick" if q else "")
    with open(os.path.join(res, "exp3.md"), "w") as f:
        f.write("%s\n\n`%s`\n\n%s\n" % (head.replace("\n", "\n\n"), cmd, lib.markdown_table(rows, COLS)))


if __name__ == "__main__":
    main()

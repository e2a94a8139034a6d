#!/usr/bin/env python3
"""Two builds of porcupine on the same workload, alternating, in one run.

A change's cost is measured against the binary before it, on the same machine
in the same minutes (the machine is shared and noisy): each round runs the
experiment-2 workload (closed loop, senders and POP3 readers spread over the
nodes) on a fresh cluster of each binary in turn, A then B, then B then A in
the next round. Reported per binary (medians over rounds): delivered/s,
CPU-seconds per delivered message summed over every node, inter-node calls per
message, and B's ratios to A.

    python3 bench/ab_binaries.py --a OLD_BINARY --b NEW_BINARY [--nodes 3]
        [--replication 2] [--rounds 3] [--duration 20] [--quick]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
import exp2_scaling  # noqa: E402

NUMERIC = ["delivered_per_s", "retrieved_per_s", "p99_ms", "cpu_ms_per_msg", "rpcs_per_msg",
           "msgs_per_sync"]
COLS = [("binary", "binary", None), ("runs", "runs", "%d"),
        ("delivered/s", "delivered_per_s", "%.0f"), ("x A", "x_a", "%.3f"),
        ("retrieved/s", "retrieved_per_s", "%.0f"), ("p99 ms", "p99_ms", "%.1f"),
        ("CPU ms/msg", "cpu_ms_per_msg", "%.4f"), ("x A", "cpu_x_a", "%.3f"),
        ("RPCs/msg", "rpcs_per_msg", "%.2f"), ("msgs/sync", "msgs_per_sync", "%.1f"),
        ("errors", "errors", "%d")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", required=True, help="the baseline binary")
    ap.add_argument("--b", required=True, help="the binary under test")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=float)
    ap.add_argument("--warmup", type=float)
    ap.add_argument("--sessions", type=int, default=32)
    ap.add_argument("--readers", type=int, default=None)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--replication", type=int, default=2)
    ap.add_argument("--spread", type=int, default=2)
    ap.add_argument("--bench-arg", dest="bench_args", action="append", default=[])
    args = ap.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = args.duration or (5 if args.quick else 20)
    args.warmup = args.warmup if args.warmup is not None else (2 if args.quick else 5)
    args.drain = 1 if args.quick else 3
    args.policy, args.io_threads = "dynamic", None
    binaries = {"A": os.path.abspath(args.a), "B": os.path.abspath(args.b)}
    for b in binaries.values():
        if not os.access(b, os.X_OK):
            sys.exit("not an executable: %s" % b)
    machine = lib.machine_line()
    session = lib.Session()
    runs = []
    try:
        for rnd in range(1, args.rounds + 1):
            for name in ("A", "B") if rnd % 2 else ("B", "A"):
                os.environ["PORCUPINE_BIN"] = binaries[name]
                lib.log("round %d, binary %s (%s)" % (rnd, name, binaries[name]))
                row = exp2_scaling.run_size(session, args, args.nodes)
                row.update({"binary": name, "round": rnd})
                runs.append(row)
    finally:
        session.close()
    rows = lib.median_rows(runs, "binary", NUMERIC)
    rows.sort(key=lambda r: r["binary"])
    a = rows[0]
    for r in rows:
        r["x_a"] = r["delivered_per_s"] / a["delivered_per_s"] if a["delivered_per_s"] else None
        r["cpu_x_a"] = r["cpu_ms_per_msg"] / a["cpu_ms_per_msg"] \
            if a.get("cpu_ms_per_msg") and r.get("cpu_ms_per_msg") else None
    head = ("A/B (%s): A = %s, B = %s; %d node(s), replication %d, %d round(s) (medians, order "
            "alternating), %.0f s (+%.0f s warmup) each, %d senders, %d users\n%s"
            % ("quick" if args.quick else "full", binaries["A"], binaries["B"], args.nodes,
               args.replication, args.rounds, args.duration, args.warmup, args.sessions,
               args.users, machine))
    print(head)
    print(lib.table(rows, COLS))
    print("\nevery run, in order:")
    print(lib.table(runs, [("round", "round", "%d")] + [c for c in COLS if c[1] != "runs"
                                                           and not c[1].endswith("_a")]))


if __name__ == "__main__":
    main()

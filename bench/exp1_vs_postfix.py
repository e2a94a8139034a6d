#!/usr/bin/env python3
"""Experiment 1: one porcupine node against Postfix + Dovecot on the same machine.

The same `porcupine bench` workload (closed loop, default lognormal sizes with
mean 4.7 KB, readers that RETR and DELE what arrived) runs against a one-node
porcupine and against Postfix (SMTP) -> LMTP -> Dovecot (mailboxes, POP3),
alternating, each run on a fresh instance. Both keep their default fsync
behaviour. Reported per side: messages/s acknowledged to SMTP (for Postfix the
250 means "queued", so also the rate at which mail reached the mailboxes:
accepted minus queue growth), retrieved/s, latency, and CPU-seconds per message
(all processes of the server side, from /proc, over the measured window).

    python3 bench/exp1_vs_postfix.py [--quick] [--rounds N] [--duration S]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
import mta  # noqa: E402


def run_porcupine(session, args, rnd):
    cluster = lib.Cluster(session, 1, overrides={"cluster": {"replication": 1}}).start()
    node = cluster.nodes[0]

    def hook(kind):
        return {"cpu": lib.tree_cpu_s(node.pid), "m": node.metrics()}

    r = lib.run_bench(node.smtp, node.pop3, node.admin, duration=args.duration,
                      warmup=args.warmup, sessions=args.sessions, readers=args.readers,
                      users=args.users, pids=[node.pid], edge_hook=hook,
                      extra=args.bench_args)
    row = common_row("porcupine", rnd, r)
    e = r.edges
    if "start" in e and "end" in e:
        row["cpu_s"] = e["end"]["cpu"] - e["start"]["cpu"]
        stored = (e["end"]["m"].get("porcupine_messages_stored_total", 0)
                  - e["start"]["m"].get("porcupine_messages_stored_total", 0))
        row["stored_in_window"] = stored
    row["mailbox_per_s"] = row["delivered_per_s"]  # the 250 comes after the mailbox write
    row["queue_growth"] = 0
    row["bench_cpu_s_per_msg_reported"] = r.get("cpu_s_per_msg")
    finish_row(row)
    cluster.stop()
    return row


def run_postfix(session, args, rnd):
    m = mta.PostfixDovecot(session, args.users, mail_format=args.mail_format).start()

    def hook(kind):
        return {"cpu": m.cpu_s(), "queue": m.queue_size(), "procs": m.process_count()}

    r = lib.run_bench(m.smtp, m.pop3, None, duration=args.duration, warmup=args.warmup,
                      sessions=args.sessions, readers=args.readers, users=args.users,
                      create_users=False, edge_hook=hook, extra=args.bench_args)
    row = common_row("postfix+dovecot", rnd, r)
    e = r.edges
    if "start" in e and "end" in e:
        c0, c1 = e["start"]["cpu"], e["end"]["cpu"]
        row["cpu_s"] = (c1 - c0) if c0 is not None and c1 is not None else None
        growth = e["end"]["queue"] - e["start"]["queue"]
        row["queue_growth"] = growth
        row["queue_end"] = e["end"]["queue"]
        row["processes"] = e["end"]["procs"]
        if row["duration_s"]:
            row["mailbox_per_s"] = row["delivered_per_s"] - growth / row["duration_s"]
    left = m.wait_queue_empty(120)
    row["deferred"] = m.deferred()
    if left:
        lib.log("postfix queue still holds %d messages after 120 s" % left)
    m.stop()
    finish_row(row)
    return row


def common_row(side, rnd, r):
    return {
        "side": side, "round": rnd,
        "delivered_per_s": r.get("delivered_per_s"), "retrieved_per_s": r.get("retrieved_per_s"),
        "errors": r.get("errors"), "p50_ms": r.get("p50_ms"), "p99_ms": r.get("p99_ms"),
        "delivered": r.get("delivered"), "retrieved": r.get("retrieved"),
        "duration_s": r.get("duration_s"), "bench_cpu_s": r.get("bench_cpu_s"),
        "error_samples": "; ".join(r.get("error_samples") or []),
    }


def finish_row(row):
    d = row.get("delivered") or 0
    cpu = row.get("cpu_s")
    row["cpu_s_per_msg"] = cpu / d if cpu is not None and d else None
    mbox = (row.get("mailbox_per_s") or 0) * (row.get("duration_s") or 0)
    row["cpu_s_per_mailbox_msg"] = cpu / mbox if cpu is not None and mbox > 0 else None
    lib.log("%s round %d: %.0f delivered/s, %.0f to mailboxes/s, %.0f retrieved/s, "
            "cpu %.3f ms/msg, p99 %s ms, errors %s"
            % (row["side"], row["round"], row["delivered_per_s"] or 0, row.get("mailbox_per_s") or 0,
               row["retrieved_per_s"] or 0, (row["cpu_s_per_msg"] or 0) * 1000, row["p99_ms"],
               row["errors"]))


FIELDS = ["side", "round", "delivered_per_s", "mailbox_per_s", "retrieved_per_s", "errors",
          "p50_ms", "p99_ms", "delivered", "retrieved", "duration_s", "cpu_s", "cpu_s_per_msg",
          "cpu_s_per_mailbox_msg", "bench_cpu_s", "queue_growth", "queue_end", "deferred",
          "processes", "bench_cpu_s_per_msg_reported", "error_samples"]


def summarize(rows):
    out = []
    for side in ("porcupine", "postfix+dovecot"):
        rs = [r for r in rows if r["side"] == side]
        out.append({
            "side": side, "runs": len(rs),
            "delivered_per_s": lib.mean(r["delivered_per_s"] for r in rs),
            "mailbox_per_s": lib.mean(r.get("mailbox_per_s") for r in rs),
            "retrieved_per_s": lib.mean(r["retrieved_per_s"] for r in rs),
            "p99_ms": lib.mean(r["p99_ms"] for r in rs),
            "cpu_ms_per_msg": lib.mean((r["cpu_s_per_msg"] or 0) * 1000 for r in rs),
            "cpu_ms_per_mailbox_msg": lib.mean(
                (r["cpu_s_per_mailbox_msg"] * 1000) if r.get("cpu_s_per_mailbox_msg") else None
                for r in rs),
            "errors": sum(r["errors"] or 0 for r in rs),
        })
    base = out[1]
    for s in out:
        s["x_delivered"] = s["delivered_per_s"] / base["delivered_per_s"] \
            if base["delivered_per_s"] else None
        s["x_mailbox"] = s["mailbox_per_s"] / base["mailbox_per_s"] \
            if base.get("mailbox_per_s") else None
        s["x_cpu"] = s["cpu_ms_per_msg"] / base["cpu_ms_per_msg"] \
            if base["cpu_ms_per_msg"] else None
    return out


COLS = [("side", "side", None), ("runs", "runs", "%d"),
        ("delivered/s", "delivered_per_s", "%.0f"), ("x baseline", "x_delivered", "%.2f"),
        ("to mailbox/s", "mailbox_per_s", "%.0f"), ("x baseline", "x_mailbox", "%.2f"),
        ("retrieved/s", "retrieved_per_s", "%.0f"), ("p99 ms", "p99_ms", "%.1f"),
        ("CPU ms/msg", "cpu_ms_per_msg", "%.3f"), ("x baseline", "x_cpu", "%.3f"),
        ("CPU ms/mailbox msg", "cpu_ms_per_mailbox_msg", "%.3f"), ("errors", "errors", "%d")]


def plot(rows, png, dat):
    with open(dat, "w") as f:
        f.write("# run porcupine_delivered postfix_delivered postfix_mailbox "
                "porcupine_cpu_ms postfix_cpu_ms\n")
        rounds = sorted({r["round"] for r in rows})
        for rnd in rounds:
            p = next((r for r in rows if r["round"] == rnd and r["side"] == "porcupine"), {})
            q = next((r for r in rows if r["round"] == rnd and r["side"] != "porcupine"), {})
            f.write("%d %s %s %s %s %s\n" % (
                rnd, p.get("delivered_per_s") or 0, q.get("delivered_per_s") or 0,
                q.get("mailbox_per_s") or 0, (p.get("cpu_s_per_msg") or 0) * 1000,
                (q.get("cpu_s_per_msg") or 0) * 1000))
    script = """
set multiplot layout 1,2 title "Experiment 1: one porcupine node vs Postfix+Dovecot (same machine, same bench)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set key outside bottom center vertical
set grid ytics
set xlabel "round"
set ylabel "messages/s"
set title "throughput"
set yrange [0:*]
plot '{dat}' using 2:xtic(1) title "porcupine (250 = in mailbox)", \\
     '' using 3 title "postfix (250 = queued)", \\
     '' using 4 title "postfix (reached mailbox)"
set ylabel "CPU ms per message"
set title "server CPU per message (all processes)"
set logscale y
set yrange [*:*]
plot '{dat}' using 5:xtic(1) title "porcupine", '' using 6 title "postfix+dovecot"
unset multiplot
""".format(dat=dat)
    lib.gnuplot(script, png)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs (under ~90 s in all)")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=float)
    ap.add_argument("--warmup", type=float)
    ap.add_argument("--sessions", type=int, default=32)
    ap.add_argument("--readers", type=int, default=None, help="default sessions/4")
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--mail-format", default="maildir", choices=["maildir", "sdbox", "mdbox"],
                    help="Dovecot mailbox format (default maildir)")
    ap.add_argument("--bench-arg", dest="bench_args", action="append", default=[],
                    help="extra argument for porcupine bench (repeatable), e.g. --bench-arg=--size-sigma=0")
    args = ap.parse_args()
    q = args.quick
    args.rounds = args.rounds or (2 if q else 3)
    args.duration = args.duration or (5 if q else 30)
    args.warmup = args.warmup if args.warmup is not None else (2 if q else 5)
    lib.check_binary()
    if not mta.available():
        sys.exit("postfix/dovecot missing: run bench/install-deps")
    machine = lib.machine_line()
    session = lib.Session()
    rows = []
    try:
        for rnd in range(1, args.rounds + 1):
            rows.append(run_porcupine(session, args, rnd))
            rows.append(run_postfix(session, args, rnd))
    finally:
        session.close()
    res = lib.ensure_results()
    lib.write_csv(os.path.join(res, "exp1.csv"), rows, FIELDS)
    plot(rows, os.path.join(res, "exp1.png"), os.path.join(res, "exp1.dat"))
    summ = summarize(rows)
    cmd = "python3 bench/exp1_vs_postfix.py" + (" --quick" if q else "")
    head = ("Experiment 1 (%s): %d rounds x %.0f s (+%.0f s warmup), %d senders, %s readers, "
            "%d users, Dovecot %s\n%s" % ("quick" if q else "full", args.rounds, args.duration,
                                          args.warmup, args.sessions,
                                          args.readers if args.readers is not None else
                                          "sessions/4", args.users, args.mail_format, machine))
    print(head)
    print(lib.table(summ, COLS))
    with open(os.path.join(res, "exp1.md"), "w") as f:
        f.write("%s\n\n`%s`\n\n%s\n" % (head.replace("\n", "\n\n"), cmd, lib.markdown_table(summ, COLS)))


if __name__ == "__main__":
    main()

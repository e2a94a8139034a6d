#!/usr/bin/env python3
"""Experiment 4: throughput over time while nodes fail and come back (the paper's Fig. 10).

A 6-node cluster under steady open-loop load (`porcupine bench --rate R`, so a
second's throughput is meaningful). At --kill-at the last --kill nodes get
SIGKILL; at --restart-at they are started again on their data directories; the
run ends at --end. Every second we record the bench's progress line (deliveries
acknowledged, retrievals, errors) and every live node's
porcupine_messages_stored_total (messages accepted over SMTP by that node), plus the view size
seen by the first node. The plot shows delivered/s, retrieved/s and errors/s
against time with the kill and restart marked.

Bench senders are pinned to nodes (session i uses node i mod n) and do not fail
over, so while a node is down the senders pinned to it get connection errors
and back off (up to 1 s); the other senders take the open-loop starts.

    python3 bench/exp4_failure.py [--quick] [--kill 1|2] [--kill-at S --restart-at S --end S]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402



def stem(args):
    """Result file names: exp4.* for one node killed, exp4_kill2.* for two."""
    return "exp4" if args.kill == 1 else "exp4_kill%d" % args.kill

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="kill at 20 s, restart at 40 s, end at 60 s")
    ap.add_argument("--nodes", type=int, default=6)
    ap.add_argument("--kill", type=int, default=1, help="nodes to kill -9 (default 1)")
    ap.add_argument("--kill-at", type=float)
    ap.add_argument("--restart-at", type=float)
    ap.add_argument("--end", type=float)
    ap.add_argument("--rate", type=float, default=400, help="open-loop deliveries/s")
    ap.add_argument("--sessions", type=int, default=64)
    ap.add_argument("--readers", type=int, default=8)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--replication", type=int, default=1)
    ap.add_argument("--bench-arg", dest="bench_args", action="append", default=[])
    args = ap.parse_args()
    q = args.quick
    args.kill_at = args.kill_at if args.kill_at is not None else (20 if q else 60)
    args.restart_at = args.restart_at if args.restart_at is not None else (40 if q else 120)
    args.end = args.end if args.end is not None else (60 if q else 180)
    if not (0 < args.kill_at < args.restart_at < args.end):
        sys.exit("need 0 < --kill-at < --restart-at < --end")
    if not 0 < args.kill < args.nodes:
        sys.exit("--kill must be between 1 and nodes-1")
    lib.check_binary()
    machine = lib.machine_line()
    session = lib.Session()
    try:
        seconds, events, result, deaths = run(session, args)
    finally:
        session.close()
    res = lib.ensure_results()
    write_outputs(res, args, seconds, events, result, deaths, machine)


def run(session, args):
    cluster = lib.Cluster(session, args.nodes,
                          overrides={"cluster": {"replication": args.replication}}).start()
    victims = cluster.nodes[-args.kill:]
    observer = cluster.nodes[0]
    events = []
    bench = lib.BenchRun(cluster.smtp_list(), cluster.pop3_list(), cluster.admin_list(),
                         duration=args.end, warmup=0, drain=3, sessions=args.sessions,
                         readers=args.readers, users=args.users,
                         extra=["--rate", args.rate] + args.bench_args)
    if bench.clock_start(timeout=120) is None:
        return [], events, bench.wait(), []
    seconds = []  # one sample per second of bench time
    prev = {}
    killed = restarted = False
    t_next = 1.0
    while bench.running():
        now = bench.now()
        if not killed and now >= args.kill_at:
            for v in victims:
                v.kill()
            killed = True
            events.append((bench.now(), "kill -9 %s" % ",".join(v.name for v in victims)))
            lib.log("t=%.1f s: killed %s" % (bench.now(), ",".join(v.name for v in victims)))
        if killed and not restarted and now >= args.restart_at:
            for v in victims:
                v.spawn()
            restarted = True
            events.append((bench.now(), "restart %s" % ",".join(v.name for v in victims)))
            lib.log("t=%.1f s: restarted %s" % (bench.now(), ",".join(v.name for v in victims)))
        if now >= t_next:
            seconds.append(sample(cluster, observer, prev, t_next, victims, events, bench.now()))
            t_next += 1.0
        next_event = args.kill_at if not killed else (
            args.restart_at if not restarted else float("inf"))
        bench.sleep_until(min(t_next, next_event))
    result = bench.wait()
    deaths = cluster.deaths(save_as=stem(args))
    # the bench's per-second progress lines, by second
    by_t = {}
    for (t, phase, d, r, e) in result.progress:
        by_t[int(round(t))] = (d, r, e)
    last_err = 0
    for s in seconds:
        d, r, e = by_t.get(int(round(s["t"])), (None, None, None))
        s["delivered_per_s"], s["retrieved_per_s"] = d, r
        s["errors_per_s"] = (e - last_err) if e is not None else None
        if e is not None:
            last_err = e
    cluster.stop()
    return seconds, events, result, deaths


def sample(cluster, observer, prev, t, victims, events, now):
    row = {"t": t}
    accepted_total = 0.0
    for n in cluster.nodes:
        key = "accepted_" + n.name
        if not n.alive():
            row[key] = 0
            prev.pop(n.name, None)
            continue
        try:
            m = lib.metrics(n.admin, timeout=1)
        except (OSError, RuntimeError):
            row[key] = None
            continue
        v = m.get("porcupine_messages_stored_total", 0.0)
        p = prev.get(n.name)
        rate = (v - p) if p is not None and v >= p else (v if p is not None else None)
        prev[n.name] = v
        row[key] = rate
        accepted_total += rate or 0
    row["accepted_per_s"] = accepted_total
    v = None
    try:
        v = observer.view()
    except OSError:
        pass
    if v:
        row["view_up"] = sum(1 for m in v.get("members", []) if m.get("state") == "up")
        row["views_installed"] = v.get("views_installed")
        states = {}
        for m in v.get("members", []):
            states.setdefault(m.get("state"), []).append(m.get("name"))
        row["view"] = " ".join("%s=%s" % (k, ",".join(sorted(ns))) for k, ns in sorted(states.items()))
    for vic in victims:
        if vic.alive() and not vic.ready():
            row["victims_ready"] = 0
            break
    else:
        row["victims_ready"] = int(all(vic.alive() for vic in victims))
    if row["victims_ready"] and any(e[1].startswith("restart") for e in events) and \
            not any(e[1].startswith("ready") for e in events):
        events.append((now, "ready: restarted node(s)"))
        lib.log("t=%.1f s: restarted node(s) ready" % now)
    return row


def phase_stats(seconds, lo, hi):
    xs = [s["delivered_per_s"] for s in seconds if lo <= s["t"] < hi and
          s.get("delivered_per_s") is not None]
    es = [s["errors_per_s"] for s in seconds if lo <= s["t"] < hi and
          s.get("errors_per_s") is not None]
    return (sum(xs) / len(xs) if xs else None, min(xs) if xs else None, sum(es))


def slow_seconds(seconds, lo, hi, level):
    """Seconds in [lo, hi) whose delivered/s was below level."""
    return sum(1 for s in seconds if lo <= s["t"] < hi and s.get("delivered_per_s") is not None
               and s["delivered_per_s"] < level)


def write_outputs(res, args, seconds, events, result, deaths, machine):
    names = ["n%d" % (i + 1) for i in range(args.nodes)]
    fields = ["t", "delivered_per_s", "retrieved_per_s", "errors_per_s", "accepted_per_s",
              "view_up", "views_installed", "view", "victims_ready"] + ["accepted_" + n for n in names]
    if seconds:
        lib.write_csv(os.path.join(res, stem(args) + ".csv"), seconds, fields)
    with open(os.path.join(res, stem(args) + "_events.csv"), "w") as f:
        f.write("t,event\n")
        for t, e in events:
            f.write("%.2f,%s\n" % (t, e))
    dat = os.path.join(res, stem(args) + ".dat")
    with open(dat, "w") as f:
        f.write("# t delivered retrieved errors accepted view_up\n")
        for s in seconds:
            f.write("%s %s %s %s %s %s\n" % (s["t"], fmt(s.get("delivered_per_s")),
                                             fmt(s.get("retrieved_per_s")),
                                             fmt(s.get("errors_per_s")), fmt(s.get("accepted_per_s")),
                                             fmt(s.get("view_up"))))
    arrows = []
    for i, (t, e) in enumerate(events):
        arrows.append('set arrow from %.2f, graph 0 to %.2f, graph 1 nohead dt 2 lc rgb "red"' % (t, t))
        arrows.append('set label %s at %.2f, graph %.2f left offset 0.5,0 font ",9"'
                      % (lib.json.dumps(e), t, 0.97 - 0.05 * (i % 3)))
    script = """
set title "Experiment 4: {nodes} nodes, open loop {rate:.0f} msg/s, kill -9 {kill} node(s) at {ka:.0f} s, restart at {ra:.0f} s"
set xlabel "time (s)"
set ylabel "messages/s"
set y2label "nodes up (view of n1)"
set y2range [0:{y2}]
set y2tics 1
set ytics nomirror
set yrange [0:*]
set grid
set key bottom right
{arrows}
plot '{dat}' using 1:2 with lines lw 2 title "delivered/s (bench)", \\
     '' using 1:3 with lines lw 1 title "retrieved/s", \\
     '' using 1:4 with impulses lw 2 lc rgb "orange" title "errors/s", \\
     '' using 1:6 with steps lw 1 lc rgb "gray" axes x1y2 title "view size"
""".format(nodes=args.nodes, rate=args.rate, kill=args.kill, ka=args.kill_at, ra=args.restart_at,
           arrows="\n".join(arrows), dat=dat, y2=args.nodes + 1)
    lib.gnuplot(script, os.path.join(res, stem(args) + ".png"))
    rate = args.rate
    pre = phase_stats(seconds, min(5, args.kill_at / 2), args.kill_at)
    during = phase_stats(seconds, args.kill_at, args.restart_at)
    after = phase_stats(seconds, args.restart_at, args.end + 1)
    base = pre[0]
    rows = []
    for name, st, lo, hi in (("before failure", pre, min(5, args.kill_at / 2), args.kill_at),
                             ("nodes down", during, args.kill_at, args.restart_at),
                             ("after restart", after, args.restart_at, args.end + 1)):
        rows.append({"phase": name, "mean": st[0],
                     "x_before": (st[0] / base) if base and st[0] is not None else None,
                     "min": st[1], "errors": st[2],
                     "slow_s": slow_seconds(seconds, lo, hi, 0.8 * rate)})
    rep = result.report
    head = ("Experiment 4 (%s): %d nodes, kill -9 %d at %.0f s, restart at %.0f s, end %.0f s, "
            "open loop %.0f msg/s, %d senders, %d readers, %d users; whole run: %.1f delivered/s, "
            "%s errors, p99 %s ms, late starts %s%s\n%s"
            % ("quick" if args.quick else "full", args.nodes, args.kill, args.kill_at,
               args.restart_at, args.end, rate, args.sessions, args.readers, args.users,
               rep.get("delivered_per_s") or 0, rep.get("errors"), rep.get("p99_ms"),
               rep.get("late_starts"),
               ("; UNEXPECTED NODE DEATHS: %s" % deaths) if deaths else "", machine))
    cols = [("phase", "phase", None), ("delivered/s (mean)", "mean", "%.1f"),
            ("x before", "x_before", "%.3f"), ("worst second", "min", "%.0f"),
            ("errors", "errors", "%d"),
            ("seconds < 80% of rate", "slow_s", "%d")]
    print(head)
    print(lib.table(rows, cols))
    print("events: " + "; ".join("%.1f s %s" % e for e in events))
    print("error samples: %s" % "; ".join(rep.get("error_samples") or []))
    cmd = "python3 bench/exp4_failure.py" + (" --quick" if args.quick else "") \
        + (" --kill %d" % args.kill if args.kill != 1 else "")
    with open(os.path.join(res, stem(args) + ".md"), "w") as f:
        f.write("%s\n\n`%s`\n\n%s\n\nEvents: %s\n\nError samples: %s\n" % (
            head.replace("\n", "\n\n"), cmd, lib.markdown_table(rows, cols),
            "; ".join("%.1f s %s" % e for e in events),
            "; ".join("`%s`" % x for x in (rep.get("error_samples") or []))))


def fmt(v):
    return "NaN" if v is None else v


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Login cost on one node (issue #14): right passwords fast, wrong ones no oracle.

  python3 bench/login_bench.py [--bin build/porcupine] [--bin /tmp/porcupine-old] [--rounds 3]

For each binary (default: $PORCUPINE_BIN or build/porcupine), on a fresh node
on loopback with the default argon2id cost (opslimit 2, 64 MiB):

 1. 500 at once, cold: --sessions IMAP connections (--users users x N) are
    opened, then every one sends LOGIN at the same moment; each login's time
    from its LOGIN to its tagged OK: median, p95 and the whole burst (first
    LOGIN sent to last OK). No user has logged in before.
 2. 500 at once, warm: the same again (the users have logged in once).
 3. cold rate: --cold-users other users log in once each, --concurrency at a
    time: logins per second of wall time and per CPU-second of the node
    (every one pays argon2id: a login with a password the node has not
    verified yet).
 4. cached rate: --cached-logins logins of the users of 1. (right passwords
    verified before), --concurrency at a time; the same two rates.
 5. failed-login latency: POP3 USER/PASS with a wrong password, alternately
    for an existing and an unknown user, --oracle-tries each (a new connection
    each, from changing loopback addresses): the medians and their ratio. With
    the timing oracle the unknown user answers ~1000x faster.

CPU is utime + stime of the node process from /proc over each phase. With
--rounds, the binaries take turns and the table shows each number's median.
Results are printed as a table and written to bench/results/login_bench.json.
"""

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from cluster import DOMAIN, NodeSet  # noqa: E402


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def password(user):
    return "pw-" + user.split("@")[0]


async def imap_open(host, port):
    r, w = await asyncio.open_connection(host, port, limit=1 << 20)
    greeting = await r.readline()
    assert greeting.startswith(b"* OK"), greeting
    return r, w


async def imap_login(r, w, user):
    """Sends LOGIN; returns (seconds until the tagged reply, the reply line)."""
    t = time.monotonic()
    w.write(b"a LOGIN %s %s\r\n" % (user.encode(), password(user).encode()))
    await w.drain()
    while True:
        line = await r.readline()
        if not line or line.startswith(b"a "):
            return time.monotonic() - t, line


async def imap_close(r, w):
    try:
        w.write(b"z LOGOUT\r\n")
        await w.drain()
        w.close()
        await w.wait_closed()
    except (ConnectionError, OSError):
        pass


async def burst(host, port, users, per_user):
    """Every session connects, then all send LOGIN at once."""
    conns = await asyncio.gather(*[imap_open(host, port) for _ in range(len(users) * per_user)])
    order = [users[i % len(users)] for i in range(len(conns))]
    t0 = time.monotonic()
    results = await asyncio.gather(*[imap_login(r, w, u) for (r, w), u in zip(conns, order)])
    total = time.monotonic() - t0
    await asyncio.gather(*[imap_close(r, w) for r, w in conns])
    bad = [line for _, line in results if not line.startswith(b"a OK")]
    assert not bad, "failed logins: %r" % bad[:3]
    times = [t for t, _ in results]
    return {"logins": len(times), "median_s": round(statistics.median(times), 3),
            "p95_s": round(pct(times, 95), 3), "total_s": round(total, 3)}


async def rate(host, port, users, concurrency):
    """Logs in as each of users (a session each), concurrency at a time."""
    sem = asyncio.Semaphore(concurrency)

    async def one(u):
        async with sem:
            r, w = await imap_open(host, port)
            _, line = await imap_login(r, w, u)
            await imap_close(r, w)
            assert line.startswith(b"a OK"), line

    await asyncio.gather(*[one(u) for u in users])


def measured(pid, fn):
    c0, t0 = cpu_s(pid), time.monotonic()
    fn()
    return time.monotonic() - t0, cpu_s(pid) - c0


def rates(count, wall, cpu):
    return {"logins": count, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "logins_per_s": round(count / wall, 1),
            "logins_per_cpu_s": round(count / max(cpu, 1e-3), 1)}


def pop3_fail(host, port, user, source):
    """One failed USER/PASS from `source`: seconds from PASS to its reply."""
    s = socket.create_connection((host, port), timeout=60, source_address=(source, 0))
    f = s.makefile("rwb", buffering=0)
    try:
        f.readline()
        f.write(b"USER %s\r\n" % user.encode())
        f.readline()
        t = time.monotonic()
        f.write(b"PASS wrong-password\r\n")
        line = f.readline()
        took = time.monotonic() - t
        assert line.startswith(b"-ERR [AUTH]"), line
        f.write(b"QUIT\r\n")
        f.readline()
        return took
    finally:
        s.close()


def oracle(node, existing, tries):
    host, port = node.pop3
    known, unknown = [], []
    for i in range(tries):
        source = "127.0.%d.%d" % (10 + i // 200, 1 + i % 200)
        known.append(pop3_fail(host, port, existing, source))
        unknown.append(pop3_fail(host, port, "nobody%d@%s" % (i, DOMAIN), source))
    k, u = statistics.median(known), statistics.median(unknown)
    return {"tries": tries, "existing_median_ms": round(k * 1000, 2),
            "unknown_median_ms": round(u * 1000, 3), "ratio": round(k / max(u, 1e-9), 1)}


def supports(binary, key):
    out = subprocess.run([binary, "node", "--print-default-config"], capture_output=True,
                         text=True, timeout=30).stdout
    return key in out


def add_users(node, users):
    # Two at a time: the node hashes on two threads.
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda u: node.add_user(u, password(u)), users))


def run(binary, args):
    os.environ["PORCUPINE_BIN"] = binary
    auth = {"argon2_opslimit": 2, "argon2_memlimit_kib": 65536}
    if supports(binary, "failures_before_lockout"):
        # Phase 5 fails on purpose: keep the throttle out of its way.
        auth.update({"failures_before_delay": 1000000, "failures_before_lockout": 1000001})
    ns = NodeSet()
    try:
        node = ns.start(overrides={"auth": auth,
                                   "server": {"max_connections": args.sessions + 1000}})
        pid = node.proc.pid
        host, port = node.imap
        burst_users = ["login%d@%s" % (i, DOMAIN) for i in range(args.users)]
        cold_users = ["cold%d@%s" % (i, DOMAIN) for i in range(args.cold_users)]
        add_users(node, burst_users + cold_users)
        out = {"binary": binary}
        per_user = args.sessions // args.users
        for name in ("burst_cold", "burst_warm"):
            box = {}
            wall, cpu = measured(pid, lambda: box.update(
                asyncio.run(burst(host, port, burst_users, per_user))))
            out[name] = dict(box, cpu_s=round(cpu, 2))
        wall, cpu = measured(pid, lambda: asyncio.run(
            rate(host, port, cold_users, args.concurrency)))
        out["cold_rate"] = rates(len(cold_users), wall, cpu)
        cached = [burst_users[i % len(burst_users)] for i in range(args.cached_logins)]
        wall, cpu = measured(pid, lambda: asyncio.run(rate(host, port, cached, args.concurrency)))
        out["cached_rate"] = rates(len(cached), wall, cpu)
        out["oracle"] = oracle(node, burst_users[0], args.oracle_tries)
    finally:
        ns.close()
    return out


def median_of(rounds):
    """One result whose every number is the median over the rounds."""
    if len(rounds) == 1:
        return rounds[0]
    out = {"binary": rounds[0]["binary"], "rounds": len(rounds)}
    for phase, values in rounds[0].items():
        if isinstance(values, dict):
            out[phase] = {k: statistics.median(r[phase][k] for r in rounds) for k in values}
    return out


def table(results):
    rows = [("binary", lambda r: os.path.relpath(r["binary"]) if r["binary"].startswith(
        os.getcwd()) else r["binary"])]
    for phase in ("burst_cold", "burst_warm"):
        for k in ("median_s", "p95_s", "total_s", "cpu_s"):
            rows.append(("%s %s" % (phase, k), lambda r, p=phase, k=k: r[p][k]))
    for phase in ("cold_rate", "cached_rate"):
        for k in ("logins", "logins_per_s", "logins_per_cpu_s", "cpu_s"):
            rows.append(("%s %s" % (phase, k), lambda r, p=phase, k=k: r[p][k]))
    for k in ("existing_median_ms", "unknown_median_ms", "ratio"):
        rows.append(("failed login %s" % k, lambda r, k=k: r["oracle"][k]))
    lines = ["| measure | " + " | ".join("run %d" % (i + 1) for i in range(len(results))) + " |",
             "| --- |" + " --- |" * len(results)]
    for name, get in rows:
        lines.append("| %s | %s |" % (name, " | ".join(str(get(r)) for r in results)))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--bin", action="append", help="porcupine binary (repeatable)")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--sessions", type=int, default=500)
    ap.add_argument("--cold-users", type=int, default=60)
    ap.add_argument("--cached-logins", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--oracle-tries", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=1,
                    help="runs per binary (interleaved); the table shows medians")
    ap.add_argument("--out", default="login_bench.json", help="file in bench/results")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.sessions * 2 + 200)), hard))
    default = os.environ.get("PORCUPINE_BIN") or os.path.join(os.path.dirname(HERE), "build",
                                                              "porcupine")
    binaries = [os.path.abspath(b) for b in (args.bin or [default])]
    started = time.strftime("%Y-%m-%d %H:%M")
    load = os.getloadavg()[0]
    rounds = {b: [] for b in binaries}
    for i in range(args.rounds):
        for b in binaries:
            print("round %d: %s (load average %.1f)" % (i + 1, b, os.getloadavg()[0]),
                  file=sys.stderr)
            rounds[b].append(run(b, args))
            print(json.dumps(rounds[b][-1]), file=sys.stderr)
    results = [median_of(rounds[b]) for b in binaries]
    text = table(results)
    print("%s, nproc %d, load average %.1f at the start; %d round(s) per binary, medians\n"
          % (started, os.cpu_count(), load, args.rounds))
    for i, r in enumerate(results):
        print("run %d: %s" % (i + 1, r["binary"]))
    print()
    print(text)
    path = os.path.join(HERE, "results", args.out)
    with open(path, "w") as f:
        json.dump({"started": started, "load": load, "args": vars(args), "results": results,
                   "rounds": rounds}, f, indent=1)
    print("\nwritten", path)


if __name__ == "__main__":
    main()

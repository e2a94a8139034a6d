"""The fault test's checker: after the nemesis, heal, settle, read everything, count.

`settle` undoes every fault, waits (bounded) for one view of all nodes and for
quiescence (porcupine_replication_unretired == 0 on every node), then gives the
replicas a bounded time to agree (every live object on R nodes). `check` reads
every user's maildrop through POP3 from every node (UIDL + RETR of everything)
and every node's GET /v1/fragments, and counts against the history:

- acknowledged messages lost: an SMTP 250 whose token no node lists, and that
  no committed or uncertain POP3 deletion removed;
- deleted messages visible: a deletion committed (QUIT +OK) whose message id
  some node still lists;
- duplicates visible: one token under two message ids in one listing;
- objects not on R nodes: a message id held live somewhere but live on fewer
  than R nodes, or whose holders disagree on hlc/tombstone;
- listings that differ: a message id one node lists for a user and another
  does not (after quiescence every node must show the same maildrop);
- replication backlogs older than STALE_BACKLOG_S seen during the run;
- and the run fails when the nemesis skipped most of its wipes (see
  MAX_SKIPPED_WIPE_SHARE).

The report names the seed, every count, and for each failure the message, the
nemesis events around it, what the fragments say and node log lines naming it.
"""

import poplib
import time

from cluster import DEFAULT_PASSWORD
from clusterkit import cluster_status, wait_view
from faultkit import (IO_TIMEOUT_S, STALE_BACKLOG_S, fragments, node_addr, verify_retrieved,
                      wait_quiescent)

EXAMPLES = 5          # evidence printed per failing count
# A run that skipped more than this share of the wipes it attempted tested much less than its
# fault counts suggest (wipes are the faults that lose replicas): it fails, so that a nemesis
# that stopped wiping is noticed. Runs that attempted fewer than MIN_WIPES_JUDGED are not judged.
MAX_SKIPPED_WIPE_SHARE = 0.5
MIN_WIPES_JUDGED = 3
FAILING_ANOMALIES = ("crash", "restart", "corrupt", "foreign", "misdelivered",
                     "uidl-two-tokens")


# ---- settling -----------------------------------------------------------------

def settle(nemesis, node_list, users, replication, view_s=60.0, quiesce_s=60.0,
           replicate_s=30.0):
    """Returns ({step: seconds or None}, {step: detail}); None = not reached in time."""
    times, details = {}, {}
    t0 = time.monotonic()
    nemesis.heal_all()
    times["restart"] = time.monotonic() - t0
    t0 = time.monotonic()
    try:
        wait_view(node_list, [n.name for n in node_list], view_s)
        times["view"] = time.monotonic() - t0
    except AssertionError as e:
        times["view"], details["view"] = None, str(e)
    took, states = wait_quiescent(node_list, quiesce_s)
    nemesis.observe(states)
    times["quiescent"] = took
    details["quiescent"] = states
    t0 = time.monotonic()
    while True:
        frags = read_fragments(node_list, users)
        bad = objects_not_on_r(frags, replication)
        if not bad:
            times["replicated"] = time.monotonic() - t0
            break
        if time.monotonic() - t0 > replicate_s:
            times["replicated"] = None
            details["replicated"] = "%d objects not on %d nodes after %.0f s" % (
                len(bad), replication, replicate_s)
            break
        time.sleep(0.5)
    return times, details


# ---- reading ------------------------------------------------------------------

def read_listing(node, user, history, deadline):
    """{uidl: token or None} of user's maildrop via node, every message
    retrieved and verified; retries -ERR and broken connections until deadline."""
    last = None
    while True:
        try:
            host, port = node_addr(node, "pop3")
            p = poplib.POP3(host, port, timeout=IO_TIMEOUT_S)
            try:
                p.user(user)
                p.pass_(DEFAULT_PASSWORD)
                _, listing, _ = p.uidl()
                out = {}
                for line in listing:
                    num, uid = line.split(b" ", 1)
                    _, lines, _ = p.retr(int(num))
                    raw = b"".join(x + b"\r\n" for x in lines)
                    out[uid.decode()] = verify_retrieved(history, user, uid.decode(), raw,
                                                         "final read via %s" % node.name)
                p.quit()
                return out
            finally:
                p.close()
        except (poplib.error_proto, OSError, AssertionError) as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError("final read of %s via %s failed until the deadline: %r"
                                 % (user, node.name, last))
        time.sleep(0.1)


def read_listings(node_list, users, history, timeout):
    deadline = time.monotonic() + timeout
    return {n.name: {u: read_listing(n, u, history, deadline) for u in users}
            for n in node_list}


def read_fragments(node_list, users):
    """{node: {user: {id: entry}}}; a node that cannot answer maps to None."""
    out = {}
    for n in node_list:
        try:
            out[n.name] = {u: fragments(n, u) for u in users}
        except (OSError, AssertionError, ValueError):
            out[n.name] = None
    return out


# ---- counting -----------------------------------------------------------------

def holders_by_id(frags):
    """{(user, id): {node: entry}} over every node's fragments."""
    out = {}
    for name, per_user in frags.items():
        for user, entries in (per_user or {}).items():
            for mid, e in entries.items():
                out.setdefault((user, mid), {})[name] = e
    return out


def objects_not_on_r(frags, replication):
    """[(user, id, holders)] of live objects on fewer than R nodes or with disagreeing holders."""
    if any(v is None for v in frags.values()):
        return [("?", "?", {n: "no answer" for n, v in frags.items() if v is None})]
    bad = []
    for (user, mid), holders in sorted(holders_by_id(frags).items()):
        live = [n for n, e in holders.items() if not e["tombstone"]]
        if not live:
            continue  # deleted everywhere it is still known
        versions = {(e["hlc"], e["tombstone"]) for e in holders.values()}
        if len(live) < replication or len(versions) > 1:
            bad.append((user, mid, holders))
    return bad


def r_failure_kind(holders, replication, wiped):
    """Why an object is not on R nodes, for the report."""
    if not all(isinstance(e, dict) for e in holders.values()):
        return "a node did not answer"
    replicas = set()
    for e in holders.values():
        replicas.update(e["replicas"])
    live = {n for n, e in holders.items() if not e["tombstone"]}
    versions = {(e["hlc"], e["tombstone"]) for e in holders.values()}
    if len(versions) > 1:
        if set(holders) - replicas:
            return "versions differ, held outside its replica list"
        return "versions differ among listed replicas"
    if len(replicas) < replication:
        return "replica list shorter than R"
    if (replicas - live) & wiped:
        return "a listed replica was wiped and lacks it"
    return "a listed replica lacks it"


def fault_skips(done, skipped):
    """{action: (attempted, skipped, {reason: n})} of every action attempted or skipped;
    done is {action: n done}, skipped [(action, reason, detail)] (the nemesis's)."""
    out = {}
    for action, n in done.items():
        out[action] = (n, 0, {})
    for action, reason, _ in skipped:
        attempted, n, reasons = out.get(action, (0, 0, {}))
        reasons[reason] = reasons.get(reason, 0) + 1
        out[action] = (attempted + 1, n + 1, reasons)
    return out


def describe_skips(done, skipped):
    """One line: every fault's skips out of its attempts, with the reasons grouped."""
    parts = []
    for action, (attempted, n, reasons) in fault_skips(done, skipped).items():
        parts.append("%s %d of %d%s" % (action, n, attempted, " (%s)" % ", ".join(
            "%s: %d" % kv for kv in sorted(reasons.items(), key=lambda kv: -kv[1]))
            if reasons else ""))
    return "faults skipped: %s" % (", ".join(parts) or "none attempted")


def wipe_skip_failure(done, skipped):
    """The failure to report when too many wipes were skipped, else None."""
    attempted, n, _ = fault_skips(done, skipped).get("wipe", (0, 0, {}))
    if attempted < MIN_WIPES_JUDGED or n <= MAX_SKIPPED_WIPE_SHARE * attempted:
        return None
    return "wipes skipped: %d of %d attempted (more than %.0f %%)" % (
        n, attempted, 100 * MAX_SKIPPED_WIPE_SHARE)


class Report:
    def __init__(self, history, nemesis, replication, seconds):
        self.history = history
        self.nemesis = nemesis
        self.replication = replication
        self.seconds = seconds
        self.counts = {}
        self.evidence = {}
        self.times = {}
        self.details = {}
        self.info = []

    def failures(self):
        out = [k for k, v in self.counts.items() if v]
        out += ["not settled: %s" % k for k, v in self.times.items() if v is None]
        kinds = sorted({k for k, _ in self.history.anomalies if k in FAILING_ANOMALIES})
        out += ["anomaly %s" % k for k in kinds]
        skips = wipe_skip_failure(self.nemesis.done, self.nemesis.skipped)
        if skips:
            out.append(skips)
        return out

    @property
    def ok(self):
        return not self.failures()

    def text(self):
        h = self.history
        outcomes, states, counters = h.summary()
        lines = [
            "fault test seed %d (repeat with PORCUPINE_FAULT_SEED=%d): %.0f s of nemesis, R=%d"
            % (h.seed, h.seed, self.seconds, self.replication),
            self.nemesis.describe(),
            describe_skips(self.nemesis.done, self.nemesis.skipped),
            "sends: %s" % ", ".join("%s %d" % kv for kv in sorted(outcomes.items())),
            "deletes: %s" % (", ".join("%s %d" % kv for kv in sorted(states.items())) or "none"),
            "clients: %s" % ", ".join("%s %d" % kv for kv in sorted(counters.items())),
            "settle: %s" % ", ".join("%s %s" % (k, "%.2f s" % v if v is not None else "NOT REACHED")
                                     for k, v in self.times.items()),
        ]
        lines += self.info
        for key, value in self.counts.items():
            lines.append("%s: %d" % (key, value))
        kinds = {}
        for k, _ in h.anomalies:
            kinds[k] = kinds.get(k, 0) + 1
        lines.append("anomalies: %s" % (", ".join("%s %d" % kv for kv in sorted(kinds.items()))
                                        or "none"))
        for k, v in self.details.items():
            lines.append("settle detail %s: %s" % (k, v))
        for key, items in self.evidence.items():
            if items:
                lines.append("---- %s (first %d of %d) ----" % (key, min(EXAMPLES, len(items)),
                                                                len(items)))
                lines += items[:EXAMPLES]
        shown = [a for a in h.anomalies if a[0] in FAILING_ANOMALIES][:EXAMPLES]
        shown += [a for a in h.anomalies if a[0] not in FAILING_ANOMALIES][:EXAMPLES]
        if shown:
            lines.append("---- anomalies (examples) ----")
            lines += ["%s: %s" % a for a in shown]
        failures = self.failures()
        lines.append("RESULT: %s" % ("PASS" if not failures else "FAIL (%s)" % ", ".join(failures)))
        return "\n".join(lines)


def _log_lines(node_list, needle, limit=4):
    out = []
    for n in node_list:
        for line in n.log_text().splitlines():
            if needle in line:
                out.append("    %s.log: %s" % (n.name, line[:300]))
                if len(out) >= limit:
                    return out
    return out


def _events(history, token):
    """The nemesis's events around the SMTP transaction of token."""
    send = history.sends.get(token)
    if send is None:
        return []
    return ["    [%7.2f] %s" % ev for ev in history.events_near(send.t0, 8.0, 3.0 + (
        (send.t1 or send.t0) - send.t0))]


def _send_state(history, token):
    s = history.sends.get(token)
    if s is None:
        return "never sent"
    return "sent via %s at %.2f-%.2f s, %s" % (s.via, s.t0, s.t1 or -1, s.outcome)


def _frag_state(frags, user, mid):
    parts = []
    for name, per_user in sorted(frags.items()):
        e = (per_user or {}).get(user, {}).get(mid)
        if e is not None:
            parts.append("%s: hlc %s %s replicas %s" % (name, e["hlc"], "tombstone" if
                                                         e["tombstone"] else "live", e["replicas"]))
    return "; ".join(parts) or "held by no node"


def check(history, nemesis, node_list, users, replication, seconds, read_timeout=300.0):
    """Settles the cluster, reads everything and returns a Report."""
    report = Report(history, nemesis, replication, seconds)
    report.times, report.details = settle(nemesis, node_list, users, replication)
    t0 = time.monotonic()
    listings = read_listings(node_list, users, history, read_timeout)
    frags = read_fragments(node_list, users)
    report.info.append("final read: %d listings in %.1f s" % (
        len(node_list) * len(users), time.monotonic() - t0))
    _count(report, history, node_list, users, replication, listings, frags)
    below = 0.0
    for n in node_list:
        try:
            below += n.metric("porcupine_replication_below_ack_copies_total")
        except (OSError, AssertionError):
            pass
    report.info.append("porcupine_replication_below_ack_copies_total (sum; since each "
                       "node's last start): %d" % below)
    return report


def accepted_by(names_by_id, uidl):
    """The name of the node that took the SMTP session of a message id (its bytes 8-11)."""
    return names_by_id.get(uidl[16:24], uidl[16:24])


def _count(report, history, node_list, users, replication, listings, frags):
    names_by_id = {}
    try:
        names_by_id = {m["id"]: m["name"] for m in cluster_status(node_list[0])["members"]}
    except (OSError, AssertionError, ValueError):
        pass
    deleted = {d.token for d in history.deletes_in("committed", "uncertain")}
    visible = {}   # token -> {node}
    for name, per_user in listings.items():
        for user, listing in per_user.items():
            for uidl, token in listing.items():
                if token is not None:
                    visible.setdefault(token, set()).add(name)

    acked = history.acked()
    lost = [s for s in acked if s.token not in deleted and s.token not in visible]
    report.counts["acknowledged messages lost"] = len(lost)
    report.evidence["acknowledged messages lost"] = [
        "%s to %s via %s, sent at %.2f-%.2f s; ids learnt %s; fragments: %s\n%s" % (
            s.token, s.user, s.via, s.t0, s.t1, sorted(history.uidls.get(s.token, ())) or "none",
            "; ".join(_frag_state(frags, s.user, u) for u in history.uidls.get(s.token, ()))
            or "-", "\n".join(_events(history, s.token) + sum(
                (_log_lines(node_list, u) for u in history.uidls.get(s.token, ())), [])))
        for s in lost]

    committed = history.deletes_in("committed")
    shown = {}
    for d in committed:
        where = [name for name, per_user in listings.items() if d.uidl in per_user[d.user]]
        if where and d.uidl not in shown:
            shown[d.uidl] = (d, where)
    report.counts["deleted messages visible"] = len(shown)
    report.evidence["deleted messages visible"] = [
        "%s (%s, %s, accepted by %s) of %s deleted via %s, QUIT +OK at %.2f s, listed by %s; "
        "fragments: %s\n%s" % (
            uidl, d.token, _send_state(history, d.token), accepted_by(names_by_id, uidl), d.user,
            d.via, d.t1, where, _frag_state(frags, d.user, uidl),
            "\n".join(_events(history, d.token) + _log_lines(node_list, uidl)))
        for uidl, (d, where) in shown.items()]

    dups = {}
    for name, per_user in listings.items():
        for user, listing in per_user.items():
            by_token = {}
            for uidl, token in listing.items():
                if token is not None:
                    by_token.setdefault(token, []).append(uidl)
            for token, uidls in by_token.items():
                if len(uidls) > 1:
                    dups.setdefault(token, (user, name, sorted(uidls)))
    report.counts["duplicates visible"] = len(dups)
    report.evidence["duplicates visible"] = [
        "%s of %s listed by %s under %s; sent via %s at %.2f s (%s); fragments: %s" % (
            token, user, name, uidls, history.sends[token].via, history.sends[token].t0,
            history.sends[token].outcome,
            "; ".join(_frag_state(frags, user, u) for u in uidls))
        for token, (user, name, uidls) in dups.items()]

    bad = objects_not_on_r(frags, replication)
    report.counts["objects not on R nodes"] = len(bad)
    wiped = set(report.nemesis.wiped)
    by_kind = {}
    for user, mid, holders in bad:
        kind = r_failure_kind(holders, replication, wiped)
        token = history.token_of.get(mid)
        by_kind.setdefault(kind, []).append("[%s] %s of %s (%s, %s, accepted by %s): %s\n%s" % (
            kind, mid, user, token or "token unknown", _send_state(history, token),
            accepted_by(names_by_id, mid), _frag_state(frags, user, mid),
            "\n".join(_events(history, token))))
    # One example of every kind first, then the rest.
    report.evidence["objects not on R nodes"] = (
        [items[0] for items in by_kind.values()] +
        [e for items in by_kind.values() for e in items[1:]])
    if bad:
        report.info.append("objects not on R nodes by kind: %s" % ", ".join(
            "%s %d" % (k, len(v)) for k, v in by_kind.items()))

    over = [(u, m) for (u, m), holders in holders_by_id(frags).items()
            if sum(1 for e in holders.values() if not e["tombstone"]) > replication]
    report.info.append("live on more than R nodes (not counted as a failure): %d%s" % (
        len(over), " (e.g. %s of %s: %s)" % (over[0][1], over[0][0],
                                               _frag_state(frags, over[0][0], over[0][1]))
        if over else ""))

    differ = []
    names = sorted(listings)
    for user in users:
        union = set().union(*(set(listings[n][user]) for n in names))
        for uidl in sorted(union):
            lacking = [n for n in names if uidl not in listings[n][user]]
            if lacking:
                differ.append("%s of %s (%s) not listed by %s; fragments: %s" % (
                    uidl, user, history.token_of.get(uidl, "?"), lacking,
                    _frag_state(frags, user, uidl)))
    report.counts["listings that differ between nodes"] = len(differ)
    report.evidence["listings that differ between nodes"] = differ
    report.info.append("visible at the end: %d messages (%d acknowledged ones not deleted)"
                       % (len(visible), sum(1 for s in acked if s.token not in deleted)))

    stale = report.nemesis.stale_backlog
    key = "replication backlogs older than %.0f s" % STALE_BACKLOG_S
    report.counts[key] = len(stale)
    report.evidence[key] = [
        "%s -> %s: %r\n%s" % (node, peer, seen, "\n".join(
            "    [%7.2f] %s" % ev for ev in history.events_near(seen.first_t, 90.0, 2.0)[-12:]))
        for (node, peer), seen in sorted(stale.items())]

"""The fault test's checker: after the nemesis, heal, settle, read everything, count.

`settle` undoes every fault, waits (bounded) for one view of all nodes and for
quiescence (porcupine_replication_unretired == 0 on every node), then gives the
replicas a bounded time to agree (every live object on R nodes). `check` reads
every user's maildrop through POP3 from every node (UIDL + RETR of everything)
and every node's GET /v1/fragments, and counts against the history. Nothing
stops the count: a message that stays unreadable is recorded and the read goes
on, so that every run reports every count:

- acknowledged messages lost: an SMTP 250 whose token no node lists, and that
  no committed or uncertain POP3 deletion removed;
- deleted messages visible: a deletion committed (QUIT +OK) whose message id
  some node still lists;
- duplicates visible: one token under two message ids in one listing;
- objects not on R nodes: a message id held live somewhere but live on fewer
  than R nodes, or whose holders disagree on hlc/tombstone;
- listings that differ: a message id one node lists for a user and another
  does not (after quiescence every node must show the same maildrop);
- unreadable messages: a message id a node lists but whose RETR it answers
  with -ERR for as long as UNREADABLE_RETRY_S allows (promise 3: mail on
  reachable nodes is always readable);
- maildrops not readable: a node that would not log in or list a maildrop
  (connection errors, -ERR) until the read's deadline;
- replication backlogs older than STALE_BACKLOG_S seen during the run;
- and the run fails when the nemesis skipped most of its wipes (see
  MAX_SKIPPED_WIPE_SHARE).

The report names the seed, every count, and for each failure the message, the
nemesis events around it, what the fragments say and node log lines naming it.
"""

import poplib
import time

from cluster import DEFAULT_PASSWORD
from clusterkit import TempFailure, cluster_status, wait_view
from faultkit import (IO_TIMEOUT_S, STALE_BACKLOG_S, _pop3_eof, _pop3_text, fragments, node_addr,
                      verify_retrieved, wait_quiescent)

EXAMPLES = 5          # evidence printed per failing count
# How long the final read retries messages whose RETR answers -ERR, in all (the clock starts
# at the first -ERR and is shared by every listing of the check): a node that is still
# restarting gets its chance, and a run full of unreadable messages still ends in bounded time.
UNREADABLE_RETRY_S = 30.0
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

class RetryBudget:
    """Seconds to retry unreadable messages, shared by every read of one check. The clock
    starts at the first message that needs it."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.started = None

    def start(self):
        if self.started is None:
            self.started = time.monotonic()

    def left(self):
        return self.seconds - (0.0 if self.started is None else time.monotonic() - self.started)


class Unreadable:
    """A message a node listed but did not retrieve (uidl None: the whole maildrop, when the
    node would not log in or list it until the deadline)."""
    __slots__ = ("node", "user", "uidl", "error", "tries", "first", "last")

    def __init__(self, node, user, uidl, error, tries=1, first=0.0, last=0.0):
        self.node, self.user, self.uidl, self.error = node, user, uidl, error
        self.tries, self.first, self.last = tries, first, last

    def __repr__(self):
        return "Unreadable(%s, %s, %s, %r)" % (self.node, self.user, self.uidl, self.error)


def _retr_refused(e):
    """True if a poplib error is the server's -ERR to one command (the session goes on),
    False if the connection broke (EOF, over-long line)."""
    text = _pop3_text(e)
    return text.startswith(b"-ERR") and not _pop3_eof(e)


def _note(errors, uid, e):
    """Records a failed RETR of uid in errors {uid: [tries, first, last, text]}."""
    now = time.monotonic()
    err = errors.setdefault(uid, [0, now, now, ""])
    err[0] += 1
    err[2] = now
    if isinstance(e, poplib.error_proto) and _retr_refused(e):
        err[3] = _pop3_text(e).decode("utf-8", "replace")
    else:
        err[3] = "connection broke at RETR: %r" % (e,)


def _read_once(node, user, history, tokens, errors):
    """One POP3 session: UIDL, then RETR of every listed message not yet in tokens. Fills
    tokens {uidl: token or None} and errors (see _note); returns the listed uidls. Raises on
    connection problems and -ERR to USER/PASS/UIDL."""
    host, port = node_addr(node, "pop3")
    p = poplib.POP3(host, port, timeout=IO_TIMEOUT_S)
    try:
        p.user(user)
        p.pass_(DEFAULT_PASSWORD)
        _, lines, _ = p.uidl()
        listed = []
        for line in lines:
            num, uid = line.split(b" ", 1)
            uid = uid.decode()
            listed.append(uid)
            if uid in tokens:
                continue
            try:
                _, body, _ = p.retr(int(num))
            except (poplib.error_proto, OSError) as e:
                _note(errors, uid, e)
                if isinstance(e, poplib.error_proto) and _retr_refused(e):
                    continue
                raise
            raw = b"".join(x + b"\r\n" for x in body)
            tokens[uid] = verify_retrieved(history, user, uid, raw, "final read via %s" % node.name)
        try:
            p.quit()
        except (poplib.error_proto, OSError):
            pass  # nothing was marked for deletion: the listing stands
        return listed
    finally:
        p.close()


def read_listing(node, user, history, deadline, budget, pause_s=0.25):
    """(listing, unreadable) of user's maildrop via node. listing is {uidl: token or None}
    (None: no token known) or None if the maildrop could not be listed before deadline;
    unreadable is [Unreadable]. Connection problems and -ERR to login or UIDL are retried
    until deadline (once a listing is in hand, only while budget lasts); listed messages
    whose RETR fails are retried while budget lasts, then recorded as unreadable, and the
    other messages are still read. Each retry retrieves only what is still missing."""
    tokens, errors = {}, {}
    last = None
    listed = None
    while True:
        try:
            listed = _read_once(node, user, history, tokens, errors)
        except (poplib.error_proto, OSError, TempFailure) as e:
            last = e
            if time.monotonic() > deadline or (listed is not None and budget.left() <= 0):
                break
            time.sleep(pause_s)
            continue
        failing = [u for u in listed if u not in tokens]
        if failing:
            budget.start()
        if not failing or budget.left() <= 0 or time.monotonic() > deadline:
            break
        time.sleep(pause_s)
    if listed is None:
        return None, [Unreadable(node.name, user, None, "no listing until the deadline: %r%s" % (
            last, "; RETR failures: %s" % "; ".join("%s: %s" % (u, e[3]) for u, e in
                                                    sorted(errors.items())) if errors else ""))]
    listing = {u: tokens[u] if u in tokens else history.token_of.get(u) for u in listed}
    t0 = history.start
    unreadable = [Unreadable(node.name, user, u, errors[u][3], errors[u][0], errors[u][1] - t0,
                             errors[u][2] - t0) for u in listed if u not in tokens]
    return listing, unreadable


def read_listings(node_list, users, history, timeout, retry_s=UNREADABLE_RETRY_S):
    """({node: {user: listing or None}}, [Unreadable]) of every maildrop via every node."""
    deadline = time.monotonic() + timeout
    budget = RetryBudget(retry_s)
    listings, unreadable = {}, []
    for n in node_list:
        listings[n.name] = {}
        for u in users:
            listings[n.name][u], bad = read_listing(n, u, history, deadline, budget)
            unreadable += bad
    for u in unreadable:   # a token learnt later, by another node's read, names it too
        if u.uidl is not None and listings[u.node][u.user][u.uidl] is None:
            listings[u.node][u.user][u.uidl] = history.token_of.get(u.uidl)
    return listings, unreadable


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
    listings, unreadable = read_listings(node_list, users, history, read_timeout)
    frags = read_fragments(node_list, users)
    report.info.append("final read: %d listings in %.1f s (%d listed messages not retrieved, "
                       "retried for up to %.0f s in all)" % (
                           len(node_list) * len(users), time.monotonic() - t0,
                           len(unreadable), UNREADABLE_RETRY_S))
    _count(report, history, node_list, users, replication, listings, frags, unreadable)
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


def _delete_state(history, uidl):
    ds = [d for d in history.deletes if d.uidl == uidl]
    if not ds:
        return "never deleted"
    return "deleted " + ", ".join("via %s %s at %.2f s" % (d.via, d.state, d.t1 if d.t1 is not None
                                                            else d.t0) for d in ds)


def _listed(listings, name, user):
    """The listing of user via node name; {} if it could not be read (counted apart)."""
    return listings[name].get(user) or {}


def _count(report, history, node_list, users, replication, listings, frags, unreadable=()):
    names_by_id = {}
    try:
        names_by_id = {m["id"]: m["name"] for m in cluster_status(node_list[0])["members"]}
    except (OSError, AssertionError, ValueError):
        pass
    deleted = {d.token for d in history.deletes_in("committed", "uncertain")}
    visible = {}   # token -> {node}
    for name, per_user in listings.items():
        for user, listing in per_user.items():
            for uidl, token in (listing or {}).items():
                if token is not None:
                    visible.setdefault(token, set()).add(name)
    unread_of = {}   # user -> {uidl listed somewhere but never retrieved}
    for u in unreadable:
        if u.uidl is not None:
            unread_of.setdefault(u.user, set()).add(u.uidl)

    acked = history.acked()
    lost = [s for s in acked if s.token not in deleted and s.token not in visible]
    report.counts["acknowledged messages lost"] = len(lost)
    report.evidence["acknowledged messages lost"] = [
        "%s to %s via %s, sent at %.2f-%.2f s; ids learnt %s; fragments: %s%s\n%s" % (
            s.token, s.user, s.via, s.t0, s.t1, sorted(history.uidls.get(s.token, ())) or "none",
            "; ".join(_frag_state(frags, s.user, u) for u in history.uidls.get(s.token, ()))
            or "-", "; (maybe one of the unreadable %s)" % sorted(unread_of[s.user])
            if s.user in unread_of else "", "\n".join(_events(history, s.token) + sum(
                (_log_lines(node_list, u) for u in history.uidls.get(s.token, ())), [])))
        for s in lost]

    committed = history.deletes_in("committed")
    shown = {}
    for d in committed:
        where = [name for name in listings if d.uidl in _listed(listings, name, d.user)]
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
            for uidl, token in (listing or {}).items():
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

    _count_unreadable(report, history, node_list, unreadable, frags)

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
    for user in users:
        names = sorted(n for n in listings if listings[n].get(user) is not None)
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
    report.evidence[key] = [   # with what happened when the stuck update was made
        "%s -> %s: %r\n%s" % (node, peer, seen, "\n".join(
            "    [%7.2f] %s" % ev for ev in history.events_near(seen.since, 10.0, 5.0)))
        for (node, peer), seen in sorted(stale.items())]


def _count_unreadable(report, history, node_list, unreadable, frags):
    """Messages listed but never retrieved, one per (user, id) naming every node; and
    maildrops that could not be listed at all."""
    by_msg = {}
    for u in unreadable:
        if u.uidl is not None:
            by_msg.setdefault((u.user, u.uidl), []).append(u)
    report.counts["unreadable messages"] = len(by_msg)
    evidence = []
    for (user, uidl), items in sorted(by_msg.items()):
        token = history.token_of.get(uidl)
        events = _events(history, token) if token else []
        for d in [d for d in history.deletes if d.uidl == uidl][:1]:
            events += ["    [%7.2f] %s" % ev for ev in history.events_near(d.t0, 5.0, 10.0)]
        events = sorted(set(events))   # the send's and the deletion's windows overlap
        evidence.append(
            "%s of %s (%s; %s; %s) listed but not retrieved via %s; fragments: %s\n%s" % (
                uidl, user, token or "token unknown",
                _send_state(history, token) if token else "send unknown",
                _delete_state(history, uidl),
                "; ".join("%s (%d tries at %.1f-%.1f s: %s)" % (u.node, u.tries, u.first, u.last,
                                                                u.error) for u in items),
                _frag_state(frags, user, uidl), "\n".join(events + _log_lines(node_list, uidl))))
    report.evidence["unreadable messages"] = evidence
    whole = [u for u in unreadable if u.uidl is None]
    report.counts["maildrops not readable"] = len(whole)
    report.evidence["maildrops not readable"] = ["%s via %s: %s" % (u.user, u.node, u.error)
                                                 for u in whole]

"""The fault test's checker on made-up histories: each count fires on its case.

No nodes: listings and fragments are written by hand, so that a checker that
cannot fail would show here (the fault test itself passes on a correct server).
The final read runs against FakePop3, a loopback POP3 server that refuses the
RETRs and drops the connections it is told to.
"""

import socketserver
import threading
import time

import pytest

from faultcheck import (MAX_SKIPPED_WIPE_SHARE, MIN_WIPES_JUDGED, Report, Unreadable, _count,
                        read_listings)
from faultkit import (STALE_BACKLOG_S, History, Nemesis, ReplicationState, message_for,
                      parse_message, verify_retrieved)

R = 2
U = "f000@example.test"


class FakeNode:
    def __init__(self, name, pop3=None):
        self.name = name
        self.addrs = {"pop3": "127.0.0.1:%d" % pop3} if pop3 else {}

    def log_text(self):
        return ""

    def http(self, *args, **kwargs):
        raise OSError("no admin API here")


class FakeNemesis:
    """The attributes of a Nemesis that the report reads."""

    def __init__(self, done=None, skipped=(), stale_backlog=None):
        self.wiped = []
        self.done = dict(done or {})
        self.skipped = list(skipped)
        self.stale_backlog = dict(stale_backlog or {})

    def describe(self):
        return "nemesis: none"


def uid(i):
    return "%032x" % (0x1000 + i)


def entry(i, hlc=1, tombstone=False, replicas=("n1", "n2")):
    return {"id": uid(i), "hlc": hlc, "tombstone": tombstone, "size": 100,
            "replicas": list(replicas)}


def history_with(acked=(), failed=()):
    h = History(7)
    h.quiet = True
    for tok in acked:
        h.send_done(h.send_started(tok, U, "n1"), "acked")
    for tok in failed:
        h.send_done(h.send_started(tok, U, "n1"), "failed", "421")
    return h


def counts(h, listings, frags, unreadable=(), nemesis=None):
    nodes = [FakeNode(n) for n in sorted(listings)]
    report = Report(h, nemesis or FakeNemesis(), R, 1.0)
    _count(report, h, nodes, [U], R, listings, frags, unreadable)
    return report.counts, report


def frags_of(per_node):
    return {n: {U: {e["id"]: e for e in entries}} for n, entries in per_node.items()}


def test_a_clean_history_counts_nothing():
    h = history_with(acked=["t1", "t2"])
    listings = {n: {U: {uid(1): "t1", uid(2): "t2"}} for n in ("n1", "n2")}
    frags = frags_of({"n1": [entry(1), entry(2)], "n2": [entry(1), entry(2)]})
    c, report = counts(h, listings, frags)
    assert not any(c.values()), c
    assert report.ok, report.text()
    for key in ("unreadable messages", "maildrops not readable",
                "replication backlogs older than %.0f s" % STALE_BACKLOG_S):
        assert key in c, c   # every count is reported in every run, zero or not
    assert "RESULT: PASS" in report.text()


def test_each_count_fires():
    h = history_with(acked=["lost", "dup", "del", "short"], failed=["maybe"])
    d = h.deletes_sent(U, [(uid(3), "del")], "n1")
    h.deletes_done(d, "committed")
    listings = {
        "n1": {U: {uid(1): "dup", uid(2): "dup", uid(3): "del", uid(4): "short"}},
        "n2": {U: {uid(1): "dup", uid(2): "dup", uid(3): "del"}},
    }
    frags = frags_of({
        "n1": [entry(1), entry(2), entry(3, hlc=2, tombstone=True), entry(4, replicas=["n1"])],
        "n2": [entry(1), entry(2), entry(3, hlc=1)],
    })
    c, report = counts(h, listings, frags)
    assert c["acknowledged messages lost"] == 1, c           # "lost" is nowhere
    assert c["duplicates visible"] == 1, c                   # "dup" under two ids
    assert c["deleted messages visible"] == 1, c             # uid 3 after QUIT +OK
    assert c["objects not on R nodes"] == 2, c               # 3 disagrees, 4 is on n1 only
    assert c["listings that differ between nodes"] == 1, c   # n2 lacks uid 4
    assert c["unreadable messages"] == 0, c
    assert not report.ok
    text = report.text()
    assert "replica list shorter than R" in text and "versions differ" in text, text
    for key, value in c.items():
        if value:
            assert key in text.splitlines()[-1], (key, text)   # every count fails the run


def test_unreadable_messages_and_maildrops_count_and_fail():
    h = history_with(acked=["ok", "ghost"])
    h.learn(uid(2), "ghost", "test")
    d = h.deletes_sent(U, [(uid(2), "ghost")], "n2")
    h.deletes_done(d, "committed")
    listings = {"n1": {U: {uid(1): "ok", uid(2): "ghost"}}, "n2": {U: None}}
    unreadable = [Unreadable("n1", U, uid(2), "-ERR no such message", 40, 1.0, 31.0),
                  Unreadable("n2", U, None, "no listing until the deadline: EOF")]
    frags = frags_of({"n1": [entry(1), entry(2, hlc=2, tombstone=True)],
                      "n2": [entry(1), entry(2, hlc=2, tombstone=True)]})
    c, report = counts(h, listings, frags, unreadable)
    assert c["unreadable messages"] == 1, c
    assert c["maildrops not readable"] == 1, c
    assert c["deleted messages visible"] == 1, c          # the ghost is listed after QUIT +OK
    assert c["acknowledged messages lost"] == 0, c        # "ok" is listed by n1
    assert c["listings that differ between nodes"] == 0, c  # n2's listing is unknown, not empty
    text = report.text()
    assert "unreadable messages: 1" in text and "maildrops not readable: 1" in text, text
    assert "-ERR no such message" in text and "40 tries" in text, text
    assert "deleted via n2 committed" in text and "tombstone" in text, text
    last = text.splitlines()[-1]
    assert last.startswith("RESULT: FAIL") and "unreadable messages" in last, last
    assert "maildrops not readable" in last, last


def test_wipes_skipped_are_grouped_and_fail_the_run_above_the_share():
    h = history_with(acked=["t1"])
    listings = {n: {U: {uid(1): "t1"}} for n in ("n1", "n2")}
    frags = frags_of({"n1": [entry(1)], "n2": [entry(1)]})
    quiet = ("wipe", "not quiescent within 10 s", "n1: unretired 3")
    sole = ("wipe", "every node holds an only copy", "n1 holds 1")
    attempts = MIN_WIPES_JUDGED + 1
    allowed = int(MAX_SKIPPED_WIPE_SHARE * attempts)
    ok = FakeNemesis(done={"wipe": attempts - allowed, "kill9": 4},
                     skipped=[quiet] * allowed)
    _, report = counts(h, listings, frags, nemesis=ok)
    assert report.ok, report.text()
    assert "wipe %d of %d (not quiescent within 10 s: %d)" % (allowed, attempts, allowed) \
        in report.text(), report.text()
    bad = FakeNemesis(done={"wipe": attempts - allowed - 1},
                      skipped=[quiet] * allowed + [sole, ("pause", "victim not running", "")])
    _, report = counts(h, listings, frags, nemesis=bad)
    text = report.text()
    assert not report.ok and "wipes skipped: %d of %d" % (allowed + 1, attempts) in text, text
    assert "every node holds an only copy: 1" in text and "pause 1 of 1" in text, text
    few = FakeNemesis(done={}, skipped=[quiet] * (MIN_WIPES_JUDGED - 1))
    _, report = counts(h, listings, frags, nemesis=few)
    assert report.ok, report.text()   # too few wipes attempted to judge


class _Clock:
    def now(self):
        return 82.5

    def event(self, text):
        pass


def test_stale_backlog_is_recorded_and_fails_the_run():
    nemesis = Nemesis([], None, _Clock(), [], 1)
    key = 'porcupine_replication_backlog_%s{peer="n3"}'
    fresh = ReplicationState({"porcupine_replication_unretired": 2, key % "entries": 2,
                              key % "oldest_seconds": 3.0})
    stuck = ReplicationState({"porcupine_replication_unretired": 5, key % "entries": 5,
                              key % "oldest_seconds": STALE_BACKLOG_S + 10})
    nemesis.observe({"n1": fresh, "n2": None})
    assert not nemesis.stale_backlog
    nemesis.observe({"n1": stuck})
    assert list(nemesis.stale_backlog) == [("n1", "n3")], nemesis.stale_backlog
    h = history_with(acked=["t1"])
    listings = {n: {U: {uid(1): "t1"}} for n in ("n1", "n2")}
    frags = frags_of({"n1": [entry(1)], "n2": [entry(1)]})
    c, report = counts(h, listings, frags, nemesis=nemesis)
    key = "replication backlogs older than %.0f s" % STALE_BACKLOG_S
    assert c[key] == 1 and not report.ok, c
    assert "n1 -> n3: oldest 70 s (made at about 12.5 s), 5 updates" in report.text(), \
        report.text()


def test_uncertain_deletes_excuse_absence_but_aborted_ones_do_not():
    h = history_with(acked=["gone", "kept"])
    d = h.deletes_sent(U, [(uid(1), "gone")], "n1")
    h.deletes_done(d, "uncertain", "EOF")
    d = h.deletes_sent(U, [(uid(2), "kept")], "n1")   # never QUIT: must still be there
    listings = {n: {U: {}} for n in ("n1", "n2")}
    c, _ = counts(h, listings, frags_of({"n1": [], "n2": []}))
    assert c["acknowledged messages lost"] == 1, c


def test_verify_retrieved_learns_and_flags_corruption():
    h = history_with(acked=["ftok-7-s0-1"])
    body = message_for(U, "ftok-7-s0-1", 900)
    assert len(body) >= 900 and parse_message(body) == ("ftok-7-s0-1", 900)
    got = b"Received: from x by mx1.example.test\r\n" + body
    assert verify_retrieved(h, U, uid(1), got, "test") == "ftok-7-s0-1"
    assert h.token_of[uid(1)] == "ftok-7-s0-1" and not h.anomalies
    verify_retrieved(h, U, uid(2), got[:-3] + b"xx\n", "test")
    assert [k for k, _ in h.anomalies] == ["corrupt"], h.anomalies


# ---- the final read against a fake POP3 server ----------------------------------------------

class FakePop3:
    """A loopback POP3 server for one maildrop: messages [(uidl, bytes)]. refuse {uidl: n}
    answers RETR of uidl with -ERR n times (-1: always); drops closes the first n connections
    at once; deny_login answers PASS with -ERR."""

    def __init__(self, messages, refuse=None, drops=0, deny_login=False):
        self.messages = list(messages)
        self.refuse = dict(refuse or {})
        self.drops = drops
        self.deny_login = deny_login
        self.retrs = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                fake.serve(self.rfile, self.wfile)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def serve(self, rfile, wfile):
        with self.lock:
            if self.drops > 0:
                self.drops -= 1
                return
        wfile.write(b"+OK fake\r\n")
        for line in rfile:
            cmd, _, arg = line.strip().decode().partition(" ")
            cmd = cmd.upper()
            if cmd == "QUIT":
                wfile.write(b"+OK bye\r\n")
                return
            if cmd == "PASS" and self.deny_login:
                wfile.write(b"-ERR [SYS/TEMP] no\r\n")
            elif cmd in ("USER", "PASS"):
                wfile.write(b"+OK\r\n")
            elif cmd == "UIDL":
                wfile.write(b"+OK\r\n" + b"".join(b"%d %s\r\n" % (i + 1, u.encode()) for i, (
                    u, _) in enumerate(self.messages)) + b".\r\n")
            elif cmd == "RETR":
                uidl, body = self.messages[int(arg) - 1]
                with self.lock:
                    self.retrs[uidl] = self.retrs.get(uidl, 0) + 1
                    left = self.refuse.get(uidl, 0)
                    if left > 0:
                        self.refuse[uidl] = left - 1
                if left:
                    wfile.write(b"-ERR no such message\r\n")
                    continue
                stuffed = b"".join((b"." + x if x.startswith(b".") else x) + b"\r\n"
                                   for x in body.split(b"\r\n")[:-1])
                wfile.write(b"+OK\r\n" + stuffed + b".\r\n")
            else:
                wfile.write(b"-ERR unknown\r\n")


@pytest.fixture
def pop3_servers():
    servers = []
    yield lambda *a, **kw: servers.append(FakePop3(*a, **kw)) or servers[-1]
    for s in servers:
        s.close()


def _messages(h, tokens):
    return [(uid(i), b"Received: from x\r\n" + message_for(U, t, 400))
            for i, t in enumerate(tokens, 1)]


def test_final_read_records_unreadable_messages_and_reads_the_rest(pop3_servers):
    h = history_with(acked=["a", "ghost", "late"])
    msgs = _messages(h, ["a", "ghost", "late"])
    # n1: the connection drops twice (a restarting node), uid 3 is refused twice (transient),
    # uid 2 always (a ghost). n2: everything readable.
    s1 = pop3_servers(msgs, refuse={uid(2): -1, uid(3): 2}, drops=2)
    s2 = pop3_servers(msgs)
    nodes = [FakeNode("n1", s1.port), FakeNode("n2", s2.port)]
    t0 = time.monotonic()
    listings, unreadable = read_listings(nodes, [U], h, timeout=20, retry_s=1.5)
    took = time.monotonic() - t0
    assert took < 10, took
    assert [(u.node, u.uidl) for u in unreadable] == [("n1", uid(2))], unreadable
    assert unreadable[0].tries >= 3 and "no such message" in unreadable[0].error, unreadable
    assert listings["n1"][U] == {uid(1): "a", uid(2): "ghost", uid(3): "late"}, listings
    assert s1.retrs[uid(1)] == 1, s1.retrs    # a retry retrieves only what is missing
    assert not h.anomalies, h.anomalies
    c, report = counts(h, listings, frags_of({"n1": [entry(1), entry(2), entry(3)],
                                              "n2": [entry(1), entry(2), entry(3)]}),
                       unreadable)
    assert c["unreadable messages"] == 1 and not report.ok, c
    assert "unreadable messages" in report.text().splitlines()[-1]


def test_final_read_bounds_its_retries_in_all(pop3_servers):
    h = history_with(acked=["a", "b"])
    msgs = _messages(h, ["a", "b"])
    servers = [pop3_servers(msgs, refuse={uid(1): -1, uid(2): -1}) for _ in range(3)]
    nodes = [FakeNode("n%d" % (i + 1), s.port) for i, s in enumerate(servers)]
    t0 = time.monotonic()
    listings, unreadable = read_listings(nodes, [U], h, timeout=60, retry_s=1.0)
    assert time.monotonic() - t0 < 5, "the retry budget is shared, not per message or node"
    assert len(unreadable) == 6, unreadable
    assert all(u.tries == 1 for u in unreadable if u.node != "n1"), unreadable
    assert all(listings[n.name][U] == {uid(1): None, uid(2): None} for n in nodes), listings


def test_final_read_gives_up_on_a_maildrop_at_the_deadline(pop3_servers):
    h = history_with(acked=["a"])
    s = pop3_servers(_messages(h, ["a"]), deny_login=True)
    listings, unreadable = read_listings([FakeNode("n1", s.port)], [U], h, timeout=1.0)
    assert listings == {"n1": {U: None}}, listings
    assert len(unreadable) == 1 and unreadable[0].uidl is None, unreadable
    assert "SYS/TEMP" in unreadable[0].error, unreadable
    c, report = counts(h, listings, frags_of({"n1": [entry(1)]}), unreadable)
    assert c["maildrops not readable"] == 1 and not report.ok, c


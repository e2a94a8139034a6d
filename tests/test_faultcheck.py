"""The fault test's checker on made-up histories: each count fires on its case.

No nodes: listings and fragments are written by hand, so that a checker that
cannot fail would show here (the fault test itself passes on a correct server).
"""

from faultcheck import MAX_SKIPPED_WIPE_SHARE, MIN_WIPES_JUDGED, Report, _count
from faultkit import (STALE_BACKLOG_S, History, Nemesis, ReplicationState, message_for,
                      parse_message, verify_retrieved)

R = 2
U = "f000@example.test"


class FakeNode:
    def __init__(self, name):
        self.name = name

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


def counts(h, listings, frags, nemesis=None):
    nodes = [FakeNode(n) for n in sorted(listings)]
    report = Report(h, nemesis or FakeNemesis(), R, 1.0)
    _count(report, h, nodes, [U], R, listings, frags)
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
    assert not report.ok
    text = report.text()
    assert "replica list shorter than R" in text and "versions differ" in text, text
    for key, value in c.items():
        if value:
            assert key in text.splitlines()[-1], (key, text)   # every count fails the run


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
        return 12.5

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
    assert "n1 -> n3: oldest 70 s, 5 updates" in report.text(), report.text()


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

"""Replication with real node processes (docs/replication.md).

Every message is on `replication` nodes, survives the loss of one, reaches a
replica that was away, is deleted everywhere, and its tombstone is collected
by the documented rule. GET /v1/fragments/{user} shows what each node itself
holds, so the tests count copies directly.
"""

import shutil
import signal
import time

import pytest

from cluster import wait_for
from clusterkit import (Ledger, TempFailure, body_for, dele_uids, deliver, deliver_concurrently,
                        read_all, send_all, start_cluster, user_names, wait_view)


def held(node, user):
    """{uidl: (hlc, tombstone)} of what `node` itself holds of user's INBOX."""
    status, body = node.http("GET", "/v1/fragments/%s" % user)
    assert status == 200, (status, body)
    return {m["id"]: (m["hlc"], m["tombstone"]) for m in body["messages"]}


def copies(node_list, users):
    """{uidl: [names of nodes holding it live]} over every user."""
    out = {}
    for n in node_list:
        for u in users:
            for uid, (_, tomb) in held(n, u).items():
                out.setdefault(uid, [])
                if not tomb:
                    out[uid].append(n.name)
    return out


def quiescent(node_list):
    return all(n.metric("porcupine_replication_unretired") == 0 for n in node_list)


def wait_quiescent(node_list, timeout=20):
    wait_for(lambda: quiescent(node_list), timeout, what="replication backlog drained")


def test_every_message_on_two_nodes_and_readable_with_one_down(nodes):
    ns = start_cluster(nodes, 3)
    users = user_names(12)
    ns[0].add_users(users)
    ledger = Ledger()
    send_all(ns, users, ledger, "two", per_user=3)
    wait_quiescent(ns)
    where = copies(ns, users)
    assert len(where) == 36
    bad = {uid: holders for uid, holders in where.items() if len(holders) != 2}
    assert not bad, "messages not on exactly 2 nodes: %r" % bad
    assert sum(n.metric("porcupine_replication_below_ack_copies_total") for n in ns) == 0
    # Any one node down: every message is still readable from the others.
    for victim in ns:
        victim.kill(signal.SIGKILL)
        rest = [n for n in ns if n is not victim]
        wait_view(rest, [n.name for n in rest], 10)
        ledger.check_everywhere(rest)
        victim.start()
        wait_view(ns, [n.name for n in ns], 15)


def test_replica_that_was_away_gets_what_it_missed(nodes):
    ns = start_cluster(nodes, 3)
    users = user_names(10)
    ns[0].add_users(users)
    ledger = Ledger()
    send_all(ns, users, ledger, "before", per_user=4)
    wait_quiescent(ns)
    away = ns[2]
    away_held = {u: held(away, u) for u in users}
    away.kill(signal.SIGKILL)
    rest = ns[:2]
    wait_view(rest, ["n1", "n2"], 10)
    # Delete, through the others, every message the away node holds a copy of.
    doomed = {u: [uid for uid, (_, t) in away_held[u].items() if not t] for u in users}
    assert sum(len(v) for v in doomed.values()) > 0
    for u, uids in doomed.items():
        if uids:
            dele_uids(rest[0], u, uids)
    # Their tombstones wait for the away node in the others' logs.
    assert sum(n.metric("porcupine_replication_unretired") for n in rest) > 0
    away.start()
    wait_view(ns, ["n1", "n2", "n3"], 15)
    wait_quiescent(ns)
    for u in users:
        now = held(away, u)
        for uid in doomed[u]:
            assert now[uid][1], "%s: deleted message %s still live on %s" % (u, uid, away.name)
        for n in ns:
            visible = read_all(n, u)
            assert not set(doomed[u]) & set(visible), "deleted mail visible on %s" % n.name


def test_created_and_deleted_while_a_replica_is_unreachable_never_appears_there(nodes):
    # Three copies, two to acknowledge: n3 is a replica of everything.
    ns = start_cluster(nodes, 3, cluster_extra={"replication": 3, "ack_copies": 2})
    a, b, c = ns
    # Users whose manager is not n3, so their deliveries do not wait for it.
    candidates = user_names(30)
    a.add_users(candidates)
    users = [u for u in candidates if a.http("GET", "/v1/users/%s" % u)[1]["manager"] != "n3"][:6]
    ledger = Ledger()
    c.pause()  # still a member for a moment: chosen as a replica, and unreachable
    try:
        # In parallel, so that they all go out while n3 still looks alive.
        deadline = time.monotonic() + 20
        deliver_concurrently([([a], u, body_for(u, "ghost", 0)) for u in users], deadline, ledger)
        wait_view([a, b], ["n1", "n2"], 10)
        for u in users:
            dele_uids(a, u, list(read_all(a, u).keys()))
        # The creates and deletes wait for n3 in the update log.
        assert a.metric("porcupine_replication_unretired") > 0
    finally:
        c.resume()
    wait_view(ns, ["n1", "n2", "n3"], 15)
    wait_quiescent(ns)
    for u in users:
        for uid, (_, tomb) in held(c, u).items():
            assert tomb, "%s: message %s came back on %s" % (u, uid, c.name)
        for n in ns:
            assert read_all(n, u) == {}, "deleted mail visible on %s" % n.name


def test_tombstone_gc(nodes):
    fast = {"tombstone_grace_s": 2, "anti_entropy_interval_ms": 500}
    ns = start_cluster(nodes, 2, cluster_extra=fast)
    users = user_names(2)
    ns[0].add_users(users)
    ledger = Ledger()
    send_all(ns, users, ledger, "gc", per_user=2)
    wait_quiescent(ns)
    u0, u1 = users
    # Rule 1: a tombstone older than the grace, retired everywhere, is purged.
    dele_uids(ns[0], u0, list(read_all(ns[0], u0).keys()))
    assert all(t for n in ns for _, t in held(n, u0).values())
    wait_for(lambda: all(held(n, u0) == {} for n in ns), 15, what="tombstones of u0 purged")
    assert sum(n.metric("porcupine_tombstones_purged_total") for n in ns) >= 4
    # Rule 2: while the delete has not reached a replica, the tombstone stays,
    # however old.
    a, b = ns
    b.kill(signal.SIGKILL)
    wait_view([a], ["n1"], 10)
    dele_uids(a, u1, list(read_all(a, u1).keys()))
    time.sleep(3.5)  # past the grace, several GC passes: nothing may be purged
    kept = held(a, u1)
    assert kept and all(t for _, t in kept.values()), "a pending tombstone was purged: %r" % kept
    b.start()
    wait_view(ns, ["n1", "n2"], 15)
    wait_quiescent(ns)
    wait_for(lambda: all(held(n, u1) == {} for n in ns), 15, what="tombstones of u1 purged")
    for n in ns:
        assert read_all(n, u1) == {}


def test_wiped_node_gets_its_replicas_back(nodes):
    ns = start_cluster(nodes, 3, cluster_extra={"anti_entropy_interval_ms": 60000})
    users = user_names(10)
    ns[0].add_users(users)
    ledger = Ledger()
    send_all(ns, users, ledger, "wipe", per_user=4)
    wait_quiescent(ns)
    before = copies(ns, users)
    victim = ns[1]
    victim.kill(signal.SIGKILL)
    shutil.rmtree(victim.data_dir)
    victim.start()
    wait_view(ns, ["n1", "n2", "n3"], 15)
    # The join triggers anti-entropy (the interval alone would take a minute).
    wait_for(lambda: copies(ns, users) == before, 20, what="the wiped node's replicas back")
    ledger.check_everywhere(ns)
    # Its users are known to it again too: it can answer logins on its own.
    assert set(victim.users()) >= set(users)


def test_wiped_node_alone_refuses_unknown_users_temporarily(nodes):
    """A wiped node that restarts before it meets a peer knows no users: it
    must answer 451 (try later), never 550 (no such user), for a user that
    exists; once it meets the cluster it delivers."""
    a, b = start_cluster(nodes, 2)
    a.add_user("alice@example.test")
    a.stop()
    b.stop()
    shutil.rmtree(b.data_dir)
    b.start()
    with pytest.raises(TempFailure):
        deliver(b, "alice@example.test", "Subject: early\r\n\r\nearly\r\n")
    a.start()
    wait_view([a, b], ["n1", "n2"], 15)
    deliver(b, "alice@example.test", "Subject: later\r\n\r\nlater\r\n")
    # Once the profiles are back on its disk it needs no peer to know them,
    # and it remembers across a restart that it has met its cluster.
    wait_for(lambda: "alice@example.test" in b.users(), 20, what="the profile back on n2")
    a.stop()
    b.restart()
    deliver(b, "alice@example.test", "Subject: alone\r\n\r\nalone\r\n")
    with pytest.raises(AssertionError):
        deliver(b, "nobody@example.test", "Subject: x\r\n\r\nx\r\n")


@pytest.mark.slow
def test_removed_node_is_replaced_as_a_replica(nodes):
    ns = start_cluster(nodes, 4)
    users = user_names(12)
    ns[0].add_users(users)
    ledger = Ledger()
    send_all(ns, users, ledger, "rm", per_user=3)
    wait_quiescent(ns)
    victim = ns[3]
    rest = ns[:3]
    status, body = ns[0].http("POST", "/v1/cluster/remove", {"node": victim.name})
    assert status == 200, (status, body)
    wait_view(rest, [n.name for n in rest], 10)

    def two_copies_among_rest():
        where = copies(rest, users)
        return len(where) == 36 and all(len(h) == 2 for h in where.values())

    wait_for(two_copies_among_rest, 20, what="two copies of every message on the remaining nodes")
    victim.stop()
    ledger.check_everywhere(rest)

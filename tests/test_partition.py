"""A real network partition between cluster nodes.

Each node runs in its own network namespace with a veth into one bridge in the
root namespace (10.77.X.254/24), where the test process talks to every node.
nftables drop rules inside the namespaces cut {n1, n2} off from {n3, n4, n5};
deleting them heals the partition. The namespaces come from netlab.py (the
`netlab` fixture of conftest.py), which deletes every namespace, veth and the
bridge whatever happened.
"""

import imaplib
import re
import threading
import time

import pytest

from clusterkit import (
    Ledger, assert_exact_everywhere, body_for, deliver_concurrently, read_all_retry, send_all,
    start_cluster, user_names, wait_all_visible, wait_view)
from mailclient import imap_client, imap_subjects_by_uid


@pytest.mark.slow
def test_partition_both_sides_accept_mail_then_heal_merges(netlab, nodes):
    # netlab before nodes: the nodes are stopped before the network goes away.
    ns = start_cluster(nodes, 5, hosts=netlab.hosts, netns=netlab.names)
    names = [n.name for n in ns]
    side_a, side_b = [0, 1], [2, 3, 4]
    a_nodes = [ns[i] for i in side_a]
    b_nodes = [ns[i] for i in side_b]
    users = user_names(20)
    for i, u in enumerate(users):
        ns[i % 5].add_user(u)
    ledger = Ledger()
    send_all(ns, users, ledger, "before")

    t0 = time.monotonic()
    netlab.partition(side_a, side_b)
    led_a, led_b = Ledger(), Ledger()
    jobs_a = [(a_nodes[i % 2:] + a_nodes[:i % 2], u, body_for(u, "side-a", 0))
              for i, u in enumerate(users)]
    jobs_b = [(b_nodes[i % 3:] + b_nodes[:i % 3], u, body_for(u, "side-b", 0))
              for i, u in enumerate(users)]
    # Both sides at once, each user through its own thread, both ledgers.
    results = {}

    def side(label, jobs, led):
        results[label] = deliver_concurrently(jobs, t0 + 20, led)
    threads = [threading.Thread(target=side, args=("a", jobs_a, led_a)),
               threading.Thread(target=side, args=("b", jobs_b, led_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert "a" in results and "b" in results, "deliveries failed during the partition (above)"
    worst = max(tm for r in results.values() for tm, _ in r.values()) - t0
    print("partition: every user deliverable on both sides %.2f s after the cut" % worst)

    wait_view(a_nodes, ["n1", "n2"], 10)
    wait_view(b_nodes, ["n3", "n4", "n5"], 10)
    # Each side shows its own partition-time mail, never the other side's.
    rd = time.monotonic() + 10
    for u in users:
        got_a = read_all_retry(ns[0], u, rd)
        got_b = read_all_retry(ns[2], u, rd)
        assert any(m.endswith(led_a.acked[u][0]) for m in got_a.values()), ("n1", u)
        assert not any(m.endswith(led_b.acked[u][0]) for m in got_a.values()), ("n1", u)
        assert any(m.endswith(led_b.acked[u][0]) for m in got_b.values()), ("n3", u)
        assert not any(m.endswith(led_a.acked[u][0]) for m in got_b.values()), ("n3", u)

    t1 = time.monotonic()
    netlab.heal()
    wait_view(ns, names, 20)
    print("healed: one 5-member view %.2f s after the rules were deleted" % (time.monotonic() - t1))
    ledger.merge(led_a, led_b)
    took = wait_all_visible(ns, users, ledger, 15, "after the heal")
    print("all %d messages visible from every node %.2f s after the merged view"
          % (ledger.total_acked(), took))
    assert_exact_everywhere(ns, users, ledger)


def _imap_append_retry(node, user, folder, text, deadline):
    """APPENDs through node until it succeeds; the UID from APPENDUID."""
    last = None
    while time.monotonic() < deadline:
        try:
            m = imap_client(node, user, timeout=10)
            typ, data = m.append(folder, None, None, text.encode())
            m.logout()
            if typ == "OK":
                return int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
            last = data
        except (OSError, imaplib.IMAP4.error) as e:
            last = e
        time.sleep(0.2)
    raise AssertionError("APPEND through %s never succeeded: %r" % (node.name, last))


def _imap_folder(node, user, folder):
    """{uid: subject} of the folder, read through node."""
    m = imap_client(node, user, timeout=10)
    typ, data = m.select(folder)
    assert typ == "OK", data
    out = imap_subjects_by_uid(m)
    m.logout()
    return out


def _one_user_split_two_three(netlab, nodes):
    """Five nodes with one user, cut into n1 n2 | n3 n4 n5; (nodes, names, user)."""
    ns = start_cluster(nodes, 5, hosts=netlab.hosts, netns=netlab.names)
    user = user_names(1)[0]
    ns[0].add_user(user)
    netlab.partition([0, 1], [2, 3, 4])
    wait_view(ns[:2], ["n1", "n2"], 10)
    wait_view(ns[2:], ["n3", "n4", "n5"], 10)
    return ns, [n.name for n in ns], user


@pytest.mark.slow
def test_imap_uids_given_twice_in_a_partition_are_renumbered_after_the_heal(netlab, nodes):
    # Trash has no UID block before the cut, so each side's manager starts
    # it at 1: the same UIDs go to different messages (DESIGN.md §6).
    ns, names, user = _one_user_split_two_three(netlab, nodes)
    deadline = time.monotonic() + 30
    subject = "Subject: %s\r\n\r\nbody\r\n"
    side_a = [_imap_append_retry(ns[0], user, "Trash", subject % ("a%d" % i), deadline)
              for i in range(3)]
    side_b = [_imap_append_retry(ns[2], user, "Trash", subject % ("b%d" % i), deadline)
              for i in range(3)]
    assert set(side_a) & set(side_b), ("no UID was given twice: nothing to resolve",
                                       side_a, side_b)
    netlab.heal()
    wait_view(ns, names, 20)
    want = sorted(["a0", "a1", "a2", "b0", "b1", "b2"])
    seen = {}

    def merged():
        seen.update(folder=_imap_folder(ns[4], user, "Trash"))
        return sorted(seen["folder"].values()) == want
    deadline = time.monotonic() + 20
    while not merged():
        assert time.monotonic() < deadline, ("both sides' messages never showed", seen)
        time.sleep(0.2)
    folder = seen["folder"]  # {uid: subject}: one UID per message, nothing lost
    for uid in set(side_a) & set(side_b):
        assert uid in folder, ("the lower message id keeps the UID", uid, folder)
    # Every node lists the same folder, and the sequencer continues above it.
    for n in ns:
        assert _imap_folder(n, user, "Trash") == folder, n.name
    after = _imap_append_retry(ns[1], user, "Trash", subject % "after", time.monotonic() + 10)
    assert after > max(folder), (after, folder)


def _imap_retry(node, user, deadline, what, fn):
    """fn(an IMAP session of user's through node) until it returns without an error."""
    last = None
    while time.monotonic() < deadline:
        try:
            m = imap_client(node, user, timeout=10)
            try:
                return fn(m)
            finally:
                m.logout()
        except (OSError, imaplib.IMAP4.error, AssertionError) as e:
            last = e
        time.sleep(0.2)
    raise AssertionError("%s through %s never succeeded: %r" % (what, node.name, last))


@pytest.mark.slow
def test_folder_changes_on_both_sides_of_a_partition_are_all_kept(netlab, nodes):
    # Each side's manager changes the profile: one creates a folder and files
    # mail in it, the other creates another, renames one and reserves UIDs.
    # Last writer wins would drop one side's folders, and the mail in them.
    ns, names, user = _one_user_split_two_three(netlab, nodes)
    deadline = time.monotonic() + 30

    def change(*commands):
        def run(m):
            for cmd, args in commands:
                typ, data = getattr(m, cmd)(*args)
                assert typ == "OK" or b"exists" in (data[0] or b"").lower(), (cmd, args, data)
        return run

    _imap_retry(ns[0], user, deadline, "changes on side A", change(("create", ("Left",))))
    _imap_retry(ns[3], user, deadline, "changes on side B",
                change(("create", ("Right",)), ("rename", ("Junk", "Spam"))))
    subject = "Subject: %s\r\n\r\nbody\r\n"
    _imap_append_retry(ns[1], user, "Left", subject % "left mail", deadline)
    _imap_append_retry(ns[4], user, "Right", subject % "right mail", deadline)
    # Side B writes its profile last: it reserves a new block of UIDs.
    _imap_append_retry(ns[2], user, "Trash", subject % "trash mail", deadline)
    netlab.heal()
    wait_view(ns, names, 20)

    def folders(node):
        def run(m):
            typ, data = m.list()
            assert typ == "OK", data
            return sorted(line.decode().rsplit(" ", 1)[1].strip('"') for line in data)
        return _imap_retry(node, user, time.monotonic() + 10, "LIST", run)

    want = sorted(["INBOX", "Drafts", "Sent", "Trash", "Spam", "Left", "Right"])
    seen = {}
    wait_deadline = time.monotonic() + 30
    while True:
        seen = {n.name: folders(n) for n in ns}
        if all(v == want for v in seen.values()):
            break
        assert time.monotonic() < wait_deadline, ("the folders never merged", seen)
        time.sleep(0.3)
    # The mail filed on each side is in its folder, seen from every node.
    for n in ns:
        assert list(_imap_folder(n, user, "Left").values()) == ["left mail"], n.name
        assert list(_imap_folder(n, user, "Right").values()) == ["right mail"], n.name
        assert list(_imap_folder(n, user, "Trash").values()) == ["trash mail"], n.name

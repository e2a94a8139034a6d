"""IMAP4rev1 against real nodes with imaplib (and raw sockets where imaplib
cannot go: IDLE, bad input). One node for the protocol, several for the
cluster semantics: sessions on different nodes see each other's changes, and
UIDs stay unique and ascending while deliveries race a manager's death."""

import contextlib
import imaplib
import re
import socket
import threading
import time

import pytest

import clusterkit as ck
from cluster import DEFAULT_PASSWORD, DOMAIN, wait_for
from mailclient import imap_client, imap_subjects_by_uid

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
IO_TIMEOUT_S = 20


def login(node, user=ALICE, password=DEFAULT_PASSWORD):
    return imap_client(node, user, password, IO_TIMEOUT_S)


def message(subject, body="hello\r\n", sender="bob@example.org"):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@test>\r\n\r\n%s"
            % (sender, ALICE, subject, re.sub(r"\W", "", subject), body))


def deliver(node, user, subject):
    ck.deliver(node, user, message(subject))


def uids_of(m, criteria="ALL"):
    typ, data = m.uid("SEARCH", None, criteria)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


def fetch_one(m, uid, item):
    typ, data = m.uid("FETCH", str(uid), item)
    assert typ == "OK", data
    return data


def select(m, folder="INBOX", readonly=False):
    typ, data = m.select(folder, readonly=readonly)
    assert typ == "OK", (folder, data)
    return int(data[0])


@contextlib.contextmanager
def idle_session(node, user=ALICE):
    """(socket, file) of a raw session of user's, logged in, INBOX selected, in IDLE."""
    host, port = node.imap
    with socket.create_connection((host, port), timeout=IO_TIMEOUT_S) as s:
        f = s.makefile("rwb", buffering=0)
        f.readline()
        f.write(b"a LOGIN %s %s\r\n" % (user.encode(), DEFAULT_PASSWORD.encode()))
        while not f.readline().startswith(b"a "):
            pass
        f.write(b"b SELECT INBOX\r\n")
        while not f.readline().startswith(b"b "):
            pass
        f.write(b"c IDLE\r\n")
        assert f.readline().startswith(b"+")
        yield s, f


def end_idle(f):
    """DONE, its OK, LOGOUT."""
    f.write(b"DONE\r\n")
    while True:
        line = f.readline()
        if line.startswith(b"c "):
            assert line.startswith(b"c OK"), line
            break
    f.write(b"d LOGOUT\r\n")


# ---- one node ------------------------------------------------------------------


def test_capabilities_login_and_default_folders(node):
    host, port = node.imap
    m = imaplib.IMAP4(host, port, timeout=IO_TIMEOUT_S)
    caps = set(m.capabilities)
    for cap in ("IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "NAMESPACE", "SPECIAL-USE",
                "LITERAL+", "ENABLE", "ID", "UNSELECT", "CHILDREN", "SASL-IR", "AUTH=PLAIN"):
        assert cap in caps, (cap, caps)
    with pytest.raises(imaplib.IMAP4.error):
        m.login(ALICE, "wrong")
    assert m.login(ALICE, DEFAULT_PASSWORD)[0] == "OK"
    typ, data = m.list()
    assert typ == "OK"
    listing = b"\n".join(data).decode()
    for name, use in (("Drafts", "\\Drafts"), ("Sent", "\\Sent"), ("Trash", "\\Trash"),
                      ("Junk", "\\Junk")):
        assert re.search(r"\(.*%s.*\) \"/\" \"?%s\"?" % (re.escape(use), name), listing), listing
    assert "INBOX" in listing
    m.logout()


def test_delivered_mail_is_fetched_byte_exact_with_uids(node):
    bodies = []
    for i in range(3):
        text = message("msg %d" % i, "line one\r\nline two %d\r\n" % i)
        ck.deliver(node, ALICE, text)
        bodies.append(text)
    m = login(node)
    assert select(m) == 3
    uids = uids_of(m)
    assert uids == sorted(uids) and len(set(uids)) == 3, uids
    for uid, text in zip(uids, bodies):
        data = fetch_one(m, uid, "(BODY.PEEK[] RFC822.SIZE FLAGS)")
        raw = data[0][1]
        # The stored message starts with our trace headers; the rest is exact.
        assert raw.endswith(text.encode()), raw
        rest = b"".join(x if isinstance(x, bytes) else x[0] for x in data)
        assert b"RFC822.SIZE %d" % len(raw) in rest, data
    data = fetch_one(m, uids[0], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1] == b"Subject: msg 0\r\n\r\n"
    data = fetch_one(m, uids[0], "(ENVELOPE)")
    assert b'"msg 0"' in data[0], data
    m.logout()


def test_store_copy_move_expunge_and_pop3_sees_inbox(node):
    for i in range(4):
        deliver(node, ALICE, "s%d" % i)
    m = login(node)
    select(m)
    u = uids_of(m)
    assert m.uid("STORE", str(u[0]), "+FLAGS", "(\\Seen \\Flagged)")[0] == "OK"
    assert uids_of(m, "SEEN") == [u[0]]
    assert uids_of(m, "UNSEEN") == u[1:]
    typ, data = m.uid("COPY", "%d:%d" % (u[0], u[1]), "Trash")
    assert typ == "OK", data
    typ, data = m.uid("MOVE", str(u[2]), "Junk")
    assert typ == "OK", data
    assert uids_of(m) == [u[0], u[1], u[3]]
    m.uid("STORE", str(u[3]), "+FLAGS", "(\\Deleted)")
    assert m.expunge()[0] == "OK"
    assert uids_of(m) == [u[0], u[1]]
    # The copies kept their flags; the moved message is in Junk.
    assert select(m, "Trash") == 2
    assert len(uids_of(m, "FLAGGED")) == 1
    assert select(m, "Junk") == 1
    m.logout()
    # POP3 shows INBOX only.
    assert len(ck.read_all(node, ALICE)) == 2


def test_append_uidplus_and_status(node):
    m = login(node)
    typ, data = m.append("Drafts", "(\\Draft)", imaplib.Time2Internaldate(time.time()),
                         message("draft").encode())
    assert typ == "OK", data
    match = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
    assert match, data
    validity, uid = int(match.group(1)), int(match.group(2))
    typ, data = m.status("Drafts", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
    assert typ == "OK"
    st = data[0].decode()
    assert "MESSAGES 1" in st and "UIDVALIDITY %d" % validity in st, st
    assert int(re.search(r"UIDNEXT (\d+)", st).group(1)) > uid
    typ, data = m.append("NoSuchFolder", None, None, message("x").encode())
    assert typ == "NO" and b"TRYCREATE" in data[0], data
    m.logout()


def test_internaldate_keeps_the_zone_the_client_gave(node):
    m = login(node)
    given = '"01-Jan-2026 10:00:00 +0200"'
    past_midnight = '"01-Jan-2026 00:30:00 +0200"'  # still 31-Dec-2025 in UTC
    for date in (given, past_midnight):
        typ, data = m.append("INBOX", None, date, message("zoned").encode())
        assert typ == "OK", data
    select(m)
    uid = uids_of(m)[0]

    def internaldate(uid):
        data = fetch_one(m, uid, "(INTERNALDATE)")
        return re.search(rb'INTERNALDATE ("[^"]*")', data[0]).group(1).decode()

    assert internaldate(uid) == given
    assert len(uids_of(m, "ON 1-Jan-2026")) == 2, "SEARCH compares the day as written"
    assert m.uid("COPY", str(uid), "Trash")[0] == "OK"
    assert m.uid("MOVE", str(uid), "Junk")[0] == "OK"
    for folder in ("Trash", "Junk"):
        assert select(m, folder) == 1
        assert internaldate(uids_of(m)[0]) == given, folder
    m.logout()


def test_append_refuses_a_bad_date_or_flag_before_asking_for_the_message(node):
    m = login(node)
    for flags, date, why in ((None, '"not a date"', "Invalid date-time"),
                             (None, '"31-Feb-2026 10:00:00 +0200"', "Invalid date-time"),
                             ("(\\Seen \\Bogus)", None, "Invalid flag")):
        m.continuation_response = ""
        with pytest.raises(imaplib.IMAP4.error, match=why):
            m.append("INBOX", flags, date, message("refused").encode())
        # imaplib sends the message only after a "+"; none came.
        assert m.continuation_response == "", m.continuation_response
    typ, data = m.append("INBOX", "(\\Seen)", '"01-Jan-2026 10:00:00 +0200"',
                         message("taken").encode())
    assert typ == "OK", data
    assert select(m) == 1
    m.logout()
    # LITERAL+: the client sends the message regardless; it is skipped.
    host, port = node.imap
    with socket.create_connection((host, port), timeout=IO_TIMEOUT_S) as s:
        f = s.makefile("rwb", buffering=0)
        f.readline()
        f.write(b"a LOGIN %s %s\r\n" % (ALICE.encode(), DEFAULT_PASSWORD.encode()))
        assert f.readline().startswith(b"a OK")
        f.write(b'b APPEND INBOX "1-Foo-2026 10:00:00 +0000" {11+}\r\nxy LOGOUT\r\n\r\n'
                b"c NOOP\r\n")
        assert f.readline().startswith(b"b BAD Invalid date-time"), "refused"
        assert f.readline().startswith(b"c OK"), "the message's bytes were not run"


def test_folders_create_rename_delete_subscribe(node):
    m = login(node)
    assert m.create("Projects/Alpha")[0] == "OK"
    assert m.create("Projects/Alpha")[0] == "NO"
    assert m.rename("Projects", "Work")[0] == "OK"
    typ, data = m.list('""', "Work*")
    names = b"\n".join(data).decode()
    assert "Work/Alpha" in names and "Projects" not in names, names
    assert m.subscribe("Work/Alpha")[0] == "OK"
    assert m.unsubscribe("Work")[0] == "OK"
    typ, data = m.lsub('""', "*")
    assert "Work/Alpha" in b"\n".join(data).decode()
    assert m.delete("Work/Alpha")[0] == "OK"
    assert m.delete("INBOX")[0] == "NO"
    typ, data = m.select("Work/Alpha")
    assert typ == "NO"
    m.logout()


def test_idle_reports_a_delivery_within_a_second(node):
    with idle_session(node) as (s, f):
        sent = time.monotonic()
        deliver(node, ALICE, "idle")
        s.settimeout(5)
        line = f.readline()
        seen = time.monotonic() - sent
        assert re.match(rb"\* 1 EXISTS", line), line
        assert seen < 1.5, seen  # the poll interval is 0.5 s; the delivery itself takes some
        end_idle(f)


def test_idle_sends_recent_with_exists_while_deliveries_are_slow(nodes):
    # Every IDLE poll re-reads (as where the users' changes never stop) and
    # every store takes a second: polls come while a delivery is on its way.
    # The message is still this session's \\Recent when it shows up.
    node = nodes.start(overrides={"server": {"imap_idle_recheck_ms": 1},
                                  "limits": {"imap_idle_poll_ms": 100},
                                  "store": {"debug_op_delay_ms": 1000}})
    node.add_user(ALICE)
    with idle_session(node) as (s, f):
        for n in range(1, 4):
            deliver(node, ALICE, "slow %d" % n)
            _idle_line(f, s, rb"\* %d EXISTS" % n, 5)
            s.settimeout(1)  # the same write, if it comes at all
            try:
                line = f.readline()
            except socket.timeout:
                line = None
            assert line == b"* %d RECENT\r\n" % n, ("no RECENT with the EXISTS", line)
        s.settimeout(IO_TIMEOUT_S)
        end_idle(f)


def _expunge_the_only_message(node):
    """Another session, on `node`, marks INBOX's only message \\Deleted and expunges it."""
    other = login(node)
    assert select(other) == 1
    assert other.store("1", "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert other.expunge()[0] == "OK"
    other.logout()


def _reports_expunge(m, command):
    """Repeats m.noop or m.check until its response carries "* 1 EXPUNGE"."""
    def reported():
        assert command()[0] == "OK"
        return m.response("EXPUNGE")[1] == [b"1"]
    wait_for(reported, 3, what="* 1 EXPUNGE")


def _shows_an_empty_folder(m, uid):
    typ, data = m.fetch("1:*", "(FLAGS)")
    assert (typ, data) == ("OK", [None]), data
    with pytest.raises(imaplib.IMAP4.error, match="Invalid message sequence number"):
        m.store("1", "+FLAGS", "(\\Flagged)")
    typ, data = m.uid("STORE", str(uid), "+FLAGS", "(\\Flagged)")
    assert (typ, data) == ("OK", [None]), data  # an unknown UID: nothing to change


def _emptied_elsewhere_is_reported(watch, other, mail):
    """A session on `watch` has INBOX selected with one message, delivered
    through `mail`; a session on `other` expunges it. NOOP, CHECK and IDLE
    each report it within a few seconds, after which the folder is empty."""
    for command in ("noop", "check"):
        deliver(mail, ALICE, command)
        m = login(watch)
        assert select(m) == 1
        uid = uids_of(m)[0]
        _expunge_the_only_message(other)
        _reports_expunge(m, getattr(m, command))
        _shows_an_empty_folder(m, uid)
        m.logout()
    deliver(mail, ALICE, "idle")
    with idle_session(watch) as (s, f):
        _expunge_the_only_message(other)
        _idle_line(f, s, rb"\* 1 EXPUNGE", 2.0)
        s.settimeout(IO_TIMEOUT_S)
        f.write(b"DONE\r\ne FETCH 1:* (FLAGS)\r\n")
        lines = []
        while not lines or not lines[-1].startswith(b"e "):
            lines.append(f.readline())
        assert lines[-1].startswith(b"e OK"), lines
        assert not [x for x in lines if b"FETCH (" in x], ("no message left to fetch", lines)


def test_a_folder_emptied_by_another_session_is_reported(node):
    _emptied_elsewhere_is_reported(node, node, node)


def test_bad_input_gets_bad_and_never_kills_the_node(node):
    host, port = node.imap
    with socket.create_connection((host, port), timeout=IO_TIMEOUT_S) as s:
        f = s.makefile("rwb", buffering=0)
        f.readline()
        f.write(b"a FETCH 1 FLAGS\r\n")  # wrong state
        assert f.readline().startswith(b"a BAD")
        f.write(b"b LOGIN {2147483648}\r\n")  # a 2 GiB literal: refused, no continuation
        assert f.readline().startswith(b"b BAD")
        f.write(b"c " + b"(" * 10000 + b"\r\n")
        assert f.readline().startswith(b"c BAD")
        f.write(b"d NOOP\r\n")
        assert f.readline().startswith(b"d OK")
        f.write(b"e LOGIN {2147483648+}\r\n")  # non-synchronizing: cannot resync
        assert f.readline().startswith(b"* BYE")
    assert node.alive()
    m = login(node)
    m.logout()


# ---- the cluster ---------------------------------------------------------------


def test_sessions_on_two_nodes_see_each_others_changes(nodes):
    a, b, c = ck.start_cluster(nodes, 3)
    a.add_user(ALICE)
    for i in range(3):
        deliver(c, ALICE, "x%d" % i)
    ma, mb = login(a), login(b)
    assert select(ma) == 3
    assert select(mb) == 3
    u = uids_of(ma)
    # STORE on A: B sees the flags at NOOP.
    ma.uid("STORE", str(u[0]), "+FLAGS", "(\\Answered)")
    wait_for(lambda: (mb.noop(), uids_of(mb, "ANSWERED"))[1] == [u[0]], 10, what="flags on B")
    # APPEND on A: B sees EXISTS.
    ma.append("INBOX", None, None, message("appended").encode())
    wait_for(lambda: (mb.noop(), len(uids_of(mb)) == 4)[1], 10, what="append on B")
    # MOVE and EXPUNGE on A: B sees them gone.
    ma.uid("MOVE", str(u[1]), "Trash")
    ma.uid("STORE", str(u[2]), "+FLAGS", "(\\Deleted)")
    ma.expunge()
    wait_for(lambda: (mb.noop(), u[1] not in uids_of(mb) and u[2] not in uids_of(mb))[1], 10,
             what="expunges on B")
    assert select(mb, "Trash") == 1
    ma.logout()
    mb.logout()


def _idle_line(f, s, pattern, within):
    """The next untagged line matching pattern, read from an IDLE session within `within` s."""
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        assert left > 0, ("nothing matched in time", pattern)
        s.settimeout(left)
        line = f.readline()
        assert line, "connection closed"
        if re.match(pattern, line):
            return line


def test_a_folder_emptied_through_another_node_is_reported(nodes):
    a, b, c = ck.start_cluster(nodes, 3)
    a.add_user(ALICE)
    _emptied_elsewhere_is_reported(a, b, c)


def test_idle_watches_the_cluster_instead_of_re_reading_and_misses_nothing(nodes):
    # A session idles on n1 while the mail lives on the other nodes. Its
    # polls skip the re-read while no node reports a change of the user's
    # messages; a delivery, a flag change and an expunge made through the
    # other nodes still reach it within a second each.
    a, b, c = ck.start_cluster(nodes, 3)
    a.add_user(ALICE)
    for i in range(2):
        deliver(c, ALICE, "w%d" % i)
    with idle_session(a) as (s, f):
        skipped = lambda: a.metric("porcupine_imap_idle_polls_total", result="skipped")  # noqa: E731
        wait_for(lambda: skipped() >= 3, 10, what="IDLE polls answered from the watch")
        reads = a.metric("porcupine_imap_idle_polls_total", result="read")
        time.sleep(2)  # poll intervals: 4 polls, none of them a re-read
        assert a.metric("porcupine_imap_idle_polls_total", result="read") == reads
        deliver(c, ALICE, "w2")
        _idle_line(f, s, rb"\* 3 EXISTS", 1.5)
        other = login(b)
        select(other)
        other.store("1", "+FLAGS", "(\\Flagged)")
        _idle_line(f, s, rb"\* 1 FETCH \(FLAGS \(.*\\Flagged", 1.5)
        other.store("2", "+FLAGS", "(\\Deleted)")
        other.expunge()
        _idle_line(f, s, rb"\* 2 EXPUNGE", 1.5)
        other.logout()
        end_idle(f)


@pytest.mark.slow
def test_uid_order_under_concurrent_deliveries_while_the_manager_dies(nodes):
    cluster = ck.start_cluster(nodes, 5)
    cluster[0].add_user(ALICE)
    status, body = cluster[0].http("GET", "/v1/users/%s" % ALICE)
    assert status == 200, body
    manager = next(n for n in cluster if n.name == body["manager"])
    others = [n for n in cluster if n is not manager]
    order = {}  # sender -> subjects in the order their 250s came back
    errors = []
    stop = time.monotonic() + 6

    def sender(k, via):
        seq = order.setdefault(k, [])
        i = 0
        while time.monotonic() < stop:
            subject = "s%d-%d" % (k, i)
            try:
                ck.deliver(via, ALICE, message(subject), timeout=10)
                seq.append(subject)
            except ck.TempFailure:
                time.sleep(0.05)  # retried as a new message next round
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
                return
            i += 1

    threads = [threading.Thread(target=sender, args=(k, others[k % len(others)]))
               for k in range(len(others))]
    for t in threads:
        t.start()
    time.sleep(2)
    manager.kill()
    for t in threads:
        t.join()
    assert not errors, errors
    m = login(others[0])
    select(m)
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    uid_of = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
        subject = item[1].decode().split(":", 1)[1].strip()
        assert subject not in uid_of, ("a message listed twice", subject)
        uid_of[subject] = uid
    assert len(set(uid_of.values())) == len(uid_of), "a UID was reused"
    acked = [s for seq in order.values() for s in seq]
    missing = [s for s in acked if s not in uid_of]
    # The killed manager's node held copies too; R = 2 keeps them readable.
    assert not missing, missing[:10]
    for k, seq in order.items():
        uids = [uid_of[s] for s in seq]
        assert uids == sorted(uids), ("one sender's messages out of UID order", k, uids)
    m.logout()


def live_fragment(node, user):
    status, body = node.http("GET", "/v1/fragments/%s" % user)
    assert status == 200, body
    return [x for x in body["messages"] if not x["tombstone"]]


def test_a_fragment_node_down_gives_a_partial_mailbox_and_its_mail_comes_back(nodes):
    # One copy of each message, on any of the three nodes: a node down
    # takes its share of the mailbox away for a while.
    a, b, c = ck.start_cluster(nodes, 3, cluster_extra={"replication": 1, "policy": "random"})
    a.add_user(ALICE)
    for i in range(30):
        deliver(a, ALICE, "p%02d" % i)
    status, body = a.http("GET", "/v1/users/%s" % ALICE)
    assert status == 200, body
    # Not the manager: its successor's rebuild would be part of the story.
    candidates = [n for n in (b, c) if n.name != body["manager"]]
    victim = max(candidates, key=lambda n: len(live_fragment(n, ALICE)))
    on_victim = len(live_fragment(victim, ALICE))
    assert 0 < on_victim < 30, on_victim
    first = login(a)
    assert select(first) == 30
    before = imap_subjects_by_uid(first)
    victim.kill()
    # The open session keeps the unavailable messages: no EXPUNGE, no error.
    assert first.noop()[0] == "OK"
    assert len(uids_of(first)) == 30
    typ, data = first.uid("FETCH", "1:*", "(BODY.PEEK[])")
    assert typ == "NO" and b"UNAVAILABLE" in data[0], (typ, data[:1])
    # A new session gets the part that is there. The victim's messages were
    # delivered moments ago: until the managers' settle window ends (5 s
    # after the delivery) each might still be on its way, and holds the
    # newer ones back so that none appears below a UID a client has seen.
    def partial_session():
        s = login(a)
        exists = select(s)
        assert exists <= 30 - on_victim, exists
        if exists == 30 - on_victim:
            return s
        s.logout()
        return None

    second = wait_for(partial_session, 15, interval=0.2, what="the part that is there")
    shown = imap_subjects_by_uid(second)
    passed = max(shown)
    victim.start()
    ck.wait_view([a, b, c], ["n1", "n2", "n3"], 30)
    # The returning messages have UIDs the second session has passed: they
    # come back under new ones, as new messages, in ascending order.
    wait_for(lambda: (second.noop(), len(uids_of(second)) == 30)[1], 30,
             what="the restarted node's messages in the second session")
    after = imap_subjects_by_uid(second)
    assert sorted(after.values()) == sorted(before.values()), "nothing lost, nothing doubled"
    back = [u for u, s in after.items() if s not in shown.values()]
    assert len(back) == on_victim and min(back) > passed, (back, passed)
    # The first session sees the same mailbox after its own re-read.
    wait_for(lambda: (first.noop(), imap_subjects_by_uid(first) == after)[1], 30,
             what="the first session following the renumbering")
    first.logout()
    second.logout()
    # POP3 shares the inbox.
    assert len(ck.read_all(a, ALICE)) == 30


def test_renaming_inbox_moves_its_mail_and_keeps_an_empty_inbox(node):
    for i in range(3):
        deliver(node, ALICE, "r%d" % i)
    m = login(node)
    select(m)
    assert m.rename("INBOX", "Old-Inbox")[0] == "OK"
    wait_for(lambda: (m.noop(), uids_of(m) == [])[1], 10, what="INBOX emptied")
    assert select(m, "Old-Inbox") == 3
    assert sorted(imap_subjects_by_uid(m).values()) == ["r0", "r1", "r2"]
    assert m.rename("INBOX", "Old-Inbox")[0] == "NO", "the target exists"
    deliver(node, ALICE, "after")
    assert select(m) == 1, "new mail goes to the INBOX that stayed"
    m.logout()


def test_a_reconnecting_client_never_finds_a_new_uid_below_one_it_saw(nodes):
    # Deliveries through every node race to the stores while one node's disk
    # is slow, so a message often reaches its store after one with a higher
    # UID. A client that logs out after seeing UID n asks for "UID n+1:*"
    # next time: a message showing up under n or below would never reach it.
    secret = ck.new_secret()
    ports = [ck.free_port() for _ in range(3)]
    seeds = ["127.0.0.1:%d" % p for p in ports]
    cluster = []
    for i, port in enumerate(ports):
        extra = {"store": {"debug_op_delay_ms": 30}} if i == 0 else None
        cluster.append(ck.make_node(nodes, "n%d" % (i + 1), "127.0.0.1", port, seeds, secret,
                                    cluster_extra={"replication": 1, "spread": 3},
                                    extra=extra))
    for n in cluster:
        n.spawn()
    for n in cluster:
        n.wait_ready(20)
    ck.wait_view(cluster, [n.name for n in cluster], 20)
    cluster[1].add_user(ALICE)
    acked = []
    errors = []
    stop = time.monotonic() + 5

    def sender(k, via):
        i = 0
        while time.monotonic() < stop and i < 400:
            subject = "s%d-%d" % (k, i)
            try:
                ck.deliver(via, ALICE, message(subject), timeout=10)
                acked.append(subject)
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
                return
            i += 1

    threads = [threading.Thread(target=sender, args=(k, cluster[k % 3])) for k in range(6)]
    for t in threads:
        t.start()
    seen = set()
    late = []
    polls = 0
    while any(t.is_alive() for t in threads):
        m = login(cluster[polls % 3])
        select(m, readonly=True)
        uids = uids_of(m)
        m.logout()
        seen_through = max(seen, default=0)
        late += [u for u in uids if u not in seen and u <= seen_through]
        seen.update(uids)
        polls += 1
    for t in threads:
        t.join()
    assert not errors, errors[:5]
    assert polls > 5, polls
    # Every acknowledged message shows, once, in the end.
    m = login(cluster[2])
    select(m, readonly=True)
    subjects = imap_subjects_by_uid(m)
    m.logout()
    assert sorted(subjects.values()) == sorted(acked)
    assert not late, ("UIDs appeared below one a client had seen", late[:10], polls)

"""The fault test's moving parts: a history, a client load and a nemesis.

- `History`: what the clients did and what the server answered. Every SMTP
  attempt carries a fresh token (so a retry is a new message, and one token
  under two message ids is a duplicate made by the server); a message's id
  (POP3 UIDL) is learnt when a reader retrieves it. A POP3 deletion is
  `committed` when QUIT answered +OK, `uncertain` when the connection broke
  (or QUIT said -ERR) after QUIT was sent, `aborted` when the session ended
  before QUIT (the server must then delete nothing).
- `Load`: SMTP sender threads through random live nodes to random users, and
  POP3 reader threads that log in through random nodes, retrieve part of the
  maildrop, mark some of what they read for deletion and QUIT.
- `Nemesis`: every few seconds one fault, applied and undone before the next:
  kill -9 then restart a node; SIGSTOP then SIGCONT; a network partition
  (netlab.py) then heal; wipe one node's data directory and restart it. Before
  a wipe it waits (bounded) until every node reports
  porcupine_replication_unretired == 0 and no object the victim holds is held
  by it alone; otherwise the wipe is skipped and the skip recorded with a
  short reason (the checker groups them, and fails a run that skipped most of
  its wipes). After every fault the nemesis samples each node's replication
  backlog and records any update that waited longer than STALE_BACKLOG_S.

One seed drives every random choice (each thread has its own random.Random
derived from it), so a run can be repeated as closely as real processes allow.
The nemesis runs in the main thread: nodes must be started from the thread that
lives for the whole run (cluster.py, PR_SET_PDEATHSIG). Every wait is bounded.
"""

import hashlib
import poplib
import random
import re
import shutil
import signal
import smtplib
import threading
import time

from cluster import DEFAULT_PASSWORD, NodeError, sample
from clusterkit import SENDER, TempFailure

IO_TIMEOUT_S = 10.0          # client socket timeout: a SIGSTOPped node answers nothing
RESTART_DEADLINE_S = 30.0    # a restarted node serves within this
HTTP_TIMEOUT_S = 3.0
# No fault lasts more than 8 s and a restarted node serves within RESTART_DEADLINE_S: an
# update that has waited this long for one peer is stuck, not late (a bug signal).
STALE_BACKLOG_S = 60.0

TOKEN_RE = re.compile(rb"^X-Fault-Token: (\S+)\r\nX-Fault-Size: (\d+)\r\n", re.M)


# ---- messages -----------------------------------------------------------------

def message_for(user, token, size):
    """The message sent for token: headers naming token and size, then padding
    derived from the token, so that a retrieved copy can be verified byte for
    byte without keeping the bodies. At least `size` bytes."""
    head = ("Subject: fault %s\r\nTo: %s\r\nX-Fault-Token: %s\r\nX-Fault-Size: %d\r\n\r\n"
            "%s\r\n" % (token, user, token, size, token)).encode()
    lines = []
    left = size - len(head)
    seed = hashlib.sha256(token.encode()).hexdigest()
    i = 0
    while left > 0:
        line = ("%s%04d" % (seed[i % 64:] + seed[:i % 64], i)).encode() + b"\r\n"
        lines.append(line)
        left -= len(line)
        i += 1
    return head + b"".join(lines)


def parse_message(raw):
    """(token, size) named by a retrieved message's headers, or (None, None)."""
    m = TOKEN_RE.search(raw)
    if not m:
        return None, None
    return m.group(1).decode("ascii", "replace"), int(m.group(2))


def message_size(rng):
    """Mostly small, some medium, a few large."""
    r = rng.random()
    if r < 0.80:
        return rng.randint(200, 1500)
    if r < 0.98:
        return rng.randint(1500, 16384)
    return rng.randint(65536, 262144)


# ---- the history --------------------------------------------------------------

class Send:
    __slots__ = ("token", "user", "via", "t0", "t1", "outcome", "detail")

    def __init__(self, token, user, via, t0):
        self.token, self.user, self.via, self.t0 = token, user, via, t0
        self.t1, self.outcome, self.detail = None, "pending", ""


class Delete:
    __slots__ = ("user", "uidl", "token", "via", "t0", "t1", "state", "detail")

    def __init__(self, user, uidl, token, via, t0):
        self.user, self.uidl, self.token, self.via, self.t0 = user, uidl, token, via, t0
        self.t1, self.state, self.detail = None, "pending", ""


class History:
    """Thread-safe record of the run. Times are seconds since the history began."""

    def __init__(self, seed):
        self.seed = seed
        self.start = time.monotonic()
        self.lock = threading.Lock()
        self.sends = {}        # token -> Send
        self.uidls = {}        # token -> {uidl} learnt from RETR
        self.token_of = {}     # uidl -> token
        self.deletes = []      # [Delete]
        self.events = []       # [(t, text)]: the nemesis's and anything notable
        self.anomalies = []    # [(kind, text)]: crashes, corrupt messages, refusals...
        self.counters = {}     # name -> int (login refusals, reader sessions, ...)
        self.quiet = False

    def now(self):
        return time.monotonic() - self.start

    def event(self, text):
        t = self.now()
        with self.lock:
            self.events.append((t, text))
        if not self.quiet:
            print("[%7.2f] %s" % (t, text), flush=True)

    def anomaly(self, kind, text):
        with self.lock:
            self.anomalies.append((kind, text))
        self.event("ANOMALY %s: %s" % (kind, text[:300]))

    def count(self, name, n=1):
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + n

    # -- SMTP

    def send_started(self, token, user, via):
        s = Send(token, user, via, self.now())
        with self.lock:
            self.sends[token] = s
        return s

    def send_done(self, send, outcome, detail=""):
        with self.lock:
            send.t1, send.outcome, send.detail = self.now(), outcome, detail

    def acked(self):
        with self.lock:
            return [s for s in self.sends.values() if s.outcome == "acked"]

    # -- what was read

    def learn(self, uidl, token, where):
        """uidl was retrieved and names token; a uidl naming two tokens is recorded."""
        with self.lock:
            old = self.token_of.setdefault(uidl, token)
            self.uidls.setdefault(token, set()).add(uidl)
        if old != token:
            self.anomaly("uidl-two-tokens", "%s: %s holds %s, earlier %s" % (where, uidl,
                                                                            token, old))

    # -- POP3 deletions

    def deletes_sent(self, user, pairs, via):
        """pairs: [(uidl, token)] marked with DELE in one session, before its QUIT."""
        t = self.now()
        ds = [Delete(user, uidl, token, via, t) for uidl, token in pairs]
        with self.lock:
            self.deletes.extend(ds)
        return ds

    def deletes_done(self, ds, state, detail=""):
        t = self.now()
        with self.lock:
            for d in ds:
                d.t1, d.state, d.detail = t, state, detail

    def deletes_in(self, *states):
        with self.lock:
            return [d for d in self.deletes if d.state in states]

    def events_near(self, t, before=10.0, after=5.0):
        with self.lock:
            return [(et, text) for et, text in self.events
                    if t - before <= et <= t + after and not text.startswith("progress")]

    def progress(self):
        outcomes, states, _ = self.summary()
        return "sends %s; deletes %s" % (
            ", ".join("%s %d" % kv for kv in sorted(outcomes.items())),
            ", ".join("%s %d" % kv for kv in sorted(states.items())) or "none")

    def summary(self):
        with self.lock:
            outcomes = {}
            for s in self.sends.values():
                outcomes[s.outcome] = outcomes.get(s.outcome, 0) + 1
            states = {}
            for d in self.deletes:
                states[d.state] = states.get(d.state, 0) + 1
            return outcomes, states, dict(self.counters)


# ---- clients ------------------------------------------------------------------

def node_addr(node, key):
    """(host, port) of one of node's listeners; TempFailure while it (re)starts."""
    addrs = node.addrs  # replaced (not mutated) by a restart: this snapshot stays whole
    if key not in addrs:
        raise TempFailure("%s is not listening yet" % node.name)
    host, _, port = addrs[key].rpartition(":")
    return host.strip("[]"), int(port)


def smtp_send(node, user, data, timeout=IO_TIMEOUT_S):
    """One SMTP transaction. Returns None on 250; raises TempFailure (4xx,
    connection problems: may or may not have been stored) or SmtpRefused (5xx)."""
    host, port = node_addr(node, "smtp")
    try:
        with smtplib.SMTP(host, port, local_hostname="client.example.org",
                          timeout=timeout) as s:
            s.sendmail(SENDER, [user], data)
    except smtplib.SMTPRecipientsRefused as e:
        code, msg = list(e.recipients.values())[0]
        raise (TempFailure if 400 <= code < 500 else SmtpRefused)("RCPT %s %r" % (code, msg))
    except smtplib.SMTPResponseException as e:
        cls = TempFailure if 400 <= e.smtp_code < 500 else SmtpRefused
        raise cls("%s %r" % (e.smtp_code, e.smtp_error))
    except (smtplib.SMTPException, OSError) as e:
        raise TempFailure(repr(e))


class SmtpRefused(Exception):
    """A 5xx reply: the server refused for good (a false "no such user"?)."""


def _pop3_text(e):
    """The reply (bytes) in a poplib.error_proto; poplib raises some with a str."""
    arg = e.args[0] if e.args else b""
    return arg.encode("utf-8", "replace") if isinstance(arg, str) else bytes(arg)


def _pop3_eof(e):
    return isinstance(e, poplib.error_proto) and _pop3_text(e) == b"-ERR EOF"


# ---- the load -----------------------------------------------------------------

class Load:
    """Sender and reader threads; start(), then stop() joins them (bounded)."""

    def __init__(self, history, nemesis, users, seed, senders=4, readers=2,
                 password=DEFAULT_PASSWORD):
        self.history = history
        self.nemesis = nemesis
        self.users = list(users)
        self.seed = seed
        self.password = password
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._guard, args=(self._sender, k),
                                         name="sender-%d" % k, daemon=True)
                        for k in range(senders)]
        self.threads += [threading.Thread(target=self._guard, args=(self._reader, k),
                                          name="reader-%d" % k, daemon=True)
                         for k in range(readers)]
        self.crashed = []

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self, timeout=3 * IO_TIMEOUT_S):
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        alive = [t.name for t in self.threads if t.is_alive()]
        assert not alive, "load threads still running after %.0f s: %s" % (timeout, alive)
        assert not self.crashed, "load threads failed: %s" % self.crashed

    def _guard(self, fn, k):
        try:
            fn(k)
        except BaseException as e:  # noqa: B902 - reported by stop()
            self.crashed.append("%s-%d: %r" % (fn.__name__, k, e))
            self.history.anomaly("load", "%s-%d died: %r" % (fn.__name__, k, e))

    def _pick_node(self, rng):
        live = self.nemesis.serving()
        return rng.choice(live) if live else None

    def _sender(self, k):
        rng = random.Random("%s-sender-%d" % (self.seed, k))
        i = 0
        while not self.stopping.is_set():
            node = self._pick_node(rng)
            user = rng.choice(self.users)
            size = message_size(rng)
            if node is None:
                self.stopping.wait(0.05)
                continue
            token = "ftok-%x-s%d-%d" % (self.seed, k, i)
            i += 1
            send = self.history.send_started(token, user, node.name)
            try:
                smtp_send(node, user, message_for(user, token, size))
                self.history.send_done(send, "acked")
            except TempFailure as e:
                self.history.send_done(send, "failed", str(e))
            except SmtpRefused as e:
                self.history.send_done(send, "refused", str(e))
                self.history.count("smtp 5xx")
                self.history.anomaly("smtp-5xx", "%s to %s via %s: %s"
                                     % (token, user, node.name, e))
            self.stopping.wait(rng.uniform(0.0, 0.03))

    def _reader(self, k):
        rng = random.Random("%s-reader-%d" % (self.seed, k))
        while not self.stopping.is_set():
            node = self._pick_node(rng)
            user = rng.choice(self.users)
            if node is not None:
                self.read_session(node, user, rng)
            self.stopping.wait(rng.uniform(0.05, 0.3))

    def read_session(self, node, user, rng):
        """Log in, UIDL, RETR up to 16 random messages, DELE about 60 % of them, QUIT."""
        h = self.history
        h.count("pop3 sessions")
        try:
            host, port = node_addr(node, "pop3")
            p = poplib.POP3(host, port, timeout=IO_TIMEOUT_S)
        except (TempFailure, OSError, poplib.error_proto):
            h.count("pop3 connect failures")
            return
        marked = None
        try:
            try:
                p.user(user)
                p.pass_(self.password)
            except poplib.error_proto as e:
                h.count("pop3 login refused")
                if b"[AUTH]" in _pop3_text(e):
                    h.anomaly("pop3-auth", "login %s via %s: %r" % (user, node.name, e))
                return
            _, listing, _ = p.uidl()
            entries = [(int(n), u.decode()) for n, u in (line.split(b" ", 1) for line in listing)]
            chosen = rng.sample(entries, rng.randint(0, min(16, len(entries))))
            read = []
            for num, uidl in chosen:
                _, lines, _ = p.retr(num)
                token = verify_retrieved(h, user, uidl, b"".join(x + b"\r\n" for x in lines),
                                         "reader via %s" % node.name)
                if token is not None:
                    read.append((num, uidl, token))
            dele = [r for r in read if rng.random() < 0.6]
            for num, _, _ in dele:
                p.dele(num)
            marked = h.deletes_sent(user, [(uidl, token) for _, uidl, token in dele], node.name)
            try:
                p.quit()
                h.deletes_done(marked, "committed")
            except (poplib.error_proto, OSError) as e:
                h.deletes_done(marked, "uncertain", repr(e))
                if not (_pop3_eof(e) or isinstance(e, OSError)):
                    h.count("pop3 QUIT -ERR")
        except (poplib.error_proto, OSError):
            # Ended before QUIT: the server must delete nothing of this session.
            h.count("pop3 sessions broken before QUIT")
        finally:
            p.close()


def verify_retrieved(history, user, uidl, raw, where):
    """Learns uidl -> token; checks the bytes and the mailbox. Returns the token or None."""
    token, size = parse_message(raw)
    if token is None:
        history.anomaly("foreign", "%s: %s %s has no fault token: %r" % (where, user, uidl,
                                                                       raw[:200]))
        return None
    with history.lock:
        send = history.sends.get(token)
    if send is None:
        history.anomaly("foreign", "%s: %s %s names unknown token %s" % (where, user, uidl, token))
        return None
    if send.user != user:
        history.anomaly("misdelivered", "%s: %s sent to %s is in %s's maildrop (%s)"
                        % (where, token, send.user, user, uidl))
    if not raw.endswith(message_for(send.user, token, size)):
        history.anomaly("corrupt", "%s: %s %s (%s) differs from what was sent; tail %r"
                        % (where, user, uidl, token, raw[-120:]))
    history.learn(uidl, token, where)
    return token


# ---- observing the nodes --------------------------------------------------------

def metrics_or_none(node, timeout=HTTP_TIMEOUT_S):
    try:
        return node.metrics(timeout)
    except (OSError, AssertionError, ValueError):
        return None


class ReplicationState:
    """One node's replication metrics: unretired updates, backlog per peer."""

    def __init__(self, samples):
        self.unretired = sample(samples, "porcupine_replication_unretired")
        self.backlog = {}   # peer -> (entries, oldest seconds)
        for key, value in samples.items():
            name, _, rest = key.partition("{")
            if name == "porcupine_replication_backlog_entries" and value:
                peer = rest.rstrip("}").partition("=")[2].strip('"')
                oldest = sample(samples, "porcupine_replication_backlog_oldest_seconds",
                                peer=peer)
                self.backlog[peer] = (value, oldest)

    def __repr__(self):
        if not self.unretired and not self.backlog:
            return "quiet"
        return "unretired %d, backlog %s" % (self.unretired, ", ".join(
            "%s: %d (oldest %.0f s)" % (p, e, o) for p, (e, o) in sorted(self.backlog.items()))
            or "none")


def replication_state(node):
    """The node's ReplicationState, or None if it does not answer."""
    m = metrics_or_none(node)
    return None if m is None else ReplicationState(m)


def wait_quiescent(node_list, timeout):
    """Polls until every node reports unretired == 0. Returns (seconds or None, last states)."""
    start = time.monotonic()
    states = {}
    while True:
        states = {n.name: replication_state(n) for n in node_list}
        if all(s is not None and s.unretired == 0 for s in states.values()):
            return time.monotonic() - start, states
        if time.monotonic() - start > timeout:
            return None, states
        time.sleep(0.1)


class StaleBacklog:
    """What the nemesis saw of one node's updates for one peer while they were stuck.
    Times are the history's; `since` is when the oldest update was made (t - its age)."""
    __slots__ = ("oldest", "since", "entries", "first_t", "last_t")

    def __init__(self, oldest, entries, t):
        self.oldest, self.since, self.entries = oldest, t - oldest, entries
        self.first_t = self.last_t = t

    def saw(self, oldest, entries, t):
        if oldest > self.oldest:
            self.oldest, self.since = oldest, t - oldest
        self.entries, self.last_t = max(self.entries, entries), t

    def __repr__(self):
        return "oldest %.0f s (made at about %.1f s), %d updates, seen %.1f-%.1f s" % (
            self.oldest, self.since, self.entries, self.first_t, self.last_t)


def fragments(node, user, timeout=HTTP_TIMEOUT_S):
    """{id: entry} of what node holds of user's INBOX (GET /v1/fragments)."""
    status, body = node.http("GET", "/v1/fragments/%s" % user, timeout=timeout)
    assert status == 200, "GET /v1/fragments/%s on %s: HTTP %s %r" % (user, node.name,
                                                                        status, body)
    assert body.get("node") == node.name, (node.name, body.get("node"))
    return {m["id"]: m for m in body["messages"]}


def only_copies(victim, node_list, users):
    """(user, id) of what wiping the victim would lose: a live version no other
    node holds identically, or a tombstone where another node holds another
    version (a tombstone nobody else remembers, with no live copy anywhere, is
    harmless: its message is gone everywhere)."""
    out = []
    for user in users:
        mine = fragments(victim, user)
        if not mine:
            continue
        theirs = [fragments(n, user) for n in node_list if n is not victim]
        for mid, e in mine.items():
            key = (e["hlc"], e["tombstone"])
            others = [(t[mid]["hlc"], t[mid]["tombstone"]) for t in theirs if mid in t]
            if key in others or (e["tombstone"] and not others):
                continue
            out.append((user, mid))
    return out


# ---- the nemesis ----------------------------------------------------------------

ACTIONS = ("kill9", "pause", "partition", "wipe")
DEFAULT_WEIGHTS = {"kill9": 3, "pause": 3, "partition": 3, "wipe": 2}


class Nemesis:
    """One fault at a time. run() and heal_all() belong to the main thread."""

    def __init__(self, node_list, net, history, users, seed, gap_s=(1.0, 4.0),
                 weights=None, wipe_wait_s=10.0):
        self.nodes = list(node_list)
        self.net = net
        self.history = history
        self.users = list(users)
        self.rng = random.Random("%s-nemesis" % seed)
        self.gap_s = gap_s
        self.weights = weights or dict(DEFAULT_WEIGHTS)
        self.wipe_wait_s = wipe_wait_s
        self.down = set()       # names killed and not yet restarted
        self.paused = set()
        self.done = {a: 0 for a in ACTIONS}
        self.wiped = []         # names, in order
        self.skipped = []       # (action, reason, detail): reason is short, for grouping
        self.stale_backlog = {}  # (node, peer) -> StaleBacklog, over STALE_BACKLOG_S
        self.crashes = []       # (name, rc, log excerpt)

    def serving(self):
        """Nodes a client may try now (running, with known addresses)."""
        return [n for n in self.nodes
                if n.name not in self.down and n.addrs and n.alive()]

    def run(self, seconds, abort=lambda: False):
        """Faults for `seconds`, or until abort() is true (the load died)."""
        deadline = time.monotonic() + seconds
        next_progress = time.monotonic() + 10
        while time.monotonic() < deadline and not abort():
            self._sleep(min(self.rng.uniform(*self.gap_s), max(0.0, deadline - time.monotonic())))
            self.check_crashes()
            if time.monotonic() >= deadline:
                break
            action = self.rng.choices(list(self.weights), weights=list(self.weights.values()))[0]
            getattr(self, "_" + action)()
            self.sample_backlog()
            if time.monotonic() >= next_progress:
                next_progress = time.monotonic() + 10
                self.history.event("progress: %s" % self.history.progress())
        self.check_crashes()

    def _sleep(self, s):
        # The schedule itself, not a wait for a condition.
        time.sleep(s)

    def check_crashes(self):
        """A node that exited without being asked to is a crash: record and restart it."""
        for node in self.nodes:
            if node.proc is not None and not node.alive() and not node.expect_dead:
                rc = node.proc.returncode
                excerpt = node.log_text()[-3000:]
                self.crashes.append((node.name, rc, excerpt))
                self.history.anomaly("crash", "%s exited with %s on its own; log tail:\n%s"
                                     % (node.name, rc, excerpt[-1500:]))
                self._start(node, "after its crash")

    def _start(self, node, why):
        t0 = time.monotonic()
        try:
            node.start(RESTART_DEADLINE_S)
            self.down.discard(node.name)
            self.history.event("%s started %s (ready in %.2f s)"
                               % (node.name, why, time.monotonic() - t0))
            return True
        except NodeError as e:
            self.history.anomaly("restart", "%s did not start %s: %s" % (node.name, why,
                                                                        str(e)[-1500:]))
            node.force_kill()
            node.expect_dead = True
            self.down.add(node.name)
            return False

    def _victim(self):
        return self.rng.choice(self.nodes)

    def _kill9(self):
        node = self._victim()
        hold = self.rng.uniform(0.5, 4.0)
        node.kill(signal.SIGKILL)
        self.down.add(node.name)
        self.done["kill9"] += 1
        self.history.event("kill -9 %s for %.1f s" % (node.name, hold))
        self._sleep(hold)
        self._start(node, "after kill -9")

    def _pause(self):
        node = self._victim()
        if not node.alive():
            self._skip("pause", "victim not running", node.name)
            return
        hold = self.rng.uniform(0.5, 6.0)  # both shorter and longer than ping_timeout_ms
        node.pause()
        self.paused.add(node.name)
        self.done["pause"] += 1
        self.history.event("SIGSTOP %s for %.1f s" % (node.name, hold))
        self._sleep(hold)
        node.resume()
        self.paused.discard(node.name)
        self.history.event("SIGCONT %s" % node.name)

    def _partition(self):
        idx = list(range(len(self.nodes)))
        self.rng.shuffle(idx)
        cut = self.rng.randint(1, len(idx) // 2)
        side_a, side_b = sorted(idx[:cut]), sorted(idx[cut:])
        hold = self.rng.uniform(2.0, 8.0)
        self.net.partition(side_a, side_b)
        self.done["partition"] += 1
        self.history.event("partition %s | %s for %.1f s" % (
            [self.nodes[i].name for i in side_a], [self.nodes[i].name for i in side_b], hold))
        self._sleep(hold)
        self.net.heal()
        self.history.event("healed the partition")

    def _wipe(self):
        took, states = wait_quiescent(self.nodes, self.wipe_wait_s)
        self.observe(states)
        if took is None:
            self._skip("wipe", "not quiescent within %.0f s" % self.wipe_wait_s, str(states))
            return
        order = list(self.nodes)
        self.rng.shuffle(order)
        victim, why, silent = None, [], 0
        for node in order:
            try:
                sole = only_copies(node, self.nodes, self.users)
            except (OSError, AssertionError, ValueError) as e:
                why.append("%s: %r" % (node.name, e))
                silent += 1
                continue
            if not sole:
                victim = node
                break
            why.append("%s holds %d only copies (e.g. %s)" % (node.name, len(sole), sole[0]))
        if victim is None:
            self._skip("wipe", "every node holds an only copy" if not silent else
                       "some node's /v1/fragments failed, the others hold only copies",
                       "; ".join(why))
            return
        victim.kill(signal.SIGKILL)
        self.down.add(victim.name)
        shutil.rmtree(victim.data_dir)
        self.done["wipe"] += 1
        self.wiped.append(victim.name)
        self.history.event("wiped %s (quiescent after %.2f s; skipped %s)"
                           % (victim.name, took, [w.split(":")[0] for w in why] or "none"))
        self._start(victim, "with an empty data directory")

    def _skip(self, action, reason, detail=""):
        self.skipped.append((action, reason, detail))
        self.history.event("skipped %s: %s%s" % (action, reason, (": " + detail[:400]) if detail
                                                 else ""))

    def sample_backlog(self):
        """Samples every running node's replication backlog (between faults: none is paused)."""
        self.observe({n.name: replication_state(n) for n in self.nodes
                      if n.alive() and n.addrs and n.name not in self.paused})

    def observe(self, states):
        """Records every backlog older than STALE_BACKLOG_S in {node: ReplicationState or None}."""
        t = self.history.now()
        for name, state in states.items():
            for peer, (entries, oldest) in (state.backlog if state else {}).items():
                if oldest <= STALE_BACKLOG_S:
                    continue
                seen = self.stale_backlog.get((name, peer))
                if seen is None:
                    self.stale_backlog[(name, peer)] = StaleBacklog(oldest, entries, t)
                    self.history.event("STALE BACKLOG: %s has %d updates for %s, oldest %.0f s"
                                       % (name, entries, peer, oldest))
                else:
                    seen.saw(oldest, entries, t)

    def heal_all(self):
        """Undoes every fault: heals the network, SIGCONTs, starts what is down."""
        self.net.heal()
        for node in self.nodes:
            if node.name in self.paused:
                node.resume()
                self.paused.discard(node.name)
        self.check_crashes()
        for node in self.nodes:
            if not node.alive():
                self._start(node, "for the final check")

    def describe(self):
        """The faults done; the checker's report adds what was skipped and why."""
        return "nemesis: %s; wiped %s; crashes %d" % (
            ", ".join("%s %d" % kv for kv in self.done.items()), self.wiped or "none",
            len(self.crashes))

"""The imaptest script runner (imaptest_runner.py) against a tiny fake IMAP
server in this process: the script format's parsing and matching, set-up and
clean-up, literals both ways. Fast; needs neither porcupine nor Dovecot."""

import io
import re
import socket
import threading

import pytest

import imaptest_runner as R

DEFAULT_MBOX = (
    "From user@domain  Fri Feb 22 17:06:23 2008 +0200\n"
    "Subject: one\n\nbody1\n\n"
    "From user@domain  Sat Mar 24 23:00:00 2007\n"
    "Subject: two\n\nbody2\n"
)


class FakeIMAP:
    """A scripted IMAP server: set-up commands are built in, everything else
    goes to `handler(session, command) -> [lines]` (lines beginning with
    OK/NO/BAD are the tagged reply; without one "OK done" is added)."""

    def __init__(self, handler=None, caps=("IMAP4rev1", "LITERAL+"), banner="* OK fake ready"):
        self.handler = handler or (lambda sess, cmd: None)
        self.caps = list(caps)
        self.banner = banner
        self.mailboxes = {}
        self.log = []           # (session id, command) in arrival order
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.sessions = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.sock.close()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.sessions += 1
                sid = self.sessions
            threading.Thread(target=self._serve, args=(conn, sid), daemon=True).start()

    def _serve(self, conn, sid):
        f = conn.makefile("rwb", buffering=0)
        sess = {"id": sid, "selected": None}
        try:
            f.write(self.banner.encode() + b"\r\n")
            while True:
                cmd = self._read_command(f)
                if cmd is None:
                    return
                tag, _, rest = cmd.partition(" ")
                with self.lock:
                    self.log.append((sid, rest))
                lines = self.handler(sess, rest)
                if lines is None:
                    lines = self._builtin(sess, rest)
                if not any(re.match(r"(OK|NO|BAD)\b", l) for l in lines):
                    lines = lines + ["OK done"]
                for l in lines:
                    if re.match(r"(OK|NO|BAD)\b", l):
                        l = tag + " " + l
                    f.write(l.encode("latin-1") + b"\r\n")
                if rest.upper() == "LOGOUT":
                    return
        except OSError:
            return
        finally:
            conn.close()

    def _read_command(self, f):
        out = b""
        while True:
            line = f.readline()
            if not line:
                return None
            out += line
            m = re.search(rb"\{(\d+)(\+?)\}\r\n$", line)
            if not m:
                return out[:-2].decode("latin-1")
            if not m.group(2):
                f.write(b"+ go ahead\r\n")
            n = int(m.group(1))
            data = b""
            while len(data) < n:
                chunk = f.read(n - len(data))
                if not chunk:
                    return None
                data += chunk
            out += data

    def _builtin(self, sess, cmd):
        verb = cmd.split(" ", 1)[0].upper()
        args = R.parse_args(cmd)
        name = args[1][1] if len(args) > 1 and args[1][0] != "list" else None
        if verb == "CAPABILITY":
            return ["* CAPABILITY " + " ".join(self.caps)]
        if verb in ("LOGIN", "NOOP", "CHECK", "UNSUBSCRIBE"):
            return ["OK done"]
        if verb == "LOGOUT":
            return ["* BYE bye", "OK bye"]
        if verb == "LIST":
            pat = args[2][1].rstrip("*")
            return ['* LIST () "/" %s' % R.imap_quote(n)
                    for n in sorted(self.mailboxes) if n.startswith(pat)]
        if verb == "LSUB":
            return []
        if verb == "CREATE":
            self.mailboxes.setdefault(name, [])
            return ["OK created"]
        if verb == "DELETE":
            return ["OK deleted"] if self.mailboxes.pop(name, None) is not None else ["NO none"]
        if verb == "APPEND":
            self.mailboxes.setdefault(name, []).append(args[-1][1])
            return ["OK appended"]
        if verb == "SELECT":
            if name not in self.mailboxes:
                return ["NO no such mailbox"]
            sess["selected"] = name
            return ["* %d EXISTS" % len(self.mailboxes[name]), "OK [READ-WRITE] selected"]
        return ["BAD unknown command"]


@pytest.fixture
def fake():
    servers = []

    def make(handler=None, **kw):
        s = FakeIMAP(handler, **kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def run(tmp_path, server, text, name="t", mbox=None, timeout=2.0, user2=None):
    """Run one script `text` against `server`: (status, detail)."""
    (tmp_path / "default.mbox").write_text(DEFAULT_MBOX)
    (tmp_path / name).write_bytes(text.encode("latin-1"))
    if mbox is not None:
        (tmp_path / (name + ".mbox")).write_text(mbox)
    opts = R.Options("127.0.0.1", server.port, "u", "p", user2=user2, timeout=timeout)
    return R.TestRun(R.load_script(str(tmp_path / name)), opts).run()


def parse(tmp_path, text):
    (tmp_path / "default.mbox").write_text(DEFAULT_MBOX)
    (tmp_path / "s").write_bytes(text.encode("latin-1"))
    return R.load_script(str(tmp_path / "s"))


# --- matching against a server ---------------------------------------------------

def fetch_handler(flags):
    def handler(sess, cmd):
        if cmd == "fetch 1:2 uid":
            return ["* 1 FETCH (UID 10)", "* 2 FETCH (UID 12)"]
        if cmd == "uid fetch 12 flags":
            return ["* 2 FETCH (FLAGS (%s) UID 12)" % flags]
        return None
    return handler


FETCH_SCRIPT = """messages: 2

ok fetch 1:2 uid
* 1 fetch (uid $uid1)
* 2 fetch (uid $uid2)
ok uid fetch $uid2 flags
* 2 fetch (uid $uid2 flags (\\seen))
"""


def test_variables_bind_and_fetch_lists_are_unordered(tmp_path, fake):
    # $uid2 is bound from the first reply and used in the next command; FETCH
    # items in another order and \Recent in FLAGS are fine.
    assert run(tmp_path, fake(fetch_handler("\\Recent \\Seen")), FETCH_SCRIPT) == ("PASS", "")


def test_extra_flag_fails(tmp_path, fake):
    status, detail = run(tmp_path, fake(fetch_handler("\\Seen \\Flagged")), FETCH_SCRIPT)
    assert status == "FAIL"
    assert "Missing 1 untagged" in detail and "\\Flagged" in detail


def test_forbidden_reply_fails(tmp_path, fake):
    script = "messages: 1\n\nok search all\n! search 1\n"
    h = lambda sess, cmd: ["* SEARCH 1"] if cmd == "search all" else None
    status, detail = run(tmp_path, fake(h), script)
    assert status == "FAIL" and "Unexpected untagged match" in detail
    h2 = lambda sess, cmd: ["* SEARCH 2"] if cmd == "search all" else None
    assert run(tmp_path, fake(h2), script)[0] == "PASS"


@pytest.mark.parametrize("order,status", [
    (["* 3 EXPUNGE", "* 1 EXPUNGE"], "PASS"),
    (["* 1 EXPUNGE", "* 2 EXPUNGE"], "PASS"),   # $3 is 2 once 1 is gone
    (["* 1 EXPUNGE", "* 1 EXPUNGE"], "FAIL"),   # that was old 2
])
def test_relative_sequences_follow_expunges(tmp_path, fake, order, status):
    mbox = DEFAULT_MBOX + "From a@b  Fri Feb 22 17:06:23 2008\nSubject: 3\n\nx\n"
    h = lambda sess, cmd: order if cmd == "expunge" else None
    got = run(tmp_path, fake(h), "messages: 3\n\nok expunge\n* $1 expunge\n* $3 expunge\n",
              mbox=mbox)
    assert got[0] == status, got


def test_tagged_status_and_prefix(tmp_path, fake):
    def h(sess, cmd):
        return {"noop": ["OK [READ-WRITE] fine"], "check": ["NO [TRYCREATE] nope"],
                "foo": ["BAD what"]}.get(cmd)
    srv = fake(h)
    ok_script = "state: auth\n\nnoop\nok [read-write]\nno check\ncheck\nno [trycreate]\n" \
                "bad foo\n\"\" check\n"
    assert run(tmp_path, srv, ok_script) == ("PASS", "")
    status, detail = run(tmp_path, srv, "state: auth\n\nok check\n")
    assert status == "FAIL" and "unexpected tagged reply" in detail and "TRYCREATE" in detail
    status, detail = run(tmp_path, srv, "state: auth\n\nnoop\nok [read-only]\n")
    assert status == "FAIL"
    status, detail = run(tmp_path, srv, "state: auth\n\n\"\" foo\n")
    assert status == "FAIL" and "BAD" in detail   # BAD only where the script says bad


def test_pipelining_and_connections(tmp_path, fake):
    h = lambda sess, cmd: (["* STATUS imaptest (MESSAGES 0)"]
                           if cmd.startswith("status") else None)
    srv = fake(h)
    script = ("connections: 2\nstate: auth\n\n"
              "1 tag1 create ${mailbox}\n1 tag2 create ${mailbox}2\n1 tag1 ok\n1 tag2 ok\n"
              "2 ok status ${mailbox} (messages)\n* status ${mailbox} (messages 0)\n")
    assert run(tmp_path, srv, script) == ("PASS", "")
    cmds = [(sid, c) for sid, c in srv.log if c.startswith(("create", "status"))]
    assert [c for _, c in cmds] == ["create imaptest", "create imaptest2",
                                    "status imaptest (messages)"]
    assert cmds[0][0] == cmds[1][0] != cmds[2][0]


@pytest.mark.parametrize("caps", [("IMAP4rev1", "LITERAL+"), ("IMAP4rev1",)])
def test_literals_both_ways(tmp_path, fake, caps):
    def h(sess, cmd):
        if cmd == "fetch 1 body.peek[]":
            data = "Subject: x\r\n\r\nbody\r\n"
            return ["* 1 FETCH (BODY[] {%d}\r\n%s)" % (len(data), data)]
        return None
    srv = fake(h, caps=caps)
    script = ("state: created\n\nok append $mailbox {{{\nSubject: x\n\nbody\n}}}\n"
              "ok select $mailbox\nok fetch 1 body.peek[]\n* 1 fetch (body[] {{{\n"
              "Subject: x\n\nbody\n\n}}})\n")
    assert run(tmp_path, srv, script) == ("PASS", "")
    appends = [c for _, c in srv.log if c.startswith("append imaptest {")]
    assert appends == ["append imaptest {%d%s}\r\nSubject: x\r\n\r\nbody"
                       % (18, "+" if "LITERAL+" in caps else "")]


def test_capability_skip(tmp_path, fake):
    status, detail = run(tmp_path, fake(), "capabilities: FOO BAR\nstate: auth\n\nok noop\n")
    assert status == "SKIP" and "FOO BAR" in detail


def test_needs_second_user(tmp_path, fake):
    status, detail = run(tmp_path, fake(), "connections: 2\nuser 2: $user2\n\n1 ok noop\n")
    assert status == "SKIP" and "user2" in detail


def test_setup_and_cleanup(tmp_path, fake):
    srv = fake()
    srv.mailboxes["imaptest/old"] = []
    assert run(tmp_path, srv, "messages: 3\n\nok noop\n") == ("PASS", "")
    cmds = [c for _, c in srv.log]
    assert cmds[:6] == ["LOGIN \"u\" \"p\"", "CAPABILITY", 'LIST "" "imaptest*"',
                        'LSUB "" "imaptest*"', 'DELETE "imaptest/old"', 'CREATE "imaptest"']
    appends = [c for c in cmds if c.startswith("APPEND")]
    # messages: 3 wraps around the two-message mbox; dates from the From_ lines
    assert len(appends) == 3
    assert appends[0].startswith('APPEND "imaptest" "22-Feb-2008 17:06:23 +0200" {')
    assert appends[2] == appends[0]
    assert appends[0].endswith("Subject: one\r\n\r\nbody1\r\n\r\n")
    assert 'SELECT "imaptest"' in cmds
    assert cmds[-3:] == ['LSUB "" "imaptest*"', 'DELETE "imaptest"', "LOGOUT"]
    assert srv.mailboxes == {}


def test_ordered_and_extra_untagged(tmp_path, fake):
    h = lambda sess, cmd: ["* 2 EXISTS", "* 1 RECENT", "* FOO"] if cmd == "noop" else None
    srv = fake(h)
    assert run(tmp_path, srv, "state: auth\n\nok noop\n* 1 recent\n* 2 exists\n")[0] == "PASS"
    status, _ = run(tmp_path, srv, "state: auth\n\nok noop\n!ordered\n* 1 recent\n* 2 exists\n")
    assert status == "FAIL"
    status, detail = run(tmp_path, srv, "state: auth\nignore_extra_untagged: no\n\n"
                                        "ok noop\n* 1 recent\n* 2 exists\n")
    assert status == "FAIL" and "unexpected untagged" in detail and "FOO" in detail


def test_timeout_does_not_hang(tmp_path, fake):
    class Silent(FakeIMAP):
        def _builtin(self, sess, cmd):
            if cmd == "hang":
                threading.Event().wait(5)
            return FakeIMAP._builtin(self, sess, cmd)
    srv = Silent()
    try:
        status, detail = run(tmp_path, srv, "state: auth\n\nok hang\n", timeout=0.5)
    finally:
        srv.close()
    assert status == "FAIL" and "timeout" in detail


def test_banner_check(tmp_path, fake):
    assert run(tmp_path, fake(), "state: auth\n\n* ok fake\nok noop\n")[0] == "PASS"
    assert run(tmp_path, fake(), "state: auth\n\n* ok other\nok noop\n")[0] == "FAIL"


def test_dollar_wildcards_and_case(tmp_path, fake):
    h = lambda sess, cmd: (['* LIST (\\HasNoChildren) "/" INBOX', "* OK [CAPABILITY A B] x"]
                           if cmd == 'list "" *' else None)
    srv = fake(h)
    assert run(tmp_path, srv, 'state: auth\n\nok list "" *\n* list $ $sep ${case:INBOX}\n'
                              "* ok [capability $] x\n")[0] == "PASS"
    script = 'state: auth\n\nok list "" *\n* list () $sep ${case:Inbox}\n'
    assert run(tmp_path, srv, script)[0] == "FAIL"


# --- parsing ---------------------------------------------------------------------------

def test_default_directives(tmp_path):
    s = parse(tmp_path, "\nok fetch 1 x\n* 1 fetch (uid 1 flags (\\seen))\n"
                        "* list () \"/\" x\n* status x (messages 1)\n"
                        "* $2 fetch (flags ($!extra))\n")
    fetch, lst, status, explicit = [u.args for u in s.groups[0].untagged]
    assert fetch[2][1][0] == ("atom", "$!unordered=2")
    flags = fetch[2][1][4][1]
    assert [a[1] for a in flags[:3]] == ["$!unordered", "$!noextra", "$!ignore=\\recent"]
    assert lst[1][1] == [("atom", "$!unordered")]
    assert status[2][1][0] == ("atom", "$!unordered=2")
    assert explicit[2][1][0] == ("atom", "$!unordered=2")
    assert explicit[2][1][2][1] == [("atom", "$!extra")]


def test_multiline_literals(tmp_path):
    s = parse(tmp_path, "\nok fetch 1 x\n* 1 fetch (a ~{{{\n3\r\n\n}}} b {{{\nx\ny\n}}})\n")
    args = s.groups[0].untagged[0].args[2][1]
    assert args[2] == ("lit", "3\r\n")       # ~{{{: LF kept, the last line end dropped
    assert args[4] == ("lit", "x\r\ny")      # {{{: CRLF line ends
    assert s.groups[-1].commands[0].text == "logout"   # added LOGOUT


def test_command_methods_and_errors(tmp_path):
    s = parse(tmp_path, "state: auth\n\nselect x\n* 1 exists\nok [read-write]\n"
                        "tag1 noop\ntag2 check\ntag2 ok\ntag1 no\n\"\" delete y\n")
    g1, g2, g3 = s.groups[:3]
    assert g1.commands[0].reply == [("atom", "ok"), ("atom", "[read-write]")]
    assert [(c.tag, c.reply[0][1]) for c in g2.commands] == [(1, "no"), (2, "ok")]
    assert g3.commands[0].reply == [("atom", "")]
    for bad in ("state: bogus\n\nok noop\n", "\nselect x\n\n", "connections: 2\n\nok noop\n",
                "\n* 1 fetch ($!unordered=2 a)\nok noop\n"):
        with pytest.raises(R.ScriptError):
            parse(tmp_path, bad)


def test_ifenv(tmp_path, monkeypatch):
    monkeypatch.setenv("IMAPTEST_RUNNER_X", "1")
    monkeypatch.delenv("IMAPTEST_RUNNER_Y", raising=False)
    s = parse(tmp_path, "\n!ifenv IMAPTEST_RUNNER_X\nok a\n!else\nok b\n!endif\n"
                        "!ifenv IMAPTEST_RUNNER_Y\nok c\n!endif\n"
                        "!ifnenv IMAPTEST_RUNNER_Y\nok d\n!endif\n")
    assert [g.commands[0].text for g in s.groups] == ["a", "d", "logout"]


def test_modseq_order():
    m = R.Matcher()
    assert m.expand_input("$modseq2", "10") == ("10", True)
    assert m.expand_input("$modseq5", "12")[0] is None     # must be >= 13
    m2 = R.Matcher()
    m2.expand_input("$modseq2", "10")
    assert m2.expand_input("$modseq5", "13") == ("13", True)


def test_mbox_and_dates(tmp_path):
    p = tmp_path / "m.mbox"
    p.write_text("From a@b  Sat Mar 24 23:00:00 2007 +0200\nX: 1\n\nFrom me, said the body\n"
                 "From a@b  Sun Mar 25 04:00:00 2007 -0130\n\nb\n")
    msgs = R.load_mbox(str(p))
    assert msgs == [("24-Mar-2007 23:00:00 +0200", "X: 1\r\n\r\nFrom me, said the body\r\n"),
                    ("25-Mar-2007 04:00:00 -0130", "\r\nb\r\n")]
    assert R.parse_from_line("From a@b  Fri Feb  1 01:02:03 2008 +0000") == \
        " 1-Feb-2008 01:02:03 +0000"
    assert R.mailbox_url("a b&AOQ-") == "a%20b%C3%A4"


def test_nil_is_not_a_string(tmp_path, fake):
    assert R.parse_args('a NIL "NIL" nil {3}\r\nNIL') == [
        ("atom", "a"), ("nil", None), ("str", "NIL"), ("nil", None), ("lit", "NIL")]
    h = lambda sess, cmd: {"fetch 1 a": ['* 1 FETCH (A NIL)'],
                           "fetch 1 b": ['* 1 FETCH (B "NIL")']}.get(cmd)
    srv = fake(h)
    assert run(tmp_path, srv, "messages: 1\n\nok fetch 1 a\n* 1 fetch (a nil)\n")[0] == "PASS"
    assert run(tmp_path, srv, "messages: 1\n\nok fetch 1 b\n* 1 fetch (b nil)\n")[0] == "FAIL"
    assert run(tmp_path, srv, "messages: 1\n\nok fetch 1 a\n* 1 fetch (a $)\n")[0] == "FAIL"


def test_unsupported_features_skip(tmp_path):
    (tmp_path / "default.mbox").write_text(DEFAULT_MBOX)
    (tmp_path / "a").write_text("\nok append $mailbox {{{\nprice: $5\n}}}\n")
    (tmp_path / "b").write_text("\nok logout\n? bye\n")
    (tmp_path / "c").write_text("state: bogus\n\nok noop\n")
    opts = R.Options("127.0.0.1", 1, "u", "p", timeout=1)
    res = R.run_scripts(["a", "b", "c"], str(tmp_path), opts, out=io.StringIO())
    assert [r["status"] for r in res] == ["SKIP", "SKIP", "FAIL"]
    assert "unsupported" in res[0]["detail"] and "parse error" in res[2]["detail"]

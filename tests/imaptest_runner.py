#!/usr/bin/env python3
"""IMAP conformance runner for Dovecot imaptest's scripted tests (stdlib only).

Runs the scripts of imaptest's src/tests/ (format: docs/scripted_test.md, both
copied to /work/shared/imaptest/) against a real IMAP server over raw sockets
and prints one line per script: PASS, FAIL (the first mismatch: script line,
command, expected, got) or SKIP (a capability of the script header that the
server does not advertise, or a second user the run was not given). Exit
status 0 iff no script failed.

    python3 tests/imaptest_runner.py --host 127.0.0.1 --port 143 \\
        --user testuser --password pw [--user2 testuser2 --password2 pw2] \\
        [--tests DIR] [--only fetch,store] [--mailbox imaptest] [--timeout 10] \\
        [--json] [-v]
    python3 tests/imaptest_runner.py --dovecot   # against a private Dovecot
                                                 # (tests/dovecot_imap.py)

All connections of a script log in as --user, except those named by a
"user N:" header ("$user2" means --user2). Every read has a timeout (--timeout,
10 s) and every command group a deadline (6 x timeout): nothing hangs.

Semantics follow imaptest's own parser and executor (src/test-parser.c,
src/test-exec.c), which say more than the spec:
- header: capabilities, connections, messages (default "all", as the spec
  says; N wraps around the mbox), state (nonauth, auth, created, appended,
  selected; default selected), ignore_extra_untagged, "user N: name|$user2";
- command groups: "[conn] ok|no|bad|\"\" cmd" (method 1), "cmd" + "[conn]
  ok [prefix]" (2), "[conn] tagN cmd" + "[conn] tagN ok [prefix]" (3,
  pipelined); tagged replies match as a prefix ("ok [read-write]"), BAD only
  where the script expects bad; "* " required, "! " forbidden and "? "
  optional untagged replies, matched in any order ("!ordered" to keep it), one
  reply may satisfy several; untagged replies of a connection count for its
  next command group; "!sleep", "!output", "!ifenv/!ifnenv/!else/!endif";
  a first group of only "* " lines checks the greeting;
- {{{ ... }}} and ~{{{ ... }}} multi-line (literal8) literals in commands and
  replies (CRLF line ends, LF for ~{{{, the last line end dropped); commands
  use LITERAL+ (or LITERAL- up to 4096 bytes) when advertised, else
  synchronising literals (wait for "+"); replies' literals are read by size;
- variables: unset $var binds to the server's text up to the next character
  of the pattern, set ones must match exactly; $ matches anything, even a
  list; $] skips up to a "]"; $N is the Nth message of when the command group
  began, renumbered by the EXPUNGEs seen since; ${case:X} is case-sensitive;
  $modseqN must grow at least as fast as N; $$ is "$"; $tag is the group's
  first tag; predefined $user $username $domain $password (and $user2, ... for
  connection 2, ...), $mailbox, $mailbox_url;
- list directives $!ordered $!unordered[=n] $!noextra $!extra $!ignore=e
  $!ban=e, and the defaults: FETCH ($!unordered=2), FLAGS inside FETCH
  ($!unordered $!noextra, ignoring \\Recent $HasAttachment $HasNoAttachment),
  LIST/LSUB flags ($!unordered), STATUS ($!unordered=2);
- comparisons are case-insensitive and, like imaptest's C strings, stop at a
  NUL (append-binary relies on it);
- "append [mailbox [flags] [date]]" with no message in it APPENDs the next
  message of <script>.mbox (else default.mbox), as does "replace"; mbox From_
  lines give the INTERNALDATE of set-up and bare "append" APPENDs;
- set-up: LOGIN and CAPABILITY on every connection (CAPABILITY only for
  nonauth), skip on a missing capability, then on connection 1 LIST and LSUB
  "<mailbox>*" and DELETE / UNSUBSCRIBE all of it (auth), CREATE (created),
  APPEND (appended), SELECT on every connection of the first user (selected);
  LOGOUT on connection 1 at the end unless the script logs out; afterwards
  the test mailboxes are deleted again on a fresh connection (not for
  nonauth scripts);
- light state checks as in imaptest: EXISTS never drops (outside SELECT),
  EXPUNGE never names a sequence above EXISTS.

Not supported / different from imaptest:
- imaptest's mailbox-state tracking (flags, keywords, \\Recent and UIDs
  checked for consistency across sessions; "STORE didn't return FETCH
  FLAGS"): not done;
- $variables inside a command's {{{ }}} literal are not expanded (the size is
  fixed when the script is parsed); VANISHED does not renumber $N; "? BYE"
  is refused (as in imaptest); IDLE/DONE and AUTHENTICATE are not scripted;
- connections of another user ("user 2: $user2") are not SELECTed into the
  test mailbox (which that user does not have; imaptest would fail there);
- the run stops at the first mismatch of a script (imaptest goes on counting).
"""

import argparse
import json
import os
import re
import socket
import sys
import time
import urllib.parse

DEFAULT_TESTS_DIR = os.environ.get(
    "IMAPTEST_TESTS", os.path.join(os.path.dirname(os.path.abspath(__file__)), "imaptest", "tests"))
DEFAULT_MBOX = "default.mbox"
MAX_CONNECTIONS = 100
MESSAGES_ALL = -1
GROUP_TIMEOUT_FACTOR = 6

# Everything is handled as latin-1 text so that one character is one byte.
ENC = "latin-1"


# ---------------------------------------------------------------------------
# IMAP values: (kind, value) with kind in atom | str | lit | nil | list


def ascii_lower(s):
    return s.translate(_LOWER)


_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_LIT_RE = re.compile(r"~?\{(\d+)\+?\}\r?\n")


def _bracket_end(text, j):
    """Index of the "]" closing the "[" at text[j], on the same line, or None."""
    depth = 0
    for k in range(j, len(text)):
        c = text[k]
        if c in "\r\n":
            return None
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return k
    return None


def parse_args(text):
    """Parse IMAP arguments leniently (never fails). Literals appear inline as
    "{N}\\r\\n" + N characters. An atom with a "[" inside (BODY[HEADER.FIELDS
    (A B)]) runs to the matching "]"; NIL (any case) is ('nil', None)."""
    stack = [[]]
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
        elif c == "(":
            new = []
            stack[-1].append(("list", new))
            stack.append(new)
            i += 1
        elif c == ")":
            if len(stack) > 1:
                stack.pop()
            i += 1
        elif c == '"':
            i = _parse_quoted(text, i, stack[-1])
        else:
            m = _LIT_RE.match(text, i) if c in "{~" else None
            if m:
                start = m.end()
                size = int(m.group(1))
                stack[-1].append(("lit", text[start:start + size]))
                i = start + size
            else:
                i = _parse_atom(text, i, stack[-1])
    return stack[0]


def _parse_quoted(text, i, out):
    j, n, buf = i + 1, len(text), []
    while j < n and text[j] != '"':
        if text[j] == "\\" and j + 1 < n:
            j += 1
        buf.append(text[j])
        j += 1
    out.append(("str", "".join(buf)))
    return j + 1


def _parse_atom(text, i, out):
    j, n = i, len(text)
    while j < n and text[j] not in " \t()\r\n":
        if text[j] == "[" and j > i:
            k = _bracket_end(text, j)
            if k is not None:
                j = k + 1
                continue
        j += 1
    atom = text[i:j]
    out.append(("nil", None) if atom.upper() == "NIL" else ("atom", atom))
    return j


def is_astring(arg):
    return arg is not None and arg[0] in ("atom", "str", "lit")


def imap_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def args_to_str(args, limit=300):
    """Human-readable rendering of parsed arguments (for reports)."""
    out = []
    for kind, val in args:
        if kind == "atom":
            out.append(val)
        elif kind == "nil":
            out.append("NIL")
        elif kind == "list":
            out.append("(" + args_to_str(val, limit) + ")")
        elif kind == "str":
            out.append(imap_quote(val))
        else:
            out.append("{%d}%s" % (len(val), json.dumps(val)))
    s = " ".join(out)
    return s if len(s) <= limit else s[:limit] + "..."


# ---------------------------------------------------------------------------
# Script parsing


class ScriptError(Exception):
    pass


class Unsupported(ScriptError):
    """The script is valid but needs something this runner does not do."""


class Untagged:
    def __init__(self, args, existence, text):
        self.args = args            # parsed pattern, directives inserted
        self.existence = existence  # "*" must, "!" must not, "?" may
        self.text = text            # source text, for reports


class Command:
    def __init__(self, linenum, tag, text, reply):
        self.linenum = linenum
        self.tag = tag        # 0 or the N of "tagN"
        self.text = text      # unexpanded command, literals inline
        self.reply = reply    # parsed expected tagged reply (None until known)
        self.wire_tag = None


class Group:
    def __init__(self):
        self.conn = 0
        self.commands = []
        self.untagged = []
        self.replies_pending = 0
        self.ordered = False
        self.sleep = 0.0
        self.output = []
        self.have_bye = False


class Script:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        self.capabilities = []
        self.connections = 1
        # The spec's default ("all"); imaptest's parser has 0, but urlauth2
        # needs the messages.
        self.messages = MESSAGES_ALL
        self.state = "selected"
        self.ignore_extra_untagged = True
        self.users = {}        # connection index (0-based) -> user name or "$user2"
        self.groups = []
        self.banner_check = False
        self.mbox_path = None


STATES = ("nonauth", "auth", "created", "appended", "selected")
REPLY_WORDS = {"ok": "ok", "no": "no", "bad": "bad", '""': ""}


def parse_header_line(script, line):
    if ":" not in line:
        raise ScriptError("Missing ':'")
    key, _, value = line.partition(":")
    key, value = key.rstrip(" ").lower(), value.lstrip(" ")
    if key == "capabilities":
        script.capabilities = value.split()
    elif key == "connections":
        try:
            script.connections = int(value)
        except ValueError:
            script.connections = 0
        if not 0 < script.connections <= MAX_CONNECTIONS:
            raise ScriptError("Too many connections")
    elif key == "ignore_extra_untagged":
        script.ignore_extra_untagged = value.startswith("y")
    elif key.startswith("user ") and key[5:].isdigit() and int(key[5:]) > 0:
        script.users[int(key[5:]) - 1] = value
    elif key == "messages":
        script.messages = MESSAGES_ALL if value == "all" else int(value or 0)
    elif key == "state":
        if value.lower() not in STATES:
            raise ScriptError("Unknown state value")
        script.state = value.lower()
    else:
        raise ScriptError("Unknown setting")


def _first_word(line):
    return line.split(" ", 1)[0]


def get_cmd_reply(line):
    """Split an optional "tagN" and an ok/no/bad/"" word off `line`.
    Returns (tag, reply_word or None, rest)."""
    tag = 0
    word = _first_word(line)
    if word[:3].lower() == "tag" and " " in line and word[3:].isdigit() and int(word[3:]) > 0:
        tag = int(word[3:])
        line = line.split(" ", 1)[1]
        word = _first_word(line)
    reply = REPLY_WORDS.get(word.lower())
    if reply is not None:
        line = line[len(word):]
        if line.startswith(" "):
            line = line[1:]
    return tag, reply, line


def reply_args(word):
    return [("atom", word)]


class ScriptParser:
    """Turns one script file into a Script (imaptest's test-parser.c)."""

    def __init__(self, script):
        self.s = script
        self.group = None
        self.ifenv = []      # stack of (linenum, skip_before, else_seen)
        self.skip = False

    # -- lines ---------------------------------------------------------------
    def parse(self, data):
        header = True
        lines = data.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        else:
            raise ScriptError("Last line doesn't end with LF")
        i = 0
        while i < len(lines):
            start = i + 1
            line = lines[i]
            i += 1
            if line.rstrip("\r") == "":
                header = False
                continue
            if line.startswith("#"):
                continue
            if line.endswith("{{{"):
                line, i = self._multiline(lines, i, line, start)
            else:
                line = line.rstrip("\r")
            try:
                if header:
                    parse_header_line(self.s, line)
                else:
                    self.command_line(start, line)
            except ScriptError as e:
                raise type(e)("line %d: %s" % (start, e))
        self._finish()

    def _multiline(self, lines, i, line, start):
        """Join a {{{ ... }}} block (possibly several) into one line with
        inline literals. Each content line ends in CRLF (LF for ~{{{), the
        last line ending is dropped."""
        out = []
        while True:
            binary = line.endswith("~{{{")
            out.append(line[:-4] if binary else line[:-3])
            content = []
            while True:
                if i >= len(lines):
                    raise ScriptError("line %d: Multiline reply not ended" % start)
                cur = lines[i]
                i += 1
                if cur.startswith("}}}"):
                    break
                content.append(cur)
            body = ("\n" if binary else "\r\n").join(content)
            out.append("%s{%d}\r\n%s" % ("~" if binary else "", len(body), body))
            line = cur[3:]
            if not line.endswith("{{{"):
                out.append(line.rstrip("\r"))
                return "".join(out), i

    def _conditional(self, line):
        if line.startswith("!ifenv ") or line.startswith("!ifnenv "):
            env = line.split(" ", 1)[1]
            missing = os.environ.get(env) is None
            if line.startswith("!ifnenv "):
                missing = not missing
            self.ifenv.append([self.skip, False])
            if missing:
                self.skip = True
            return True
        if line == "!else":
            if not self.ifenv:
                raise ScriptError("!else without !ifenv")
            top = self.ifenv[-1]
            if top[1]:
                raise ScriptError("!else already seen")
            top[1] = True
            if not top[0]:
                self.skip = not self.skip
            return True
        if line == "!endif":
            if not self.ifenv:
                raise ScriptError("!endif without !ifenv")
            self.skip = self.ifenv.pop()[0]
            return True
        return False

    # -- commands ------------------------------------------------------------
    def command_line(self, linenum, line):
        if self._conditional(line) or self.skip:
            return
        g = self.group
        if g is not None:
            if self._group_directive(g, line):
                return
            if line[:2] in ("* ", "! ", "? "):
                self._untagged(g, line[2:], line[0])
                return
            if g.replies_pending > 0 and self._tagged_reply(g, line):
                return
        if g is None or g.replies_pending == 0:
            g = Group()
            self.group = g
            self.s.groups.append(g)
        if self.s.connections > 1:
            word = _first_word(line)
            if not word.isdigit() or int(word) == 0:
                raise ScriptError("Missing client index")
            idx = int(word)
            if idx > MAX_CONNECTIONS:
                raise ScriptError("Too many connections")
            if g.commands and g.conn != idx - 1:
                raise ScriptError("All pipelined commands must use the same connection")
            g.conn = idx - 1
            self.s.connections = max(self.s.connections, idx)
            line = line.split(" ", 1)[1] if " " in line else ""
        tag, reply, rest = get_cmd_reply(line)
        if tag == 0:
            if g.replies_pending > 0:
                raise ScriptError("Missing reply from previous command group")
        elif any(c.tag == tag for c in g.commands):
            raise ScriptError("Tag reused within command group")
        if not g.commands and rest[:2] in ("* ", "! ", "? "):
            self.s.banner_check = True
            self._untagged(g, rest[2:], rest[0])
            return
        if any("$" in data for _, _, _, data in split_literals(rest)[0]):
            raise Unsupported("$ inside a command's literal (its size is fixed at parse time)")
        cmd = Command(linenum, tag, rest, reply_args(reply) if reply is not None else None)
        if reply is None:
            g.replies_pending += 1
        g.commands.append(cmd)

    def _group_directive(self, g, line):
        if line.startswith("!sleep "):
            g.sleep = parse_interval(line[7:])
            return True
        if line.startswith("!output "):
            g.output.append(line[8:])
            return True
        if line == "!ordered":
            g.ordered = True
            return True
        return False

    def _tagged_reply(self, g, line):
        conn_idx = 0
        rest = line
        if self.s.connections > 1:
            word = _first_word(line)
            if word.isdigit() and int(word) > 0:
                conn_idx = int(word)
                rest = line.split(" ", 1)[1] if " " in line else ""
        tag, reply, _ = get_cmd_reply(rest)
        if reply is None:
            return False
        if self.s.connections > 1:
            if conn_idx == 0:
                raise ScriptError("Missing client index")
            if conn_idx - 1 != g.conn:
                raise ScriptError("Reply for wrong connection")
        cmd = next((c for c in g.commands if c.tag == tag), None)
        if cmd is None:
            raise ScriptError("Reply for unknown tag")
        if cmd.reply is not None:
            raise ScriptError("Command already has a reply")
        args = parse_args(rest)
        cmd.reply = args[1:] if tag else args
        g.replies_pending -= 1
        return True

    def _untagged(self, g, text, mark):
        args = parse_args(text)
        name = ""
        if args and args[0][0] == "atom":
            name = args[0][1]
            if name[:1] == "$" or name[:1].isdigit():
                name = args[1][1] if len(args) > 1 and args[1][0] == "atom" else ""
        add_directives(args, DirCtx(None, name, None, 0))
        if name[:3].lower() == "bye":
            if mark == "*":
                g.have_bye = True
            elif mark == "?":
                raise Unsupported("? BYE")
        g.untagged.append(Untagged(args, mark, text))

    def _finish(self):
        if self.ifenv:
            raise ScriptError("!ifenv not closed with !endif")
        if self.group is None:
            raise ScriptError("No commands in file")
        if self.group.replies_pending > 0:
            missing = next(c for c in self.group.commands if c.reply is None)
            raise ScriptError("Missing reply from command at line %d" % missing.linenum)
        has_logout = any(g.have_bye or any(c.text.lower() == "logout" for c in g.commands)
                         for g in self.s.groups)
        if not has_logout:
            g = Group()
            g.commands.append(Command(0, 0, "logout", reply_args("ok")))
            self.s.groups.append(g)


def parse_interval(text):
    m = re.match(r"\s*(\d+(?:\.\d+)?)\s*(ms|msecs?|s|secs?|)\s*$", text)
    if not m:
        raise ScriptError("Invalid !sleep value %s" % text)
    val = float(m.group(1))
    return val / 1000.0 if m.group(2).startswith("m") else val


class DirCtx:
    """Where a list sits inside an untagged reply pattern (for defaults)."""

    def __init__(self, parent, reply_name, prev_atom, parent_chain_idx):
        self.parent = parent
        self.reply_name = reply_name
        self.prev_atom = prev_atom
        self.parent_chain_idx = parent_chain_idx
        self.chain_count = 1
        self.directives = False


def _parse_directives(ctx, args):
    for kind, val in args:
        if kind != "atom" or not val.startswith("$!"):
            break
        d = val[2:]
        if d.startswith("unordered"):
            if d == "unordered":
                pass
            elif d[9:10] == "=" and d[10:].isdigit() and int(d[10:]) > 0:
                ctx.chain_count = int(d[10:])
            else:
                raise ScriptError("Broken $!unordered directive")
        elif not (d in ("ordered", "noextra", "extra") or d.startswith("ignore=")
                  or d.startswith("ban=")):
            raise ScriptError("Unknown directive: %s" % d)
        ctx.directives = True


def _default_directives(ctx):
    p = ctx.parent
    if p is None:
        return []
    name = ascii_lower(ctx.reply_name)
    top_child = p.parent is None and p.parent_chain_idx == 0
    if name in ("list", "lsub"):
        if top_child and ctx.parent_chain_idx == 1:
            return ["$!unordered"]
    elif name == "status":
        if top_child and ctx.parent_chain_idx == 2:
            return ["$!unordered=2"]
    elif name == "fetch":
        if top_child and ctx.parent_chain_idx == 2:
            return ["$!unordered=2"]
        if (p.parent is not None and p.parent.parent is None and p.parent.parent_chain_idx == 0
                and p.parent_chain_idx == 2 and ctx.prev_atom == "flags"):
            return ["$!unordered", "$!noextra", "$!ignore=\\recent",
                    "$!ignore=$HasAttachment", "$!ignore=$HasNoAttachment"]
    return []


def add_directives(args, ctx):
    """Check the $! directives of `args` (a pattern list, modified in place),
    insert the defaults where none are given, and recurse into sublists."""
    _parse_directives(ctx, args)
    if not ctx.directives:
        args[0:0] = [("atom", d) for d in _default_directives(ctx)]
    ndir = 0
    while ndir < len(args) and args[ndir][0] == "atom" and args[ndir][1].startswith("$!"):
        ndir += 1
    if (len(args) - ndir) % ctx.chain_count != 0:
        raise ScriptError("Invalid list argument count, chain size=%d" % ctx.chain_count)
    prev_atom = None
    for i, (kind, val) in enumerate(args):
        if kind == "atom":
            prev_atom = ascii_lower(val)
        if kind != "list":
            continue
        idx = i if ctx.chain_count == 1 else i % ctx.chain_count
        add_directives(val, DirCtx(ctx, ctx.reply_name, prev_atom, idx))


def load_script(path):
    """Parse one script; raises ScriptError."""
    s = Script(path)
    with open(path, "rb") as f:
        data = f.read().decode(ENC)
    mbox = path + ".mbox"
    if not os.path.exists(mbox):
        mbox = os.path.join(os.path.dirname(path), DEFAULT_MBOX)
    s.mbox_path = mbox
    ScriptParser(s).parse(data)
    return s


def list_scripts(directory):
    names = []
    for name in sorted(os.listdir(directory)):
        if name.startswith(".") or name.endswith(".mbox"):
            continue
        if os.path.isdir(os.path.join(directory, name)):
            continue
        names.append(name)
    return names


# ---------------------------------------------------------------------------
# mbox source

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_FROM_RE = re.compile(
    r"^From \S+\s+(?:[A-Za-z]{3}\s+)?([A-Za-z]{3})\s+(\d{1,2})\s+(\d{1,2}):(\d\d)(?::(\d\d))?"
    r"\s+(?:([+-]\d{4}|[A-Z]{3,4})\s+)?(\d{4})(?:\s+([+-]\d{4}))?\s*$")


def parse_from_line(line):
    """imap date-time string of an mbox From_ line, or None if it isn't one.
    Without a zone the time is local, like Dovecot's mbox_from_parse()."""
    m = _FROM_RE.match(line)
    if not m or m.group(1).capitalize() not in MONTHS:
        return None
    mon = MONTHS.index(m.group(1).capitalize())
    day, hh, mm = int(m.group(2)), int(m.group(3)), int(m.group(4))
    ss = int(m.group(5) or 0)
    year = int(m.group(7))
    zone = m.group(8) or m.group(6)
    if zone and zone[0] in "+-":
        off = (int(zone[1:3]) * 60 + int(zone[3:5])) * (1 if zone[0] == "+" else -1)
    else:
        t = time.mktime((year, mon + 1, day, hh, mm, ss, 0, 0, -1))
        off = time.localtime(t).tm_gmtoff // 60
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    return "%2d-%s-%04d %02d:%02d:%02d %s%02d%02d" % (day, MONTHS[mon], year, hh, mm, ss,
                                                      sign, off // 60, off % 60)


def load_mbox(path):
    """[(internaldate, message text with CRLF line ends)] of an mbox file."""
    with open(path, "rb") as f:
        lines = f.read().decode(ENC).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    msgs, cur, date = [], None, None
    for line in lines:
        line = line[:-1] if line.endswith("\r") else line
        d = parse_from_line(line) if line.startswith("From ") else None
        if d is not None and (cur is None or cur):
            if cur is not None:
                msgs.append((date, "".join(l + "\r\n" for l in cur)))
            cur, date = [], d
            continue
        if cur is None:
            raise ScriptError("Not a valid mbox file: %s" % path)
        cur.append(line)
    if cur:
        msgs.append((date, "".join(l + "\r\n" for l in cur)))
    if not msgs:
        raise ScriptError("Empty mbox file: %s" % path)
    return msgs


class MboxSource:
    """The per-test message cursor; wraps around at the end of the file."""

    def __init__(self, path):
        self.path = path
        self.msgs = None
        self.pos = 0

    def _load(self):
        if self.msgs is None:
            self.msgs = load_mbox(self.path)

    def count(self):
        self._load()
        return len(self.msgs)

    def next(self):
        self._load()
        msg = self.msgs[self.pos % len(self.msgs)]
        self.pos += 1
        return msg


# ---------------------------------------------------------------------------
# Connections


class TestFailure(Exception):
    """The first mismatch of a test."""

    def __init__(self, message, line=0, command="", expected="", got=""):
        Exception.__init__(self, message)
        self.message = message
        self.line = line
        self.command = command
        self.expected = expected
        self.got = got

    def describe(self):
        parts = [self.message]
        if self.line or self.command:
            parts.append("line %d: %s" % (self.line, _short(self.command)))
        if self.expected:
            parts.append("expected: %s" % _short(self.expected))
        if self.got:
            parts.append("got: %s" % _short(self.got))
        return " | ".join(parts)


class TestSkip(Exception):
    pass


def _short(s, limit=400):
    s = s.replace("\r\n", "\\r\\n").replace("\n", "\\n")
    return s if len(s) <= limit else s[:limit] + "..."


class Response:
    def __init__(self, kind, tag, args, raw):
        self.kind = kind   # "untagged", "tagged", "cont"
        self.tag = tag
        self.args = args
        self.raw = raw


_RESP_LIT_RE = re.compile(r"~?\{(\d+)\}\r\n$")


class Connection:
    """One raw IMAP connection: line/literal reading with a timeout on every
    read, and the little state the runner tracks (EXISTS, capabilities)."""

    def __init__(self, index, host, port, timeout, log=None):
        self.index = index
        self.timeout = timeout
        self.log = log
        self.buf = b""
        self.closed = False
        self.seen_bye = False
        self.exists = 0
        self.caps = set()
        self.tag_counter = 0
        self.user = None
        self.password = None
        self.mailbox_reset = False
        self.preauth = False
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise TestFailure("connect to %s:%s failed: %s" % (host, port, e))
        self.sock.settimeout(timeout)

    def next_tag(self):
        self.tag_counter += 1
        return "%d.%d" % (self.index + 1, self.tag_counter)

    def send(self, text):
        if self.log:
            self.log("C%d: %s" % (self.index + 1, _short(text, 2000)))
        try:
            self.sock.sendall(text.encode(ENC))
        except OSError as e:
            self.closed = True
            raise TestFailure("connection %d: send failed: %s" % (self.index + 1, e))

    def _fill(self, what):
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TestFailure("connection %d: timeout (%gs) waiting for %s"
                              % (self.index + 1, self.timeout, what))
        except OSError as e:
            data = b""
            if self.log:
                self.log("S%d: recv error %s" % (self.index + 1, e))
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def _read_line(self, what):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return line.decode(ENC)
            if not self._fill(what):
                return None

    def _read_exact(self, n, what):
        while len(self.buf) < n:
            if not self._fill(what):
                return None
        data, self.buf = self.buf[:n], self.buf[n:]
        return data.decode(ENC)

    def read_response(self, what="a response"):
        """The next complete response (literals inline), or None on EOF."""
        if self.closed and not self.buf:
            return None
        parts = []
        while True:
            line = self._read_line(what)
            if line is None:
                return None
            if not line.endswith("\r\n"):
                line = line[:-1] + "\r\n"
            m = _RESP_LIT_RE.search(line)
            parts.append(line)
            if not m:
                break
            data = self._read_exact(int(m.group(1)), what)
            if data is None:
                return None
            parts.append(data)
        raw = "".join(parts)[:-2]
        if self.log:
            self.log("S%d: %s" % (self.index + 1, _short(raw, 2000)))
        return self._classify(raw)

    @staticmethod
    def _classify(raw):
        if raw.startswith("+"):
            return Response("cont", None, parse_args(raw[1:]), raw)
        tag, _, rest = raw.partition(" ")
        if tag == "*":
            return Response("untagged", None, parse_args(rest), raw)
        return Response("tagged", tag, parse_args(rest), raw)

    def note_capabilities(self, args):
        """Remember capabilities from "* CAPABILITY ..." or an [CAPABILITY ..] code."""
        words = []
        if args and args[0][0] == "atom":
            head = args[0][1].upper()
            if head == "CAPABILITY":
                words = [a[1] for a in args[1:] if a[0] == "atom"]
            elif head in ("OK", "PREAUTH", "BYE", "NO", "BAD") and len(args) > 1 \
                    and args[1][0] == "atom" and args[1][1].upper() == "[CAPABILITY":
                for a in args[2:]:
                    if a[0] != "atom":
                        break
                    words.append(a[1].rstrip("]"))
                    if a[1].endswith("]"):
                        break
        if words:
            self.caps = set(w.upper() for w in words)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True


def split_literals(text):
    """Split a command with inline literals into [(text_before, tilde, size,
    data)] and the trailing text."""
    parts = []
    pos = 0
    while True:
        m = _CMD_LIT_RE.search(text, pos)
        if m is None:
            return parts, text[pos:]
        size = int(m.group(2))
        data = text[m.end():m.end() + size]
        parts.append((text[pos:m.start()], m.group(1), size, data))
        pos = m.end() + size


_CMD_LIT_RE = re.compile(r"(~?)\{(\d+)\+?\}\r\n")


# ---------------------------------------------------------------------------
# Matching (imaptest's test_expand_input / test_imap_match_args / _list)

MATCH = True


class Matcher:
    """Variables and the pattern matching against server replies."""

    def __init__(self):
        self.vars = {}
        self.added = []
        self.seqmap = []
        self.modseq_idx = 0
        self.modseq_val = 0

    # -- variables -------------------------------------------------------------
    def relative_seq(self, n):
        if n == 0:
            return "<zero seq>"
        if n > len(self.seqmap):
            return "<out of range>"
        if self.seqmap[n - 1] == 0:
            return "<expunged>"
        return str(self.seqmap[n - 1])

    @staticmethod
    def _var_name(s, i):
        """(name, index after it) for the variable starting at s[i] (after '$')."""
        if i < len(s) and s[i] == "{":
            end = s.find("}", i + 1)
            if end < 0:
                return None, len(s)
            return s[i + 1:end], end + 1
        j = i
        while j < len(s) and (s[j].isalnum() or s[j] == "_"):
            j += 1
        return s[i:j], j

    def expand_all(self, s, skip_uninitialized=False):
        """Expand $vars in a command (or a pattern, for reports). Raises
        TestFailure for an uninitialised variable unless skip_uninitialized."""
        out, i, n = [], 0, len(s)
        while i < n:
            c = s[i]
            if c != "$" or i + 1 == n:
                out.append(c)
                i += 1
                continue
            i += 1
            if s[i] == "$":
                out.append("$")
                i += 1
            elif s[i] == "!":
                while i + 1 < n and s[i + 1] != " ":
                    i += 1
                i += 1
            else:
                name, i = self._var_name(s, i)
                if name is None:
                    raise TestFailure("Missing '}'")
                out.append(self._lookup_for_expand(name, skip_uninitialized))
        return "".join(out)

    def _lookup_for_expand(self, name, skip_uninitialized):
        if name.isdigit():
            return self.relative_seq(int(name))
        if name.startswith("case:"):
            return name[5:]
        val = self.vars.get(name)
        if val is None:
            if not skip_uninitialized:
                raise TestFailure("Uninitialized variable: %s" % name)
            return "$"
        return val

    def expand_command(self, text):
        """expand_all() outside literals (literal sizes are fixed at parse time)."""
        parts, tail = split_literals(text)
        out = []
        for before, tilde, size, data in parts:
            out.append("%s%s{%d}\r\n%s" % (self.expand_all(before), tilde, size, data))
        out.append(self.expand_all(tail))
        return "".join(out)

    def _modseq_value(self, idx, value):
        if not value.isdigit():
            return "$modseq-not-number"
        if self.modseq_idx > idx:
            return "$modseq-order-mismatch"
        v = int(value)
        least = self.modseq_val + (idx - self.modseq_idx)
        result = value
        if v < least:
            result = "$modseq-at-least-%d" % least
            v = least
        self.modseq_idx, self.modseq_val = idx, v
        return result

    def expand_input(self, pat, inp):
        """Match one pattern string against one input string, binding unset
        variables. Returns (expanded pattern or None on mismatch, icase)."""
        icase = True
        out = []
        i, j, n = 0, 0, len(pat)
        while i < n:
            c = pat[i]
            if c != "$" or pat[i + 1:i + 2] == "$":
                if c == "$":
                    i += 1
                    c = pat[i]
                if j >= len(inp) or c.upper() != inp[j].upper():
                    return None, icase
                out.append(c)
                i += 1
                j += 1
                continue
            name, i = self._var_name(pat, i + 1)
            if name is None:
                return "", icase
            value = self._match_var(name, pat, i, inp, j)
            if name.startswith("case:"):
                icase = False
            out.append(value)
            if inp[j:j + len(value)] != value:
                return None, icase
            j += len(value)
        return "".join(out), icase

    def _match_var(self, name, pat, i, inp, j):
        if name.isdigit():
            return self.relative_seq(int(name))
        if name.startswith("case:"):
            return name[5:]
        value = self.vars.get(name) if name else None
        if value is not None:
            return value
        # unset: take the input up to the next literal character of the pattern
        stop = self._next_pattern_char(pat, i)
        k = j
        if stop is not None:
            while k < len(inp) and inp[k].upper() != stop.upper():
                k += 1
        else:
            k = len(inp)
        value = inp[j:k]
        m = re.match(r"modseq(\d+)$", name)
        if name == "":
            return value
        if m:
            value = self._modseq_value(int(m.group(1)), value)
            self.vars[name] = value
            return value
        self.vars[name] = value
        self.added.append(name)
        return value

    def _next_pattern_char(self, pat, i):
        """First character the text after a variable must start with."""
        if i >= len(pat):
            return None
        if pat[i] != "$" or pat[i + 1:i + 2] == "$":
            return pat[i]
        name, k = self._var_name(pat, i + 1)
        if name is not None and name.startswith("case:"):
            return name[5:6] or self._next_pattern_char(pat, k)
        val = self.vars.get(name) if name else None
        if name and name.isdigit():
            val = self.relative_seq(int(name))
        if val:
            return val[0]
        return self._next_pattern_char(pat, k)

    # -- argument lists ---------------------------------------------------------
    def match_args(self, match, args, maxn=None, prefix=False):
        """MATCH, or how many arguments matched before the first mismatch."""
        ret, mi, ai = 0, 0, 0
        while mi < len(match) and (maxn is None or maxn > 0):
            kind, val = match[mi]
            arg = args[ai] if ai < len(args) else None
            if kind == "nil":
                if arg is None or arg[0] != "nil":
                    return ret
            elif kind == "list":
                if arg is None or arg[0] != "list":
                    return ret
                sub = self.match_list(val, arg[1])
                if sub is not MATCH:
                    return ret + sub
            elif val == "$" and arg is not None and arg[0] == "list":
                pass
            elif val == "$]":
                while ai < len(args) and args[ai][0] == "atom" and "]" not in args[ai][1]:
                    ai += 1
            else:
                if not is_astring(arg):
                    return ret
                # imaptest compares C strings: both sides end at a NUL
                astr = arg[1].split("\0", 1)[0]
                mstr, icase = self.expand_input(val.split("\0", 1)[0], astr)
                if mstr is None:
                    return ret
                if prefix and mi == len(match) - 1:
                    astr = astr[:len(mstr)]
                if (astr.upper() != mstr.upper()) if icase else (astr != mstr):
                    return ret
            ret += 1
            mi += 1
            ai += 1
            if maxn is not None:
                maxn -= 1
        if prefix or ai >= len(args) or maxn == 0:
            return MATCH
        return ret

    def match_list(self, match, args):
        unordered, chain, noextra = False, 1, None
        ignores, bans = [], []
        k = 0
        while k < len(match) and match[k][0] == "atom" and match[k][1].startswith("$!"):
            d = match[k][1][2:]
            if d.startswith("unordered"):
                unordered = True
                if d[9:10] == "=":
                    chain = int(d[10:])
            elif d == "ordered":
                unordered = False
            elif d == "extra":
                noextra = False
            elif d == "noextra":
                noextra = True
            elif d.startswith("ignore="):
                ignores.append(d[7:].upper())
            elif d.startswith("ban="):
                bans.append(d[4:].upper())
            k += 1
        match = match[k:]
        if noextra is None:
            noextra = not unordered
        if not unordered:
            return self.match_args(match, args)
        if len(args) % chain != 0:
            return 0
        matched = [False] * len(args)
        ret = 0
        for mi in range(0, len(match), chain):
            for ai in range(0, len(args), chain):
                saved = dict(self.vars), len(self.added), (self.modseq_idx, self.modseq_val)
                if self.match_args(match[mi:mi + chain], args[ai:ai + chain], chain) is MATCH:
                    matched[ai] = True
                    break
                self.vars, self.added[saved[1]:] = saved[0], []
                self.modseq_idx, self.modseq_val = saved[2]
            else:
                return ret
            ret += 1
        for ai in range(0, len(args), chain):
            if matched[ai] or not is_astring(args[ai]):
                continue
            word = args[ai][1].upper()
            if noextra and word not in ignores:
                return ret
            if not noextra and word in bans:
                return ret
        return MATCH

    def revert_added(self):
        for name in self.added:
            self.vars.pop(name, None)
        self.added = []


# ---------------------------------------------------------------------------
# Test execution


class Options:
    def __init__(self, host, port, user, password, user2=None, password2=None,
                 mailbox="imaptest", timeout=10.0, log=None, cleanup=True):
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.user2 = user2
        self.password2 = password2 if password2 is not None else password
        self.mailbox = mailbox
        self.timeout = timeout
        self.log = log
        self.cleanup = cleanup


def mutf7_decode(s):
    """Modified UTF-7 (RFC 3501 5.1.3) to str; invalid input is returned as is."""
    import base64
    out, i = [], 0
    while i < len(s):
        if s[i] != "&":
            out.append(s[i])
            i += 1
            continue
        j = s.find("-", i)
        if j < 0:
            return s
        if j == i + 1:
            out.append("&")
        else:
            b64 = s[i + 1:j].replace(",", "/")
            b64 += "=" * (-len(b64) % 4)
            try:
                out.append(base64.b64decode(b64).decode("utf-16-be"))
            except ValueError:
                return s
        i = j + 1
    return "".join(out)


def mailbox_url(name):
    return urllib.parse.quote(mutf7_decode(name).encode("utf-8"), safe="/:@!$&'()*+,=-._~")


class TestRun:
    """Runs one Script against the server (imaptest's test-exec.c)."""

    def __init__(self, script, opts):
        self.s = script
        self.o = opts
        self.m = Matcher()
        self.source = MboxSource(script.mbox_path)
        self.conns = []
        self.group = None
        self.found = []
        self.best = []
        self.mismatches = 0
        self.first_extra = None
        self.pending = {}
        self.output = []
        self.touched = False

    # -- driver ---------------------------------------------------------------
    def run(self):
        """Returns ("PASS"|"FAIL"|"SKIP", detail)."""
        try:
            self._check_users()
            self._connect_all()
            self._setup()
            for g in self.s.groups:
                self._run_group(g)
            return "PASS", ""
        except TestSkip as e:
            return "SKIP", str(e)
        except TestFailure as e:
            return "FAIL", e.describe()
        finally:
            for c in self.conns:
                c.close()
            if self.touched and self.o.cleanup:
                self._cleanup_after()

    def _check_users(self):
        for idx, user in self.s.users.items():
            if user in ("$user2", "${user2}") and not self.o.user2:
                raise TestSkip("needs a second user (--user2)")

    def _credentials(self, idx):
        user = self.s.users.get(idx)
        if user is None:
            return self.o.user, self.o.password
        if user in ("$user2", "${user2}"):
            return self.o.user2, self.o.password2
        return user, self.o.password

    def _connect_all(self):
        for i in range(self.s.connections):
            c = Connection(i, self.o.host, self.o.port, self.o.timeout, self.o.log)
            c.user, c.password = self._credentials(i)
            self.conns.append(c)
            self._define_user_vars(i, c.user, c.password)
        self.m.vars["mailbox"] = self.o.mailbox
        self.m.vars["mailbox_url"] = mailbox_url(self.o.mailbox)
        for c in self.conns:
            self._read_banner(c)

    def _define_user_vars(self, i, user, password):
        sfx = "" if i == 0 else str(i + 1)
        self.m.vars["user" + sfx] = user
        self.m.vars["username" + sfx] = user.split("@", 1)[0]
        self.m.vars["domain" + sfx] = user.split("@", 1)[1] if "@" in user else self.o.host
        self.m.vars["password" + sfx] = password

    def _read_banner(self, c):
        r = c.read_response("the greeting")
        if r is None:
            raise TestFailure("connection %d closed before the greeting" % (c.index + 1))
        if r.kind != "untagged" or not r.args or r.args[0][0] != "atom" \
                or r.args[0][1].upper() not in ("OK", "PREAUTH"):
            raise TestFailure("Malformed banner", got=r.raw)
        c.preauth = r.args[0][1].upper() == "PREAUTH"
        c.note_capabilities(r.args)
        if self.s.banner_check and c.index == self.s.groups[0].conn:
            g = self.s.groups.pop(0)
            self._begin_group(g, c)
            self._match_untagged(r.args)
            self._finish_group(g)

    # -- set-up and clean-up ------------------------------------------------------
    def _simple(self, c, command, what, allow_no=False, allow_bad=False):
        """Send a set-up command and wait for its tagged reply; returns the
        untagged replies. Fails the test on NO (unless allow_no) or BAD
        (unless allow_bad)."""
        tag = c.next_tag()
        untagged = []
        done = []

        def on_response(r):
            if r.kind == "untagged":
                self._track_untagged(c, r.args)
                untagged.append(r)
            elif r.kind == "tagged" and r.tag == tag:
                done.append(r)

        self._send_text(c, tag, command, on_response)
        while not done:
            r = c.read_response("reply to " + what)
            if r is None:
                raise TestFailure("setup: connection %d closed during %s" % (c.index + 1, what))
            on_response(r)
        r = done[0]
        status = r.args[0][1].upper() if r.args and r.args[0][0] == "atom" else ""
        if status == "OK" or (status == "NO" and allow_no) or (status == "BAD" and allow_bad):
            c.note_capabilities(r.args)
            return untagged
        raise TestFailure("setup: %s failed" % what, command=_short(command, 200), got=r.raw)

    def _setup(self):
        st = STATES.index(self.s.state)
        first = self.conns[0]
        for c in self.conns:
            if st >= 1 and not c.preauth:
                self._simple(c, "LOGIN %s %s" % (imap_quote(c.user), imap_quote(c.password)),
                             "LOGIN")
            self._simple(c, "CAPABILITY", "CAPABILITY")
        missing = [cap for cap in self.s.capabilities if cap.upper() not in first.caps]
        if missing:
            raise TestSkip("server lacks capability %s" % " ".join(missing))
        if st >= 1:
            self.touched = True
            self._delete_test_mailboxes(first)
        if st >= 2 and self.o.mailbox.upper() != "INBOX":
            self._simple(first, "CREATE " + imap_quote(self.o.mailbox), "CREATE")
        if st >= 3:
            self._append_messages(first)
        if st >= 4:
            for c in self.conns:
                # The test mailbox exists for the first connection's user only;
                # connections of another user ("user N:") stay authenticated.
                if c.user != first.user:
                    continue
                c.exists = 0
                self._simple(c, "SELECT " + imap_quote(self.o.mailbox), "SELECT")

    def _append_messages(self, c):
        count = self.s.messages
        if count == MESSAGES_ALL:
            count = self.source.count()
        for _ in range(count):
            date, data = self.source.next()
            self._simple(c, self._append_text(imap_quote(self.o.mailbox) + ' "%s"' % date, data),
                         "APPEND")

    @staticmethod
    def _append_text(args, data):
        return "APPEND %s {%d}\r\n%s" % (args, len(data), data)

    def _delete_test_mailboxes(self, c):
        mask = imap_quote(self.o.mailbox + "*")
        boxes, subs = [], []
        for r in self._simple(c, 'LIST "" ' + mask, "LIST"):
            name = _list_name(r.args, "LIST")
            if name is not None:
                boxes.append(name)
        # LSUB is gone from IMAP4rev2: a server may refuse it
        for r in self._simple(c, 'LSUB "" ' + mask, "LSUB", allow_no=True, allow_bad=True):
            name = _list_name(r.args, "LSUB")
            if name is not None:
                subs.append(name)
        for name in sorted(set(boxes), key=lambda s: s.upper(), reverse=True):
            if name.upper() == "INBOX":
                self._empty_inbox(c)
            else:
                self._simple(c, "DELETE " + imap_quote(name), "DELETE", allow_no=True)
        for name in sorted(set(subs), key=lambda s: s.upper(), reverse=True):
            self._simple(c, "UNSUBSCRIBE " + imap_quote(name), "UNSUBSCRIBE", allow_no=True,
                         allow_bad=True)

    def _empty_inbox(self, c):
        self._simple(c, "SELECT INBOX", "SELECT")
        self._simple(c, "STORE 1:* +FLAGS.SILENT (\\Deleted)", "STORE", allow_no=True)
        self._simple(c, "CLOSE", "CLOSE")

    def _cleanup_after(self):
        try:
            c = Connection(0, self.o.host, self.o.port, self.o.timeout, self.o.log)
        except TestFailure:
            return
        try:
            if c.read_response("the greeting") is None:
                return
            self._simple(c, "LOGIN %s %s" % (imap_quote(self.o.user), imap_quote(self.o.password)),
                         "LOGIN")
            self._delete_test_mailboxes(c)
            self._simple(c, "LOGOUT", "LOGOUT")
        except TestFailure:
            pass
        finally:
            c.close()

    # -- sending ------------------------------------------------------------------
    def _send_text(self, c, tag, text, on_response):
        """Send one command (literals inline in `text`). Synchronising
        literals wait for "+"; responses read meanwhile go to on_response.
        Returns False if the server answered the command before taking all
        of its literals."""
        parts, tail = split_literals(text)
        prefix = tag + " "
        for before, tilde, size, data in parts:
            nonsync = "LITERAL+" in c.caps or ("LITERAL-" in c.caps and size <= 4096)
            c.send("%s%s%s{%d%s}\r\n" % (prefix, before, tilde, size, "+" if nonsync else ""))
            prefix = ""
            if not nonsync and not self._wait_continuation(c, tag, on_response):
                return False
            c.send(data)
        c.send(prefix + tail + "\r\n")
        return True

    def _wait_continuation(self, c, tag, on_response):
        while True:
            r = c.read_response("command continuation (+)")
            if r is None:
                raise TestFailure("connection %d closed while sending a literal" % (c.index + 1))
            if r.kind == "cont":
                return True
            on_response(r)
            if r.kind == "tagged" and r.tag == tag:
                return False

    def _command_wire_text(self, c, cmd):
        """The expanded command, with an mbox message added to APPENDs that
        carry none (as imaptest does)."""
        text = self.m.expand_command(cmd.text)
        low = text.lower()
        if low == "append":
            date, data = self.source.next()
            return self._append_text(imap_quote(self.o.mailbox) + ' "%s"' % date, data)
        for verb, skip in (("append ", 0), ("replace ", 1), ("uid replace ", 1)):
            if low.startswith(verb) and not append_has_body(text[len(verb):], skip):
                date, data = self.source.next()
                return "%s%s {%d}\r\n%s" % (text[:len(verb)].upper(), text[len(verb):],
                                            len(data), data)
        return text

    # -- groups -------------------------------------------------------------------
    def _begin_group(self, g, c):
        self.group = g
        self.found = [False] * len(g.untagged)
        self.best = [(-1, None)] * len(g.untagged)
        self.mismatches = 0
        self.first_extra = None
        self.m.seqmap = list(range(1, c.exists + 1))

    def _run_group(self, g):
        c = self.conns[g.conn]
        self._begin_group(g, c)
        if c.closed and not c.buf:
            raise self._fail("connection %d is closed" % (c.index + 1), g.commands[0])
        self.pending = {}
        for cmd in g.commands:
            self._send_command(c, cmd)
        # every read has its own timeout; this bounds a server that keeps
        # sending untagged replies without ever finishing the command
        limit = GROUP_TIMEOUT_FACTOR * self.o.timeout
        deadline = time.monotonic() + limit
        while self.pending:
            if time.monotonic() > deadline:
                raise self._fail("no tagged reply within %gs" % limit,
                                 next(iter(self.pending.values())))
            r = c.read_response("reply to: " + _short(g.commands[0].text, 80))
            if r is None:
                self._disconnected(c, g)
                break
            self._handle(c, r)
        self._finish_group(g)

    def _send_command(self, c, cmd):
        try:
            text = self._command_wire_text(c, cmd)
        except TestFailure as e:
            raise self._fail(e.message, cmd)
        tag = c.next_tag()
        cmd.wire_tag = tag
        self.pending[tag] = cmd
        verb = text.split(" ", 1)[0].upper()
        if verb in ("SELECT", "EXAMINE", "CLOSE", "UNSELECT", "LOGOUT"):
            c.exists = 0
            c.mailbox_reset = True
            self.m.seqmap = []
        self._send_text(c, tag, text, lambda r: self._handle(c, r))

    def _handle(self, c, r):
        if r.kind == "untagged":
            self._match_untagged(r.args)
            self._track_untagged(c, r.args)
        elif r.kind == "tagged":
            cmd = self.pending.pop(r.tag, None)
            if cmd is None:
                raise self._fail("Unexpected tagged reply: %s" % r.tag, got=r.raw)
            c.mailbox_reset = False
            self._match_tagged(c, cmd, r)
        # continuations outside literal sending are ignored (e.g. IDLE)

    def _match_tagged(self, c, cmd, r):
        c.note_capabilities(r.args)
        status = r.args[0][1].upper() if r.args and r.args[0][0] == "atom" else ""
        expected = cmd.reply
        if status == "BAD" and not (expected and expected[0] == ("atom", "bad")):
            raise self._fail("BAD reply for command", cmd, args_to_str(expected), r.raw)
        self.m.vars["tag"] = cmd.wire_tag
        try:
            ok = self.m.match_args(expected, r.args, prefix=True) is MATCH
        finally:
            self.m.vars.pop("tag", None)
        if not ok:
            raise self._fail("unexpected tagged reply", cmd, args_to_str(expected), r.raw)

    def _disconnected(self, c, g):
        if g.have_bye and c.seen_bye:
            for cmd in self.pending.values():
                if cmd.reply != [("atom", "")]:
                    raise self._fail("Command expected '%s' as tagged reply - only \"\" allowed "
                                     "when BYE happens" % args_to_str(cmd.reply), cmd)
            self.pending = {}
            return
        raise self._fail("Unexpected disconnection", next(iter(self.pending.values())))

    def _finish_group(self, g):
        self._check_missing(g)
        if self.first_extra is not None:
            raise self._fail("%d unexpected untagged replies received" % self.mismatches,
                             g.commands[0] if g.commands else None, "", self.first_extra)
        for line in g.output:
            self.output.append(self.m.expand_all(line, True))
            if self.o.log:
                self.o.log("!output: " + self.output[-1])
        if g.sleep:
            time.sleep(g.sleep)

    def _check_missing(self, g):
        missing = [i for i, ut in enumerate(g.untagged)
                   if ut.existence == "*" and not self.found[i]]
        if not missing:
            return
        i = missing[0]
        ut = g.untagged[i]
        expanded = self.m.expand_all(ut.text, True)
        best = self.best[i][1]
        raise self._fail("Missing %d untagged replies (%d mismatches)"
                         % (len(missing), self.mismatches),
                         g.commands[0] if g.commands else None,
                         "* " + expanded, ("* " + best) if best else "(no similar reply)")

    # -- untagged replies -----------------------------------------------------------
    def _match_untagged(self, args):
        g = self.group
        if not g.untagged and self.s.ignore_extra_untagged:
            return
        # status replies carry free text after the part a pattern names
        prefix = bool(args) and args[0][0] == "atom" \
            and args[0][1].upper() in ("OK", "NO", "BAD", "BYE")
        tag = None
        if g.commands and g.commands[0].wire_tag:
            tag = g.commands[0].wire_tag
        found_some = False
        self.m.added = []
        for i, ut in enumerate(g.untagged):
            if self.found[i]:
                continue
            if tag is not None:
                self.m.vars["tag"] = tag
            res = self.m.match_args(ut.args, args, prefix=prefix)
            if tag is not None:
                self.m.vars.pop("tag", None)
            if res is MATCH:
                if ut.existence == "!":
                    raise self._fail("Unexpected untagged match", None,
                                     "! " + self.m.expand_all(ut.text, True),
                                     "* " + args_to_str(args))
                self.found[i] = True
                found_some = True
                self.m.added = []
                if g.ordered:
                    break
                continue
            if res > self.best[i][0]:
                self.best[i] = (res, args_to_str(args))
            self.m.revert_added()
            if g.ordered and ut.existence == "*":
                break
        if not found_some:
            self.mismatches += 1
            if not self.s.ignore_extra_untagged and self.first_extra is None:
                self.first_extra = "* " + args_to_str(args)

    def _track_untagged(self, c, args):
        """EXISTS/EXPUNGE bookkeeping ($N renumbering), capabilities, BYE."""
        c.note_capabilities(args)
        if not args or args[0][0] != "atom":
            return
        head = args[0][1]
        if head.upper() == "BYE":
            c.seen_bye = True
            return
        if not head.isdigit() or len(args) < 2 or args[1][0] != "atom":
            return
        num, what = int(head), args[1][1].upper()
        if what == "EXISTS":
            if num < c.exists and not c.mailbox_reset:
                raise self._fail("Message count dropped %d -> %d" % (c.exists, num),
                                 got="* " + args_to_str(args))
            c.exists = num
        elif what == "EXPUNGE":
            if num == 0 or num > c.exists:
                raise self._fail("Tried to expunge sequence %d with only %d msgs"
                                 % (num, c.exists),
                                 got="* " + args_to_str(args))
            c.exists -= 1
            self._renumber(num)

    def _renumber(self, seq):
        seqs = self.m.seqmap
        if seq > len(seqs):
            return
        for i in range(seq - 1, len(seqs)):
            if seqs[i] == seq:
                seqs[i] = 0
            elif seqs[i] > seq:
                seqs[i] -= 1

    def _fail(self, message, cmd=None, expected="", got=""):
        if cmd is None and self.group is not None and self.group.commands:
            cmd = self.group.commands[0]
        line = cmd.linenum if cmd is not None else 0
        text = cmd.text if cmd is not None else ""
        return TestFailure(message, line, text, expected, got)


def _list_name(args, verb):
    if len(args) >= 4 and args[0][0] == "atom" and args[0][1].upper() == verb \
            and args[1][0] == "list" and is_astring(args[3]):
        return args[3][1]
    return None


def append_has_body(args_text, skip):
    """imaptest's append_has_body(): does "APPEND mailbox [(flags)] ["date"]"
    carry a message (literal or CATENATE) already?"""
    args = parse_args(args_text)[skip:]
    if not args:
        return False
    k = 0
    if len(args) > 1 and args[1][0] == "list":
        k += 1
    if len(args) > k + 1 and args[k + 1][0] == "str":
        k += 1
    nxt = args[k + 1] if len(args) > k + 1 else None
    if nxt is None:
        return False
    return nxt[0] == "lit" or (nxt[0] == "atom" and nxt[1].upper() == "CATENATE")


# ---------------------------------------------------------------------------
# CLI


def run_scripts(names, tests_dir, opts, out=sys.stdout, as_json=False):
    results = []
    for name in names:
        path = os.path.join(tests_dir, name)
        t0 = time.monotonic()
        try:
            script = load_script(path)
        except Unsupported as e:
            status, detail = "SKIP", "unsupported by the runner: %s" % e
        except (ScriptError, OSError, ValueError) as e:
            status, detail = "FAIL", "script parse error: %s" % e
        else:
            try:
                status, detail = TestRun(script, opts).run()
            except Exception as e:  # a runner bug: report it, go on
                import traceback
                if opts.log:
                    opts.log(traceback.format_exc())
                status, detail = "FAIL", "runner error: %s: %s" % (type(e).__name__, e)
        res = {"name": name, "status": status, "detail": detail,
               "seconds": round(time.monotonic() - t0, 3)}
        results.append(res)
        if not as_json:
            out.write(format_result(res) + "\n")
            out.flush()
    if as_json:
        out.write(json.dumps(results, indent=1) + "\n")
    else:
        counts = {k: sum(1 for r in results if r["status"] == k) for k in ("PASS", "FAIL", "SKIP")}
        out.write("# %d scripts: %d passed, %d failed, %d skipped\n"
                  % (len(results), counts["PASS"], counts["FAIL"], counts["SKIP"]))
    return results


def format_result(res):
    line = "%s %s" % (res["status"], res["name"])
    return line + ("  " + res["detail"] if res["detail"] else "")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run imaptest scripted tests against an IMAP server.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=143)
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--user2", help="second user, for scripts with 'user N: $user2'")
    ap.add_argument("--password2", help="password of --user2 (default: --password)")
    ap.add_argument("--mailbox", default="imaptest", help="test mailbox (default imaptest)")
    ap.add_argument("--tests", default=DEFAULT_TESTS_DIR, help="directory of scripts")
    ap.add_argument("--only", help="comma-separated script names")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per read (default 10)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    ap.add_argument("--no-cleanup", action="store_true",
                    help="leave the test mailboxes after each script")
    ap.add_argument("-v", "--verbose", action="store_true", help="log the traffic to stderr")
    ap.add_argument("--dovecot", action="store_true",
                    help="start a private Dovecot (tests/dovecot_imap.py) and run against it; "
                         "--host/--port/--user/--password/--user2 are then set for it")
    a = ap.parse_args(argv)
    if a.dovecot:
        return _main_with_dovecot(a)
    if not a.user or a.password is None:
        ap.error("--user and --password are required (or --dovecot)")
    return _main_run(a, ap)


def _main_with_dovecot(a):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import dovecot_imap
    users = {"testuser": "testpass", "testuser2": "testpass2"}
    with dovecot_imap.DovecotIMAP(users=users) as dc:
        a.host, a.port = dc.host, dc.port
        a.user, a.password, a.user2, a.password2 = "testuser", "testpass", "testuser2", "testpass2"
        out = sys.stderr if a.json else sys.stdout
        out.write("# server: %s (private instance, %s:%d)\n"
                  % (dovecot_imap.dovecot_version(), dc.host, dc.port))
        out.flush()
        return _main_run(a, None)


def _main_run(a, ap):
    log = (lambda s: sys.stderr.write(s + "\n")) if a.verbose else None
    opts = Options(a.host, a.port, a.user, a.password, a.user2, a.password2, a.mailbox,
                   a.timeout, log, not a.no_cleanup)
    if a.only:
        names = [n.strip() for n in a.only.split(",") if n.strip()]
        unknown = [n for n in names if not os.path.isfile(os.path.join(a.tests, n))]
        if unknown:
            sys.stderr.write("no such script(s) in %s: %s\n" % (a.tests, ", ".join(unknown)))
            return 2
    else:
        names = list_scripts(a.tests)
    results = run_scripts(names, a.tests, opts, as_json=a.json)
    return 1 if any(r["status"] == "FAIL" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

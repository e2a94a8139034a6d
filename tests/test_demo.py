"""`porcupine demo` (what `make demo` runs) with TLS everywhere (issue #14 item 7).

Runs the demo as a user would, reads what it prints, and uses the printed CA with python
`ssl` clients that verify the chain and the host: SMTP STARTTLS delivery on the SMTP port,
IMAPS and IMAP STARTTLS logins, POP3S, the HTTPS admin API with the printed token; then runs
the printed python and swaks commands themselves. Ctrl-C (SIGINT) must stop the demo and
every node it started; the test kills by pid whatever is left and fails if anything was.
"""

import imaplib
import os
import poplib
import random
import re
import shlex
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import urllib.request

import pytest

from cluster import _die_with_parent, porcupine_bin, wait_for

START_DEADLINE_S = 120  # three nodes with default password hashing on two shared cores
IO_TIMEOUT = 15
ALICE, ALICE_PW = "alice@example.test", "alice-secret"


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_base(nodes):
    """A base port with the demo's 10 ports per node all free."""
    for _ in range(200):
        base = random.randrange(20000, 30000, 10)
        if all(port_free(base + p) for p in range(10 * nodes)):
            return base
    pytest.skip("no free port range for the demo")


def node_pids(demo_dir):
    """Pids of `porcupine node` processes whose config lies in demo_dir."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"node" in argv and any(a.startswith(demo_dir.encode()) for a in argv):
            pids.append(int(entry))
    return pids


class Demo:
    """The demo process and what it printed."""

    def __init__(self, dir_, nodes, base):
        self.dir = dir_
        self.lines = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [porcupine_bin(), "demo", "--nodes", str(nodes), "--base-port", str(base),
             "--dir", dir_],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if "Ctrl-C stops the demo" in line:
                self.ready.set()

    def text(self):
        return "\n".join(self.lines)

    def wait_ready(self):
        deadline = time.monotonic() + START_DEADLINE_S
        while not self.ready.wait(0.2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the demo did not come up (rc %s):\n%s\n%s"
                                     % (self.proc.poll(), self.text(), self.node_logs()))

    def node_logs(self):
        out = []
        for name in sorted(os.listdir(self.dir)):
            log = os.path.join(self.dir, name, "node.log")
            if os.path.exists(log):
                with open(log, errors="replace") as f:
                    out.append("---- %s\n%s" % (log, f.read()[-4000:]))
        return "\n".join(out)

    def stop(self):
        """SIGINT as Ctrl-C; returns the pids of nodes left running (killed then)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.reader.join(timeout=10)
        left = node_pids(self.dir)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return left

    def printed(self, pattern):
        m = re.search(pattern, self.text())
        assert m, "the demo did not print %r:\n%s" % (pattern, self.text())
        return m

    def ports(self):
        """{node name: {listener: port}} from the node table."""
        out = {}
        for m in re.finditer(
                r"(node\d+) +SMTP (\d+) \(STARTTLS\) +submission (\d+) \(STARTTLS\) +"
                r"submissions (\d+) \(TLS\)\n +IMAP (\d+) \(STARTTLS\) +IMAPS (\d+) +"
                r"POP3 (\d+) \(STLS\) +POP3S (\d+)\n +admin https://127.0.0.1:(\d+)",
                self.text()):
            keys = ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s",
                    "admin")
            out[m.group(1)] = dict(zip(keys, (int(g) for g in m.groups()[1:])))
        return out


@pytest.fixture
def demo(tmp_path):
    made = []

    def start(nodes=2):
        d = Demo(str(tmp_path / "demo"), nodes, free_base(nodes))
        made.append(d)
        d.wait_ready()
        return d
    yield start
    for d in made:
        left = d.stop()
        assert not left, "node processes outlived the demo: %s" % left


def inbox_count_imaps(port, ctx):
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=IO_TIMEOUT)
    try:
        m.login(ALICE, ALICE_PW)
        typ, data = m.select("INBOX")
        assert typ == "OK", data
        return int(data[0])
    finally:
        m.logout()


def test_demo_serves_tls_everywhere_with_its_printed_ca(demo):
    d = demo(nodes=2)
    ca = d.printed(r"CA certificate: (\S+)").group(1)
    token = d.printed(r"admin token: +(\S+)").group(1)
    assert os.path.isfile(ca) and ca.startswith(d.dir)
    ports = d.ports()
    assert sorted(ports) == ["node1", "node2"], d.text()
    n1, n2 = ports["node1"], ports["node2"]
    ctx = ssl.create_default_context(cafile=ca)  # verifies the chain and 127.0.0.1

    # The printed commands use TLS.
    for want in ("swaks --tls", "openssl s_client -starttls imap -CAfile %s" % ca,
                 "ssl.create_default_context(cafile='%s')" % ca, "imaplib.IMAP4_SSL",
                 "--auth PLAIN --auth-user alice@example.test",
                 "--server 127.0.0.1:%d" % n1["submission"]):
        assert want in d.text(), want

    # Delivery over SMTP STARTTLS on node1's SMTP port, read over IMAPS on node2.
    with smtplib.SMTP("127.0.0.1", n1["smtp"], timeout=IO_TIMEOUT) as s:
        s.ehlo("client.example.org")
        assert s.has_extn("starttls")
        s.starttls(context=ctx)
        s.ehlo("client.example.org")
        s.sendmail("bob@example.test", [ALICE], "Subject: demo\r\n\r\nover TLS\r\n")
    wait_for(lambda: inbox_count_imaps(n2["imaps"], ctx) == 1, 30, interval=0.5,
             what="the message over IMAPS on node2")

    # IMAP STARTTLS and POP3S on node1.
    m = imaplib.IMAP4("127.0.0.1", n1["imap"], timeout=IO_TIMEOUT)
    m.starttls(ssl_context=ctx)
    m.login(ALICE, ALICE_PW)
    assert m.select("INBOX") == ("OK", [b"1"])
    m.logout()
    p = poplib.POP3_SSL("127.0.0.1", n1["pop3s"], context=ctx, timeout=IO_TIMEOUT)
    p.user(ALICE)
    p.pass_(ALICE_PW)
    assert p.stat()[0] == 1
    p.quit()

    # The admin API speaks HTTPS with the printed token, and the cluster is whole.
    req = urllib.request.Request("https://127.0.0.1:%d/v1/cluster" % n1["admin"],
                                 headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=IO_TIMEOUT, context=ctx) as r:
        body = r.read().decode()
    assert body.count('"state":"up"') == 2, body
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen("https://127.0.0.1:%d/v1/users" % n1["admin"],
                               timeout=IO_TIMEOUT, context=ctx)
    assert e.value.code == 401

    # The printed python one-liner works as printed.
    line = next(ln.strip() for ln in d.lines if "imaplib.IMAP4_SSL" in ln)
    r = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "('OK', [b'1'])" in r.stdout, r.stdout + r.stderr

    # And so does the printed swaks delivery (port 25 style STARTTLS, verified).
    if shutil.which("swaks"):
        line = next(ln.strip() for ln in d.lines if ln.strip().startswith("swaks --tls ") and
                    "--auth" not in ln)
        r = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "250 2.0.0 Ok: queued as" in r.stdout, \
            r.stdout[-3000:] + r.stderr[-2000:]
        wait_for(lambda: inbox_count_imaps(n1["imaps"], ctx) == 2, 30, interval=0.5,
                 what="the swaks message")
        # The printed submission line: STARTTLS, AUTH PLAIN as alice, to bob.
        line = next(ln.strip() for ln in d.lines if ln.strip().startswith("swaks --tls ") and
                    "--auth PLAIN" in ln)
        r = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "235 2.7.0" in r.stdout and "250 2.0.0" in r.stdout, \
            r.stdout[-3000:] + r.stderr[-2000:]

    left = d.stop()
    assert not left, "node processes outlived the demo: %s" % left
    assert d.proc.returncode == 0, d.text()
    assert "stopped." in d.text()

"""Real porcupine processes for the integration tests.

`Node` runs one `porcupine node` process in its own temporary directory with a
generated TOML config, waits until it serves (listen.json, then /readyz), and
offers the admin API, metrics and process control (kill, restart, stop) to the
tests. `NodeSet` owns every node a test started and guarantees that each
process is killed and each directory removed, whatever happened
(conftest.py's `nodes` fixture).

Nodes bind loopback addresses, except in the network-namespace tests
(netlab.py), which protect them with mutual TLS and HTTPS (`make_certs`).
Every wait is bounded by a deadline.
"""

import copy
import ctypes
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

DEFAULT_PASSWORD = "pw-secret"
DOMAIN = "example.test"
POSTMASTER = "postmaster@" + DOMAIN  # created by every node at start
HOSTNAME = "mx1.example.test"

START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 25.0  # the node drains sessions for at most 10 s


def porcupine_bin():
    path = os.environ.get("PORCUPINE_BIN")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(os.path.dirname(here), "build", "porcupine")
    return path


def base_config(data_dir, name="n1"):
    """The config every test node starts from; tests override keys."""
    return {
        "node": {"name": name, "data_dir": data_dir},
        "listen": {
            "smtp": "127.0.0.1:0",
            "pop3": "127.0.0.1:0",
            "imap": "127.0.0.1:0",
            "admin": "127.0.0.1:0",
            "cluster": "127.0.0.1:0",
        },
        "mail": {"domains": [DOMAIN], "hostname": HOSTNAME},
        # Cheap password hashing: the tests create hundreds of users.
        "auth": {"argon2_opslimit": 1, "argon2_memlimit_kib": 8},
        "limits": {"smtp_max_message_bytes": 26214400},
    }


def merge_config(base, overrides):
    """Returns base with overrides applied per section; a None value removes a key."""
    out = copy.deepcopy(base)
    for section, keys in (overrides or {}).items():
        if keys is None:
            out.pop(section, None)
            continue
        sec = out.setdefault(section, {})
        for key, value in keys.items():
            if value is None:
                sec.pop(key, None)
            else:
                sec[key] = value
    return out


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for the values we use
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError("cannot write %r as TOML" % (value,))


def _is_table_list(value):
    return isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value)


def to_toml(config):
    """A list of dicts becomes an array of tables ([[section.key]])."""
    lines = []
    for section, keys in config.items():
        lines.append("[%s]" % section)
        tables = []
        for key, value in keys.items():
            if _is_table_list(value):
                tables.append((key, value))
            else:
                lines.append("%s = %s" % (key, toml_value(value)))
        lines.append("")
        for key, entries in tables:
            for entry in entries:
                lines.append("[[%s.%s]]" % (section, key))
                for k, v in entry.items():
                    lines.append("%s = %s" % (k, toml_value(v)))
                lines.append("")
    return "\n".join(lines)


def _die_with_parent():
    # The node gets SIGKILL if the test runner dies (e.g. killed by CI), so no
    # process outlives the suite. PR_SET_PDEATHSIG = 1. Nodes must therefore be
    # started from the main thread, which lives for the whole run.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


def split_hostport(addr):
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


class NodeError(AssertionError):
    pass


class Node:
    """One porcupine node process. Create through NodeSet.start()."""

    def __init__(self, root, name, overrides=None, raw_config=None):
        self.root = root
        self.name = name
        self.data_dir = os.path.join(root, "data")
        self.config_path = os.path.join(root, "porcupine.toml")
        self.log_path = os.path.join(root, "node.log")
        self.config = merge_config(base_config(self.data_dir, name), overrides)
        self.raw_config = raw_config
        self.proc = None
        self.expect_dead = False  # set when a test stops or kills the node itself
        self.addrs = {}
        self.starts = 0
        self.final_log = None
        self.netns = None  # a network namespace name: spawn runs `ip netns exec NS porcupine`
        # An HTTPS admin API: the CA its certificate must chain to, and the token
        # http() then sends by itself (set by clusterkit.protect).
        self.admin_ca = None
        self.admin_token = None

    # ---- process control -------------------------------------------------

    def write_config(self):
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(self.raw_config if self.raw_config is not None else to_toml(self.config))

    def spawn(self, extra_args=()):
        """Starts the process without waiting for it to serve."""
        assert self.proc is None or self.proc.poll() is not None, "node already running"
        self.write_config()
        listen_json = os.path.join(self.data_dir, "listen.json")
        if os.path.exists(listen_json):
            os.unlink(listen_json)  # so a restart waits for the new ports
        log = open(self.log_path, "ab")
        self.starts += 1
        log.write(("\n===== start #%d =====\n" % self.starts).encode())
        log.flush()
        try:
            # `ip netns exec` execs the node in place: same pid, signals reach it.
            prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
            self.proc = subprocess.Popen(
                prefix + [porcupine_bin(), "node", "--config", self.config_path, *extra_args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                cwd=self.root,
            )
        finally:
            log.close()
        self.expect_dead = False
        self.addrs = {}
        return self.proc

    def start(self, deadline_s=START_DEADLINE_S):
        self.spawn()
        self.wait_ready(deadline_s)
        return self

    def wait_ready(self, deadline_s=START_DEADLINE_S):
        deadline = time.monotonic() + deadline_s
        listen_json = os.path.join(self.data_dir, "listen.json")
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise NodeError("node %s exited with %s before serving:\n%s"
                                % (self.name, rc, self.log_tail()))
            if os.path.exists(listen_json):
                try:
                    with open(listen_json, encoding="utf-8") as f:
                        self.addrs = json.load(f)
                    break
                except (ValueError, OSError):
                    pass  # written atomically, but be lenient
            if time.monotonic() > deadline:
                raise NodeError("node %s wrote no listen.json within %.0f s:\n%s"
                                % (self.name, deadline_s, self.log_tail()))
            time.sleep(0.02)
        for key in ("smtp", "pop3", "imap", "admin", "submission", "submissions", "imaps",
                    "pop3s"):
            if key in self.config.get("listen", {}) and self.config["listen"][key]:
                assert key in self.addrs, "listen.json lacks %r: %r" % (key, self.addrs)
        while True:
            try:
                status, _ = self.http("GET", "/readyz", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise NodeError("node %s exited with %s before ready:\n%s"
                                % (self.name, self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                raise NodeError("node %s not ready within %.0f s:\n%s"
                                % (self.name, deadline_s, self.log_tail()))
            time.sleep(0.02)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        """Sends sig; for SIGKILL also waits until the process is gone."""
        self.expect_dead = True
        if self.alive():
            self.proc.send_signal(sig)
            if sig == signal.SIGKILL:
                self.proc.wait(timeout=STOP_DEADLINE_S)

    def pause(self):
        """SIGSTOP: the process stays, silent. Undo with resume()."""
        assert self.alive(), "node %s is not running" % self.name
        self.expect_dead = True  # a stopped process must not fail the test on its own
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        """SIGCONT after pause(); the node is expected to live again."""
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
            self.expect_dead = False

    def wait_exit(self, timeout=STOP_DEADLINE_S):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise NodeError("node %s did not exit within %.0f s:\n%s"
                            % (self.name, timeout, self.log_tail()))

    def stop(self, timeout=STOP_DEADLINE_S):
        """SIGTERM, wait, and assert the clean exit status 0."""
        self.expect_dead = True
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit(timeout)
        if rc != 0:
            raise NodeError("node %s exited with %s after SIGTERM (expected 0):\n%s"
                            % (self.name, rc, self.log_tail()))
        return rc

    def restart(self, sig=signal.SIGTERM):
        """Stops (cleanly for SIGTERM/SIGINT, else by sig) and starts again."""
        if sig in (signal.SIGTERM, signal.SIGINT):
            self.expect_dead = True
            if self.alive():
                self.proc.send_signal(sig)
            rc = self.wait_exit()
            assert rc == 0, "exit status %s after %s:\n%s" % (rc, sig, self.log_tail())
        else:
            self.kill(sig)
            self.wait_exit()
        return self.start()

    def force_kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                pass

    def dump_stacks(self, why, timeout=60):
        """Appends every thread's stack (gdb, if installed) to the node's log: the
        evidence for a hang. The process stays as it was (gdb detaches)."""
        if not self.alive() or not shutil.which("gdb"):
            return
        try:
            r = subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-nx",
                                "-ex", "thread apply all bt"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=timeout)
            text = r.stdout + r.stderr
        except (OSError, subprocess.TimeoutExpired) as e:
            text = "gdb failed: %r" % (e,)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write("\n===== %s: thread stacks (gdb) =====\n%s\n" % (why, text))

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, limit=20000):
        text = self.log_text() if self.final_log is None else self.final_log
        return text[-limit:]

    # ---- addresses -------------------------------------------------------

    @property
    def smtp(self):
        return split_hostport(self.addrs["smtp"])

    @property
    def pop3(self):
        return split_hostport(self.addrs["pop3"])

    @property
    def imap(self):
        return split_hostport(self.addrs["imap"])

    @property
    def submission(self):
        return split_hostport(self.addrs["submission"])

    @property
    def submissions(self):
        return split_hostport(self.addrs["submissions"])

    @property
    def imaps(self):
        return split_hostport(self.addrs["imaps"])

    @property
    def pop3s(self):
        return split_hostport(self.addrs["pop3s"])

    @property
    def admin(self):
        """host:port of the admin API; loopback when it binds every address."""
        host, port = split_hostport(self.addrs["admin"])
        if host in ("0.0.0.0", "::"):
            return "%s:%d" % ("127.0.0.1" if host == "0.0.0.0" else "[::1]", port)
        return self.addrs["admin"]

    @property
    def admin_url(self):
        return "%s://%s" % ("https" if self.admin_ca else "http", self.admin)

    def admin_args(self):
        """The CLI options that reach this node's admin API."""
        args = ["--admin", self.admin_url]
        if self.admin_ca:
            args += ["--ca-file", self.admin_ca]
        if self.admin_token:
            args += ["--token", self.admin_token]
        return args

    # ---- admin API -------------------------------------------------------

    def http(self, method, path, body=None, timeout=30, headers=None):
        """Returns (status, parsed JSON or text or None). Over HTTPS (verifying the
        certificate against admin_ca) with admin_token when they are set."""
        data = None
        hdrs = dict(headers or {})
        if self.admin_token:
            hdrs.setdefault("Authorization", "Bearer " + self.admin_token)
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.admin_url + path, data=data, method=method,
                                     headers=hdrs)
        context = ssl.create_default_context(cafile=self.admin_ca) if self.admin_ca else None
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        text = raw.decode("utf-8", "replace")
        if not text:
            return status, None
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def add_user(self, address, password=DEFAULT_PASSWORD):
        status, body = self.http("POST", "/v1/users", {"address": address, "password": password})
        assert status == 201, "adding %s: HTTP %s %r" % (address, status, body)
        return address

    def add_users(self, addresses, password=DEFAULT_PASSWORD):
        for a in addresses:
            self.add_user(a, password)
        return list(addresses)

    def users(self):
        status, body = self.http("GET", "/v1/users")
        assert status == 200, (status, body)
        return body["users"]

    def wait_postmaster(self, mailbox=None, timeout=30):
        """Waits for the default postmaster mailbox, which every node creates at start
        when it is missing (docs/config.md, mail.postmaster)."""
        mailbox = mailbox or POSTMASTER
        wait_for(lambda: mailbox in self.users(), timeout, what="the postmaster mailbox")

    def metrics_text(self, timeout=30):
        status, body = self.http("GET", "/metrics", timeout=timeout)
        assert status == 200, (status, body)
        return body

    def metrics(self, timeout=30):
        """{'name{label="v",...}': value} from the Prometheus text."""
        out = {}
        for line in self.metrics_text(timeout).splitlines():
            if not line or line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            out[key.strip()] = float(value)
        return out

    def metric(self, name, **labels):
        """One sample's value; labels must match exactly (0 if absent)."""
        return sample(self.metrics(), name, **labels)


def sample(samples, name, **labels):
    """The value of name{labels} in a Node.metrics() dict; 0 if absent."""
    want = {k: str(v) for k, v in labels.items()}
    for key, value in samples.items():
        mname, _, rest = key.partition("{")
        if mname != name:
            continue
        got = {}
        for part in filter(None, rest.rstrip("}").split(",")):
            k, _, v = part.partition("=")
            got[k.strip()] = v.strip().strip('"')
        if got == want:
            return value
    return 0.0


class NodeSet:
    """Every node of one test; close() kills them and removes their directories."""

    def __init__(self):
        self.nodes = []
        self.roots = []

    def make(self, name="n1", overrides=None, raw_config=None):
        root = tempfile.mkdtemp(prefix="porcupine-it-%s-" % name)
        self.roots.append(root)
        node = Node(root, name, overrides=overrides, raw_config=raw_config)
        self.nodes.append(node)
        return node

    def start(self, name="n1", overrides=None):
        return self.make(name, overrides).start()

    def tempdir(self, prefix):
        """A temporary directory removed with the nodes' (certificates, say)."""
        root = tempfile.mkdtemp(prefix="porcupine-it-%s-" % prefix)
        self.roots.append(root)
        return root

    def close(self):
        """Stops every node; returns a list of problems (unexpected deaths, bad exits)."""
        problems = []
        for node in self.nodes:
            if node.proc is None:
                continue
            rc = node.proc.poll()
            if rc is not None and not node.expect_dead:
                problems.append("node %s died unexpectedly with status %s" % (node.name, rc))
            elif rc is None:
                # Every test ends with a clean shutdown: SIGTERM must give status 0.
                # SIGCONT first, in case the test left the node stopped (SIGSTOP).
                node.proc.send_signal(signal.SIGCONT)
                node.proc.send_signal(signal.SIGTERM)
                try:
                    rc = node.proc.wait(timeout=STOP_DEADLINE_S)
                    if rc != 0:
                        problems.append("node %s exited with status %s after SIGTERM"
                                        % (node.name, rc))
                except subprocess.TimeoutExpired:
                    node.dump_stacks("ignored SIGTERM for %.0f s" % STOP_DEADLINE_S)
                    problems.append("node %s ignored SIGTERM for %.0f s (thread stacks at the "
                                    "end of its log)" % (node.name, STOP_DEADLINE_S))
            node.force_kill()
            node.final_log = node.log_text()
        if not os.environ.get("PORCUPINE_KEEP_TMP"):
            for root in self.roots:
                shutil.rmtree(root, ignore_errors=True)
        return problems


def make_certs(out_dir, names, hosts, days=None):
    """`porcupine cluster certs`: a CA and a certificate per node name in out_dir
    (ca.crt, NAME.crt, NAME.key), naming the given hosts. Returns out_dir."""
    args = [porcupine_bin(), "cluster", "certs", "--out", out_dir, "--nodes", ",".join(names),
            "--hosts", ",".join(hosts)]
    if days:
        args += ["--days", str(days)]
    r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "cluster certs: rc %s\n%s%s" % (r.returncode, r.stdout, r.stderr)
    return out_dir


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate until truthy; returns its value or raises after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def port_closed(host, port):
    try:
        with socket.create_connection((host, port), timeout=1):
            return False
    except OSError:
        return True

"""Shared machinery of the bench/ experiments (python3 stdlib only).

* `Session`: owns every process an experiment starts and every temporary
  directory it makes. Whatever happens (exception, Ctrl-C, SIGTERM, SIGHUP),
  `close()` kills each process it started by pid (and, for daemons that fork,
  the descendants of that pid) and removes the directories. Children also get
  SIGKILL from the kernel if this Python process dies (PR_SET_PDEATHSIG).
* `Cluster` / `Node`: porcupine node processes on loopback with generated TOML
  configs, ports picked free, seeds = every other node, a cluster secret and
  cheap argon2; `wait_converged()` waits for /readyz on every node and for
  /v1/cluster on each to list every node "up".
* `run_bench()`: runs `porcupine bench ... --json --progress`, parses the final
  JSON line and the per-second progress lines, and calls a hook at the edges
  of the measured window (to sample CPU, metrics, queue sizes exactly there).
* `proc_cpu_s()`, `tree_cpu_s()`: CPU-seconds of a process (and of a whole
  process tree, including reaped children) from /proc.
* `metrics()`: one node's /metrics as {name: summed value}.
* `write_csv()`, `gnuplot()`, `table()`, `machine_info()`: output helpers.

Only loopback addresses are used. Every wait has a deadline.
"""

import atexit
import csv
import ctypes
import datetime
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
RESULTS = os.path.join(BENCH_DIR, "results")
DOMAIN = "example.test"
PASSWORD = "bench-pw"
USER_PREFIX = "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def porcupine_bin():
    return os.environ.get("PORCUPINE_BIN") or os.path.join(REPO, "build", "porcupine")


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---------------------------------------------------------------- processes


def _die_with_parent():
    # PR_SET_PDEATHSIG = 1: the child gets SIGKILL when this process dies.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)
    except OSError:
        pass


def _node_preexec():
    _die_with_parent()
    # Core dumps of node processes (kernel.core_pattern decides where; with the
    # default "core" they land in the node's directory, our temp dir): a node that
    # crashes leaves a backtrace for its report (Cluster.deaths).
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        pass


def _proc_stat(pid):
    """Fields of /proc/PID/stat after the command name, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rfind(")") + 2:].split()
    return rest  # rest[0] = state (field 3), rest[1] = ppid (field 4) ...


def proc_ppid(pid):
    st = _proc_stat(pid)
    return int(st[1]) if st else None


def proc_cpu_s(pid, children=False):
    """utime + stime (+ cutime + cstime with children) of pid, in seconds; None if gone."""
    st = _proc_stat(pid)
    if st is None:
        return None
    # fields 14..17 (utime stime cutime cstime) are rest[11..14]
    ticks = int(st[11]) + int(st[12])
    if children:
        ticks += int(st[13]) + int(st[14])
    return ticks / CLK_TCK


def all_pids():
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            out.append(int(name))
    return out


def descendants(root):
    """Every live descendant pid of root (not root itself)."""
    children = {}
    for pid in all_pids():
        pp = proc_ppid(pid)
        if pp is not None:
            children.setdefault(pp, []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def tree_cpu_s(root):
    """CPU-seconds of a process tree: root's own time plus what it reaped
    (cutime/cstime) plus every live descendant's own time and reaped time.
    A delta of this over an interval is the CPU the tree used in it, also for
    children that were born and reaped meanwhile (as long as root reaps them,
    as the Postfix and Dovecot masters do)."""
    total = proc_cpu_s(root, children=True)
    if total is None:
        return None
    for pid in descendants(root):
        c = proc_cpu_s(pid, children=True)
        if c is not None:
            total += c
    return total


def ctx_switches(pid):
    """Context switches (voluntary + involuntary) summed over every thread of pid."""
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def thread_count(pid):
    try:
        return len(os.listdir("/proc/%d/task" % pid))
    except OSError:
        return None


def proc_alive(pid):
    st = _proc_stat(pid)
    return st is not None and st[0] != "Z"


def proc_starttime(pid):
    """Start time of pid (clock ticks since boot): with the pid, names one process."""
    st = _proc_stat(pid)
    return int(st[19]) if st else None


REGISTRY = "/var/tmp/porcupine-bench-registry"


def reap_stale_sessions():
    """Daemons and directories left by an earlier experiment whose Python process
    died without cleaning up (SIGKILL): a detached daemon (the Postfix master)
    outlives it. Each Session records what it started in REGISTRY; here we stop
    the recorded processes of dead sessions, by pid, only if the pid still names
    the same process (same start time), and remove their directories."""
    try:
        names = os.listdir(REGISTRY)
    except OSError:
        return
    for name in names:
        path = os.path.join(REGISTRY, name)
        try:
            with open(path) as f:
                rec = json.load(f)
        except (OSError, ValueError):
            continue
        if proc_starttime(rec["owner"]) == rec["owner_start"]:
            continue  # that session is still running
        for pid, start in rec.get("daemons", []):
            if proc_starttime(pid) == start:
                log("stopping pid %d left by an earlier bench session" % pid)
                kill_tree(pid)
        for d in rec.get("dirs", []):
            if d.startswith("/var/tmp/porcupine-bench-"):
                shutil.rmtree(d, ignore_errors=True)
        try:
            os.unlink(path)
        except OSError:
            pass


class Session:
    """Owns processes and directories; close() undoes everything, once."""

    def __init__(self, keep_tmp=False):
        self.procs = []          # subprocess.Popen we started
        self.daemons = []        # (pid, stop_fn) of daemons that detached (Postfix master)
        self.dirs = []
        self.keep_tmp = keep_tmp or bool(os.environ.get("BENCH_KEEP_TMP"))
        self.closed = False
        self._lock = threading.Lock()
        reap_stale_sessions()
        os.makedirs(REGISTRY, exist_ok=True)
        self._registry = os.path.join(REGISTRY, "%d.json" % os.getpid())
        atexit.register(self.close)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _record(self):
        rec = {"owner": os.getpid(), "owner_start": proc_starttime(os.getpid()),
               "daemons": [[pid, proc_starttime(pid)] for pid, _ in self.daemons],
               "dirs": [] if self.keep_tmp else self.dirs}
        tmp = self._registry + ".tmp"
        with open(tmp, "w") as f:
            json.dump(rec, f)
        os.replace(tmp, self._registry)

    def _on_signal(self, signum, frame):
        signal.signal(signum, signal.SIG_DFL)
        raise SystemExit(128 + signum)

    def mkdtemp(self, prefix):
        d = tempfile.mkdtemp(prefix="porcupine-bench-%s-" % prefix, dir="/var/tmp")
        os.chmod(d, 0o755)
        self.dirs.append(d)
        self._record()
        return d

    def popen(self, argv, log_path=None, cores=False, **kw):
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL
        try:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT,
                                 preexec_fn=_node_preexec if cores else _die_with_parent, **kw)
        finally:
            if log_path:
                out.close()
        self.procs.append(p)
        return p

    def adopt_daemon(self, pid, stop_fn=None):
        """A daemon we started that detached from us (it is not our child)."""
        self.daemons.append((pid, stop_fn))
        self._record()

    def forget_daemon(self, pid):
        self.daemons = [d for d in self.daemons if d[0] != pid]
        self._record()

    def close(self):
        with self._lock:
            if self.closed:
                return
            self.closed = True
        for pid, stop_fn in self.daemons:
            kill_tree(pid, stop_fn)
        self.daemons = []
        for p in self.procs:
            if p.poll() is None:
                kids = descendants(p.pid)
                try:
                    p.kill()
                except OSError:
                    pass
                for k in kids:
                    try:
                        os.kill(k, signal.SIGKILL)
                    except OSError:
                        pass
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        self.procs = []
        for p in list(_bench_procs):
            if p.poll() is None:
                p.kill()
        if not self.keep_tmp:
            for d in self.dirs:
                shutil.rmtree(d, ignore_errors=True)
        self.dirs = []
        try:
            os.unlink(self._registry)
        except OSError:
            pass


def kill_tree(pid, stop_fn=None, timeout=10.0):
    """Stops a daemon we started: stop_fn() (a clean stop) if given, then
    SIGKILL to pid and to every descendant still there."""
    if stop_fn is not None and proc_alive(pid):
        try:
            stop_fn()
        except Exception:  # noqa: BLE001 — fall through to SIGKILL
            pass
        deadline = time.monotonic() + timeout
        while proc_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    for p in [pid] + descendants(pid):
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


# ---------------------------------------------------------------- network

_used_ports = set()


def free_port():
    """A loopback TCP port that is free now and not handed out before by us."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _used_ports:
            _used_ports.add(port)
            return port
    raise RuntimeError("no free port")


def http(addr, method, path, body=None, timeout=10):
    """(status, parsed JSON or text)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request("http://%s%s" % (addr, path), data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def parse_metrics(text):
    """{'name': value summed over label sets}; also 'name{labels}' keys."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            v = float(value)
        except ValueError:
            continue
        key = key.strip()
        out[key] = v
        name = key.partition("{")[0]
        if name != key:
            out[name] = out.get(name, 0.0) + v
    return out


def metrics(admin, timeout=5):
    status, text = http(admin, "GET", "/metrics", timeout=timeout)
    if status != 200:
        raise RuntimeError("GET %s/metrics: %s" % (admin, status))
    return parse_metrics(text if isinstance(text, str) else json.dumps(text))


# ---------------------------------------------------------------- porcupine


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(repr(v))


def to_toml(cfg):
    lines = []
    for section, keys in cfg.items():
        lines.append("[%s]" % section)
        for k, v in keys.items():
            lines.append("%s = %s" % (k, toml_value(v)))
        lines.append("")
    return "\n".join(lines)


class Node:
    def __init__(self, session, root, name, overrides):
        self.session = session
        self.root = root
        self.name = name
        self.data_dir = os.path.join(root, "data")
        self.config_path = os.path.join(root, "porcupine.toml")
        self.log_path = os.path.join(root, "node.log")
        self.ports = {k: free_port() for k in ("smtp", "pop3", "admin", "cluster")}
        self.config = {
            "node": {"name": name, "data_dir": self.data_dir},
            "listen": {k: "127.0.0.1:%d" % p for k, p in self.ports.items()},
            "cluster": {},
            "mail": {"domains": [DOMAIN], "hostname": "%s.%s" % (name, DOMAIN)},
            "auth": {"argon2_opslimit": 1, "argon2_memlimit_kib": 8},
        }
        self.config["listen"]["imap"] = ""
        for section, keys in (overrides or {}).items():
            self.config.setdefault(section, {}).update(keys)
        self.proc = None
        self.starts = 0
        self.expect_dead = False  # set when we stop or kill the node ourselves

    smtp = property(lambda self: "127.0.0.1:%d" % self.ports["smtp"])
    pop3 = property(lambda self: "127.0.0.1:%d" % self.ports["pop3"])
    admin = property(lambda self: "127.0.0.1:%d" % self.ports["admin"])
    cluster_addr = property(lambda self: "127.0.0.1:%d" % self.ports["cluster"])
    pid = property(lambda self: self.proc.pid if self.proc else None)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def spawn(self):
        assert not self.alive()
        with open(self.config_path, "w") as f:
            f.write(to_toml(self.config))
        lj = os.path.join(self.data_dir, "listen.json")
        if os.path.exists(lj):
            os.unlink(lj)
        self.starts += 1
        with open(self.log_path, "ab") as f:
            f.write(("\n===== start #%d =====\n" % self.starts).encode())
        self.proc = self.session.popen([porcupine_bin(), "node", "--config", self.config_path],
                                       log_path=self.log_path, cwd=self.root, cores=True)
        self.expect_dead = False
        return self

    def ready(self):
        try:
            status, _ = http(self.admin, "GET", "/readyz", timeout=2)
            return status == 200
        except OSError:
            return False

    def wait_ready(self, deadline_s=60):
        deadline = time.monotonic() + deadline_s
        while not self.ready():
            if self.proc.poll() is not None:
                raise RuntimeError("node %s exited with %s:\n%s"
                                   % (self.name, self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                raise RuntimeError("node %s not ready in %.0f s:\n%s"
                                   % (self.name, deadline_s, self.log_tail()))
            time.sleep(0.05)

    def kill(self, sig=signal.SIGKILL):
        self.expect_dead = True
        if self.alive():
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self, timeout=30):
        self.expect_dead = True
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode if self.proc else None

    def cpu_s(self):
        return proc_cpu_s(self.pid) if self.alive() else None

    def metrics(self):
        return metrics(self.admin)

    def view(self):
        status, body = http(self.admin, "GET", "/v1/cluster", timeout=5)
        return body if status == 200 and isinstance(body, dict) else None

    def backtrace(self):
        """Every thread's backtrace from this node's core file, if there is one and gdb."""
        gdb = shutil.which("gdb")
        cores = [os.path.join(self.root, f) for f in os.listdir(self.root)
                 if f == "core" or f.startswith("core.")]
        if not gdb or not cores:
            return ""
        core = max(cores, key=os.path.getmtime)
        try:
            r = subprocess.run([gdb, "-batch", "-nx", "-ex", "echo == crashing thread ==\\n",
                                "-ex", "bt 60", "-ex", "echo == all threads ==\\n",
                                "-ex", "thread apply all bt 15", porcupine_bin(), core],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            lines = [ln for ln in r.stdout.decode("utf-8", "replace").splitlines()
                     if not ln.startswith(("[New LWP", "warning:"))]
            return "\n".join(lines)[:200000] + "\n"
        except (OSError, subprocess.TimeoutExpired):
            return ""

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-n:]
        except OSError:
            return ""


class Cluster:
    """N porcupine nodes on loopback; every node lists every other as a seed."""

    def __init__(self, session, n, overrides=None, per_node=None, secret=None,
                 io_threads=None, log_level="warn", tls=False):
        """tls: mutual TLS between the nodes, from certificates of a new cluster CA made
        by `porcupine cluster certs` (the admin API stays plain HTTP on loopback)."""
        self.session = session
        self.root = session.mkdtemp("cluster%d" % n)
        self.secret = secret or "bench-%016x" % random.getrandbits(64)
        self.tls = tls
        self.nodes = []
        certs = os.path.join(self.root, "certs")
        if tls:
            names = ",".join("n%d" % (i + 1) for i in range(n))
            subprocess.run([porcupine_bin(), "cluster", "certs", "--out", certs, "--nodes", names,
                            "--hosts", "127.0.0.1"], check=True, stdout=subprocess.DEVNULL,
                           stdin=subprocess.DEVNULL)
        for i in range(n):
            ov = {"cluster": {"secret": self.secret}, "log": {"level": log_level}}
            if tls:
                name = "n%d" % (i + 1)
                ov["cluster"].update({"tls_ca_file": os.path.join(certs, "ca.crt"),
                                      "tls_cert_file": os.path.join(certs, name + ".crt"),
                                      "tls_key_file": os.path.join(certs, name + ".key")})
            if io_threads is not None:
                ov["node"] = {"io_threads": io_threads}
            for src in (overrides or {}), ((per_node or {}).get(i) or {}):
                for section, keys in src.items():
                    ov.setdefault(section, {}).update(keys)
            root = os.path.join(self.root, "n%d" % (i + 1))
            os.makedirs(root)
            self.nodes.append(Node(session, root, "n%d" % (i + 1), ov))
        for node in self.nodes:
            node.config["cluster"]["seeds"] = [o.cluster_addr for o in self.nodes if o is not node]

    def start(self, deadline_s=90):
        t0 = time.monotonic()
        for node in self.nodes:
            node.spawn()
        for node in self.nodes:
            node.wait_ready(deadline_s)
        self.wait_converged(deadline_s)
        log("%d node(s) up and converged in %.1f s" % (len(self.nodes), time.monotonic() - t0))
        return self

    def live(self):
        return [n for n in self.nodes if n.alive()]

    def wait_converged(self, deadline_s=60, nodes=None):
        """Every node in `nodes` (default: all live) ready, and each one's
        /v1/cluster lists exactly those nodes, all "up", none rebuilding."""
        nodes = nodes or self.live()
        want = sorted(n.name for n in nodes)
        deadline = time.monotonic() + deadline_s
        last = None
        while True:
            ok = True
            for node in nodes:
                if not node.ready():
                    ok, last = False, "%s not ready" % node.name
                    break
                v = node.view()
                if v is None:
                    ok, last = False, "%s: no view" % node.name
                    break
                up = sorted(m["name"] for m in v.get("members", []) if m.get("state") == "up")
                if up != want or not v.get("ready") or v.get("buckets_rebuilding", 0):
                    ok, last = False, "%s sees up=%s ready=%s rebuilding=%s" % (
                        node.name, up, v.get("ready"), v.get("buckets_rebuilding"))
                    break
            if ok:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("cluster did not converge in %.0f s: %s" % (deadline_s, last))
            for node in nodes:
                if node.proc.poll() is not None:
                    raise RuntimeError("node %s died:\n%s" % (node.name, node.log_tail()))
            time.sleep(0.1)

    def deaths(self, save_as=None):
        """Nodes that exited although nobody stopped or killed them: [(name, rc)].
        With save_as, their logs are copied to bench/results/logs/<save_as>-<name>.log."""
        out = []
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is not None and not node.expect_dead:
                out.append((node.name, node.proc.returncode))
                if save_as:
                    d = os.path.join(RESULTS, "logs")
                    os.makedirs(d, exist_ok=True)
                    path = os.path.join(d, "%s-%s.log" % (save_as, node.name))
                    shutil.copyfile(node.log_path, path)
                    bt = node.backtrace()
                    if bt:
                        with open(path, "a") as f:
                            f.write("\n===== backtrace from the core dump (gdb) =====\n" + bt)
                    log("node %s died (exit %s); its log%s: %s"
                        % (node.name, node.proc.returncode, " and backtrace" if bt else "",
                           os.path.relpath(path, REPO)))
                node.expect_dead = True  # reported once
        return out

    def stop(self):
        for node in self.nodes:
            node.expect_dead = True
            if node.alive():
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop()

    def smtp_list(self, nodes=None):
        return ",".join(n.smtp for n in (nodes or self.nodes))

    def pop3_list(self, nodes=None):
        return ",".join(n.pop3 for n in (nodes or self.nodes))

    def admin_list(self, nodes=None):
        return ",".join(n.admin for n in (nodes or self.nodes))

    def pids(self):
        return [n.pid for n in self.nodes if n.alive()]

    def cpu_s(self):
        """Summed CPU-seconds of the live node processes."""
        return sum(c for c in (n.cpu_s() for n in self.nodes) if c is not None)

    def metric_sum(self, name):
        """name summed over every live node's /metrics (0 for a node that does not answer)."""
        total = 0.0
        for n in self.live():
            try:
                total += n.metrics().get(name, 0.0)
            except (OSError, RuntimeError):
                pass
        return total

    def metrics_all(self):
        out = {}
        for n in self.live():
            try:
                out[n.name] = n.metrics()
            except (OSError, RuntimeError):
                out[n.name] = {}
        return out


def sum_metric(snapshot, name):
    """Sum of name over a {node: metrics} snapshot."""
    return sum(m.get(name, 0.0) for m in snapshot.values())


# ---------------------------------------------------------------- the bench

_bench_procs = set()  # running `porcupine bench` processes (killed by Session.close)

PROGRESS_RE = re.compile(
    r"\[\s*([0-9.]+)s\]\s+(\w+)\s+delivered\s+([0-9.]+)/s\s+retrieved\s+([0-9.]+)/s\s+errors\s+(\d+)")


class BenchResult:
    def __init__(self, report, progress, edges, rc, stderr_tail, argv):
        self.report = report      # the JSON report (dict)
        self.progress = progress  # [(t_s, phase, delivered_per_s, retrieved_per_s, errors)]
        self.edges = edges        # {"start": hook result, "end": hook result}
        self.rc = rc
        self.stderr_tail = stderr_tail
        self.argv = argv

    def __getitem__(self, k):
        return self.report.get(k)

    def get(self, k, default=None):
        return self.report.get(k, default)


class BenchRun:
    """One `porcupine bench ... --json --progress` process, started at once.

    Its progress lines (one a second) are parsed as they come; each carries the
    time since the bench's run clock started, so the clock's start on our
    monotonic clock is arrival - t (the earliest estimate wins). That lets the
    caller act at given run times (`clock_start()`, `at(t)`) and lets
    edge_hook(kind) run at the edges of the measured window ("start" at
    warmup, "end" at warmup + duration; exact once warmup >= ~1.5 s).
    tick_hook(line) runs on every progress line. `wait()` returns a BenchResult.
    The caller's thread stays free (nodes restarted meanwhile must be spawned
    from the main thread: their PR_SET_PDEATHSIG is tied to the spawning thread)."""

    def __init__(self, smtp, pop3=None, admin=None, duration=10, warmup=2, drain=3, sessions=16,
                 readers=None, users=1000, pids=None, create_users=True, extra=(),
                 edge_hook=None, tick_hook=None, timeout_s=None, threads=1):
        argv = [porcupine_bin(), "bench", "--smtp", smtp, "--duration", str(duration),
                "--warmup", str(warmup), "--drain", str(drain), "--sessions", str(sessions),
                "--users", str(users), "--threads", str(threads), "--json", "--progress"]
        if pop3:
            argv += ["--pop3", pop3]
        if readers is not None:
            argv += ["--readers", str(readers)]
        if admin:
            argv += ["--admin", admin]
        if not create_users:
            argv += ["--no-create-users"]
        if pids:
            argv += ["--pids", ",".join(str(p) for p in pids)]
        argv += [str(x) for x in extra]
        self.argv = argv
        self.warmup, self.duration = warmup, duration
        self.edge_hook, self.tick_hook = edge_hook, tick_hook
        self.limit = timeout_s or (warmup + duration + drain + 600)
        self.progress, self.stderr_lines, self.edges = [], [], {}
        self._start = None
        self._cond = threading.Condition()
        self._chunks = []
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        _bench_procs.add(self.proc)
        self._threads = [threading.Thread(target=self._read_stderr, daemon=True),
                         threading.Thread(target=self._read_stdout, daemon=True)]
        if edge_hook is not None:
            self._threads.append(threading.Thread(target=self._edges, daemon=True))
        for t in self._threads:
            t.start()

    def _read_stdout(self):
        self._chunks.append(self.proc.stdout.read())

    def _read_stderr(self):
        for raw in self.proc.stderr:
            now = time.monotonic()
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stderr_lines.append(line)
            del self.stderr_lines[:-200]
            m = PROGRESS_RE.search(line)
            if not m:
                continue
            t = float(m.group(1))
            tup = (t, m.group(2), float(m.group(3)), float(m.group(4)), int(m.group(5)))
            self.progress.append(tup)
            with self._cond:
                est = now - t
                if self._start is None or est < self._start:
                    self._start = est
                self._cond.notify_all()
            if self.tick_hook:
                try:
                    self.tick_hook(tup)
                except Exception as e:  # noqa: BLE001
                    log("tick hook failed: %r" % e)

    def running(self):
        return self.proc.poll() is None

    def clock_start(self, timeout=None):
        """The bench clock's start (time.monotonic()), once the first progress line came."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._start is None and self.running():
                if deadline is not None and time.monotonic() > deadline:
                    break
                self._cond.wait(0.2)
            return self._start

    def now(self):
        """Seconds on the bench clock (None before the first progress line)."""
        s = self._start
        return None if s is None else time.monotonic() - s

    def sleep_until(self, t):
        """Sleeps until bench clock time t (or the bench ends); returns False if it ended."""
        start = self.clock_start()
        if start is None:
            return False
        while self.running():
            left = start + t - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(left, 0.05))
        return False

    def _edges(self):
        if self.clock_start() is None:
            return
        for kind, offset in (("start", self.warmup), ("end", self.warmup + self.duration)):
            while True:
                at = self._start + offset
                now = time.monotonic()
                if now >= at or not self.running():
                    break
                time.sleep(min(0.05, at - now))
            if not self.running() and kind == "start":
                return
            self.edges[kind + "_at"] = time.monotonic()
            self.edges[kind] = self.edge_hook(kind)
            self.edges[kind + "_hook_s"] = time.monotonic() - self.edges[kind + "_at"]

    def wait(self):
        try:
            self.proc.wait(timeout=self.limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        _bench_procs.discard(self.proc)
        for t in self._threads:
            t.join(10)
        out = b"".join(self._chunks)
        report = None
        for line in reversed(out.decode("utf-8", "replace").splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    report = json.loads(line)
                    break
                except ValueError:
                    pass
        if report is None:
            raise RuntimeError("bench exited %s without a JSON report:\n%s\n%s"
                               % (self.proc.returncode, " ".join(self.argv),
                                  "\n".join(self.stderr_lines[-30:])))
        return BenchResult(report, self.progress, self.edges, self.proc.returncode,
                           self.stderr_lines[-30:], self.argv)


def run_bench(*args, **kw):
    """BenchRun(...).wait(): runs the bench to its end; see BenchRun."""
    return BenchRun(*args, **kw).wait()


# ---------------------------------------------------------------- output


def ensure_results():
    os.makedirs(RESULTS, exist_ok=True)
    return RESULTS


def write_csv(path, rows, fields=None):
    fields = fields or list(rows[0].keys())
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: fmt_cell(r.get(k)) for k in fields})
    log("wrote %s" % os.path.relpath(path, REPO))


def fmt_cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return "%.6g" % v
    return v


def table(rows, cols):
    """Text table; cols = [(header, key, format)]."""
    cells = [[h for h, _, _ in cols]]
    for r in rows:
        line = []
        for _, k, f in cols:
            v = r.get(k) if isinstance(k, str) else k(r)
            line.append("-" if v is None or v == "" else (f % v if f else str(v)))
        cells.append(line)
    widths = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    out = []
    for j, c in enumerate(cells):
        out.append("  ".join(s.rjust(widths[i]) if i else s.ljust(widths[i])
                             for i, s in enumerate(c)))
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown_table(rows, cols):
    head = "| " + " | ".join(h for h, _, _ in cols) + " |"
    sep = "| " + " | ".join("---" for _ in cols) + " |"
    lines = [head, sep]
    for r in rows:
        vals = []
        for _, k, f in cols:
            v = r.get(k) if isinstance(k, str) else k(r)
            vals.append("-" if v is None or v == "" else (f % v if f else str(v)))
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines)


def gnuplot(script, png):
    """Runs a gnuplot script (the terminal and output are set here)."""
    exe = shutil.which("gnuplot")
    if not exe:
        log("gnuplot not installed (run bench/install-deps): no plot %s" % png)
        return False
    full = 'set terminal pngcairo size 1000,600 font "DejaVu Sans,11"\nset output %s\n%s\n' % (
        json.dumps(png), script)
    r = subprocess.run([exe], input=full.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if r.returncode != 0:
        log("gnuplot failed: %s" % r.stderr.decode("utf-8", "replace")[-2000:])
        return False
    log("wrote %s" % os.path.relpath(png, REPO))
    return True


def machine_info():
    def run(cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  timeout=10).stdout.decode().strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    df = run(["df", "-h", "--output=source,fstype,size,avail", "/var/tmp"]).splitlines()
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kib / 1048576, 1),
        "disk": " ".join(df[-1].split()) if df else "",
        "kernel": platform.release(),
        "loadavg": " ".join("%.2f" % x for x in os.getloadavg()),
    }


def machine_line():
    m = machine_info()
    return ("%(date)s; %(nproc)s cores (%(cpu)s), %(ram_gib)s GiB RAM, /var/tmp on %(disk)s, "
            "Linux %(kernel)s, load average before the run %(loadavg)s" % m)


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def median_rows(rows, key, numeric):
    """One row per distinct rows[key] (first-seen order): the median of each
    numeric field over the runs, the other fields from the first run, and
    "runs" = how many there were. A single run gives itself back."""
    order, groups = [], {}
    for r in rows:
        k = r[key]
        if k not in groups:
            order.append(k)
            groups[k] = []
        groups[k].append(r)
    out = []
    for k in order:
        g = groups[k]
        m = dict(g[0])
        m["runs"] = len(g)
        for f in numeric:
            m[f] = median(r.get(f) for r in g)
        for f in ("errors",):
            if f in m:
                m[f] = sum(r.get(f) or 0 for r in g)
        for f in ("node_deaths", "error_samples"):
            if f in m:
                m[f] = " ".join(sorted({r.get(f) for r in g if r.get(f)}))
        out.append(m)
    return out


def check_binary():
    b = porcupine_bin()
    if not os.access(b, os.X_OK):
        sys.exit("no porcupine binary at %s (make build, or set PORCUPINE_BIN)" % b)

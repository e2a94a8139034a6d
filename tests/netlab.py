"""Network namespaces for real partitions between cluster nodes.

Each node runs in its own network namespace with a veth into one bridge in the
root namespace (10.77.X.254/24), where the test process talks to every node.
`NetLab.partition(a, b)` installs nftables drop rules inside the namespaces of
both index groups; `heal()` deletes them. `add_address()` gives the root
namespace more addresses on the bridge (for several listeners there on one
port). Names carry the test process's pid; the subnet X is one that no link of
the root namespace uses, chosen and taken under a lock file, so parallel test
processes never share one. `lab(n)` (the conftest fixture `netlab`) creates
everything and deletes every namespace, veth and the bridge whatever happened,
after removing what earlier runs killed with SIGKILL left behind. Root only:
`lab` skips otherwise (also tests/test_acme.py and tests/test_plaintext.py).
"""

import contextlib
import fcntl
import os
import re
import shutil
import socket
import subprocess

import pytest

NFT = "/usr/sbin/nft"
BRIDGE_NF = "/proc/sys/net/bridge/bridge-nf-call-iptables"
CHECK_PORT = 7999
# Taken while a subnet is chosen and its bridge address added.
SUBNET_LOCK = "/run/porcupine-netlab.lock"


def run(*args, ns=None, check=True, input=None, timeout=20):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("%s: rc %s: %s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    return r


class NetLab:
    """A bridge and n namespaces, each with one veth port and address 10.77.X.i."""

    def __init__(self, n):
        pid = os.getpid()
        self.n = n
        self.subnet = None  # chosen in setup
        self.bridge = "pb%d" % pid
        self.names = ["pc%dn%d" % (pid, i + 1) for i in range(n)]
        self.hosts = []
        self.gateway = None
        self.veths = ["pv%dh%d" % (pid, i + 1) for i in range(n)]
        self.created_ns = []
        self.created_links = []
        self.bridge_nf_restore = None
        self.partitioned = set()

    def setup(self):
        run("ip", "link", "add", self.bridge, "type", "bridge")
        self.created_links.append(self.bridge)
        with open(SUBNET_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.subnet = _free_subnet(os.getpid())
            self.hosts = ["10.77.%d.%d" % (self.subnet, i + 1) for i in range(self.n)]
            self.gateway = "10.77.%d.254" % self.subnet
            run("ip", "addr", "add", self.gateway + "/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for i, (ns, host, veth) in enumerate(zip(self.names, self.hosts, self.veths)):
            run("ip", "netns", "add", ns)
            self.created_ns.append(ns)
            peer = "pv%dp%d" % (os.getpid(), i + 1)
            run("ip", "link", "add", veth, "type", "veth", "peer", "name", peer)
            self.created_links.append(veth)
            run("ip", "link", "set", peer, "netns", ns)
            run("ip", "link", "set", veth, "master", self.bridge, "up")
            run("ip", "link", "set", "lo", "up", ns=ns)
            run("ip", "addr", "add", host + "/24", "dev", peer, ns=ns)
            run("ip", "link", "set", peer, "up", ns=ns)
        if not self.connected():
            # Bridged frames may go through the root namespace's iptables/nft
            # hooks (br_netfilter); a filtering ruleset there would cut the
            # namespaces off. Turn that off for the test and restore it after.
            value = _read(BRIDGE_NF)
            if value == "1":
                self.bridge_nf_restore = value
                with open(BRIDGE_NF, "w") as f:
                    f.write("0")
            assert self.connected(), (
                "namespaces cannot reach each other over bridge %s (%s=%s); ruleset:\n%s"
                % (self.bridge, BRIDGE_NF, value, run(NFT, "list", "ruleset", check=False).stdout))

    def add_address(self, last):
        """Gives the root namespace the address 10.77.X.last on the bridge too; returns it.
        It goes away with the bridge."""
        addr = "10.77.%d.%d" % (self.subnet, last)
        assert last not in range(1, self.n + 1) and addr != self.gateway, addr
        run("ip", "addr", "add", addr + "/24", "dev", self.bridge)
        return addr

    def connected(self):
        """TCP from the root namespace to every namespace and from each to n1."""
        probe = ("import socket,sys\n"
                 "s=socket.socket(); s.bind((sys.argv[1], %d)); s.listen(16)\n"
                 "print('listening', flush=True)\n"
                 "s.settimeout(15)\n"
                 "for _ in range(int(sys.argv[2])): s.accept()[0].close()\n" % CHECK_PORT)
        ok = True
        listeners = []
        try:
            for i, ns in enumerate(self.names):
                count = self.n if i == 0 else 1  # n1 also takes the others' probes
                p = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", probe,
                                      self.hosts[i], str(count)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                listeners.append(p)
                assert p.stdout.readline().strip() == "listening", p.stderr.read()
            connect = ("import socket,sys\n"
                       "socket.create_connection((sys.argv[1], %d), timeout=3).close()\n"
                       % CHECK_PORT)
            for host in self.hosts:
                try:
                    socket.create_connection((host, CHECK_PORT), timeout=3).close()
                except OSError:
                    ok = False
            for ns in self.names[1:]:
                r = run("/usr/bin/python3", "-c", connect, self.hosts[0], ns=ns, check=False)
                ok = ok and r.returncode == 0
        finally:
            for p in listeners:
                try:
                    p.wait(timeout=5 if ok else 0.1)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        return ok

    def partition(self, side_a, side_b):
        """Drops all traffic between the namespaces of the two index groups."""
        for group, other in ((side_a, side_b), (side_b, side_a)):
            addrs = ", ".join(self.hosts[j] for j in other)
            rules = ("table inet pcpart {\n"
                     " chain in { type filter hook input priority 0; policy accept;"
                     " ip saddr { %s } drop; }\n"
                     " chain out { type filter hook output priority 0; policy accept;"
                     " ip daddr { %s } drop; }\n"
                     "}\n" % (addrs, addrs))
            for i in group:
                run(NFT, "-f", "-", ns=self.names[i], input=rules)
                self.partitioned.add(i)

    def heal(self):
        for i in sorted(self.partitioned):
            run(NFT, "delete", "table", "inet", "pcpart", ns=self.names[i])
        self.partitioned.clear()

    def teardown(self):
        problems = []
        for ns in self.created_ns:
            r = run("ip", "netns", "del", ns, check=False)
            if r.returncode != 0:
                problems.append(r.stderr.strip())
        for link in reversed(self.created_links):
            if run("ip", "link", "show", link, check=False).returncode == 0:
                r = run("ip", "link", "del", link, check=False)
                # A veth goes away by itself when the namespace of its peer is deleted, some
                # time after `ip netns del` returned: gone between show and del is no problem.
                if r.returncode != 0 and run("ip", "link", "show", link,
                                             check=False).returncode == 0:
                    problems.append(r.stderr.strip())
        if self.bridge_nf_restore is not None:
            with open(BRIDGE_NF, "w") as f:
                f.write(self.bridge_nf_restore)
        return problems


def remove_leftovers():
    """Deletes namespaces and links of earlier runs whose test process is gone
    (a runner killed with SIGKILL cannot run its finalizers)."""
    def dead(pid):
        return not os.path.exists("/proc/%s" % pid)
    for line in run("ip", "netns", "list", check=False).stdout.splitlines():
        m = re.match(r"^pc(\d+)n\d+\b", line)
        if m and dead(m.group(1)):
            run("ip", "netns", "del", line.split()[0], check=False)
    for line in run("ip", "-o", "link", "show", check=False).stdout.splitlines():
        m = re.match(r"^\d+: (p[bv](\d+)(?:h\d+)?)[@:]", line)
        if m and dead(m.group(2)):
            run("ip", "link", "del", m.group(1), check=False)


def _free_subnet(pid):
    """A third octet X in 10..209 (from the pid on) that no address of the root namespace
    has in 10.77.X.0/24. REQUIRES: SUBNET_LOCK held until the bridge has its address."""
    used = set(int(m) for m in re.findall(r"\binet 10\.77\.(\d+)\.",
                                          run("ip", "-o", "-4", "addr", "show").stdout))
    for i in range(200):
        x = 10 + (pid + i) % 200
        if x not in used:
            return x
    raise AssertionError("no free 10.77.X.0/24 for the network namespaces: %s" % sorted(used))


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


@contextlib.contextmanager
def lab(n):
    """A set-up NetLab of n namespaces; skips the test without root (no `ip netns add`)."""
    if not shutil.which("ip"):
        pytest.skip("no `ip` (iproute2): network namespaces need it")
    probe = "pcprobe%d" % os.getpid()
    r = run("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        pytest.skip("cannot create network namespaces (`ip netns add`: %s); "
                    "tests with real partitions need root" % r.stderr.strip())
    run("ip", "netns", "del", probe)
    remove_leftovers()
    net = NetLab(n)
    try:
        net.setup()
        yield net
    finally:
        problems = net.teardown()
        assert not problems, "network teardown: %s" % problems

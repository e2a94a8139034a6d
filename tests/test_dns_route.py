"""Destination resolution for outbound mail against a real DNS server.

An unbound from Debian, started on a free loopback port, is authoritative
(local-zone static) for test zones: two MXs of different preference, equal
preferences, no MX but an address, a null MX, a nonexistent domain, an MX
whose host has no address, an MX through a CNAME, an MX naming an address, an
MX naming this node (as best and as backup), a refusing zone. Each plan is
read from `porcupine dns route DOMAIN --config F --json` (docs/outbound.md,
"DNS"), whose [dns] servers point at that unbound.
"""

import json
import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from cluster import porcupine_bin

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
OWN_HOST = "mx.porcupine.test"

ZONE = [
    # two MXs of different preference; the second has both families
    "two.test. MX 20 mx2.two.test.",
    "two.test. MX 10 mx1.two.test.",
    "mx1.two.test. A 192.0.2.1",
    "mx2.two.test. A 192.0.2.2",
    "mx2.two.test. AAAA 2001:db8::2",
    # three equal preferences and a worse one
    "equal.test. MX 10 a.equal.test.",
    "equal.test. MX 10 b.equal.test.",
    "equal.test. MX 10 c.equal.test.",
    "equal.test. MX 20 d.equal.test.",
    "a.equal.test. A 192.0.2.11",
    "b.equal.test. A 192.0.2.12",
    "c.equal.test. A 192.0.2.13",
    "d.equal.test. A 192.0.2.14",
    # no MX, an address: implicit MX
    "implicit.test. A 192.0.2.30",
    # null MX (RFC 7505)
    "null.test. MX 0 .",
    # an MX whose host has no address (the name does not exist) ...
    "noaddr.test. MX 10 ghost.noaddr.test.",
    # ... and one whose host exists without an address record
    "txtonly.test. MX 10 host.txtonly.test.",
    'host.txtonly.test. TXT "no address here"',
    # an MX through a CNAME (RFC 2181 §10.3 forbids it; followed like Postfix)
    "cname.test. MX 10 alias.cname.test.",
    "alias.cname.test. CNAME real.cname.test.",
    "real.cname.test. A 192.0.2.40",
    # an MX naming an address (used as is, like Postfix)
    "literal.test. MX 10 192.0.2.50.",
    # this node is the best MX: a loop
    "self.test. MX 10 %s." % OWN_HOST,
    "self.test. MX 20 backup.self.test.",
    "backup.self.test. A 192.0.2.60",
    # this node is a backup MX: only the better one is kept
    "backup.test. MX 10 primary.backup.test.",
    "backup.test. MX 20 %s." % OWN_HOST,
    "primary.backup.test. A 192.0.2.70",
    "%s. A 192.0.2.99" % OWN_HOST,
]


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (at the time of asking)."""
    while True:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()


def dns_query(port, name, qtype=15, timeout=0.5):
    """One UDP query; the reply's RCODE, or None without a reply."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, ("127.0.0.1", port))
        try:
            data, _ = s.recvfrom(4096)
        except socket.timeout:
            return None
    if len(data) < 12 or struct.unpack(">H", data[:2])[0] != qid:
        return None
    return data[3] & 0x0F


def unbound_conf(directory, port):
    lines = [
        "server:",
        "  interface: 127.0.0.1",
        "  port: %d" % port,
        "  do-ip6: no",
        "  do-daemonize: no",
        '  username: ""',
        '  chroot: ""',
        '  directory: "%s"' % directory,
        '  pidfile: ""',
        "  use-syslog: no",
        '  logfile: ""',
        "  verbosity: 1",
        "  access-control: 127.0.0.0/8 allow",
        # unsigned test zones, no trust anchor: no validator
        '  module-config: "iterator"',
        '  local-zone: "test." static',
        '  local-zone: "refused.test." refuse',
    ]
    lines += ["  local-data: '%s'" % rr for rr in ZONE]
    lines += ["remote-control:", "  control-enable: no", ""]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def dns_server():
    """(port, temp dir) of an unbound answering for the test zones; stopped after."""
    if not os.access(UNBOUND, os.X_OK):
        pytest.fail("unbound not installed (scripts/install-deps installs it)")
    tmp = tempfile.mkdtemp(prefix="porcupine-dns-")
    proc = None
    try:
        for _attempt in range(3):
            port = free_port()
            conf = os.path.join(tmp, "unbound.conf")
            with open(conf, "w") as f:
                f.write(unbound_conf(tmp, port))
            log = open(os.path.join(tmp, "unbound.log"), "wb")
            proc = subprocess.Popen([UNBOUND, "-d", "-c", conf], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT)
            log.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                if dns_query(port, "two.test") == 0:
                    break
            if proc.poll() is None and dns_query(port, "two.test") == 0:
                break
            proc.kill()
            proc.wait()
            proc = None
        if proc is None:
            with open(os.path.join(tmp, "unbound.log"), "rb") as f:
                pytest.fail("unbound did not start: " + f.read().decode("utf-8", "replace"))
        yield port, tmp
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def config(dns_server):
    port, tmp = dns_server
    path = os.path.join(tmp, "porcupine.toml")
    with open(path, "w") as f:
        f.write('[node]\ndata_dir = "%s"\n' % os.path.join(tmp, "data"))
        f.write('[mail]\ndomains = ["porcupine.test"]\nhostname = "%s"\n' % OWN_HOST)
        f.write('[dns]\nservers = ["127.0.0.1:%d"]\ntimeout_ms = 5000\n' % port)
    return path


def route(config, domain, seed=1, expect_rc=None):
    r = subprocess.run([porcupine_bin(), "dns", "route", domain, "--config", config, "--json",
                        "--seed", str(seed)],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    out = r.stdout.decode()
    assert out, r.stderr.decode()
    plan = json.loads(out)
    expected = {"route": 0, "permanent": 1, "temporary": 75}[plan["verdict"]]
    assert r.returncode == expected, (r.returncode, plan, r.stderr.decode())
    return plan


def hosts(plan):
    return [t["host"] for t in plan["targets"]]


def addresses(plan):
    return [t["address"] for t in plan["targets"]]


def test_two_mx_by_preference(config):
    plan = route(config, "two.test")
    assert plan["verdict"] == "route"
    assert not plan["implicit_mx"]
    # IPv6 first within a host (dns.address_preference = "ipv6").
    assert [(t["host"], t["preference"], t["address"]) for t in plan["targets"]] == [
        ("mx1.two.test", 10, "192.0.2.1"),
        ("mx2.two.test", 20, "2001:db8::2"),
        ("mx2.two.test", 20, "192.0.2.2"),
    ]


def test_equal_preferences_are_shuffled(config):
    firsts = set()
    for seed in range(1, 13):
        plan = route(config, "equal.test", seed=seed)
        h = hosts(plan)
        assert sorted(h[:3]) == ["a.equal.test", "b.equal.test", "c.equal.test"], h
        assert h[3] == "d.equal.test"
        firsts.add(h[0])
        # The seed decides: the same seed gives the same order.
        assert hosts(route(config, "equal.test", seed=seed)) == h
    assert len(firsts) > 1, firsts


def test_no_mx_uses_the_domains_address(config):
    plan = route(config, "implicit.test")
    assert plan["verdict"] == "route"
    assert plan["implicit_mx"]
    assert addresses(plan) == ["192.0.2.30"]
    assert hosts(plan) == ["implicit.test"]


def test_null_mx_is_permanent(config):
    plan = route(config, "null.test")
    assert (plan["verdict"], plan["dsn"]) == ("permanent", "5.1.10")
    assert plan["targets"] == []


def test_nonexistent_domain_is_permanent(config):
    plan = route(config, "nowhere.test")
    assert (plan["verdict"], plan["dsn"]) == ("permanent", "5.1.2")


def test_mx_without_address_is_permanent(config):
    plan = route(config, "noaddr.test")
    assert (plan["verdict"], plan["dsn"]) == ("permanent", "5.4.4")
    assert "ghost.noaddr.test: A nxdomain" in plan["reason"]
    plan = route(config, "txtonly.test")
    assert (plan["verdict"], plan["dsn"]) == ("permanent", "5.4.4")
    assert "host.txtonly.test: A nodata" in plan["reason"]


def test_mx_through_cname(config):
    plan = route(config, "cname.test")
    assert plan["verdict"] == "route"
    assert [(t["host"], t["address"]) for t in plan["targets"]] == [
        ("alias.cname.test", "192.0.2.40")]


def test_mx_naming_an_address(config):
    plan = route(config, "literal.test")
    assert plan["verdict"] == "route"
    assert addresses(plan) == ["192.0.2.50"]


def test_own_name_as_best_mx_loops(config):
    plan = route(config, "self.test")
    assert (plan["verdict"], plan["dsn"]) == ("permanent", "5.4.6")


def test_own_name_as_backup_mx_keeps_the_better_ones(config):
    plan = route(config, "backup.test")
    assert plan["verdict"] == "route"
    assert hosts(plan) == ["primary.backup.test"]


def test_refusing_server_is_temporary(config):
    plan = route(config, "x.refused.test")
    assert (plan["verdict"], plan["dsn"]) == ("temporary", "4.4.3")


def test_address_literal_needs_no_dns(config):
    plan = route(config, "[192.0.2.9]")
    assert plan["verdict"] == "route"
    assert addresses(plan) == ["192.0.2.9"]


def test_text_output(config):
    r = subprocess.run([porcupine_bin(), "dns", "route", "two.test", "--config", config],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "two.test: route"
    assert "mx1.two.test" in lines[1] and "192.0.2.1" in lines[1]


def test_unanswered_server_is_temporary(dns_server):
    """A resolver that never answers: deferred after dns.timeout_ms."""
    _port, tmp = dns_server
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        path = os.path.join(tmp, "silent.toml")
        with open(path, "w") as f:
            f.write('[node]\ndata_dir = "%s"\n' % os.path.join(tmp, "data"))
            f.write('[mail]\ndomains = ["porcupine.test"]\n')
            f.write('[dns]\nservers = ["127.0.0.1:%d"]\ntimeout_ms = 400\n'
                    % silent.getsockname()[1])
        start = time.monotonic()
        plan = route(path, "two.test")
        elapsed = time.monotonic() - start
    assert (plan["verdict"], plan["dsn"]) == ("temporary", "4.4.3")
    assert "timeout" in plan["reason"]
    assert 0.35 < elapsed < 10, elapsed


def test_bad_dns_config_names_the_key(dns_server):
    _port, tmp = dns_server
    path = os.path.join(tmp, "bad.toml")
    with open(path, "w") as f:
        f.write('[node]\ndata_dir = "/tmp/x"\n[mail]\ndomains = ["porcupine.test"]\n')
        f.write('[dns]\nservers = ["resolver.example:53"]\n')
    r = subprocess.run([porcupine_bin(), "dns", "route", "two.test", "--config", path],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    assert r.returncode == 2
    assert "dns.servers" in r.stderr.decode()

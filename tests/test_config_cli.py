"""The operator's side: configuration errors, the `user` commands, the admin API,
signals."""

import json
import os
import pty
import select
import signal
import subprocess
import time
import tomllib

import pytest

from cluster import (
    DEFAULT_PASSWORD, DOMAIN, POSTMASTER, port_closed, porcupine_bin, to_toml, wait_for)
from mailclient import (
    Closed, RawPop3, RawSmtp, assert_delivered, make_message, retrieve_all, stuff)

ALICE = "alice@" + DOMAIN


def run_cli(*args, env=None, timeout=60):
    r = subprocess.run([porcupine_bin(), *args], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       env=env)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def user_cli(node, *args):
    return run_cli("user", *args, "--admin", node.admin)


# ---- configuration errors -----------------------------------------------------

BAD_CONFIGS = [
    ({"limits": {"smtp_max_recipients": 0}}, "limits.smtp_max_recipients"),
    ({"limits": {"smtp_max_recipients": -1}}, "limits.smtp_max_recipients"),
    ({"limits": {"smtp_max_message_bytes": "big"}}, "limits.smtp_max_message_bytes"),
    ({"limits": {"smtp_soft_error_limit": 10, "smtp_hard_error_limit": 5}},
     "limits.smtp_hard_error_limit"),
    ({"limits": {"pop3_max_command_line": 10}}, "limits.pop3_max_command_line"),
    ({"limits": {"no_such_limit": 1}}, "limits.no_such_limit"),
    ({"node": {"bogus": 1}}, "node.bogus"),
    ({"foo": {"bar": 1}}, "foo"),
    ({"server": {"idle_timeout_s": 0}}, "server.idle_timeout_s"),
    ({"server": {"write_timeout_s": "60"}}, "server.write_timeout_s"),
    ({"store": {"sync": "yes"}}, "store.sync"),
    ({"listen": {"smtp": "127.0.0.1"}}, "listen.smtp"),
    ({"listen": {"pop3": "127.0.0.1:70000"}}, "listen.pop3"),
    ({"listen": {"imap": "127.0.0.1:99999"}}, "listen.imap"),
    ({"mail": {"domains": []}}, "mail.domains"),
    ({"mail": {"domains": None}}, "mail.domains"),
    ({"mail": {"domains": ["bad domain"]}}, "mail.domains"),
    ({"node": {"data_dir": None}}, "node.data_dir"),
    ({"cluster": {"buckets": 0}}, "cluster.buckets"),
    ({"log": {"level": "loud"}}, "log.level"),
    ({"auth": {"argon2_opslimit": 0}}, "auth.argon2_opslimit"),
]


@pytest.mark.parametrize("overrides,key", BAD_CONFIGS, ids=[k for _, k in BAD_CONFIGS])
def test_bad_config_is_refused_naming_the_key(nodes, overrides, key):
    node = nodes.make(overrides=overrides)
    node.spawn()
    rc = node.wait_exit(timeout=20)
    node.expect_dead = True
    log = node.log_text()
    assert rc != 0, "started with a bad config:\n" + log
    assert key in log, "the error does not name %r:\n%s" % (key, log)
    assert not os.path.exists(os.path.join(node.data_dir, "listen.json"))


def test_toml_syntax_error_is_refused(nodes):
    node = nodes.make(raw_config="[node]\nname = \"n1\nbroken\n")
    node.spawn()
    rc = node.wait_exit(timeout=20)
    node.expect_dead = True
    assert rc != 0
    assert "line" in node.log_text()


def test_missing_config_file_and_flag(tmp_path):
    rc, _, err = run_cli("node", "--config", str(tmp_path / "absent.toml"))
    assert rc != 0 and "absent.toml" in err, err
    rc, _, err = run_cli("node")
    assert rc != 0 and "--config" in err, err


def test_print_default_config_is_complete_and_usable(nodes):
    rc, out, err = run_cli("node", "--print-default-config")
    assert rc == 0, err
    defaults = tomllib.loads(out)
    for section, key, value in [
        ("limits", "smtp_max_recipients", 100), ("limits", "smtp_max_command_line", 512),
        ("limits", "smtp_max_data_line", 65536), ("limits", "smtp_soft_error_limit", 10),
        ("limits", "smtp_hard_error_limit", 20), ("limits", "smtp_tarpit_delay_ms", 1000),
        ("limits", "pop3_max_command_line", 1024), ("limits", "pop3_soft_error_limit", 5),
        ("limits", "pop3_hard_error_limit", 10), ("limits", "pop3_tarpit_delay_ms", 1000),
        ("server", "idle_timeout_s", 300), ("server", "write_timeout_s", 60),
        ("server", "max_connections", 10000), ("store", "sync", True),
    ]:
        assert defaults[section][key] == value, (section, key, defaults[section].get(key))
    assert "smtp_max_commands" in defaults["limits"]
    assert "smtp_max_message_bytes" in defaults["limits"]
    # The printed defaults, with the required keys and free ports, start a node.
    node = nodes.make()
    defaults["node"]["data_dir"] = node.data_dir
    defaults["node"]["name"] = "n1"
    defaults["mail"]["domains"] = [DOMAIN]
    defaults["mail"]["hostname"] = "mx1.example.test"
    for k in ("smtp", "pop3", "imap", "admin", "cluster"):
        defaults["listen"][k] = "127.0.0.1:0"
    defaults["auth"] = {"argon2_opslimit": 1, "argon2_memlimit_kib": 8}
    node.raw_config = to_toml(defaults)
    node.config = defaults
    node.start()
    node.add_user(ALICE)
    node.stop()


def test_buckets_fixed_for_a_data_directory(nodes):
    node = nodes.start(overrides={"cluster": {"buckets": 64}})
    node.stop()
    node.config["cluster"]["buckets"] = 128
    node.spawn()
    rc = node.wait_exit(timeout=20)
    node.expect_dead = True
    assert rc != 0 and "cluster.buckets" in node.log_text()
    node.config["cluster"]["buckets"] = 64
    node.start()


# ---- users: CLI and admin API ----------------------------------------------------

def test_user_cli_add_list_passwd_del(nodes):
    node = nodes.start()
    node.wait_postmaster()  # every node has one (docs/config.md)
    rc, out, err = user_cli(node, "add", ALICE, "--password", "first")
    assert rc == 0, err
    rc, out, err = user_cli(node, "add", "Bob@Example.Test", "--password", "b")
    assert rc == 0, err
    rc, out, err = user_cli(node, "list")
    assert rc == 0, err
    assert out.split() == [ALICE, "bob@" + DOMAIN, POSTMASTER], out  # lower case, sorted
    rc, out, err = user_cli(node, "list", "--json")
    assert rc == 0, err
    assert json.loads(out) == {"users": [ALICE, "bob@" + DOMAIN, POSTMASTER]}

    rc, out, err = user_cli(node, "add", ALICE, "--password", "again")
    assert rc != 0 and err.strip(), "adding an existing user must fail with a message"
    rc, out, err = user_cli(node, "add", "x@elsewhere.example", "--password", "p")
    assert rc != 0 and err.strip()
    rc, out, err = user_cli(node, "add", "not an address", "--password", "p")
    assert rc != 0 and err.strip()
    rc, out, err = user_cli(node, "add", "y@" + DOMAIN, "--password", "")
    assert rc != 0 and err.strip()

    assert pop3_login(node, ALICE, "first")
    rc, out, err = user_cli(node, "passwd", ALICE, "--password", "second")
    assert rc == 0, err
    assert not pop3_login(node, ALICE, "first"), "the old password still works"
    assert pop3_login(node, ALICE, "second")

    rc, out, err = user_cli(node, "del", ALICE)
    assert rc == 0, err
    assert not pop3_login(node, ALICE, "second")
    rc, out, err = user_cli(node, "list")
    assert out.split() == ["bob@" + DOMAIN, POSTMASTER]
    rc, out, err = user_cli(node, "del", ALICE)
    assert rc != 0 and err.strip()
    rc, out, err = user_cli(node, "passwd", ALICE, "--password", "x")
    assert rc != 0 and err.strip()
    # Re-created with another password: the old one (maybe cached) must not work.
    rc, out, err = user_cli(node, "add", ALICE, "--password", "third")
    assert rc == 0, err
    assert not pop3_login(node, ALICE, "second")
    assert pop3_login(node, ALICE, "third")


def test_user_cli_unusual_addresses(nodes):
    node = nodes.start()
    node.wait_postmaster()
    for addr in ("first.last+tag@" + DOMAIN, "o'brien@" + DOMAIN, "a_b-c=d@" + DOMAIN):
        rc, out, err = user_cli(node, "add", addr, "--password", "pw")
        assert rc == 0, (addr, err)
        assert pop3_login(node, addr, "pw")
        with RawSmtp(node.smtp) as c:
            c.ehlo()
            c.send_message("x@example.org", [addr], b"Subject: hi\r\n\r\nhi\r\n")
            c.quit()
        assert len(retrieve_all(node, addr, "pw")) == 1
        rc, out, err = user_cli(node, "passwd", addr, "--password", "pw2")
        assert rc == 0, (addr, err)
        assert pop3_login(node, addr, "pw2")
        rc, out, err = user_cli(node, "del", addr)
        assert rc == 0, (addr, err)
    assert node.users() == [POSTMASTER]


def test_user_cli_without_a_node(nodes):
    node = nodes.start()
    admin = node.admin
    node.stop()
    rc, out, err = run_cli("user", "list", "--admin", admin, timeout=60)
    assert rc != 0 and err.strip()


def test_user_cli_password_file(nodes, tmp_path):
    node = nodes.start()
    secret = tmp_path / "pw"
    secret.write_bytes(b"from a file\nsecond line is ignored\n")
    secret.chmod(0o600)
    rc, out, err = user_cli(node, "add", ALICE, "--password-file", str(secret))
    assert rc == 0, err
    assert pop3_login(node, ALICE, "from a file")
    # A file other users may read is refused before anything is sent.
    secret.write_bytes(b"changed\r\n")
    secret.chmod(0o640)
    rc, out, err = user_cli(node, "passwd", ALICE, "--password-file", str(secret))
    assert rc == 1 and "chmod 600" in err, err
    assert pop3_login(node, ALICE, "from a file")
    secret.chmod(0o400)
    rc, out, err = user_cli(node, "passwd", ALICE, "--password-file", str(secret))
    assert rc == 0, err
    assert pop3_login(node, ALICE, "changed"), "CRLF is a line end too"
    # Empty, missing, or both ways at once: refused.
    empty = tmp_path / "empty"
    empty.write_bytes(b"\n")
    empty.chmod(0o600)
    for args in (["--password-file", str(empty)], ["--password-file", str(tmp_path / "none")],
                 ["--password", "x", "--password-file", str(secret)]):
        rc, out, err = user_cli(node, "passwd", ALICE, *args)
        assert rc != 0 and err.strip(), args
    assert pop3_login(node, ALICE, "changed")
    # Without a password and without a terminal there is nothing to ask.
    rc, out, err = user_cli(node, "add", "bob@" + DOMAIN)
    assert rc == 1 and "--password-file" in err, err
    assert "bob@" + DOMAIN not in node.users()


def run_cli_on_a_terminal(args, answers, timeout=60):
    """Runs porcupine with a pseudo-terminal as stdin, stdout and stderr; writes
    each answer after the next prompt ("...: ") shows. Returns (exit status,
    everything the terminal showed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([porcupine_bin(), *args], stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    shown = b""
    pending = list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every writer of the terminal is gone
                    break
                if not chunk:
                    break
                shown += chunk
            if pending and shown.rstrip().endswith(b":"):
                shown += b"<answered>"
                os.write(master, pending.pop(0) + b"\n")
            if not ready and proc.poll() is not None:
                break
        return proc.wait(timeout=max(1, deadline - time.monotonic())), shown
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_user_cli_asks_for_the_password_without_echo(nodes):
    node = nodes.start()
    rc, shown = run_cli_on_a_terminal(["user", "add", ALICE, "--admin", node.admin],
                                      [b"typed secret", b"typed secret"])
    assert rc == 0, shown
    assert b"Password for " + ALICE.encode() in shown and b"Retype" in shown, shown
    assert b"typed secret" not in shown, "the terminal echoed the password: %r" % shown
    assert pop3_login(node, ALICE, "typed secret")
    # Two different answers: nothing changes.
    rc, shown = run_cli_on_a_terminal(["user", "passwd", ALICE, "--admin", node.admin],
                                      [b"new one", b"new two"])
    assert rc == 1 and b"differ" in shown, shown
    assert pop3_login(node, ALICE, "typed secret")
    rc, shown = run_cli_on_a_terminal(["user", "passwd", ALICE, "--admin", node.admin],
                                      [b"new one", b"new one"])
    assert rc == 0, shown
    assert pop3_login(node, ALICE, "new one")


def pop3_login(node, user, password):
    with RawPop3(node.pop3) as p:
        p.ok("USER " + user)
        ok = p.cmd("PASS " + password).startswith(b"+OK")
        p.quit()
        return ok


def test_admin_api_status_codes(nodes):
    node = nodes.start()
    node.wait_postmaster()
    assert node.http("GET", "/healthz")[0] == 200
    assert node.http("GET", "/readyz")[0] == 200
    assert node.http("POST", "/v1/users", {"address": ALICE, "password": "p"})[0] == 201
    assert node.http("POST", "/v1/users", {"address": ALICE.upper(), "password": "p"})[0] == 409
    for body in ({"address": "nodomain", "password": "p"},
                 {"address": "a@elsewhere.example", "password": "p"},
                 {"address": "b@" + DOMAIN, "password": ""},
                 {"address": "b@" + DOMAIN},
                 {"password": "p"}):
        status, reply = node.http("POST", "/v1/users", body)
        assert status == 400, (body, status, reply)
        assert reply["error"] == "invalid_argument" and reply["message"], reply
    assert node.http("POST", "/v1/users", b"{not json")[0] == 400
    assert node.http("GET", "/v1/users") == (200, {"users": [ALICE, POSTMASTER]})
    assert node.http("PUT", "/v1/users/%s/password" % ALICE, {"password": "q"})[0] == 204
    assert node.http("PUT", "/v1/users/%s/password" % ALICE, {"password": ""})[0] == 400
    assert node.http("PUT", "/v1/users/nobody@%s/password" % DOMAIN, {"password": "q"})[0] == 404
    assert node.http("DELETE", "/v1/users/nobody@" + DOMAIN)[0] == 404
    assert node.http("DELETE", "/v1/users/" + ALICE)[0] == 204
    assert node.http("DELETE", "/v1/users/" + ALICE)[0] == 404
    assert node.http("GET", "/v1/users") == (200, {"users": [POSTMASTER]})
    assert node.metric("porcupine_users") == 1


def test_admin_token(nodes):
    node = nodes.start(overrides={"admin": {"token": "s3cr3t"}})
    assert node.http("GET", "/healthz")[0] == 200
    assert node.http("GET", "/readyz")[0] == 200
    assert node.http("GET", "/v1/users")[0] == 401
    assert node.http("GET", "/metrics")[0] == 401
    assert node.http("GET", "/v1/users", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert node.http("GET", "/v1/users", headers={"Authorization": "Bearer s3cr3t"})[0] == 200
    rc, _, err = user_cli(node, "add", ALICE, "--password", "p")
    assert rc != 0 and err.strip()
    rc, _, err = run_cli("user", "add", ALICE, "--password", "p", "--admin", node.admin,
                         "--token", "s3cr3t")
    assert rc == 0, err
    env = dict(os.environ, PORCUPINE_ADMIN_TOKEN="s3cr3t")
    # The postmaster mailbox is the node's own (made at start, maybe not yet).
    wait_for(lambda: run_cli("user", "list", "--admin", node.admin, env=env)[1].split()
             == [ALICE, POSTMASTER], 30, what="alice and the postmaster listed")


def test_deleting_a_user_removes_mail_and_login(nodes):
    node = nodes.start()
    node.add_users([ALICE, "bob@" + DOMAIN])
    keep = b"Subject: for bob\r\n\r\nstays\r\n"
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        for i in range(3):
            c.send_message("x@example.org", [ALICE], b"Subject: %d\r\n\r\ngone\r\n" % i)
        c.send_message("x@example.org", ["bob@" + DOMAIN], keep)
        c.quit()
    assert len(retrieve_all(node, ALICE)) == 3
    rc, _, err = user_cli(node, "del", ALICE)
    assert rc == 0, err
    assert not pop3_login(node, ALICE, DEFAULT_PASSWORD)
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        c.expect("MAIL FROM:<x@example.org>", 250)
        code, lines = c.cmd("RCPT TO:<%s>" % ALICE)
        assert code == 550 and lines[0].startswith("5.1.1"), (code, lines)
        c.quit()
    # A new user of the same name starts empty, also after a restart.
    node.add_user(ALICE)
    assert retrieve_all(node, ALICE) == []
    node.restart()
    assert retrieve_all(node, ALICE) == []
    got = retrieve_all(node, "bob@" + DOMAIN)
    assert len(got) == 1
    assert_delivered(got[0][1], keep)


def test_users_and_passwords_survive_restart(nodes):
    node = nodes.start()
    node.wait_postmaster()
    node.add_user(ALICE, "before")
    assert node.http("PUT", "/v1/users/%s/password" % ALICE, {"password": "after"})[0] == 204
    node.restart(signal.SIGKILL)
    assert node.users() == [ALICE, POSTMASTER]
    assert pop3_login(node, ALICE, "after")
    assert not pop3_login(node, ALICE, "before")


# ---- signals ----------------------------------------------------------------------

def test_sigterm_during_smtp_data(nodes):
    node = nodes.start()
    node.add_user(ALICE)
    idle = RawSmtp(node.smtp)
    idle.ehlo()
    c = RawSmtp(node.smtp)
    c.ehlo()
    c.expect("MAIL FROM:<x@example.org>", 250)
    c.expect("RCPT TO:<%s>" % ALICE, 250)
    c.expect("DATA", 354)
    c.send(b"Subject: half\r\n\r\nfirst half\r\n")
    t0 = time.monotonic()
    node.kill(signal.SIGTERM)
    for client in (c, idle):
        client.settimeout(20)
        try:
            code, lines = client.reply()
            assert code == 421 and lines[0].startswith("4.3.2"), (code, lines)
        except (Closed, ConnectionResetError):
            pass  # a clean close is acceptable too
        assert client.is_closed(20)
        client.close()
    rc = node.wait_exit(timeout=25)
    assert rc == 0, "exit status %s after SIGTERM:\n%s" % (rc, node.log_tail())
    assert time.monotonic() - t0 < 15, "shutdown took longer than the 10 s drain"
    node.start()
    assert retrieve_all(node, ALICE) == [], "half a message was stored"


def test_sigterm_completes_the_delivery_in_flight(nodes):
    """A message whose end of data reached the node before SIGTERM is either
    acknowledged (250, then stored) or refused; never stored unacknowledged
    and lost, never acknowledged and lost."""
    node = nodes.start()
    node.add_user(ALICE)
    data = make_message(300000, seed=3, tag="in-flight")
    c = RawSmtp(node.smtp)
    c.ehlo()
    c.expect("MAIL FROM:<x@example.org>", 250)
    c.expect("RCPT TO:<%s>" % ALICE, 250)
    c.expect("DATA", 354)
    c.send(stuff(data) + b".\r\n")
    node.kill(signal.SIGTERM)
    c.settimeout(20)
    acked = False
    try:
        code, lines = c.reply()
        acked = code == 250
        assert code in (250, 421), (code, lines)
    except (Closed, ConnectionResetError):
        pass
    c.close()
    assert node.wait_exit(timeout=25) == 0
    node.start()
    got = retrieve_all(node, ALICE)
    if acked:
        assert len(got) == 1
        assert_delivered(got[0][1], data)
    else:
        assert len(got) <= 1


def test_sigint_and_pop3_session_at_shutdown(nodes):
    node = nodes.start()
    node.add_user(ALICE)
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        c.send_message("x@example.org", [ALICE], b"Subject: keep\r\n\r\nkeep me\r\n")
        c.quit()
    p = RawPop3(node.pop3)
    p.login(ALICE)
    p.ok("DELE 1")
    node.kill(signal.SIGINT)
    p.settimeout(20)
    try:
        line = p.status()
        assert line.startswith(b"-ERR"), line
    except (Closed, ConnectionResetError):
        pass
    assert p.is_closed(20)
    p.close()
    assert node.wait_exit(timeout=25) == 0
    node.start()
    assert len(retrieve_all(node, ALICE)) == 1, "a POP3 session without QUIT deleted mail"


def test_ports_closed_after_stop(nodes):
    node = nodes.start()
    addrs = [node.smtp, node.pop3]
    node.stop()
    for addr in addrs:
        wait_for(lambda: port_closed(*addr), 5, what="%s:%d to close" % addr)


def test_deleting_a_user_with_much_mail(nodes):
    node = nodes.start()
    node.add_users([ALICE, "bob@" + DOMAIN])
    with RawSmtp(node.smtp) as c:
        c.ehlo()
        for i in range(500):
            c.send("MAIL FROM:<x@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n" % ALICE)
            assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]
            c.send(b"Subject: %d\r\n\r\n%s\r\n.\r\n" % (i, b"z" * 2000))
            assert c.reply()[0] == 250
        c.send_message("x@example.org", ["bob@" + DOMAIN], b"Subject: bob\r\n\r\nbob\r\n")
        c.quit()
    t0 = time.monotonic()
    assert node.http("DELETE", "/v1/users/" + ALICE)[0] == 204
    assert time.monotonic() - t0 < 20
    node.add_user(ALICE)
    assert retrieve_all(node, ALICE) == []
    node.restart(signal.SIGKILL)
    assert retrieve_all(node, ALICE) == []
    assert len(retrieve_all(node, "bob@" + DOMAIN)) == 1

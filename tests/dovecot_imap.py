#!/usr/bin/env python3
"""A private Dovecot IMAP instance on loopback, for reference runs and comparisons.

Self-contained: everything (config, base_dir, state, logs, maildirs, passwd-file)
lives in one temporary directory; the port is a free loopback port; the master
process runs in the foreground (`dovecot -F`) as our child, so it is stopped by
its own pid and nothing else is touched. /etc/dovecot is never read.

Library use:

    from dovecot_imap import DovecotIMAP
    with DovecotIMAP(users={"testuser": "pass", "testuser2": "pass2"}) as dc:
        print(dc.host, dc.port)

CLI (prints host/port/users, then waits until Ctrl-C or SIGTERM, or with --pidfile
detaches and leaves it running until `stop`):

    python3 tests/dovecot_imap.py start [--port N] [--user U:P ...] [--dir D] [--detach]
                                        [--no-urlauth] [--extra-config FILE]
    python3 tests/dovecot_imap.py stop --dir D
"""

import argparse
import json
import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

DEFAULT_USERS = {"testuser": "testpass", "testuser2": "testpass2"}

# URLAUTH (RFC 4467): GENURLAUTH/URLFETCH/RESETKEY, keys kept as mailbox
# attributes in a per-user file dict.
URLAUTH_CONFIG = """imap_urlauth_host = *
mail_attribute_dict = file:%h/dovecot-attributes
"""


def free_port(host="127.0.0.1"):
    """Return a TCP port that was free on `host` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def find_dovecot():
    """Path of the dovecot binary, or None."""
    for cand in (shutil.which("dovecot"), "/usr/sbin/dovecot"):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def dovecot_version():
    """"Dovecot 2.3.19.1 (9b53102964)" or "Dovecot (unknown version)"."""
    binary = find_dovecot()
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
    except (OSError, TypeError, subprocess.SubprocessError):
        out = ""
    return "Dovecot " + (out or "(unknown version)")


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class DovecotIMAP:
    """One private Dovecot IMAP server. Call start(), then stop() (or use `with`)."""

    def __init__(self, users=None, port=None, host="127.0.0.1", workdir=None,
                 extra_config="", keep=False, urlauth=True):
        self.users = dict(users or DEFAULT_USERS)
        self.host = host
        self.port = port
        self.extra_config = extra_config
        self.keep = keep
        self.urlauth = urlauth
        self._own_dir = workdir is None
        self.dir = workdir
        self.proc = None
        self.pid = None

    # -- paths ---------------------------------------------------------------
    @property
    def config_path(self):
        return os.path.join(self.dir, "dovecot.conf")

    @property
    def log_path(self):
        return os.path.join(self.dir, "dovecot.log")

    @property
    def info_path(self):
        return os.path.join(self.dir, "instance.json")

    # -- config --------------------------------------------------------------
    def _write_config(self):
        d = self.dir
        for sub in ("run", "state", "home"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        # login/auth processes run as unprivileged users: the tree must be
        # traversable and the passwd-file readable.
        os.chmod(d, 0o755)
        uid, gid = os.geteuid(), os.getegid()
        user_name = pwd.getpwuid(uid).pw_name
        group_name = grp.getgrgid(gid).gr_name
        if uid == 0 and _user_exists("dovecot") and _user_exists("dovenull"):
            internal_user, login_user = "dovecot", "dovenull"
            chroot_ok = True
            # Dovecot refuses uid 0 for mail access: the mail processes run
            # as "nobody", owning only the homes below our directory.
            mail = pwd.getpwnam("nobody") if _user_exists("nobody") else pwd.getpwnam("dovecot")
            mail_uid, mail_gid = mail.pw_uid, mail.pw_gid
        else:
            internal_user = login_user = user_name
            chroot_ok = False
            mail_uid, mail_gid = uid, gid
        os.chmod(os.path.join(d, "home"), 0o755)
        passwd = os.path.join(d, "passwd")
        with open(passwd, "w") as f:
            for name, pw in self.users.items():
                home = os.path.join(d, "home", name)
                os.makedirs(home, exist_ok=True)
                os.chown(home, mail_uid, mail_gid)
                f.write("%s:{PLAIN}%s::::%s::\n" % (name, pw, home))
        os.chmod(passwd, 0o644)
        no_chroot = "" if chroot_ok else """
service imap-login {
  chroot =
}
service anvil {
  chroot =
}
service log {
  chroot =
}
service stats {
  chroot =
}
"""
        conf = """# generated by tests/dovecot_imap.py; private test instance
instance_name = dovecot-test-{port}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
listen = {host}
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal_user}
default_internal_group = {group_name}
default_login_user = {login_user}
first_valid_uid = {mail_uid}
last_valid_uid = 0
first_valid_gid = 0
mail_location = maildir:~/Maildir:LAYOUT=fs
namespace inbox {{
  inbox = yes
  separator = /
  prefix =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {passwd}
  override_fields = uid={mail_uid} gid={mail_gid}
}}
mail_max_userip_connections = 100
login_trusted_networks = 127.0.0.0/8
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
{no_chroot}
{urlauth}
{extra}
""".format(d=d, host=self.host, port=self.port, internal_user=internal_user,
           login_user=login_user, group_name=group_name, mail_uid=mail_uid,
           mail_gid=mail_gid, passwd=passwd,
           no_chroot=no_chroot, extra=self.extra_config,
           urlauth=URLAUTH_CONFIG if self.urlauth else "")
        with open(self.config_path, "w") as f:
            f.write(conf)

    # -- lifecycle -----------------------------------------------------------
    def start(self, timeout=15.0):
        """Start the server; returns self once it answers with a greeting.
        Raises RuntimeError (log tail included) if it does not come up."""
        binary = find_dovecot()
        if binary is None:
            raise RuntimeError("dovecot not installed "
                               "(apt-get install dovecot-core dovecot-imapd)")
        if not os.path.exists("/usr/lib/dovecot/imap") and not shutil.which("imap"):
            raise RuntimeError("dovecot-imapd not installed (/usr/lib/dovecot/imap missing)")
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="dovecot-imap-")
        os.makedirs(self.dir, exist_ok=True)
        if self.port is None:
            self.port = free_port(self.host)
        self._write_config()
        self.proc = subprocess.Popen([binary, "-F", "-c", self.config_path],
                                     stdin=subprocess.DEVNULL,
                                     stdout=open(os.path.join(self.dir, "stdout.log"), "wb"),
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited with %s:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            if self._greets():
                with open(self.info_path, "w") as f:
                    json.dump({"pid": self.pid, "host": self.host, "port": self.port,
                               "users": self.users, "config": self.config_path}, f)
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("dovecot did not answer on %s:%d:\n%s"
                           % (self.host, self.port, self.log_tail()))

    def _greets(self):
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as s:
                s.settimeout(2.0)
                return s.recv(200).startswith(b"* OK")
        except OSError:
            return False

    def log_tail(self, n=40):
        out = []
        for p in (self.log_path, os.path.join(self.dir or "", "stdout.log")):
            try:
                with open(p, errors="replace") as f:
                    out.extend(f.readlines()[-n:])
            except OSError:
                pass
        return "".join(out)

    def stop(self, timeout=10.0):
        """Stop the master we started (by its pid) and remove the temp dir
        (unless keep=True or the directory was given by the caller)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None
        elif self.pid is not None:
            stop_pid(self.pid, timeout)
        self.pid = None
        if self._own_dir and not self.keep and self.dir and os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def stop_pid(pid, timeout=10.0):
    """SIGTERM one pid, wait for it to go, SIGKILL after `timeout`."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _parse_users(items):
    if not items:
        return dict(DEFAULT_USERS)
    users = {}
    for it in items:
        name, _, pw = it.partition(":")
        users[name] = pw or "pass"
    return users


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start", help="start an instance")
    st.add_argument("--port", type=int)
    st.add_argument("--user", action="append", metavar="NAME:PASSWORD")
    st.add_argument("--dir", help="work directory (default: a new temp dir)")
    st.add_argument("--no-urlauth", action="store_true", help="do not enable URLAUTH")
    st.add_argument("--extra-config", metavar="FILE", help="append this file to the config")
    st.add_argument("--detach", action="store_true",
                    help="leave it running and exit; stop it later with `stop --dir`")
    sp = sub.add_parser("stop", help="stop an instance started with --detach")
    sp.add_argument("--dir", required=True)
    args = ap.parse_args(argv)

    if args.cmd == "stop":
        with open(os.path.join(args.dir, "instance.json")) as f:
            info = json.load(f)
        stop_pid(info["pid"])
        print("stopped pid %d" % info["pid"])
        return 0

    extra = ""
    if args.extra_config:
        with open(args.extra_config) as f:
            extra = f.read()
    dc = DovecotIMAP(users=_parse_users(args.user), port=args.port, workdir=args.dir,
                     keep=args.detach, urlauth=not args.no_urlauth, extra_config=extra)
    dc.start()
    print(json.dumps({"pid": dc.pid, "host": dc.host, "port": dc.port, "users": dc.users,
                      "dir": dc.dir}))
    sys.stdout.flush()
    if args.detach:
        dc.proc = None  # do not reap it on exit; `stop --dir` ends it by pid
        return 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    try:
        while not stop and dc.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        dc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

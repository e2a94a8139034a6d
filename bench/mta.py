"""A private Postfix + Dovecot instance on loopback: experiment 1's baseline.

Postfix (SMTP, queue) hands every message over LMTP (a unix socket) to Dovecot,
which stores it in the user's mailbox; Dovecot serves POP3. Both run from their
own directories under one temporary root, with their own configs, on ports
picked free: the system's /etc/postfix and /etc/dovecot and any system instance
are left alone.

* Postfix: `postfix -c DIR start` (the master daemonizes; we stop it with
  `postfix -c DIR stop`, then SIGKILL its pid and descendants if needed).
  chroot off (the queue is private), `maillog_file` instead of syslog.
* Dovecot: `dovecot -c FILE -F`, our child.
* Users: bench0..N-1@example.test with one password, in a passwd-file used as
  Dovecot's passdb and userdb (uid/gid of Debian's `mail` user), and a texthash
  virtual_mailbox_maps in Postfix (unknown users get 550 at RCPT, like porcupine).
* Durability: both keep their defaults. Postfix fsyncs the queue file before the
  250 after DATA; Dovecot's `mail_fsync = optimized` fsyncs each delivered message
  before the LMTP 250 (after which Postfix removes the queue file).

CPU: `cpu_s()` sums the whole process trees of the Postfix master and the Dovecot
master (lib.tree_cpu_s: live processes plus the children they reaped).
"""

import os
import pwd
import shutil
import socket
import subprocess
import time

import lib

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
MASTER_CF_PROTO = "/etc/postfix/master.cf.proto"


def available():
    return os.access(POSTFIX, os.X_OK) and os.access(DOVECOT, os.X_OK) and \
        os.path.exists(MASTER_CF_PROTO)


class PostfixDovecot:
    def __init__(self, session, users, password=lib.PASSWORD, mail_format="maildir",
                 dovecot_login_service_count=None):
        self.session = session
        self.users = users
        self.password = password
        self.root = session.mkdtemp("mta")
        self.smtp_port = lib.free_port()
        self.pop3_port = lib.free_port()
        self.pf_etc = os.path.join(self.root, "postfix-etc")
        self.pf_spool = os.path.join(self.root, "postfix-spool")
        self.pf_data = os.path.join(self.root, "postfix-data")
        self.pf_log = os.path.join(self.root, "postfix.log")
        self.dc_dir = os.path.join(self.root, "dovecot")
        self.dc_run = os.path.join(self.dc_dir, "run")
        self.dc_state = os.path.join(self.dc_dir, "state")
        self.dc_conf = os.path.join(self.dc_dir, "dovecot.conf")
        self.dc_log = os.path.join(self.dc_dir, "dovecot.log")
        self.mail_dir = os.path.join(self.root, "mail")
        self.mail_format = mail_format
        self.login_service_count = dovecot_login_service_count
        self.pf_pid = None
        self.dc_proc = None

    smtp = property(lambda self: "127.0.0.1:%d" % self.smtp_port)
    pop3 = property(lambda self: "127.0.0.1:%d" % self.pop3_port)

    # ------------------------------------------------------------ configs

    def _addresses(self):
        return ["%s%d@%s" % (lib.USER_PREFIX, i, lib.DOMAIN) for i in range(self.users)]

    def _write_postfix(self):
        for d in (self.pf_etc, self.pf_spool):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
        os.makedirs(self.pf_data, exist_ok=True)
        pf = pwd.getpwnam("postfix")
        os.chown(self.pf_data, pf.pw_uid, pf.pw_gid)
        with open(os.path.join(self.pf_etc, "vmailbox"), "w") as f:
            for a in self._addresses():
                f.write("%s ok\n" % a)
        lmtp_sock = os.path.join(self.dc_run, "lmtp")
        main_cf = {
            "compatibility_level": "3.6",
            "queue_directory": self.pf_spool,
            "data_directory": self.pf_data,
            "myhostname": "mx.bench.test",
            "mydomain": "bench.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "virtual_mailbox_domains": lib.DOMAIN,
            "virtual_mailbox_maps": "texthash:%s" % os.path.join(self.pf_etc, "vmailbox"),
            "virtual_transport": "lmtp:unix:%s" % lmtp_sock,
            "smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "message_size_limit": "52428800",
            "smtpd_peername_lookup": "no",     # no reverse DNS for 127.0.0.1 (porcupine does none)
            "smtp_dns_support_level": "disabled",
            "maillog_file": self.pf_log,
        }
        with open(os.path.join(self.pf_etc, "main.cf"), "w") as f:
            for k, v in main_cf.items():
                f.write("%s = %s\n" % (k, v))
        # master.cf: Debian's prototype with the SMTP listener moved to our
        # port and chroot turned off (a private queue has no chroot jail files).
        with open(os.path.join(self.pf_etc, "master.cf"), "w") as f:
            f.write("\n".join(self._master_cf()) + "\n")

    def _master_cf(self):
        """Debian's master.cf.proto, our changes applied, pipe services removed
        together with their continuation lines."""
        lines, skipping = [], False
        with open(MASTER_CF_PROTO) as f:
            for raw in f:
                line = raw.rstrip("\n")
                if line.startswith("#") or not line.strip():
                    continue
                if line[0].isspace():
                    if not skipping and lines:
                        lines.append(line)
                    continue
                fields = line.split()
                skipping = False
                if len(fields) < 8 or fields[7] == "pipe":
                    skipping = True
                    continue
                if fields[1] == "inet":
                    if fields[0] != "smtp":
                        skipping = True
                        continue
                    fields[0] = "127.0.0.1:%d" % self.smtp_port
                fields[4] = "n"  # chroot off
                lines.append("  ".join(fields))
        return lines

    def _write_dovecot(self):
        for d in (self.dc_dir, self.dc_state):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
        mail = pwd.getpwnam("mail")
        os.makedirs(self.mail_dir, exist_ok=True)
        os.chown(self.mail_dir, mail.pw_uid, mail.pw_gid)
        os.chmod(self.mail_dir, 0o750)
        users_file = os.path.join(self.dc_dir, "users")
        with open(users_file, "w") as f:
            for a in self._addresses():
                f.write("%s:{PLAIN}%s:%d:%d::%s::\n"
                        % (a, self.password, mail.pw_uid, mail.pw_gid,
                           os.path.join(self.mail_dir, a)))
        os.chmod(users_file, 0o644)
        if self.mail_format == "maildir":
            location = "maildir:~/Maildir"
        else:
            location = "%s:~/mail" % self.mail_format
        login_extra = ""
        if self.login_service_count is not None:
            login_extra = "  service_count = %d\n" % self.login_service_count
        conf = """# private instance for porcupine bench/ (experiment 1)
protocols = pop3 lmtp
listen = 127.0.0.1
base_dir = {run}
state_dir = {state}
log_path = {log}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = {location}
namespace inbox {{
  inbox = yes
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users}
}}
pop3_uidl_format = %08Xu%08Xv
protocol lmtp {{
  postmaster_address = postmaster@{domain}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
{login_extra}}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""".format(run=self.dc_run, state=self.dc_state, log=self.dc_log, uid=mail.pw_uid,
           gid=mail.pw_gid, location=location, users=users_file, domain=lib.DOMAIN,
           pop3=self.pop3_port, login_extra=login_extra)
        with open(self.dc_conf, "w") as f:
            f.write(conf)

    # ------------------------------------------------------------ processes

    def start(self, deadline_s=30):
        self._write_postfix()
        self._write_dovecot()
        self.dc_proc = self.session.popen([DOVECOT, "-c", self.dc_conf, "-F"],
                                          log_path=os.path.join(self.dc_dir, "stderr.log"))
        r = subprocess.run([POSTFIX, "-c", self.pf_etc, "start"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        pid_file = os.path.join(self.pf_spool, "pid", "master.pid")
        if r.returncode != 0:
            raise RuntimeError("postfix start failed (%s):\n%s\n%s" % (
                r.returncode, r.stdout.decode("utf-8", "replace"), self._tail(self.pf_log)))
        with open(pid_file) as f:
            self.pf_pid = int(f.read().split()[0])
        self.session.adopt_daemon(self.pf_pid, self._postfix_stop)
        deadline = time.monotonic() + deadline_s
        for port, what in ((self.smtp_port, "postfix smtpd"), (self.pop3_port, "dovecot pop3")):
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                        s.recv(512)
                    break
                except OSError:
                    if self.dc_proc.poll() is not None:
                        raise RuntimeError("dovecot exited:\n%s\n%s" % (
                            self._tail(os.path.join(self.dc_dir, "stderr.log")),
                            self._tail(self.dc_log)))
                    if time.monotonic() > deadline:
                        raise RuntimeError("%s not listening on %d" % (what, port))
                    time.sleep(0.1)
        if not os.path.exists(os.path.join(self.dc_run, "lmtp")):
            raise RuntimeError("dovecot has no LMTP socket in %s" % self.dc_run)
        lib.log("postfix (pid %d) smtp %s -> lmtp -> dovecot (pid %d) pop3 %s"
                % (self.pf_pid, self.smtp, self.dc_proc.pid, self.pop3))
        return self

    def _postfix_stop(self):
        subprocess.run([POSTFIX, "-c", self.pf_etc, "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)

    def stop(self):
        if self.pf_pid:
            lib.kill_tree(self.pf_pid, self._postfix_stop)
            self.session.forget_daemon(self.pf_pid)
            self.pf_pid = None
        if self.dc_proc and self.dc_proc.poll() is None:
            self.dc_proc.terminate()
            try:
                self.dc_proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                lib.kill_tree(self.dc_proc.pid)
                self.dc_proc.wait(timeout=10)

    def pids(self):
        return [p for p in (self.pf_pid, self.dc_proc.pid if self.dc_proc else None) if p]

    def cpu_s(self):
        """CPU-seconds of both process trees (None if a master is gone)."""
        total = 0.0
        for pid in self.pids():
            c = lib.tree_cpu_s(pid)
            if c is None:
                return None
            total += c
        return total

    def process_count(self):
        return sum(1 + len(lib.descendants(p)) for p in self.pids())

    def queue_size(self):
        """Messages in Postfix's queue (accepted, not yet delivered to Dovecot)."""
        n = 0
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _, _, files in os.walk(os.path.join(self.pf_spool, sub)):
                n += len(files)
        return n

    def deferred(self):
        n = 0
        for _, _, files in os.walk(os.path.join(self.pf_spool, "deferred")):
            n += len(files)
        return n

    def wait_queue_empty(self, deadline_s=120):
        deadline = time.monotonic() + deadline_s
        while True:
            q = self.queue_size()
            if q == 0:
                return 0
            if time.monotonic() > deadline:
                return q
            time.sleep(0.2)

    def _tail(self, path, n=3000):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-n:]
        except OSError:
            return ""

    def log_tails(self):
        return "postfix:\n%s\ndovecot:\n%s" % (self._tail(self.pf_log), self._tail(self.dc_log))

"""A real IMAP client: mbsync (Debian isync) syncs a 1,000-message mailbox
down to a Maildir, then an edited copy (flags changed, messages deleted, one
new message) back up, without errors; the server ends up with the edits."""

import imaplib
import os
import shutil
import subprocess
import time

import pytest

from cluster import DEFAULT_PASSWORD, DOMAIN

ALICE = "alice@" + DOMAIN
MESSAGES = 1000

CONFIG = """IMAPAccount porcupine
Host {host}
Port {port}
User {user}
Pass {password}
SSLType None
AuthMechs LOGIN
Timeout 60

IMAPStore remote
Account porcupine

MaildirStore local
Path {root}/mail/
Inbox {root}/mail/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns INBOX Sent
Create Both
Expunge Both
SyncState *
Sync All
"""


def mbsync(config):
    proc = subprocess.run(["mbsync", "-c", config, "-a"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, "mbsync failed (%d):\n%s\n%s" % (
        proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:])
    return proc


def maildir_files(root, folder="INBOX"):
    out = []
    for sub in ("cur", "new"):
        d = os.path.join(root, "mail", folder, sub)
        if os.path.isdir(d):
            out += [os.path.join(d, f) for f in os.listdir(d)]
    return sorted(out)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync (isync) not installed")
def test_mbsync_round_trip(node, tmp_path):
    host, port = node.imap
    m = imaplib.IMAP4(host, port, timeout=60)
    m.login(ALICE, DEFAULT_PASSWORD)
    for i in range(MESSAGES):
        text = ("From: sender%d@example.org\r\nTo: %s\r\nSubject: number %d\r\n"
                "Message-ID: <n%d@test>\r\n\r\nbody %d\r\n" % (i, ALICE, i, i, i))
        typ, data = m.append("INBOX", None, None, text.encode())
        assert typ == "OK", data
    (tmp_path / "mail").mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(CONFIG.format(host=host, port=port, user=ALICE, password=DEFAULT_PASSWORD,
                                    root=tmp_path))
    start = time.monotonic()
    mbsync(str(config))
    down_s = time.monotonic() - start
    files = maildir_files(tmp_path)
    assert len(files) == MESSAGES, len(files)

    # Edit the local copy: flag 100 as seen+flagged, delete 50 (trashed then
    # expunged by mbsync), add one new message.
    for path in files[:100]:
        base = os.path.basename(path)
        name, _, flags = base.partition(":2,")
        cur = os.path.join(tmp_path, "mail", "INBOX", "cur")
        os.rename(path, os.path.join(cur, name + ":2," + "".join(sorted(set(flags + "FS")))))
    for path in files[100:150]:
        os.remove(path)
    new = os.path.join(tmp_path, "mail", "INBOX", "new", "%d.local.test" % time.time_ns())
    with open(new, "wb") as f:
        f.write(b"From: me@example.org\r\nTo: %s\r\nSubject: written offline\r\n\r\nhi\r\n"
                % ALICE.encode())
    mbsync(str(config))
    mbsync(str(config))  # a second run finds nothing left to do

    typ, data = m.select("INBOX")
    assert typ == "OK"
    assert int(data[0]) == MESSAGES - 50 + 1, data
    typ, data = m.uid("SEARCH", None, "FLAGGED SEEN")
    assert len(data[0].split()) == 100, data
    typ, data = m.uid("SEARCH", None, "SUBJECT", '"written offline"')
    assert len(data[0].split()) == 1, data
    m.logout()
    assert len(maildir_files(tmp_path)) == MESSAGES - 50 + 1
    print("mbsync: %d messages down in %.2f s" % (MESSAGES, down_s))

"""A real IMAP client: mbsync (Debian isync) syncs a 1,000-message mailbox
down to a Maildir, then an edited copy (flags changed, messages deleted, one
new message) back up, without errors; the server ends up with the edits."""

import imaplib
import os
import shutil
import time

import pytest

from cluster import DEFAULT_PASSWORD, DOMAIN
from mailclient import mbsync_config, run_mbsync

ALICE = "alice@" + DOMAIN
MESSAGES = 1000

MBSYNC_TIMEOUT_S = 300


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
    config.write_text(mbsync_config(tmp_path, host, port, ALICE, patterns="INBOX Sent",
                                    expunge=True))
    start = time.monotonic()
    run_mbsync(config, MBSYNC_TIMEOUT_S)
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
    run_mbsync(config, MBSYNC_TIMEOUT_S)
    run_mbsync(config, MBSYNC_TIMEOUT_S)  # a second run finds nothing left to do

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

"""The imaptest conformance scripts (tests/imaptest/, a copy of Dovecot's
scripted tests) against a real node, through tests/imaptest_runner.py.

Every script whose capabilities we advertise must pass, except the ones in
KNOWN_FAILURES, each with its reason (docs/imap.md lists the same gaps). A
script that starts passing must be taken off the list, so the list cannot
silently go stale; a script for a capability we do not advertise is skipped
by the runner and listed in the report.
"""

import json
import os
import subprocess
import sys

import pytest

from cluster import DOMAIN

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "imaptest_runner.py")
# A copy of ../shared/imaptest (MIT, see tests/imaptest/COPYING), so that a
# clone alone runs it.
SCRIPTS = os.path.join(HERE, "imaptest", "tests")

# script -> why it fails on porcupine today
KNOWN_FAILURES = {}


def test_imaptest_scripts(nodes):
    assert os.path.isdir(SCRIPTS), "no imaptest scripts at %s" % SCRIPTS
    node = nodes.start()
    user, user2 = "testuser@" + DOMAIN, "testuser2@" + DOMAIN
    node.add_user(user, "pw")
    node.add_user(user2, "pw")
    host, port = node.imap
    proc = subprocess.run(
        [sys.executable, RUNNER, "--host", host, "--port", str(port), "--user", user,
         "--password", "pw", "--user2", user2, "--tests", SCRIPTS, "--timeout", "5", "--json"],
        capture_output=True, text=True, timeout=600)
    try:
        results = json.loads(proc.stdout)
    except ValueError:
        pytest.fail("runner printed no JSON:\n%s\n%s" % (proc.stdout[-3000:], proc.stderr[-3000:]))
    by_name = {r["name"]: r for r in results}
    assert len(by_name) > 50, sorted(by_name)
    failed = {n: r for n, r in by_name.items() if r["status"] == "FAIL"}
    unexpected = {n: r["detail"] for n, r in failed.items()
                  if n not in KNOWN_FAILURES}
    now_passing = [n for n in KNOWN_FAILURES if by_name.get(n, {}).get("status") == "PASS"]
    passed = sorted(n for n, r in by_name.items() if r["status"] == "PASS")
    skipped = sorted(n for n, r in by_name.items() if r["status"] == "SKIP")
    print("imaptest: %d passed, %d failed (%d known), %d skipped"
          % (len(passed), len(failed), len(failed) - len(unexpected), len(skipped)))
    assert not unexpected, json.dumps(unexpected, indent=1)
    assert not now_passing, "take these off KNOWN_FAILURES: %s" % now_passing
    # The capabilities we advertise have scripts; they must actually have run.
    for name in ("append", "fetch", "fetch-body", "fetch-bodystructure", "fetch-envelope",
                 "list", "move", "uidplus", "search-body", "expunge", "select", "store"):
        assert name in passed or name in KNOWN_FAILURES, (name, by_name.get(name))

"""pytest fixtures for the integration tests: real nodes, always cleaned up.

- `nodes`: a NodeSet; every node started through it is stopped (SIGTERM, and
  the test errors unless the node exits 0) or killed, and its temporary
  directory removed, whatever the test did. A node that died without the test
  asking for it also makes the test error.
- `node`: one running node with the users alice, bob and carol.
- `netlab`: five network namespaces on one bridge (netlab.py), removed whatever
  happened; skips without root. Ask for it before `nodes`, so that the nodes
  are stopped before their network goes away.
- On failure the log of every node of the test is attached to the report.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import netlab as netlab_mod  # noqa: E402
from cluster import DOMAIN, NodeSet, porcupine_bin  # noqa: E402

USERS = ["alice@" + DOMAIN, "bob@" + DOMAIN, "carol@" + DOMAIN]


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_collection_modifyitems(config, items):
    binary = porcupine_bin()
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        # Failing (not skipping) keeps a missing build from looking green.
        for item in items:
            item.add_marker(pytest.mark.usefixtures("_require_binary"))


@pytest.fixture
def _require_binary():
    pytest.fail("porcupine binary not found at %s (set PORCUPINE_BIN)" % porcupine_bin())


@pytest.fixture
def nodes(request):
    ns = NodeSet()
    request.node._porcupine_nodeset = ns
    yield ns
    problems = ns.close()
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


@pytest.fixture
def node(nodes):
    n = nodes.start()
    n.add_users(USERS)
    return n


@pytest.fixture
def netlab():
    with netlab_mod.lab(5) as net:
        yield net


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    ns = getattr(item, "_porcupine_nodeset", None)
    if ns is None or not report.failed:
        return
    for n in ns.nodes:
        report.sections.append(
            ("porcupine node %s log (%s, last 20000 chars)" % (n.name, report.when),
             n.log_tail()))

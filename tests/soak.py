#!/usr/bin/env python3
"""Soak: the fault test (tests/test_fault.py) again and again with random seeds.

    PORCUPINE_BIN=build/porcupine tests/soak.py [--seconds 3600] [--fault-seconds 120]
    make soak [SOAK_SECONDS=3600] [FAULT_SECONDS=120]

Each run is one pytest process with a fresh random seed. A run starts only if
the time left can hold a whole run (the longest run so far, at least
--fault-seconds + RUN_OVERHEAD_S). Every seed and its RESULT line are printed as
they come. At the first failure the soak stops and prints the checker's report
and where the evidence is: the run's whole output and its temporary
directories (node configs, data directories and node.log files, kept with
PORCUPINE_KEEP_TMP), plus the tail of each node's log. A passing run's
temporary directories are deleted; its output is kept.

Exit status: 0 every run passed, 1 a run failed, 2 nothing was tested (no time
for one run, not root, the test was skipped), 130 interrupted.
Root only, like the fault test (network namespaces).
"""

import argparse
import glob
import importlib.util
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# A run is the nemesis plus start-up, settling and the final read: about 30 s on an idle
# machine, more on a busy one. Before the first run has been timed, a run is assumed to
# take the nemesis's time plus this.
RUN_OVERHEAD_S = 60.0
# A run that takes this much longer than its nemesis hangs: it is interrupted and counts
# as a failure (the checker's own waits are bounded well below this).
RUN_HANG_S = 900.0
NODE_LOG_TAIL_LINES = 15
REPORT_START = re.compile(r"^fault test seed \d+ \(repeat with PORCUPINE_FAULT_SEED=\d+\): ")


def log(text):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), text), flush=True)


def run_once(seed, fault_seconds, run_dir):
    """Runs the fault test for one seed. Returns (pytest exit status or None if it hung,
    output path, temporary directory, seconds)."""
    tmp = os.path.join(run_dir, "tmp")
    os.makedirs(tmp)
    out_path = os.path.join(run_dir, "pytest.out")
    env = dict(os.environ)
    env.pop("PORCUPINE_FAULT_SEEDS", None)
    env.update({
        "PORCUPINE_FAULT_SEED": str(seed),
        "PORCUPINE_FAULT_SECONDS": "%g" % fault_seconds,
        "PORCUPINE_KEEP_TMP": "1",   # deleted below when the run passes
        "TMPDIR": tmp,               # every node directory of the run lands here
    })
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
           os.path.join("tests", "test_fault.py")]
    t0 = time.monotonic()
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            rc = proc.wait(timeout=fault_seconds + RUN_HANG_S)
        except subprocess.TimeoutExpired:
            rc = None
            _interrupt(proc)
        except KeyboardInterrupt:
            # A Ctrl-C reached pytest too: let it stop the nodes and remove the namespaces.
            _interrupt(proc, grace_s=10)
            raise
    return rc, out_path, tmp, time.monotonic() - t0


def _interrupt(proc, grace_s=0):
    """After grace_s, SIGINT (pytest cleans up), then SIGKILL (the nodes die with it:
    PR_SET_PDEATHSIG; the next run's netlab removes what namespaces are left)."""
    for sig, wait_s in ((None, grace_s), (signal.SIGINT, 60), (signal.SIGKILL, None)):
        if sig is not None and proc.poll() is None:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def read_text(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def result_line(text):
    """The checker's RESULT line, or None if the run ended before the checker."""
    for line in text.splitlines():
        if line.startswith("RESULT: "):
            return line
    return None


def report_of(text):
    """The checker's report (first copy: pytest repeats it in the assertion), or None."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if REPORT_START.match(line):
            for j in range(i, len(lines)):
                if lines[j].startswith("RESULT: "):
                    return "\n".join(lines[i:j + 1])
    return None


def show_failure(rc, out_path, tmp, text):
    """Prints the evidence of a failed run."""
    report = report_of(text)
    if report:
        print("==== the checker's report ====", flush=True)
        print(report, flush=True)
    else:
        print("==== no checker report (pytest status %s); the output's last 80 lines ===="
              % rc, flush=True)
        print("\n".join(text.splitlines()[-80:]), flush=True)
    logs = sorted(glob.glob(os.path.join(tmp, "porcupine-it-*", "node.log")))
    print("==== node logs (the last %d lines of each) ====" % NODE_LOG_TAIL_LINES, flush=True)
    for path in logs:
        print("---- %s" % path, flush=True)
        print("\n".join(read_text(path).splitlines()[-NODE_LOG_TAIL_LINES:]), flush=True)
    if not logs:
        print("(none: the run failed before it started nodes)", flush=True)
    print("==== evidence kept ====", flush=True)
    print("whole output (events, report, node logs attached by pytest): %s" % out_path)
    print("node directories (config, data, node.log): %s" % tmp, flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=3600.0,
                    help="total time; a run starts only if a whole run fits (default 3600)")
    ap.add_argument("--fault-seconds", type=float, default=120.0,
                    help="nemesis time of each run (PORCUPINE_FAULT_SECONDS, default 120)")
    ap.add_argument("--dir", help="where runs keep their output (default: a new /tmp dir)")
    args = ap.parse_args(argv)

    if os.environ.get("PORCUPINE_BIN"):
        os.environ["PORCUPINE_BIN"] = os.path.abspath(os.environ["PORCUPINE_BIN"])
    if importlib.util.find_spec("pytest") is None:
        log("soak: %s has no pytest (run it with /usr/bin/python3 or `make soak`)"
            % sys.executable)
        return 2
    if os.geteuid() != 0:
        log("soak: the fault test needs root (network namespaces); nothing tested")
        return 2
    soak_dir = args.dir or tempfile.mkdtemp(prefix="porcupine-soak-", dir="/tmp")
    os.makedirs(soak_dir, exist_ok=True)
    deadline = time.monotonic() + args.seconds
    estimate = args.fault_seconds + RUN_OVERHEAD_S
    log("soak: random seeds of tests/test_fault.py for %.0f s, %.0f s of nemesis each "
        "(a run assumed to take %.0f s until one is timed); binary %s; output in %s"
        % (args.seconds, args.fault_seconds, estimate,
           os.environ.get("PORCUPINE_BIN", "build/porcupine"), soak_dir))
    passed = []
    rng = random.SystemRandom()
    try:
        while True:
            left = deadline - time.monotonic()
            if left < estimate:
                break
            seed = rng.randrange(1 << 32)
            index = len(passed) + 1
            run_dir = os.path.join(soak_dir, "run-%03d-seed-%d" % (index, seed))
            log("run %d: seed %d (repeat: make fault-test FAULT_SEED=%d FAULT_SECONDS=%g); "
                "%.0f s left" % (index, seed, seed, args.fault_seconds, left))
            rc, out_path, tmp, took = run_once(seed, args.fault_seconds, run_dir)
            estimate = max(estimate, took)
            text = read_text(out_path)
            result = result_line(text)
            if rc is None:
                result = "HUNG: stopped after %.0f s" % took
            log("run %d: seed %d: %s (%.0f s, pytest status %s)"
                % (index, seed, result or "no RESULT line", took, rc))
            if rc == 0 and result and result.startswith("RESULT: PASS"):
                shutil.rmtree(tmp, ignore_errors=True)
                passed.append(seed)
                continue
            if rc == 0:
                log("soak: the fault test did not run (skipped?); see %s" % out_path)
                return 2
            log("soak: FAILED at run %d, seed %d; stopping. Evidence follows." % (index, seed))
            show_failure(rc, out_path, tmp, text)
            return 1
    except KeyboardInterrupt:
        log("soak: interrupted after %d passing runs; output in %s" % (len(passed), soak_dir))
        return 130
    if not passed:
        log("soak: no time for a whole run (%.0f s needed, %.0f s given); nothing tested"
            % (estimate, args.seconds))
        return 2
    log("soak: all %d runs passed (seeds %s); next run would not fit (%.0f s left, a run "
        "takes ~%.0f s); output in %s" % (len(passed), ", ".join(map(str, passed)),
                                           max(0.0, deadline - time.monotonic()), estimate,
                                           soak_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Copies the latest results (bench/results/expN.md, written by each experiment)
into bench/README.md, between the markers <!-- expN:begin --> and <!-- expN:end -->.

    python3 bench/update_readme.py [1 2 3 4 4_kill2 5]  # default: every experiment with results
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    which = sys.argv[1:] or ["1", "2", "3", "4", "4_kill2", "5"]
    path = os.path.join(HERE, "README.md")
    with open(path) as f:
        text = f.read()
    for n in which:
        md = os.path.join(HERE, "results", "exp%s.md" % n)
        if not os.path.exists(md):
            continue
        with open(md) as f:
            body = f.read().strip()
        pat = re.compile(r"(<!-- exp%s:begin -->\n).*?(\n<!-- exp%s:end -->)" % (n, n), re.S)
        if not pat.search(text):
            print("README.md has no markers for experiment %s" % n, file=sys.stderr)
            continue
        text = pat.sub(lambda m: m.group(1) + body + m.group(2), text)
        print("README.md: experiment %s results updated from %s" % (n, os.path.relpath(md, HERE)))
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()

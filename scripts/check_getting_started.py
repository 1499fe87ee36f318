#!/usr/bin/env python3
"""Runs docs/getting-started.md as a reader pastes it, and checks what it shows.

Usage: check_getting_started.py PATH/TO/dvt [--show]

Every `sh` block after "Install" runs, in order, in one bash session with the given
dvt first on PATH and DVT_SRC set to this repository; the page's /tmp paths are moved
into a temporary directory. A line whose comment starts with `# error` is expected to
fail; any other command that fails stops the run. Every line of a `text` block must
appear in what the `sh` block before it printed (stdout and stderr together).
Exits 1, printing the session's output, if anything does not hold.
"""

import os
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "getting-started.md"
MARK = "@@ block {} done @@"


def blocks(text):
    """(kind, lines) of each fenced block after the Install section."""
    text = text[text.index("## Track a dataset") :]
    return [(m.group(1), m.group(2).splitlines()) for m in re.finditer(r"^```(\w+)\n(.*?)^```$", text, re.M | re.S)]


def main():
    dvt = pathlib.Path(sys.argv[1]).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        script = ["set -eo pipefail"]
        shown = []  # (index of the sh block, lines the text block shows)
        n = 0
        for kind, lines in blocks(PAGE.read_text()):
            if kind == "sh":
                n += 1
                for line in lines:
                    line = line.replace("/tmp/", f"{tmp}/")
                    script.append(f"! {line}" if re.search(r"#\s*error\b", line) else line)
                script.append(f"echo '{MARK.format(n)}'")
            elif kind == "text" and n:
                shown.append((n, [l for l in lines if l.strip()]))
        env = dict(os.environ, PATH=f"{dvt.parent}:{os.environ['PATH']}", DVT_SRC=str(ROOT), CI="1")
        run = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=tmp,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        out = run.stdout
        problems = []
        if run.returncode != 0:
            problems.append(f"the page's commands stopped with exit code {run.returncode}")
        outputs, rest = {}, out
        for i in range(1, n + 1):
            head, sep, rest = rest.partition(MARK.format(i) + "\n")
            if not sep:
                problems.append(f"block {i} of {n} did not finish")
                break
            outputs[i] = head.replace(f"{tmp}/", "/tmp/")
        for i, lines in shown:
            printed = [l.rstrip() for l in outputs.get(i, "").splitlines()]
            for line in lines:
                if line.rstrip() not in printed:
                    problems.append(f"block {i}: the page shows a line it did not print: {line!r}")
        if problems or "--show" in sys.argv:
            print(out)
            print("\n".join(problems))
            sys.exit(1)
        print(f"getting started: {n} blocks ran as pasted, {len(shown)} shown outputs match")


if __name__ == "__main__":
    main()

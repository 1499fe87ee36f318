#!/usr/bin/env python3
"""dvt against DVC reading the files git keeps in a repository, as `get`,
`list` and the Python API read them (DVC's `dvc get`, `dvc list`,
`dvc.api.read`): a directory of N small source files, and one params file,
at a tag.

One git repository holds both tools' settings (`dvt init` and `dvc init`),
so both read the same commit. The tools take turns, run by run; medians of
--runs runs. DVC is installed with pip into bench.py's virtualenv
(bench/work/.venv-dvc).

    python3 bench/gitfiles.py --files 2000 --runs 5
"""

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402  (its DVC install and release build)


def sh(cmd, cwd, env=None):
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_repo(path, files, dvt, dvc):
    """A git repository with `files` source files under src/ and a params
    file, tagged v1, then changed once more (so v1 is not HEAD)."""
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    sh(["git", "init", "-q", "-b", "main"], path)
    sh(["git", "config", "user.email", "bench@example.com"], path)
    sh(["git", "config", "user.name", "bench"], path)
    sh([dvt, "init", "-q"], path)
    if dvc:
        sh([dvc, "init", "-q"], path)
    rng = random.Random(7)
    for i in range(files):
        d = os.path.join(path, "src", "pkg{:02d}".format(i % 40))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "mod{:05d}.py".format(i)), "w") as f:
            n = rng.randint(1024, 4096)
            f.write("".join(rng.choice("abcdefghij \n") for _ in range(n)))
    with open(os.path.join(path, "params.yaml"), "w") as f:
        f.write("train:\n  lr: 0.1\n  epochs: 3\n")
    sh(["git", "add", "-A"], path)
    sh(["git", "commit", "-q", "-m", "v1"], path)
    sh(["git", "tag", "v1"], path)
    with open(os.path.join(path, "params.yaml"), "w") as f:
        f.write("train:\n  lr: 0.2\n  epochs: 3\n")
    sh(["git", "commit", "-q", "-am", "v2"], path)


def timed(cmd, cwd, env=None):
    started = time.perf_counter()
    sh(cmd, cwd, env)
    return time.perf_counter() - started


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", help="write the Markdown table here too")
    ap.add_argument("--no-dvc", action="store_true", help="time dvt alone (CI's smoke run)")
    ap.add_argument("--work", default=os.path.join(HERE, "work"), help="where the repository is made")
    args = ap.parse_args()
    work = args.work
    os.makedirs(work, exist_ok=True)
    tools, version = bench.release_tools(not args.no_dvc)
    dvt = tools[0].exe
    # Without DVC, `git init` stands in for `dvc init` and DVC's turns are skipped.
    dvc = tools[1].exe if len(tools) > 1 else None
    dvc_env = tools[1].env if len(tools) > 1 else None
    dvc_python = os.path.join(os.path.dirname(dvc), "python") if dvc else None
    repo = os.path.join(work, "gitfiles-repo")
    make_repo(repo, args.files, dvt, dvc)
    scratch = os.path.join(work, "gitfiles-out")
    dvt_env = dict(tools[0].env, PYTHONPATH=os.path.join(ROOT, "python"), DVT=dvt)
    read = "import {m}; {m}.read('params.yaml', repo={r!r}, rev='v1')"
    steps = {
        "get src/ ({} files) at v1".format(args.files): (
            lambda out: [dvt, "-q", "get", repo, "src", "--rev", "v1", "-o", out],
            lambda out: [dvc, "get", "-q", repo, "src", "--rev", "v1", "-o", out],
        ),
        "list -R at v1": (
            lambda out: [dvt, "-q", "list", repo, "-R", "--rev", "v1"],
            lambda out: [dvc, "list", "-q", repo, "-R", "--rev", "v1"],
        ),
        "api.read params.yaml at v1 (Python, with its start)": (
            lambda out: [sys.executable, "-c", read.format(m="dvt.api", r=repo)],
            lambda out: [dvc_python, "-c", read.format(m="dvc.api", r=repo)],
        ),
    }
    rows = []
    for name, (dvt_cmd, dvc_cmd) in steps.items():
        times = {"dvt": [], "dvc": []}
        for i in range(args.runs):
            turns = (("dvt", dvt_cmd), ("dvc", dvc_cmd)) if i % 2 == 0 else (("dvc", dvc_cmd), ("dvt", dvt_cmd))
            for tool, make in turns:
                if tool == "dvc" and not dvc:
                    continue
                shutil.rmtree(scratch, ignore_errors=True)
                os.makedirs(scratch)
                out = os.path.join(scratch, "out")
                times[tool].append(timed(make(out), scratch, dvt_env if tool == "dvt" else dvc_env))
        a = statistics.median(times["dvt"])
        b = statistics.median(times["dvc"]) if times["dvc"] else float("nan")
        rows.append((name, a, b))
        print("{}: dvt {:.3f} s, DVC {}".format(name, a, "not run" if b != b else "{:.3f} s".format(b)), flush=True)
    shutil.rmtree(scratch, ignore_errors=True)
    lines = [
        "Machine: {}; {}; {}; {} git files; medians of {} runs, tools taking turns.".format(
            bench.this_machine(),
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            version or "DVC not run",
            args.files,
            args.runs,
        ),
        "",
        "| step | dvt (s) | DVC (s) | DVC / dvt |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [
        "| {} | {:.3f} | {} | {} |".format(n, a, "-" if b != b else "{:.3f}".format(b), "-" if b != b else "{:.1f}x".format(b / a))
        for n, a, b in rows
    ]
    bench.publish(lines, args.out)


if __name__ == "__main__":
    main()

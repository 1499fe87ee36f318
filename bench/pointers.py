#!/usr/bin/env python3
"""Many pointers: N small files, each tracked by a pointer of its own, as when a
project adds its files one by one (`dvt add d/*.csv`, `dvc add d/*.csv`).

Times add, a no-change status, checkout of every file after deleting them, and
remove of every pointer, for dvt and DVC in turns, run by run, and prints the
medians and DVC/dvt ratios as a Markdown table.

    python3 bench/pointers.py --files 2000 --runs 3 [--no-dvc] [--work DIR]

It builds dvt (release) and installs DVC in bench/work, as bench.py does.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

STEPS = ["add", "status", "checkout", "remove"]


def timed(cmd, cwd, env):
    return bench.run(cmd, cwd, env)[0]


def one_run(tool, work, files, run):
    exe, env = tool.exe, tool.env
    repo = os.path.join(work, f"pointers-{tool.name}{run}")
    shutil.rmtree(repo, ignore_errors=True)
    os.makedirs(os.path.join(repo, "d"))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    names = [f"d/f{i}.csv" for i in range(files)]
    for i, n in enumerate(names):
        with open(os.path.join(repo, n), "w") as f:
            f.write(f"{i},{run}\n")
    subprocess.run([exe, "init", "-q"], cwd=repo, env=env, check=True)
    out = {"add": timed([exe, "add", *names], repo, env), "status": timed([exe, "status"], repo, env)}
    for n in names:
        os.remove(os.path.join(repo, n))
    out["checkout"] = timed([exe, "checkout"], repo, env)
    out["remove"] = timed([exe, "remove", *[f"{n}.{tool.name}" for n in names]], repo, env)
    shutil.rmtree(repo)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=2000)
    bench.standard_args(ap)
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    tools, dvc_version = bench.release_tools(not args.no_dvc)
    times = {t.name: {s: [] for s in STEPS} for t in tools}
    for run in range(args.runs):
        for tool in tools:
            for step, secs in one_run(tool, work, args.files, run).items():
                times[tool.name][step].append(secs)
            line = ", ".join(f"{s} {times[tool.name][s][-1]:.3f} s" for s in STEPS)
            print(f"run {run + 1} {tool.name}: {line}", flush=True)
    dvc = f", DVC {dvc_version}" if dvc_version else ""
    print(f"\n{args.files} files, a pointer each; medians of {args.runs} runs (s){dvc}\n")
    print("| step | dvt | " + ("DVC | DVC / dvt |" if not args.no_dvc else ""))
    print("| --- | --- | " + ("--- | --- |" if not args.no_dvc else ""))
    for s in STEPS:
        d = statistics.median(times["dvt"][s])
        row = f"| {s} | {d:.3f} |"
        if not args.no_dvc:
            c = statistics.median(times["dvc"][s])
            row += f" {c:.2f} | {c / d:.0f}x |"
        print(row)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark the git-facing reads on a long history: dvt against DVC, same repo shape.

    python3 bench/history.py                 # 1,000 commits, 3 runs, dvt and DVC
    python3 bench/history.py --commits 50 --no-dvc --runs 1   # quick (CI smoke)

The repository tracks one directory `data/` of 100 small CSV files. Commit i rewrites
file i % 100 (add, git commit); every 100th commit is tagged t000, t100, ... All data
is pushed to a directory remote. Then, median of --runs runs, with peak RSS:

    get-url   one file inside the directory, at the first tag (the oldest)
    cat       its content at the first tag        (DVC: dvc.api.read)
    versions  the tags at which that file changed (dvt only: DVC has no equivalent)
    versions --all  every commit at which it changed (dvt only)
    gc --all-commits  keeping everything: a walk of the whole history

DVC's get-url/read are timed as a `python -c "import dvc.api; ..."` process, which
is how a pipeline script calls them (interpreter start-up included).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (shares run(), install_dvc(), Tool)

FILES = 100


def git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, stdout=subprocess.DEVNULL)


def build(work, tool, commits, remote):
    """A repo with `commits` commits; returns (repo, seconds it took)."""
    repo = os.path.join(work, f"history-{tool.name}")
    shutil.rmtree(repo, ignore_errors=True)
    shutil.rmtree(remote, ignore_errors=True)
    os.makedirs(os.path.join(repo, "data"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", "bench")
    git(repo, "config", "user.email", "bench@example.invalid")
    env = tool.env
    q = ["-q"]
    subprocess.run(tool.cmd("init", *q), cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)
    if tool.name == "dvc":
        subprocess.run(tool.cmd("config", "core.analytics", "false"), cwd=repo, env=env, check=True)
        subprocess.run(tool.cmd("remote", "add", "-d", "store", remote), cwd=repo, env=env, check=True)
    else:
        subprocess.run(tool.cmd("remote", "add", "-d", "store", remote), cwd=repo, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for f in range(FILES):
        with open(os.path.join(repo, "data", f"f-{f:03}.csv"), "w") as fh:
            fh.write("t,value\n" + "".join(f"{t},{(t * 7 + f) % 101}\n" for t in range(200)))
    t0 = time.perf_counter()
    for i in range(commits):
        path = os.path.join(repo, "data", f"f-{i % FILES:03}.csv")
        with open(path, "a") as fh:
            fh.write(f"{1000 + i},{i}\n")
        subprocess.run(tool.cmd("add", *q, "data"), cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"commit {i}")
        if i % 100 == 0:
            git(repo, "tag", f"t{i:03}")
        if i % 100 == 99 or i == commits - 1:
            subprocess.run(tool.cmd("push", *q), cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)
    return repo, time.perf_counter() - t0


def ops(tool, repo):
    """The operations to time, as command lines."""
    target = "data/f-000.csv"
    if tool.name == "dvt":
        return {
            "get-url at the first tag": tool.cmd("get-url", target, "--rev", "t000"),
            "cat at the first tag": tool.cmd("cat", target, "--rev", "t000"),
            "versions (tags)": tool.cmd("versions", target),
            "versions --all (commits)": tool.cmd("versions", target, "--all"),
            "gc --all-commits (nothing to delete)": tool.cmd("gc", "--all-commits", "-f"),
        }
    py = os.path.join(os.path.dirname(tool.exe), "python")
    return {
        "get-url at the first tag": [py, "-c", f"import dvc.api; print(dvc.api.get_url('{target}', rev='t000'))"],
        "cat at the first tag": [py, "-c", f"import dvc.api; dvc.api.read('{target}', rev='t000')"],
        "gc --all-commits (nothing to delete)": tool.cmd("gc", "--all-commits", "-f"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commits", type=int, default=1000)
    bench.standard_args(ap)
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    tools, dvc_version = bench.release_tools(not args.no_dvc)
    results = {"machine": f"{os.uname().nodename}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
               "dvc": dvc_version, "commits": args.commits, "runs": args.runs, "build_s": {}, "ops": {}}
    for tool in tools:
        bench.log(f"history: building {args.commits} commits with {tool.name} ...")
        repo, secs = build(work, tool, args.commits, os.path.join(work, f"history-remote-{tool.name}"))
        results["build_s"][tool.name] = secs
        for op, cmd in ops(tool, repo).items():
            rs = [bench.run(cmd, repo, tool.env) for _ in range(args.runs)]
            results["ops"].setdefault(op, {})[tool.name] = {
                "median_s": bench.median([r[0] for r in rs]),
                "peak_rss_mib": max(r[1] for r in rs) / 1024,
            }
    with open(os.path.join(work, "results-history.json"), "w") as f:
        json.dump(results, f, indent=1)
    lines = [f"Machine: {results['machine']}; {results['date']}; DVC {dvc_version or '(not run)'}; "
             f"{args.commits} commits, {FILES} files tracked in one directory; median of {args.runs} run(s).",
             ""] + bench.ops_table(results["ops"])
    lines.append("")
    lines.append("Building the history (add + git commit per commit, push every 100): " +
                 ", ".join(f"{k} {v:.0f} s" for k, v in results["build_s"].items()))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

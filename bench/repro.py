#!/usr/bin/env python3
"""Benchmark `repro`: dvt against DVC on the same pipeline.

    python3 bench/repro.py                      # deps of 100,000 files, 3 runs, dvt and DVC
    python3 bench/repro.py --files 2000 --no-dvc --runs 1     # quick (CI smoke)

One stage counts the files of a directory dependency (dataset d of bench.py: text
records of 1-4 KiB) into a small out, then works for --busy seconds (a stand-in for
training); it reads one param, `n`. Timed, with peak RSS: the first repro (hashes
every dep file and runs the command); median of --runs, repro with nothing changed,
which should cost one stat per file and no reads; repro after `n` changed to a new
value (the command runs); and, median of --runs, repro after `n` went back to a value
run before, which both tools' run caches answer without running the command.
Then the runs go to a directory remote (`push --run-cache`), the project to git, and
in a `git clone` (with the data directory copied in, untimed), `n` set to the value
the clone's lock does not record: timed, dvt's `repro --pull` (which looks for the run
in the remote's run cache) against DVC's `pull --run-cache` then `repro` (DVC's
`repro --pull` only fetches the objects of runs its local run cache has); neither
may run the command.
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
import bench  # noqa: E402

CMD = "find data -type f | wc -l > count.txt && sleep {busy} && echo ran >> runs.log"


def setup(work, tool, source, busy):
    repo = os.path.join(work, f"repro-{tool.name}")
    shutil.rmtree(repo, ignore_errors=True)
    os.makedirs(repo)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["cp", "-r", "--reflink=auto", source, os.path.join(repo, "data")], check=True)
    subprocess.run(tool.cmd("init", "-q"), cwd=repo, env=tool.env, check=True, stdout=subprocess.DEVNULL)
    if tool.name == "dvc":
        subprocess.run(tool.cmd("config", "core.analytics", "false"), cwd=repo, env=tool.env, check=True)
        with open(os.path.join(repo, "dvc.yaml"), "w") as f:
            f.write(f"stages:\n  count:\n    cmd: {CMD.format(busy=busy)}\n    deps:\n      - data\n"
                    "    params:\n      - n\n    outs:\n      - count.txt\n")
    else:
        with open(os.path.join(repo, "dvt.toml"), "w") as f:
            f.write(f'[stages.count]\ncmd = "{CMD.format(busy=busy)}"\ndeps = ["data"]\nparams = ["n"]\n'
                    'outs = ["count.txt"]\n')
    set_n(repo, 1)
    return repo


def set_n(repo, n):
    with open(os.path.join(repo, "params.yaml"), "w") as f:
        f.write(f"n: {n}\n")


def git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, stdout=subprocess.DEVNULL)


def from_clone(work, tool, repo, source, runs):
    """Pushes `repo`'s runs, commits it, and times getting the other run's outs
    in fresh clones, `runs` times (see the module's doc)."""
    store = os.path.join(work, f"repro-store-{tool.name}")
    shutil.rmtree(store, ignore_errors=True)
    bench.run(tool.cmd("remote", "add", "-d", "store", store), repo, tool.env)
    bench.run(tool.cmd("push", "--run-cache"), repo, tool.env)
    with open(os.path.join(repo, ".gitignore"), "a") as f:
        f.write("/data\n/runs.log\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qm", "runs")
    with open(os.path.join(repo, "params.yaml")) as f:
        other = 3 - int(f.read().split()[1])
    times = []
    for i in range(runs):
        clone = os.path.join(work, f"repro-clone-{tool.name}")
        shutil.rmtree(clone, ignore_errors=True)
        git(work, "clone", "-q", repo, clone)
        subprocess.run(["cp", "-r", "--reflink=auto", source, os.path.join(clone, "data")], check=True)
        set_n(clone, other)
        if tool.name == "dvc":
            pulled = bench.run(tool.cmd("pull", "--run-cache"), clone, tool.env)
            ran = bench.run(tool.cmd("repro"), clone, tool.env)
            times.append((pulled[0] + ran[0], max(pulled[1], ran[1])))
        else:
            times.append(bench.run(tool.cmd("repro", "--pull"), clone, tool.env))
        assert not os.path.exists(os.path.join(clone, "runs.log")), f"{tool.name}: the command ran in the clone"
        with open(os.path.join(clone, "count.txt")) as f:
            assert int(f.read().strip()) > 0, f"{tool.name}: the clone has the run's out"
        shutil.rmtree(clone)
    shutil.rmtree(store)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--busy", type=float, default=2.0, help="seconds the stage works after counting")
    bench.standard_args(ap)
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    spec = (f"{args.files} files of 1-4 KiB", "many_text", args.files, (1024, 4096))
    source = bench.ensure_source(work, "d", spec)
    tools, dvc_version = bench.release_tools(not args.no_dvc)
    results = {"machine": f"{os.uname().nodename}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
               "dvc": dvc_version, "files": args.files, "busy_s": args.busy, "runs": args.runs, "ops": {}}
    for tool in tools:
        bench.log(f"repro: {tool.name} ...")
        repo = setup(work, tool, source, args.busy)
        first = bench.run(tool.cmd("repro"), repo, tool.env)
        noop = [bench.run(tool.cmd("repro"), repo, tool.env) for _ in range(args.runs)]
        set_n(repo, 2)
        changed = bench.run(tool.cmd("repro"), repo, tool.env)
        back = []
        for i in range(args.runs):
            set_n(repo, 1 + i % 2)
            back.append(bench.run(tool.cmd("repro"), repo, tool.env))
        with open(os.path.join(repo, "count.txt")) as f:
            assert int(f.read().strip()) == args.files, "the stage ran and counted every file"
        with open(os.path.join(repo, "runs.log")) as f:
            assert len(f.read().split()) == 2, f"{tool.name}: the command ran for n=1 and n=2 only"
        cloned = from_clone(work, tool, repo, source, args.runs)
        for op, rs in [("repro, first run", [first]), ("repro, nothing changed", noop),
                       ("repro, param changed (runs)", [changed]),
                       ("repro, param back to a value run before (run cache)", back),
                       ("fresh clone, run pushed with --run-cache (no run)", cloned)]:
            results["ops"].setdefault(op, {})[tool.name] = {
                "median_s": bench.median([r[0] for r in rs]),
                "peak_rss_mib": max(r[1] for r in rs) / 1024,
            }
        shutil.rmtree(repo)
    with open(os.path.join(work, "results-repro.json"), "w") as f:
        json.dump(results, f, indent=1)
    lines = [f"Machine: {results['machine']}; {results['date']}; DVC {dvc_version or '(not run)'}; one stage whose "
             f"dep is a directory of {args.files} files, working {args.busy} s; median of {args.runs} run(s).",
             ""] + bench.ops_table(results["ops"])
    print("\n".join(lines))


if __name__ == "__main__":
    main()

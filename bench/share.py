#!/usr/bin/env python3
"""dvt against DVC sharing data between repositories: `get` and `import` of a
tracked directory from another repository on this machine, and `import-url` of
a local directory, on bench.py's dataset (c) (10,000 files of ~100 KiB) or (d).

Each tool gets a registry of its own: a git repository with the dataset added,
committed and pushed to a directory remote. Timed, each into a new directory:

    get (its cache holds the data)     `get REGISTRY data -o out`
    get (from its remote)              the same, the registry's cache moved aside
    import (its cache holds the data)  `import REGISTRY data -o out` in a new repository
    import-url (local directory)       `import-url SRC out` in a new repository

What a step reads (the registry's cache, its remote, the source directory) is read
once right before it, untimed (bench.warm). The tools take turns, run by run
(dvt first in odd runs); each run starts after the trees of the previous run were
deleted and `--settle` seconds passed (this VM's ext4 makes a new file pay for
inodes freed in the last minute: see bench.RECENTLY_DELETED_S). Medians of --runs
runs, with peak RSS; every output is checked against the source, untimed.

    python3 bench/share.py --dataset c --runs 3
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (datasets, the DVC install, the release build, run())


def git_repo(path, tool):
    """A new git repository at `path` with the tool initialized in it."""
    os.makedirs(path)
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    bench.run(tool.cmd("init", "-q"), path, tool.env)
    if tool.name == "dvc":
        bench.run(tool.cmd("config", "core.analytics", "false"), path, tool.env)


def make_registry(work, tool, source):
    """The tool's registry: the dataset added, committed, pushed to a directory remote."""
    reg = os.path.join(work, f"{tool.name}-registry")
    remote = os.path.join(work, f"{tool.name}-remote")
    for p in (reg, remote):
        shutil.rmtree(p, ignore_errors=True)
    git_repo(reg, tool)
    subprocess.run(["cp", "-r", "--reflink=auto", source, os.path.join(reg, "data")], check=True)
    bench.run(tool.cmd("add", "-q", "data"), reg, tool.env)
    bench.run(tool.cmd("remote", "add", "-d", "store", remote), reg, tool.env)
    bench.run(tool.cmd("push", "-q"), reg, tool.env)
    subprocess.run(["git", "add", "-A"], cwd=reg, check=True)
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com",
                    "commit", "-q", "-m", "data"], cwd=reg, check=True)
    return reg, remote


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="c", choices=["c", "d"])
    ap.add_argument("--smoke", action="store_true", help="bench.py's small dataset, 1 run, dvt only")
    ap.add_argument("--settle", type=float, default=90, help="seconds to wait after deleting a run's trees")
    ap.add_argument("--out", help="write the Markdown table here too")
    bench.standard_args(ap)
    args = ap.parse_args()
    spec = (bench.SMOKE if args.smoke else bench.FULL)[args.dataset]
    runs = 1 if args.smoke else args.runs
    work = os.path.abspath(os.path.join(args.work, "share"))
    os.makedirs(work, exist_ok=True)
    source = bench.ensure_source(os.path.abspath(args.work), args.dataset, spec)
    expected = bench.tree_digest(source)
    tools, version = bench.release_tools(not (args.no_dvc or args.smoke))
    registries = {t.name: make_registry(work, t, source) for t in tools}

    def steps(tool):
        reg, _ = registries[tool.name]
        cache = os.path.join(reg, ".dvt" if tool.name == "dvt" else ".dvc", "cache")
        return [
            ("get (its cache holds the data)", False, cache, ["get", "-q", reg, "data", "-o", "out"]),
            ("get (from its remote)", False, None, ["get", "-q", reg, "data", "-o", "out"]),
            ("import (its cache holds the data)", True, cache, ["import", "-q", reg, "data", "-o", "out"]),
            ("import-url (local directory)", True, source, ["import-url", "-q", source, "out"]),
        ]

    def clear_runs():
        for entry in os.listdir(work):
            if "-run" in entry:
                shutil.rmtree(os.path.join(work, entry))

    clear_runs()
    times = {}
    for i in range(runs):
        order = tools if i % 2 == 0 else list(reversed(tools))
        for tool in order:
            reg, remote = registries[tool.name]
            for k, (name, in_repo, reads, cmd) in enumerate(steps(tool)):
                scratch = os.path.join(work, f"{tool.name}-run{i}-{k}")
                if in_repo:
                    git_repo(scratch, tool)
                else:
                    os.makedirs(scratch)
                aside = None
                if reads is None:  # from the remote: the registry's cache moved aside
                    cache = os.path.join(reg, ".dvt" if tool.name == "dvt" else ".dvc", "cache")
                    aside = cache + ".aside"
                    os.rename(cache, aside)
                    reads = remote
                bench.warm(reads)
                secs, rss = bench.run(tool.cmd(*cmd), scratch, tool.env)
                if aside:
                    shutil.rmtree(cache, ignore_errors=True)
                    os.rename(aside, cache)
                if bench.tree_digest(os.path.join(scratch, "out")) != expected:
                    raise SystemExit(f"{tool.name}: {name} did not write the data in {scratch}")
                times.setdefault(name, {}).setdefault(tool.name, []).append((secs, rss / 1024))
                bench.log(f"run {i + 1}, {tool.name}, {name}: {secs:.3f} s")
        clear_runs()
        subprocess.run(["sync"], check=True)
        if i + 1 < runs:
            time.sleep(args.settle)

    ops = {
        name: {
            tool: {
                "median_s": statistics.median(s for s, _ in xs),
                "peak_rss_mib": max(r for _, r in xs),
            }
            for tool, xs in per.items()
        }
        for name, per in times.items()
    }
    lines = [
        "Machine: {}; {}; {}; dataset ({}) {}; medians of {} runs, tools taking turns.".format(
            bench.this_machine(),
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            version or "DVC not run",
            args.dataset,
            spec[0],
            runs,
        ),
        "",
        *bench.ops_table(ops),
    ]
    bench.publish(lines, args.out)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Plain web server remotes: dvt and DVC pull from a copy of a remote that a
web server with no WebDAV serves (`rclone serve http` on loopback), as teams
publish data read-only.

Two datasets, as in bench/ssh.py: `many`, N random files of 100 KiB in a
directory, and `csv`, one sensor CSV of S MiB. For each tool in turns, run by
run: add and push the data to a directory remote, serve that directory, then
`pull -r web` (the served copy) into a fresh clone. Prints medians and DVC/dvt
ratios as a Markdown table, with peak RSS and the bytes each tool's copy
holds.

    python3 bench/http.py --files 2000 --csv-mib 256 --runs 3 [--no-dvc] [--work DIR]

Needs rclone. It builds dvt (release) and uses DVC from bench/work, as
bench.py does (DVC's http remote is built in).
"""

import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
from ssh import datasets, free_port, print_medians, wait_for_port  # noqa: E402

MEASURES = ["pull", "pull_rss", "served_bytes"]


def one_run(tool, work, data, served, url, run):
    """Adds `data` in a new repository, pushes it to served/<tool>, and pulls
    it from the web server into a clone."""
    exe, env = tool.exe, tool.env
    repo = os.path.join(work, f"http-{tool.name}{run}")
    clone = repo + "-clone"
    store = os.path.join(served, tool.name)
    for d in (repo, clone, store):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(repo)
    quiet = dict(cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    git = lambda *a, cwd=repo: subprocess.run(["git", *a], cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    git("init", "-q")
    subprocess.run([exe, "init", "-q"], **quiet)
    name = os.path.basename(data)
    copy = shutil.copytree if os.path.isdir(data) else shutil.copy
    copy(data, os.path.join(repo, name))
    subprocess.run([exe, "remote", "add", "-d", "dir", store], **quiet)
    subprocess.run([exe, "add", name], **quiet)
    subprocess.run([exe, "push"], **quiet)
    git("add", "-A")
    git("-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "data")
    git("clone", "-q", repo, clone, cwd=work)
    subprocess.run([exe, "remote", "add", "--local", "web", f"{url}/{tool.name}"], **dict(quiet, cwd=clone))
    out = {}
    out["pull"], out["pull_rss"] = bench.run([exe, "pull", "-r", "web"], clone, env)
    out["served_bytes"] = bench.du(store)
    if bench.tree_digest(os.path.join(clone, name)) != bench.tree_digest(data):
        raise SystemExit(f"{tool.name}: the pulled {name} differs from the data")
    for d in (repo, clone):
        shutil.rmtree(d)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--csv-mib", type=int, default=256)
    bench.standard_args(ap)
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    tools, dvc_version = bench.release_tools(not args.no_dvc)

    sets = datasets(work, args.files, args.csv_mib)  # the same data as bench/ssh.py

    served = os.path.join(work, "http-served")
    shutil.rmtree(served, ignore_errors=True)
    os.makedirs(served)
    port = free_port()
    # No directory cache: each run replaces what is served.
    server = subprocess.Popen(["rclone", "serve", "http", served, "--addr", f"127.0.0.1:{port}",
                               "--dir-cache-time", "0s"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, "rclone serve http did not start")
    url = f"http://127.0.0.1:{port}"
    times = {s: {t.name: {k: [] for k in MEASURES} for t in tools} for s in sets}
    try:
        for run in range(args.runs):
            for set_name, data in sets.items():
                for tool in tools:
                    for k, v in one_run(tool, work, data, served, url, run).items():
                        times[set_name][tool.name][k].append(v)
                    t = times[set_name][tool.name]
                    print(f"run {run + 1} {set_name} {tool.name}: pull {t['pull'][-1]:.2f} s "
                          f"({t['pull_rss'][-1] // 1024} MiB peak), served "
                          f"{t['served_bytes'][-1] / bench.MIB:.1f} MiB", flush=True)
    finally:
        server.terminate()
        server.wait()
    dvc = f", DVC {dvc_version}" if dvc_version else ""
    print(f"\n`rclone serve http` on 127.0.0.1 (no WebDAV); `many`: {args.files} random files of 100 KiB; "
          f"`csv`: one {args.csv_mib} MiB CSV; medians of {args.runs} runs (s){dvc}\n")
    print_medians(sets, times, MEASURES, not args.no_dvc, "served")


if __name__ == "__main__":
    main()

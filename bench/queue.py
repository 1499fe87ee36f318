#!/usr/bin/env python3
"""Benchmark a queue of experiments: dvt against DVC on the same small pipeline.

    python3 bench/queue.py                                    # 4 experiments, 2 at a time, 3 runs, dvt and DVC
    python3 bench/queue.py --no-dvc --runs 1 --experiments 2  # quick

One stage reads 20 MB of data the tool tracks and a param, keeps a core busy for
about --busy seconds, and writes a model (an out) and a metric. Timed, median of
--runs: queuing N experiments (`exp run --queue -S k=1,...,N`), then running them two
at a time outside the workspace until every one is recorded (`dvt queue start -j 2`;
`dvc queue start -j 2` returns at once, so its workers are polled with `dvc queue
status` every 0.2 s until none is queued or running). The floor printed beside it is
the stage's command run N times, two at a time, with no tool around it.
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

TRAIN = """import hashlib, json, re, time
k = float(re.search(r"k: (\\S+)", open("params.yaml").read()).group(1))
digest = hashlib.sha256(open("data.bin", "rb").read()).hexdigest()
end = time.process_time() + {busy}
n = 0
while time.process_time() < end:
    n += 1
open("model.txt", "w").write(f"{{k}} {{digest}}\\n")
json.dump({{"k": k}}, open("metrics.json", "w"))
"""


def setup(work, tool, busy):
    repo = os.path.join(work, f"queue-{tool.name}")
    shutil.rmtree(repo, ignore_errors=True)
    os.makedirs(repo)
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, stdout=subprocess.DEVNULL)  # noqa: E731
    git("init", "-q")
    git("config", "user.name", "bench")
    git("config", "user.email", "bench@example.invalid")
    quiet = dict(cwd=repo, env=tool.env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(tool.cmd("init", "-q"), **quiet)
    with open(os.path.join(repo, "train.py"), "w") as f:
        f.write(TRAIN.format(busy=busy))
    with open(os.path.join(repo, "params.yaml"), "w") as f:
        f.write("k: 0\n")
    with open(os.path.join(repo, "data.bin"), "wb") as f:
        f.write(os.urandom(20 << 20))
    if tool.name == "dvc":
        subprocess.run(tool.cmd("config", "core.analytics", "false"), **quiet)
        with open(os.path.join(repo, "dvc.yaml"), "w") as f:
            f.write("stages:\n  train:\n    cmd: python3 train.py\n    deps: [train.py, data.bin]\n"
                    "    params: [k]\n    outs: [model.txt]\n    metrics:\n      - metrics.json:\n"
                    "          cache: false\n")
    else:
        with open(os.path.join(repo, "dvt.toml"), "w") as f:
            f.write('[stages.train]\ncmd = "python3 train.py"\ndeps = ["train.py", "data.bin"]\n'
                    'params = ["k"]\nouts = ["model.txt"]\nmetrics = [{ path = "metrics.json", cache = false }]\n')
    subprocess.run(tool.cmd("add", "data.bin"), **quiet)
    subprocess.run(tool.cmd("repro"), **quiet)
    git("add", "-A")
    git("commit", "-qm", "baseline")
    return repo


def run_queue(tool, repo):
    """`queue start -j 2` until every queued experiment is recorded: (wall seconds,
    peak RSS in KiB; NaN for DVC, whose work happens in its background workers)."""
    if tool.name == "dvt":
        return bench.run(tool.cmd("queue", "start", "-j", "2"), repo, tool.env)
    t = time.perf_counter()
    subprocess.run(tool.cmd("queue", "start", "-j", "2"), cwd=repo, env=tool.env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        status = subprocess.run(tool.cmd("queue", "status"), cwd=repo, env=tool.env, check=True,
                                capture_output=True, text=True).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(0.2)
    return time.perf_counter() - t, float("nan")


def recorded(tool, repo):
    """How many experiments have a metric, as the tool's `exp show --json` says."""
    out = subprocess.run(tool.cmd("exp", "show", "--json"), cwd=repo, env=tool.env, check=True,
                         capture_output=True, text=True).stdout
    if tool.name == "dvt":
        return sum(1 for r in json.loads(out) if r["experiment"] and r["metrics"].get("metrics.json"))
    n = 0
    for rev in json.loads(out):
        for exp in rev.get("experiments") or []:
            for e in exp.get("revs", []):
                if (e.get("data") or {}).get("metrics") and not e.get("error"):
                    n += 1
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiments", type=int, default=4)
    ap.add_argument("--busy", type=float, default=1.0, help="CPU seconds the stage spends")
    bench.standard_args(ap)
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    tools, dvc_version = bench.release_tools(not args.no_dvc)
    for tool in tools:
        # DVC's queue workers start `dvc` from PATH.
        tool.env = dict(tool.env, PATH=os.path.dirname(tool.exe) + os.pathsep + os.environ["PATH"])
    n = args.experiments
    values = ",".join(str(i) for i in range(1, n + 1))
    results = {"machine": f"{os.uname().nodename}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
               "dvc": dvc_version, "experiments": n, "busy_s": args.busy, "runs": args.runs, "ops": {}}
    for tool in tools:
        queued, ran = [], []
        for i in range(args.runs):
            bench.log(f"queue: {tool.name}, run {i + 1} of {args.runs} ...")
            repo = setup(work, tool, args.busy)
            queued.append(bench.run(tool.cmd("exp", "run", "--queue", "-S", f"k={values}"), repo, tool.env))
            ran.append(run_queue(tool, repo))
            got = recorded(tool, repo)
            assert got == n, f"{tool.name}: {got} of {n} experiments recorded"
            shutil.rmtree(repo)
        for op, rs in [(f"queue {n} experiments", queued), (f"run them, 2 at a time, until recorded", ran)]:
            results["ops"].setdefault(op, {})[tool.name] = {
                "median_s": bench.median([r[0] for r in rs]),
                "peak_rss_mib": max(r[1] for r in rs) / 1024,
            }
    # The floor: the stage's command alone, N times, two at a time.
    repo = setup(work, tools[0], args.busy)
    floor = bench.shell(f"seq 1 {n} | xargs -P 2 -I@ sh -c 'python3 train.py'", repo)
    shutil.rmtree(repo)
    results["floor_s"] = floor
    with open(os.path.join(work, "results-queue.json"), "w") as f:
        json.dump(results, f, indent=1)
    lines = [f"Machine: {results['machine']}; {results['date']}; DVC {dvc_version or '(not run)'}; {n} experiments "
             f"of a stage busy for {args.busy} s that reads 20 MB of tracked data; median of {args.runs} run(s); "
             f"the stage alone, {n} times two at a time: {floor:.2f} s. (DVC's peak RSS of the runs is not "
             "measured: its work happens in background workers.)", ""] + bench.ops_table(results["ops"])
    print("\n".join(lines))


if __name__ == "__main__":
    main()

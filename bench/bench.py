#!/usr/bin/env python3
"""Benchmark dvt against DVC on the same generated data, in one run.

    python3 bench/bench.py                  # full run: datasets a-d, 3 runs, dvt and DVC
    python3 bench/bench.py --datasets c,d   # a subset
    python3 bench/bench.py --smoke          # tiny data, dvt only, 1 run (CI)

Datasets, generated deterministically (and kept in bench/work/src between runs):
    a  one 2 GiB random file            b  one 1 GiB CSV-like text file
    c  10,000 files of ~100 KiB (random) d  100,000 files of 1-4 KiB (text records)

For each tool and dataset it times, median of --runs runs, with peak RSS:
    add (cold cache), add again (nothing changed), status (nothing changed),
    status after one file changed, add after one file changed,
    checkout into an empty workspace.
It also measures the floors in the same run: reading the data (cat), a bare
stat walk (find -printf), copying the tree (cp -r) and, for single files,
`zstd -1 -T0` to the same disk; and right after each checkout, for each tool,
writing as many bytes of zeros to new files, one writer per core (write floor).
The tools take turns: run 1 of dvt, run 1 of DVC, run 2 of DVC, run 2 of dvt...;
each run of the pair starts after the trees deleted before it have settled (see
settle_disk). What a timed step reads (the data, the cache, a directory remote) is
read once right before it, untimed (see warm).
Results: a Markdown table on stdout, and JSON in bench/work/results.json.
"""
import argparse
import glob
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GIB = 1 << 30
MIB = 1 << 20

FULL = {
    "a": ("one 2 GiB random file", "file", 2 * GIB, None),
    "b": ("one 1 GiB CSV-like text file", "csv", 1 * GIB, None),
    "c": ("10,000 files of ~100 KiB", "many", 10_000, (100 * 1024, 100 * 1024)),
    "d": ("100,000 files of 1-4 KiB", "many_text", 100_000, (1024, 4096)),
}
SMOKE = {
    "a": ("one 24 MiB random file", "file", 24 * MIB, None),
    "b": ("one 24 MiB CSV-like text file", "csv", 24 * MIB, None),
    "c": ("300 files of ~100 KiB", "many", 300, (100 * 1024, 100 * 1024)),
    "d": ("3,000 files of 1-4 KiB", "many_text", 3_000, (1024, 4096)),
}


# ---------------------------------------------------------------- data


def gen_random_file(path, size, seed):
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 64 * MIB)
            f.write(rng.randbytes(n))
            left -= n


def gen_csv(path, size, seed):
    """Sensor readings: sequential timestamps, a few sensor ids, noisy values."""
    rng = random.Random(seed)
    sensors = [f"pump-{c}" for c in "abcdefgh"]
    t = 1_700_000_000
    written = 0
    with open(path, "w", newline="\n") as f:
        f.write("timestamp,sensor_id,temperature_c,vibration_mm_s,pressure_kpa,anomaly\n")
        while written < size:
            rows = []
            for _ in range(20_000):
                t += 1
                s = sensors[t % 8]
                rows.append(
                    f"{t},{s},{60 + rng.random() * 8:.2f},{0.3 + rng.random() * 0.4:.4f},"
                    f"{295 + rng.random() * 12:.1f},{1 if rng.random() < 0.01 else 0}\n"
                )
            block = "".join(rows)
            f.write(block)
            written += len(block)


def gen_many(root, count, sizes, seed, text):
    rng = random.Random(seed)
    os.makedirs(root)
    for i in range(count):
        d = os.path.join(root, f"part-{i // 1000:03d}")
        if i % 1000 == 0:
            os.makedirs(d)
        n = rng.randint(*sizes)
        if text:
            body = (f'{{"id": {i}, "site": "s{i % 17}", "values": [' + ", ".join(
                f"{rng.random():.5f}" for _ in range(n // 10)) + "]}\n")[:n]
            data = body.encode()
        else:
            data = rng.randbytes(n)
        with open(os.path.join(d, f"item-{i:06d}.{'json' if text else 'bin'}"), "wb") as f:
            f.write(data)


def ensure_source(work, name, spec):
    """The dataset's pristine copy: bench/work/src/<name>/data (file or dir)."""
    desc, kind, n, sizes = spec
    src = os.path.join(work, "src", f"{name}-{kind}-{n}")
    data = os.path.join(src, "data")
    done = os.path.join(src, ".complete")
    if os.path.exists(done):
        return data
    shutil.rmtree(src, ignore_errors=True)
    os.makedirs(src)
    t = time.time()
    seed = ord(name)
    if kind == "file":
        gen_random_file(data, n, seed)
    elif kind == "csv":
        gen_csv(data, n, seed)
    else:
        gen_many(data, n, sizes, seed, text=(kind == "many_text"))
    open(done, "w").close()
    log(f"generated {name}: {desc} in {time.time() - t:.1f}s")
    return data


# ---------------------------------------------------------------- running


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, cwd, env=None, check=True):
    """Runs cmd under /usr/bin/time; returns (wall seconds, peak RSS in KiB)."""
    rss_file = os.path.join(cwd, ".bench-rss")
    if not os.path.exists("/usr/bin/time"):  # GNU time missing: RSS from wait4 instead
        t = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        if check and os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"command failed: {' '.join(cmd)} in {cwd}")
        return time.perf_counter() - t, ru.ru_maxrss
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-q", "-f", "%M", "-o", rss_file, *cmd], cwd=cwd, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t
    if check and p.returncode != 0:
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)} in {cwd}\n"
                         f"{p.stderr.decode(errors='replace')}")
    with open(rss_file) as f:
        rss = int(f.read().split()[-1])
    os.remove(rss_file)
    return elapsed, rss


def shell(cmd, cwd):
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def tree_digest(path):
    h = hashlib.blake2b()
    if os.path.isfile(path):
        with open(path, "rb") as f:
            while chunk := f.read(MIB):
                h.update(chunk)
        return h.hexdigest()
    for dirpath, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(dirpath, name)
            h.update(os.path.relpath(p, path).encode())
            with open(p, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def one_file_of(data):
    if os.path.isfile(data):
        return data
    d = os.path.join(data, sorted(os.listdir(data))[0])
    return os.path.join(d, sorted(os.listdir(d))[0])


def du(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


# Where many-file trees go instead of being deleted while tools are timed (see discard).
TRASH = {"dir": None, "delete": False}
# ext4 without a journal (this VM) skips, with a read of its inode block, every inode
# freed in the last 60 s when it allocates one (fs/ext4/ialloc.c: recently_deleted):
# creating 100,000 files right after deleting 100,000 costs a scan per file. The
# window is 60 s + 300 s when the inode block is dirty, and allocating a new inode in
# a block makes it dirty: 61 s was not enough (perf of a slow checkout of (c), 61 s
# after a settle: half its samples in recently_deleted and the buffer lookups it makes).
RECENTLY_DELETED_S = 361


def many_files(path, limit=1000):
    n = 0
    for _, _, files in os.walk(path):
        n += len(files)
        if n > limit:
            return True
    return False


def discard(path):
    """Removes `path` between timed steps. A tree of many files is moved into the
    trash instead (a rename), and the trash is emptied only by settle_disk, outside
    any timed step: deleting it here would make the next step's file creations pay
    for the kernel's recently-deleted bookkeeping, which is neither tool's work."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        if not TRASH["delete"] and many_files(path):
            to_trash(path)
        else:
            shutil.rmtree(path)
    else:
        os.remove(path)


def to_trash(path):
    """Moves `path` into the trash (a rename), to be deleted by settle_disk."""
    os.makedirs(TRASH["dir"], exist_ok=True)
    os.rename(path, os.path.join(TRASH["dir"], f"{len(os.listdir(TRASH['dir']))}-{os.path.basename(path)}"))


def settle_disk(always=False):
    """Empties the trash and waits out ext4's recently-deleted window, so that the
    next timed step starts on a disk where nothing was deleted lately. With
    `always`, waits even when the trash was empty (a run's first turn)."""
    emptied = bool(TRASH["dir"] and os.path.isdir(TRASH["dir"]) and os.listdir(TRASH["dir"]))
    if emptied:
        shutil.rmtree(TRASH["dir"])
    if emptied or always:
        subprocess.run(["sync"], check=True)
        time.sleep(RECENTLY_DELETED_S)


class Tool:
    def __init__(self, name, exe, env):
        self.name, self.exe, self.env = name, exe, env

    def cmd(self, *args):
        return [self.exe, *args]


def setup_repo(work, tool, name, source):
    repo = os.path.join(work, tool.name, name)
    discard(repo)
    os.makedirs(repo)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    if os.path.isdir(source):
        subprocess.run(["cp", "-r", "--reflink=auto", source, os.path.join(repo, "data")], check=True)
    else:
        subprocess.run(["cp", "--reflink=auto", source, os.path.join(repo, "data")], check=True)
    run(tool.cmd("init", "-q") if tool.name == "dvc" else tool.cmd("init"), repo, tool.env)
    if tool.name == "dvc":
        run(tool.cmd("config", "core.analytics", "false"), repo, tool.env)
    return repo


def warm(path):
    """Reads every file below `path` once, outside any timed step, so that the step
    after it finds them in the page cache. This VM runs DAMON reclaim (kdamond,
    action `pageout`): page cache not touched for about a minute is dropped, a
    little every second. After a settle, or a turn of the other tool, part of the
    data (or the cache, or the remote) would otherwise be read from the disk, and how
    much depended on how long the other tool took. Both tools get the same state:
    what they read is in memory, as right after it was written."""
    if os.path.isdir(path):
        subprocess.run(f"find '{path}' -type f -print0 | xargs -0 -r cat > /dev/null", shell=True, check=True)
    elif os.path.isfile(path):
        subprocess.run(["cat", path], check=True, stdout=subprocess.DEVNULL)


def reset(repo, tool):
    for p in ["data.dvt", "data.dvc", ".dvt/cache", ".dvt/tmp", ".dvc/cache", ".dvc/tmp"]:
        discard(os.path.join(repo, p))


def bench_tool(tool, repo, i, out):
    """Run `i` of the sequence of local operations, timings appended to
    out[op] as (secs, rss); returns the bytes in the cache after the cold add."""
    cache = os.path.join(repo, ".dvt/cache" if tool.name == "dvt" else ".dvc/cache")

    def timed(op, *args):
        r = run(tool.cmd(*args), repo, tool.env)
        out.setdefault(op, []).append(r)

    data = os.path.join(repo, "data")
    reset(repo, tool)
    subprocess.run(["sync"], check=True)
    warm(data)
    time.sleep(1)  # leave the stat cache's racy window for the data
    timed("add (cold)", "add", "data")
    cache_bytes = du(cache)
    timed("add (no change)", "add", "data")
    timed("status (no change)", "status")
    with open(one_file_of(data), "ab") as f:
        f.write(f"one more line {i}\n".encode())
    time.sleep(0.2)
    timed("status (1 changed)", "status")
    timed("add (1 changed)", "add", "data")
    expected = tree_digest(data)
    discard(data)
    subprocess.run(["sync"], check=True)
    warm(cache)
    timed("checkout (empty workspace)", "checkout")
    if tree_digest(data) != expected:
        raise SystemExit(f"{tool.name}: checkout did not restore the data in {repo}")
    # The floor under that checkout, measured right after it in the same state.
    out.setdefault("write floor (after checkout)", []).append((write_floor(repo, du(data)), 0))
    return cache_bytes


def add_remote(tool, repo, kind, target, s3_endpoint):
    """Points the repo's default remote at `target` (a directory, or a bucket on the
    S3 emulator). Both tools take the same commands and DVC's key names."""
    url = f"s3://{target}/bench" if kind == "s3" else target
    run(tool.cmd("remote", "add", "-d", "-f", "store", url), repo, tool.env)
    if kind == "dir-hardlink":
        run(tool.cmd("remote", "modify", "store", "hardlink", "true"), repo, tool.env)
    if kind == "s3":
        for k, v in [("endpointurl", s3_endpoint), ("access_key_id", "bench"), ("secret_access_key", "bench")]:
            run(tool.cmd("remote", "modify", "store", k, v), repo, tool.env)


def fresh_target(work, tool, kind, name, i, s3_endpoint):
    if kind != "s3":
        target = os.path.join(work, "remotes", f"{tool.name}-{name}")
        discard(target)
        return target
    bucket = f"bench-{tool.name}-{name}-{i}-{int(time.time() * 1000) % 100000}"
    subprocess.run(["curl", "-fsS", "-X", "PUT", f"{s3_endpoint}/{bucket}"], check=True, stdout=subprocess.DEVNULL)
    return bucket


def bench_remote(tool, repo, work, name, kind, i, s3_endpoint, out):
    """Run `i` of: push to an empty remote, push with nothing to do, fetch into an
    empty cache, pull into an empty cache and workspace. Timings are appended to
    out[op] as (secs, rss); returns the bytes on a directory remote after the push."""
    remote_bytes = None
    cache = os.path.join(repo, ".dvt/cache" if tool.name == "dvt" else ".dvc/cache")
    data = os.path.join(repo, "data")
    label = {"dir": "dir", "dir-hardlink": "dir, hardlink", "s3": "S3 emulator"}[kind]

    def timed(op, *args):
        r = run(tool.cmd(*args), repo, tool.env)
        out.setdefault(f"{op} [{label}]", []).append(r)

    expected = tree_digest(data)
    target = fresh_target(work, tool, kind, name, i, s3_endpoint)
    add_remote(tool, repo, kind, target, s3_endpoint)
    subprocess.run(["sync"], check=True)
    warm(cache)
    timed("push (empty remote)", "push")
    if kind == "dir":
        remote_bytes = du(target)
    timed("push (nothing to do)", "push")
    discard(cache)
    subprocess.run(["sync"], check=True)
    if kind != "s3":
        warm(target)
    timed("fetch (empty cache)", "fetch")
    discard(cache)
    discard(data)
    subprocess.run(["sync"], check=True)
    if kind != "s3":
        warm(target)
    timed("pull (empty cache+workspace)", "pull")
    if tree_digest(data) != expected:
        raise SystemExit(f"{tool.name}: pull did not restore the data in {repo}")
    if kind != "s3":
        discard(target)
    return remote_bytes


def floors(repo):
    data = os.path.join(repo, "data")
    warm(data)
    f = {
        "cat": shell("find data -type f -print0 | xargs -0 cat > /dev/null", repo),
        "stat walk": shell("find data -printf '%s %T@ %i\\n' > /dev/null", repo),
    }
    f["cp -r"] = shell("cp -r --reflink=never data data.copy", repo)
    discard(os.path.join(repo, "data.copy"))
    if os.path.isfile(data) and shutil.which("zstd"):
        f["zstd -1 -T0"] = shell("zstd -q -1 -T0 -f data -o data.zst && sync && rm -f data.zst", repo)
    return f


def write_floor(repo, size):
    """Writes `size` bytes of zeros to new files, one writer per core, and returns the
    seconds taken: what any tool pays to put that many bytes in the page cache,
    without reading or making files. On this VM that is most of the cost of writing:
    a page that the host has taken back (free page reporting) is backed again on its
    first write, and how many such pages there are changes from minute to minute.
    The files go to the trash like the data, so the next step finds memory as a
    tool would have left it. Writes are 256 KiB each (`dd`), the size that costs
    least here; until 2026-11-25 this used `head -c`, whose 4-8 KiB writes cost more."""
    n = os.cpu_count() or 1
    block = 256 << 10
    blocks = -(-size // (n * block))
    out = os.path.join(repo, "write.floor")
    os.makedirs(out)
    t = shell(f"seq 1 {n} | xargs -P {n} -I@ dd if=/dev/zero of=write.floor/@ bs={block} count={blocks} status=none",
              repo)
    if TRASH["delete"]:
        shutil.rmtree(out)
    else:
        to_trash(out)
    return t


def install_dvc(work):
    venv = os.path.join(work, ".venv-dvc")
    exe = os.path.join(venv, "bin", "dvc")
    pip = os.path.join(venv, "bin", "pip")
    if not os.path.exists(exe):
        log("installing DVC into a virtualenv (once)...")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([pip, "install", "-q", "dvc[s3]"], check=True)
    elif not glob.glob(os.path.join(venv, "lib", "python*", "site-packages", "dvc_s3")):
        # A venv from before S3 remotes were benchmarked: DVC needs its S3 plugin.
        log("installing DVC's S3 plugin into the virtualenv (once)...")
        subprocess.run([pip, "install", "-q", "dvc-s3"], check=True)
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    return exe, version


def median(xs):
    return statistics.median(xs)


def standard_args(ap):
    """The options every benchmark script takes: --runs, --no-dvc, --work."""
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-dvc", action="store_true", help="time dvt only")
    ap.add_argument("--work", default=os.path.join(HERE, "work"))


def release_tools(with_dvc):
    """Builds dvt (release) and returns ([dvt, dvc?], DVC's version or None)."""
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    env = dict(os.environ, CI="1")
    tools = [Tool("dvt", os.path.join(ROOT, "target", "release", "dvt"), env)]
    dvc_version = None
    if with_dvc:
        exe, dvc_version = install_dvc(os.path.join(HERE, "work"))
        tools.append(Tool("dvc", exe, dict(env, DVC_NO_ANALYTICS="1")))
    return tools, dvc_version


def this_machine():
    """The machine, as result headers name it: host, architecture, cores."""
    return f"{platform.node() or 'vm'} {platform.machine()}, {os.cpu_count()} cores"


def publish(lines, out=None):
    """Prints a result table (its lines), and writes it to `out` when given."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text)


def ops_table(ops):
    """Markdown rows for {op: {tool: {median_s, peak_rss_mib}}}: dvt, DVC, ratio, RSS."""
    lines = ["| operation | dvt (s) | DVC (s) | DVC / dvt | dvt peak RSS (MiB) | DVC peak RSS (MiB) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for op, per in ops.items():
        a, b = per["dvt"], per.get("dvc")
        if b:
            lines.append(f"| {op} | {a['median_s']:.3f} | {b['median_s']:.3f} | {b['median_s'] / a['median_s']:.1f}x | "
                         f"{a['peak_rss_mib']:.0f} | {b['peak_rss_mib']:.0f} |")
        else:
            lines.append(f"| {op} | {a['median_s']:.3f} | — | — | {a['peak_rss_mib']:.0f} | — |")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny datasets, 1 run, dvt only (for CI)")
    ap.add_argument("--datasets", default="a,b,c,d")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-dvc", action="store_true", help="time dvt only")
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--remotes", default="dir",
                    help="remote kinds to time push/fetch/pull against: dir, dir-hardlink (dvt only), s3 "
                         "(comma-separated; '' for none)")
    ap.add_argument("--s3-endpoint", help="S3 emulator (moto) address, needed for --remotes s3")
    ap.add_argument("--skip-local", action="store_true", help="time only the remote operations")
    ap.add_argument("--settle-each-turn", action="store_true",
                    help="settle the disk before each tool's turn, not once per run: the tool going second in a "
                    "run then does not start among the first one's trees (about 6 minutes more per turn)")
    ap.add_argument("--delete-between", action="store_true",
                    help="delete trees between steps instead of moving them aside (see discard)")
    args = ap.parse_args()
    kinds = [k for k in args.remotes.split(",") if k]
    if "s3" in kinds and not args.s3_endpoint:
        raise SystemExit("--remotes s3 needs --s3-endpoint http://127.0.0.1:PORT (a running moto server)")
    specs = SMOKE if args.smoke else FULL
    runs = 1 if args.smoke else args.runs
    with_dvc = not (args.smoke or args.no_dvc)
    work = os.path.abspath(args.work if not args.smoke else os.path.join(args.work, "smoke"))
    os.makedirs(work, exist_ok=True)
    TRASH["dir"] = os.path.join(work, "trash")
    # The smoke run's trees are small: delete them, and never wait.
    TRASH["delete"] = args.delete_between or args.smoke

    tools, dvc_version = release_tools(with_dvc)

    results = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "date": time.strftime("%Y-%m-%d"),
        "dvc": dvc_version,
        "between_steps": ("deleted" if TRASH["delete"] else f"moved aside, deleted {RECENTLY_DELETED_S} s before timing resumes")
        + "; tools take turns run by run; what a step reads is read once before it (warm)"
        + ("; a settle before each turn" if args.settle_each_turn else ""),
        "runs": runs,
        "datasets": {},
    }
    for name in args.datasets.split(","):
        spec = specs[name]
        source = ensure_source(work, name, spec)
        entry = {"description": spec[0], "ops": {}, "floors": {}, "cache_bytes": {}}
        repos = {tool.name: setup_repo(work, tool, name, source) for tool in tools}
        timings = {tool.name: {} for tool in tools}
        if args.skip_local:
            for tool in tools:
                repo = repos[tool.name]
                run(tool.cmd("add", "data"), repo, tool.env)
                entry["cache_bytes"][tool.name] = du(os.path.join(repo, ".dvt/cache" if tool.name == "dvt"
                                                                  else ".dvc/cache"))
        # The tools take turns run by run, the order alternating, each from a
        # settled disk: this VM's cost of writing changes from minute to minute,
        # and a tool timed in one block could get a slow stretch the other did not.
        for i in range(runs):
            # Trees are only moved aside within a run: one settle covers both tools,
            # or with --settle-each-turn, each tool starts from a settle of its own.
            if not args.settle_each_turn:
                settle_disk()
            for tool in (tools if i % 2 == 0 else tools[::-1]):
                repo = repos[tool.name]
                if args.settle_each_turn:
                    settle_disk(always=True)
                if not args.skip_local:
                    log(f"{name}: {tool.name}, run {i + 1} of {runs} ...")
                    cache_bytes = bench_tool(tool, repo, i, timings[tool.name])
                    entry["cache_bytes"].setdefault(tool.name, cache_bytes)
                for kind in kinds:
                    if kind == "dir-hardlink" and tool.name != "dvt":
                        continue  # DVC's directory remotes always copy
                    log(f"{name}: {tool.name} remote ({kind}), run {i + 1} of {runs} ...")
                    remote_bytes = bench_remote(tool, repo, work, name, kind, i, args.s3_endpoint,
                                                timings[tool.name])
                    if remote_bytes is not None:
                        entry.setdefault("remote_bytes", {}).setdefault(tool.name, remote_bytes)
        for tool in tools:
            for op, rs in timings[tool.name].items():
                entry["ops"].setdefault(op, {})[tool.name] = {
                    "median_s": median([r[0] for r in rs]),
                    "runs_s": [round(r[0], 3) for r in rs],
                    "peak_rss_mib": max(r[1] for r in rs) / 1024,
                }
        repo = repos["dvt"]
        settle_disk()
        entry["floors"] = floors(repo)
        cache_dir = os.path.join(repo, ".dvt", "cache")
        entry["floors"]["cp -r cache"] = shell(f"cp -r --reflink=never {cache_dir} cache.copy && sync", repo)
        discard(os.path.join(repo, "cache.copy"))
        entry["data_bytes"] = du(os.path.join(repo, "data"))
        for repo in repos.values():
            discard(repo)
        results["datasets"][name] = entry

    if TRASH["dir"] and os.path.isdir(TRASH["dir"]):
        shutil.rmtree(TRASH["dir"])
    out_file = os.path.join(work, "results.json")
    with open(out_file, "w") as f:
        json.dump(results, f, indent=1)
    print(render(results))
    log(f"results: {out_file}")


def render(r):
    lines = [f"Machine: {r['machine']}; date {r['date']}; DVC {r['dvc'] or '(not run)'}; "
             f"median of {r['runs']} run(s); trees between steps: {r.get('between_steps', 'deleted')}.", ""]
    lines.append("| dataset | operation | dvt (s) | DVC (s) | DVC / dvt | dvt peak RSS (MiB) | DVC peak RSS (MiB) |")
    lines.append("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, d in r["datasets"].items():
        for op, per in d["ops"].items():
            a = per.get("dvt")
            b = per.get("dvc")
            ratio = f"{b['median_s'] / a['median_s']:.1f}x" if a and b and a["median_s"] > 0 else ""
            lines.append(
                f"| {name} | {op} | {a['median_s']:.3f} | {b['median_s'] if b else float('nan'):.3f} | {ratio} | "
                f"{a['peak_rss_mib']:.0f} | {b['peak_rss_mib'] if b else float('nan'):.0f} |"
            )
    lines += ["", "| dataset | data | dvt cache | DVC cache | dvt remote | DVC remote | floors (s) |",
              "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, d in r["datasets"].items():
        c = d["cache_bytes"]
        fl = ", ".join(f"{k} {v:.3f}" for k, v in d["floors"].items())
        data = d.get("data_bytes", 0)
        dvt_c = c.get("dvt", 0)
        rb = d.get("remote_bytes", {})
        rem = [f"{rb[t] / MIB:.0f} MiB" if t in rb else "" for t in ("dvt", "dvc")]
        lines.append(
            f"| {name} | {data / MIB:.0f} MiB | {dvt_c / MIB:.0f} MiB ({100 * dvt_c / max(data, 1):.0f}%) | "
            f"{c['dvc'] / MIB if 'dvc' in c else float('nan'):.0f} MiB | {rem[0]} | {rem[1]} | {fl} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

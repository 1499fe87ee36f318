#!/usr/bin/env python3
"""SSH remotes: dvt and DVC push to, and pull from, one OpenSSH server on
loopback (sshd started here, on a free port, with keys made for the run).

Two datasets: `many`, N random files of 100 KiB in a directory (incompressible:
the cost is per file), and `csv`, one sensor CSV of S MiB (compressible: dvt
sends it zstd-compressed). For each tool in turns, run by run: `push` from a
repository with the data added, then `pull` into a fresh clone (download and
check out). Prints medians and DVC/dvt ratios as a Markdown table, peak RSS, and the
bytes each tool left on the server.

    python3 bench/ssh.py --files 2000 --csv-mib 256 --runs 3 [--no-dvc] [--jump] [--delay-ms N] [--work DIR]

With --jump the server is reached through a jump host (`ProxyJump` in the
run's ~/.ssh/config; the jump host is the same sshd), for what the extra hop costs.
With --delay-ms N the tools reach the server (or, with --jump, the jump host)
through bench/delay_proxy.py, which holds every byte N ms each way: a link of
2N ms round trips.

Needs /usr/sbin/sshd (Debian's openssh-server). It builds dvt (release) and
installs DVC with its SSH plugin in bench/work, as bench.py does.
"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402

KIB = 1024
STEPS = ["push", "pull"]
MEASURES = STEPS + [s + "_rss" for s in STEPS] + ["remote_bytes"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)


def wait_for_port(port, failure):
    """Returns once 127.0.0.1:port takes connections; stops the script with `failure` after 10 s."""
    deadline = time.time() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline:
                raise SystemExit(failure)
            time.sleep(0.05)


def start_sshd(root, home):
    """sshd on a free port of 127.0.0.1 that lets this user in with home/.ssh/id_ed25519."""
    os.makedirs(os.path.join(home, ".ssh"), exist_ok=True)
    host_key = os.path.join(root, "host_key")
    user_key = os.path.join(home, ".ssh", "id_ed25519")
    keygen(host_key)
    keygen(user_key)
    shutil.copy(user_key + ".pub", os.path.join(root, "authorized_keys"))
    os.chmod(root, 0o755)
    port = free_port()
    config = os.path.join(root, "sshd_config")
    with open(config, "w") as f:
        f.write(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {root}/sshd.pid\n"
            f"AuthorizedKeysFile {root}/authorized_keys\nPasswordAuthentication no\nUsePAM no\n"
            "PermitRootLogin prohibit-password\nStrictModes no\nSubsystem sftp internal-sftp\n"
        )
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", config], stderr=open(os.path.join(root, "sshd.log"), "w"))
    wait_for_port(port, "sshd did not start: see " + os.path.join(root, "sshd.log"))
    with open(host_key + ".pub") as f:
        kind, key = f.read().split()[:2]
    with open(os.path.join(home, ".ssh", "known_hosts"), "w") as f:
        f.write(f"[127.0.0.1]:{port} {kind} {key}\n")
    return proc, port


def one_run(tool, work, data, server, store, run):
    """Push `data` (a path below work/src) from a new repository, then pull it into a clone."""
    exe, env = tool.exe, tool.env
    repo = os.path.join(work, f"ssh-{tool.name}{run}")
    clone = repo + "-clone"
    for d in (repo, clone):
        shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(store, ignore_errors=True)
    os.makedirs(repo)
    git = lambda *a, cwd=repo: subprocess.run(["git", *a], cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    git("init", "-q")
    subprocess.run([exe, "init", "-q"], cwd=repo, env=env, check=True)
    name = os.path.basename(data)
    copy = shutil.copytree if os.path.isdir(data) else shutil.copy
    copy(data, os.path.join(repo, name))
    subprocess.run([exe, "remote", "add", "-d", "lab", f"ssh://{env['USER']}@{server}{store}"],
                   cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([exe, "add", name], cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    git("add", "-A")
    git("-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qm", "data")
    out = {}
    out["push"], out["push_rss"] = bench.run([exe, "push"], repo, env)
    git("clone", "-q", repo, clone, cwd=work)
    out["pull"], out["pull_rss"] = bench.run([exe, "pull"], clone, env)
    out["remote_bytes"] = bench.du(store)
    for d in (repo, clone):
        shutil.rmtree(d)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--csv-mib", type=int, default=256)
    ap.add_argument("--jump", action="store_true", help="reach the server through a jump host (ProxyJump)")
    ap.add_argument("--delay-ms", type=float, default=0, help="hold every byte this long each way (a proxy)")
    bench.standard_args(ap)
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    tools, dvc_version = bench.release_tools(not args.no_dvc)
    for t in tools:
        if t.name == "dvc":
            pip = os.path.join(os.path.dirname(t.exe), "pip")
            subprocess.run([pip, "install", "-q", "dvc-ssh"], check=True)

    sets = datasets(work, args.files, args.csv_mib)

    server = os.path.join(work, "sshd")
    home = os.path.join(server, "home")
    shutil.rmtree(server, ignore_errors=True)
    os.makedirs(server)
    proc, port = start_sshd(server, home)
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    for t in tools:
        t.env = dict(t.env, HOME=home, USER=user)
    store = os.path.join(server, "store")
    reached = port
    proxy = None
    if args.delay_ms:
        reached = free_port()
        proxy = subprocess.Popen([sys.executable, os.path.join(HERE, "delay_proxy.py"), str(reached), str(port), str(args.delay_ms)])
        wait_for_port(reached, "the delaying proxy did not start")
        known = os.path.join(home, ".ssh", "known_hosts")
        with open(known) as f:
            line = f.readline()
        with open(known, "a") as f:
            f.write(line.replace(f"]:{port} ", f"]:{reached} "))
    target = f"127.0.0.1:{reached}"
    if args.jump:
        with open(os.path.join(home, ".ssh", "config"), "w") as f:
            f.write(f"Host lab\n  HostName 127.0.0.1\n  Port {port}\n  ProxyJump {user}@127.0.0.1:{reached}\n")
        target = "lab"
    times = {s: {t.name: {k: [] for k in MEASURES} for t in tools} for s in sets}
    try:
        for run in range(args.runs):
            for set_name, data in sets.items():
                for tool in tools:
                    for k, v in one_run(tool, work, data, target, store, run).items():
                        times[set_name][tool.name][k].append(v)
                    t = times[set_name][tool.name]
                    print(f"run {run + 1} {set_name} {tool.name}: push {t['push'][-1]:.2f} s "
                          f"({t['push_rss'][-1] // 1024} MiB peak), pull {t['pull'][-1]:.2f} s "
                          f"({t['pull_rss'][-1] // 1024} MiB peak), on the server "
                          f"{t['remote_bytes'][-1] / bench.MIB:.1f} MiB", flush=True)
    finally:
        proc.terminate()
        proc.wait()
        if proxy:
            proxy.terminate()
            proxy.wait()
    dvc = f", DVC {dvc_version} with dvc-ssh" if dvc_version else ""
    via = " through a jump host (the same sshd)" if args.jump else ""
    if args.delay_ms:
        via += f", {args.delay_ms:g} ms each way added by bench/delay_proxy.py ({2 * args.delay_ms:g} ms round trips)"
    print(f"\nOpenSSH on 127.0.0.1{via}; `many`: {args.files} random files of 100 KiB; `csv`: one "
          f"{args.csv_mib} MiB CSV; medians of {args.runs} runs (s){dvc}\n")
    print_medians(sets, times, MEASURES, not args.no_dvc, "on the server")


def datasets(work, files, csv_mib):
    """`many` (files random files of 100 KiB) and `csv` (one sensor CSV of
    csv_mib MiB) below work/src, made once: {name: path}."""
    src = os.path.join(work, "src", f"ssh-{files}-{csv_mib}")
    sets = {"many": os.path.join(src, "many"), "csv": os.path.join(src, "readings.csv")}
    if not os.path.exists(os.path.join(src, ".complete")):
        shutil.rmtree(src, ignore_errors=True)
        os.makedirs(sets["many"])
        for i in range(files):
            bench.gen_random_file(os.path.join(sets["many"], f"item-{i:05d}.bin"), 100 * KIB, i)
        bench.gen_csv(sets["csv"], csv_mib * bench.MIB, 7)
        open(os.path.join(src, ".complete"), "w").close()
    return sets


def print_medians(sets, times, measures, with_dvc, bytes_label):
    """A Markdown table of times[set][tool][measure]'s medians: seconds, peak
    RSS (`*_rss`, KiB) and bytes (`*_bytes`, shown as `bytes_label`), with
    DVC/dvt ratios when DVC ran."""
    print("| data | step | dvt | " + ("DVC | DVC / dvt |" if with_dvc else ""))
    print("| --- | --- | --- | " + ("--- | --- |" if with_dvc else ""))
    for set_name in sets:
        for s in measures:
            d = statistics.median(times[set_name]["dvt"][s])
            if s.endswith("_bytes"):
                fmt, label = (lambda x: f"{x / bench.MIB:.1f} MiB"), bytes_label
            elif s.endswith("_rss"):
                fmt, label = (lambda x: f"{x / 1024:.0f} MiB"), s.replace("_rss", ", peak RSS")
            else:
                fmt, label = (lambda x: f"{x:.2f}"), s
            row = f"| {set_name} | {label} | {fmt(d)} |"
            if with_dvc:
                c = statistics.median(times[set_name]["dvc"][s])
                row += f" {fmt(c)} | {c / d:.1f}x |"
            print(row)


if __name__ == "__main__":
    main()

"""Read data tracked by dvt from Python, as `dvc.api` reads DVC's.

Each function runs the `dvt` binary (the one on PATH, or the environment
variable DVT names) and reads its answer; the bytes are verified by dvt before
Python sees the first one. Arguments are those of `dvc.api`:

- path: a tracked file, or a file inside a tracked directory, relative to the
  repository's root;
- repo: a directory inside the dvt repository (default: the current one), or
  the URL of a git repository (https://, ssh://, git@host:path, file://),
  whose data is then downloaded from its own remote, as `dvt get` does;
- rev: a git revision or an experiment's name (default: the pointer files of
  the work tree);
- remote: the remote to download from when the cache lacks the data (default:
  the default remote); for a repository URL, one of that repository's remotes;
- remote_config (repository URLs): options of that remote for this call, a
  dict as `dvt get --remote-config` takes them, e.g.
  {"secret_access_key": "..."};
- config (repository URLs): a dict merged over that repository's config, as a
  `dvt get --config` file, e.g. {"remote": {"mine": {"url": "s3://..."}},
  "core": {"remote": "mine"}}.

    import dvt.api
    with dvt.api.open("data/train.csv", rev="data-v2") as f:
        header = f.readline()
    model = dvt.api.read("models/model.bin", rev="v1.2.0", mode="rb")
    run_info = dvt.api.describe()   # commit, tags, dirtiness, every data id
    lr = dvt.api.params_show()["train"]["lr"]

Failures raise `DvtError`, whose message is dvt's error.
"""

import builtins
import contextlib
import datetime
import io
import json
import os
import re
import shutil
import subprocess
import tempfile

__all__ = [
    "DvtError",
    "artifacts_show",
    "DvtFileSystem",
    "describe",
    "exp_save",
    "exp_show",
    "get_url",
    "get_url_info",
    "metrics_show",
    "open",
    "params_show",
    "read",
]


class DvtError(Exception):
    """dvt failed; the message is its error (with its hint), `returncode` its exit code."""

    def __init__(self, message, returncode=None):
        super().__init__(message)
        self.returncode = returncode


def _binary():
    name = os.environ.get("DVT") or shutil.which("dvt")
    if not name:
        raise DvtError("the dvt binary is not on PATH (or set DVT to its path)")
    return name


def _is_url(repo):
    s = os.fspath(repo) if repo is not None else ""
    return "://" in s or re.match(r"^[\w.-]+@[\w.-]+:", s) is not None


def _command(args, path=None, repo=None, rev=None, remote=None):
    cmd = [_binary(), "-q", *args]
    if path is not None:
        cmd.append(os.fspath(path))
    # Always given, so that `path` is relative to the root, as in dvc.api.
    cmd += ["--repo", os.fspath(repo) if repo is not None else os.curdir]
    if rev is not None:
        cmd += ["--rev", rev]
    if remote is not None:
        cmd += ["--remote", remote]
    return cmd


def _failed(returncode, stderr):
    text = stderr.decode("utf-8", "replace").strip()
    return DvtError(text or "dvt exited with code {}".format(returncode), returncode)


def _run(cmd):
    try:
        done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise DvtError("cannot run `{}`: no such file".format(cmd[0])) from None
    if done.returncode != 0:
        raise _failed(done.returncode, done.stderr)
    return done.stdout


def get_url(path, repo=None, rev=None, remote=None, config=None, remote_config=None):
    """The URL of `path`'s data on the remote (`dvt get-url`; for a repository
    URL, `dvt get --show-url`).

    What is at that URL is dvt's stored form (zstd-compressed, or a byte range
    of a pack file): `get_url_info` says which."""
    return get_url_info(path, repo, rev, remote, config, remote_config)["url"]


def get_url_info(path, repo=None, rev=None, remote=None, config=None, remote_config=None):
    """`dvt get-url --json` as a dict: url, range, remote, encoding, on_remote,
    path, rev, commit, pointer, id, size, kind, executable. For a repository
    URL, `dvt get --show-url --json`: url, range, remote, path, rev, commit,
    id, size, kind (nothing is downloaded, so neither encoding nor on_remote)."""
    _only_for_urls(repo, config, remote_config)
    if not _is_url(repo):
        return json.loads(_run(_command(["get-url", "--json"], path, repo, rev, remote)))
    with tempfile.TemporaryDirectory(prefix="dvt-api-") as tmp:
        cmd = [_binary(), "-q", "get", os.fspath(repo), os.fspath(path), "--show-url", "--json"]
        return json.loads(_run(cmd + _source_options(rev, remote, config, remote_config, tmp)))


def _source_options(rev, remote, config, remote_config, tmp):
    """The options of `dvt get` and `dvt list` that say which revision and
    which remote of another repository to read, and how; a config goes to a
    file in `tmp` that only this user reads."""
    opts = []
    if rev is not None:
        opts += ["--rev", rev]
    if remote is not None:
        opts += ["--remote", remote]
    for key, value in (remote_config or {}).items():
        opts += ["--remote-config", "{}={}".format(key, value if isinstance(value, str) else _toml_value(value))]
    if config is not None:
        name = os.path.join(tmp, "config.toml")
        with builtins.open(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(_toml(config))
        opts += ["--config", name]
    return opts


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string
    raise DvtError("config values are strings, whole numbers or booleans, not {!r}".format(v))


def _toml(table, prefix=()):
    """A dict of dicts (tables) and scalars as TOML text."""
    lines, subtables = [], []
    for key, value in table.items():
        if isinstance(value, dict):
            subtables.append((key, value))
        else:
            lines.append("{} = {}".format(json.dumps(str(key)), _toml_value(value)))
    out = ""
    if lines:
        if prefix:
            out += "[{}]\n".format(".".join(json.dumps(str(p)) for p in prefix))
        out += "\n".join(lines) + "\n"
    for key, value in subtables:
        out += _toml(value, prefix + (key,))
    return out


def _only_for_urls(repo, config, remote_config):
    if not _is_url(repo) and (config is not None or remote_config is not None):
        raise DvtError(
            "config= and remote_config= are for a repository URL; "
            "for a local clone, set its remote's options with `dvt remote modify --local`"
        )


@contextlib.contextmanager
def _downloaded(path, repo, rev, remote, config=None, remote_config=None):
    """`path` of the repository at URL `repo`, downloaded by `dvt get` into a
    temporary directory that goes when the block ends."""
    with tempfile.TemporaryDirectory(prefix="dvt-api-") as tmp:
        out = os.path.join(tmp, "data")
        cmd = [_binary(), "-q", "get", os.fspath(repo), os.fspath(path), "-o", out]
        # Secrets may be in a config: its file goes with the block.
        _run(cmd + _source_options(rev, remote, config, remote_config, tmp))
        if os.path.isdir(out):
            raise DvtError("`{}` is a directory; name a file in it".format(path))
        yield out


def read(path, repo=None, rev=None, remote=None, mode="r", encoding=None, config=None, remote_config=None):
    """The whole content of `path` (`dvt cat`, or `dvt get` for a URL): str,
    or bytes if mode is "rb"."""
    _check_mode(mode)
    _only_for_urls(repo, config, remote_config)
    if _is_url(repo):
        with _downloaded(path, repo, rev, remote, config, remote_config) as local, builtins.open(local, "rb") as f:
            data = f.read()
    else:
        data = _run(_command(["cat"], path, repo, rev, remote))
    if mode == "rb":
        return data
    return io.TextIOWrapper(io.BytesIO(data), encoding=encoding).read()


@contextlib.contextmanager
def open(path, repo=None, rev=None, remote=None, mode="r", encoding=None, config=None, remote_config=None):  # noqa: A001
    """A file object streaming the content of `path` (`dvt cat`), for `with`.

    dvt verifies the whole object before the first byte arrives, so what is
    read is what was added; a failure raises `DvtError` on entering the block.
    From a repository URL the file is downloaded first (`dvt get`, verified)
    and deleted when the block ends."""
    _check_mode(mode)
    _only_for_urls(repo, config, remote_config)
    if _is_url(repo):
        with _downloaded(path, repo, rev, remote, config, remote_config) as local:
            binary = mode == "rb"
            with builtins.open(local, mode, encoding=None if binary else encoding) as f:
                yield f
        return
    cmd = _command(["cat"], path, repo, rev, remote)
    # stderr goes to a file, not a pipe: a pipe not read while stdout is could fill up.
    with tempfile.TemporaryFile() as errors:
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)
        except FileNotFoundError:
            raise DvtError("cannot run `{}`: no such file".format(cmd[0])) from None
        try:
            # dvt writes nothing until the object is verified: wait for the first
            # bytes (or the end) so that a failure is raised here, not mid-read.
            first = proc.stdout.read1(65536) if hasattr(proc.stdout, "read1") else proc.stdout.read(65536)
            if not first and proc.wait() != 0:
                errors.seek(0)
                raise _failed(proc.returncode, errors.read())
            raw = _Stream(first, proc, errors)
            stream = io.BufferedReader(raw)
            f = stream if mode == "rb" else io.TextIOWrapper(stream, encoding=encoding)
            with f:
                yield f
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.wait()


class _Stream(io.RawIOBase):
    """dvt's stdout, starting with bytes already read; its end raises if dvt failed."""

    def __init__(self, first, proc, errors):
        self._pending = first
        self._proc = proc
        self._errors = errors

    def readable(self):
        return True

    def readinto(self, buf):
        if self._pending:
            n = min(len(buf), len(self._pending))
            buf[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        n = self._proc.stdout.readinto(buf)
        if n == 0 and self._proc.wait() != 0:
            self._errors.seek(0)
            raise _failed(self._proc.returncode, self._errors.read())
        return n


def describe(repo=None):
    """What a run should record (`dvt describe --json`): the commit, tags,
    whether the work tree is dirty, and every tracked path's data id."""
    cmd = [_binary(), "-q"]
    if repo is not None:
        cmd += ["-C", os.fspath(repo)]
    return json.loads(_run(cmd + ["describe", "--json"]))


def _root(repo):
    """The repository's root directory, from `repo` (default: the current directory)."""
    start = os.fspath(repo) if repo is not None else os.curdir
    if _is_url(start):
        raise DvtError("this reads a local clone of the repository, not a URL: clone it, then give its directory")
    rel = _run([_binary(), "-q", "-C", start, "root"]).decode().strip()
    return os.path.normpath(os.path.join(start, rel))


def artifacts_show(name, version=None, stage=None, repo=None):
    """Where artifact `name` is at `version` (`1.2.0` or `v1.2.0`) or `stage`
    (default: its newest version), as `dvc.api.artifacts_show`:
    `{"rev": COMMIT, "path": PATH}`, to read it with `open(path, repo, rev)`.
    `repo`: a directory inside the repository (default: the current one) or
    its git URL. Nothing is downloaded (`dvt artifacts show --json`)."""
    if version is not None and stage is not None:
        raise ValueError("give version= or stage=, not both")
    where = os.fspath(repo) if _is_url(repo) else _root(repo)
    cmd = [_binary(), "-q", "artifacts", "show", name, where, "--json"]
    if version is not None:
        cmd += ["--rev", version]
    if stage is not None:
        cmd += ["--stage", stage]
    shown = json.loads(_run(cmd))
    return {"rev": shown["commit"], "path": shown["path"]}


def _merge(into, values):
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


def params_show(*targets, stages=None, repo=None, rev=None, deps=False):
    """The params of `params.yaml` and of every params file the pipeline
    names (or of `targets`, root-relative), in the workspace or at `rev`, as
    one dict nested as the files nest them, as `dvc.api.params_show`:
    `{"train": {"lr": 0.01, ...}, ...}`. Where two files hold the same key,
    the later file (in `dvt params show` order) wins. `deps=True`: only the
    params some stage lists; `stages` (a name or a list): only those the
    stages named list."""
    cmd = [_binary(), "-q", "-C", _root(repo), "params", "show", "--json", *targets]
    if rev is not None:
        cmd += ["--rev", rev]
    if deps:
        cmd.append("--deps")
    for stage in [stages] if isinstance(stages, str) else stages or []:
        cmd += ["--stage", stage]
    merged = {}
    for values in json.loads(_run(cmd)).values():
        _merge(merged, values)
    return merged


def metrics_show(*targets, repo=None):
    """The metrics of the workspace (`dvt metrics show --json`): of every
    metrics file of the pipeline, or of `targets` (root-relative), by file,
    each nested as the file nests it: `{"metrics.json": {"acc": 0.9}}`."""
    cmd = [_binary(), "-q", "-C", _root(repo), "metrics", "show", "--json", *targets]
    out = {}
    for file, flat in json.loads(_run(cmd)).items():
        nested = {}
        for key, value in flat.items():
            *parents, last = key.split(".")
            at = nested
            for p in parents:
                at = at.setdefault(p, {})
            at[last] = value
        out[file] = nested
    return out


def exp_save(name=None, force=False, include_untracked=None, repo=None, message=None):
    """Record the workspace as an experiment (`dvt exp save`), as
    `dvc.api.exp_save`, e.g. at the end of a training script: outs of stages
    and changed pointer data first, then the work tree as a commit on top of
    HEAD (which does not move). `name` (default: one made from the commit),
    `force`: replace an experiment of that name; `include_untracked`: paths
    git ignores to record too. Returns the experiment's commit id."""
    cmd = [_binary(), "-q", "-C", _root(repo), "exp", "save", "--json"]
    if name is not None:
        cmd += ["--name", name]
    if force:
        cmd.append("--force")
    if message is not None:
        cmd += ["--message", message]
    for path in [include_untracked] if isinstance(include_untracked, (str, os.PathLike)) else include_untracked or []:
        cmd += ["--include-untracked", os.fspath(path)]
    return json.loads(_run(cmd))["commit"]


def _flat(values, prefix=""):
    """`{"train": {"lr": 0.1}}` as `{"train.lr": 0.1}`."""
    out = {}
    for key, value in values.items():
        name = prefix + key
        if isinstance(value, dict):
            out.update(_flat(value, name + "."))
        else:
            out[name] = value
    return out


def exp_show(repo=None, revs=None, num=1, param_deps=False, force=False, config=None):
    """The experiments run on HEAD (or on `revs`, a revision or a list, and
    the `num` commits back from each, first parents; a negative `num`: all of
    them), as `dvc.api.exp_show` gives them, e.g. for `pandas.DataFrame(...)`:
    a list of rows, the workspace first, then each commit followed by its
    experiments. Each row has `Experiment` (its name; None for the workspace
    and commits), `rev` (`workspace`, a branch or tag name, or a short commit
    id), `typ` (`workspace`, `baseline`, `branch_commit`, or `branch_base`
    for a commit's last experiment), `Created` (ISO 8601, UTC; DVC formats it
    for a terminal), `parent`, `State` and `Executor` (None: dvt's queue is
    `dvt queue status`), then a column per metric and param, named by its key
    (`train.lr`), or `FILE:KEY` where two files hold that key; None where a
    row has none. `param_deps`: only the params some stage lists. `force` is
    accepted (dvt keeps no such cache); `config` is not supported. Unlike
    DVC's, no columns for deps."""
    if config is not None:
        raise ValueError("config= is not supported by dvt.api.exp_show")
    base = [_binary(), "-q", "-C", _root(repo), "exp", "show", "--json"]
    if param_deps:
        base.append("--param-deps")
    rows, seen = [], set()
    for rev in [revs] if isinstance(revs, str) or revs is None else revs:
        cmd = list(base)
        if rev is not None:
            cmd += ["--rev", rev]
        if num is not None and num != 1:
            cmd += ["-n", str(num if num > 0 else 2**32 - 1)]
        for row in json.loads(_run(cmd)):
            key = (row["name"], row["commit"], row["experiment"])
            if key not in seen:
                seen.add(key)
                rows.append(row)
    # Column names, as DVC's: a key alone, or FILE:KEY where two files hold it.
    columns = {"metrics": {}, "params": {}}
    for row in rows:
        for kind in columns:
            for file, values in (row.get(kind) or {}).items():
                for key in _flat(values):
                    columns[kind].setdefault((file, key), None)
    counts = {}
    for kind in columns:
        for _, key in columns[kind]:
            counts[key] = counts.get(key, 0) + 1
    heads = ["Experiment", "rev", "typ", "Created", "parent", "State", "Executor"]
    named = {}
    for kind in columns:
        for file, key in columns[kind]:
            named[(kind, file, key)] = key if counts[key] == 1 and key not in heads else "{}:{}".format(file, key)
    table = []
    for i, row in enumerate(rows):
        if row["commit"] is None:
            rev, typ = "workspace", "workspace"
        elif not row["experiment"]:
            rev, typ = row["name"], "baseline"
        else:
            last = i + 1 == len(rows) or not rows[i + 1]["experiment"]
            rev, typ = row["commit"][:7], "branch_base" if last else "branch_commit"
        created = row.get("created")
        out = dict.fromkeys(heads + list(named.values()))
        out.update(
            {
                "Experiment": row["name"] if row["experiment"] else None,
                "rev": rev,
                "typ": typ,
                "Created": None
                if created is None
                else datetime.datetime.fromtimestamp(created, datetime.timezone.utc).isoformat(),
                "parent": None,
            }
        )
        for kind in columns:
            for file, values in (row.get(kind) or {}).items():
                for key, value in _flat(values).items():
                    out[named[(kind, file, key)]] = value
        table.append(out)
    return table


def _check_mode(mode):
    if mode not in ("r", "rb"):
        raise ValueError('mode must be "r" or "rb" (data is read only), not {!r}'.format(mode))


def __getattr__(name):
    # `dvt.api.DvtFileSystem`, loaded when first asked for: `dvt.fs` builds on
    # this module, so importing it here would fail when `dvt.fs` is imported
    # first (`from dvt.fs import DvtFileSystem`).
    if name == "DvtFileSystem":
        from .fs import DvtFileSystem

        return DvtFileSystem
    raise AttributeError("module {!r} has no attribute {!r}".format(__name__, name))
